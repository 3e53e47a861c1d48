/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ACPI PCI hot plug controller's register block (docs/networking.md, "Hot plug"): 16
 * bytes of port I/O at PORT_PCIHP that the DSDT's AML reads and writes (acpi_pci.c), never a
 * driver of its own. The guest's Linux handles it with acpiphp, unmodified, as it handles
 * QEMU's on a PIIX4 (whose layout this follows, not its code).
 *
 *   0x00 UP     read:  slots whose device was added since the last read (read clears)
 *   0x04 DOWN   read:  slots whose device the host asked to remove, not ejected yet
 *   0x08 EJECT  write: one bit, the slot whose device the guest let go (its _EJ0)
 *   0x0c SLOTS  read:  the slots the DSDT declares hot-pluggable
 *
 * Only 32-bit accesses at those offsets mean anything (the AML's Field is DWordAcc); any
 * other access reads 0 and writes nothing. An eject is honoured only for one slot whose
 * removal the host asked for: the guest cannot unplug an adapter the host did not remove.
 * No KVM, no machine: the same code serves keel-vmm, the unit test and the fuzz target.
 */
#ifndef KEEL_VMM_DEV_PCIHP_REGS_H
#define KEEL_VMM_DEV_PCIHP_REGS_H

#include <stdint.h>

struct vm_def;

#define PCIHP_SIZE  16
#define PCIHP_UP    0x00
#define PCIHP_DOWN  0x04
#define PCIHP_EJECT 0x08
#define PCIHP_SLOTS 0x0c
#define PCIHP_GPE   1 /* the GPE0 bit of a hot plug event: the DSDT's \_GPE._E01 */

struct pcihp_regs {
	uint32_t slots;	  /* hot-pluggable slots; fixed for the VM's life */
	uint32_t up;	  /* added, not yet seen by the guest's AML */
	uint32_t down;	  /* removal asked for, not yet ejected */
	uint32_t ejected; /* ejected by the guest, the card not torn down yet */
};

/* The slots the DSDT declares hot-pluggable for def: 1 to 30 (0 is the host bridge, 31 the
 * LPC bridge), but those of devices that cannot be hot-removed (every kind but network
 * adapters). */
uint32_t pcihp_slots(const struct vm_def *def);

/* A guest read of size bytes at off. */
uint32_t pcihp_regs_read(struct pcihp_regs *r, uint64_t off, unsigned size);
/* A guest write: the slot the guest ejected (1-31, its removal pending; now in ejected), or 0
 * for none. */
unsigned pcihp_regs_write(struct pcihp_regs *r, uint64_t off, unsigned size, uint64_t value);
/* The slots ejected since the last call (the host tears their cards down). */
uint32_t pcihp_regs_take_ejected(struct pcihp_regs *r);
/* The card at slot is gone (torn down on an eject, or removed by force): nothing about it is
 * pending any more, its eject neither, which would else take down the next card put there. */
void pcihp_regs_gone(struct pcihp_regs *r, unsigned slot);

#endif
