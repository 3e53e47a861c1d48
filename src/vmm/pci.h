/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI: one host bridge (bus 0, segment 0) with configuration space through ports
 * 0xCF8/0xCFC and ECAM (described by the ACPI MCFG table), memory BARs assigned by keel-vmm
 * (acting as the firmware) in the 32-bit hole or above 4 GiB, and MSI-X delivered through
 * KVM's GSI routing and one irqfd per vector.
 *
 * Threads and locks: configuration space, BAR placement and MSI-X tables change on vCPU
 * threads under the host's lock; device threads signal vectors with pci_msix_notify(),
 * which takes only the device's msix_lock (a leaf lock). Lock order: host lock, then a
 * device's own locks, then msix_lock. A device's bar_map callback runs with the host lock
 * held and must take no lock of its own that a device thread holds while notifying.
 *
 * A device's life on the bus (the guest is an attacker: it may poll any slot's configuration
 * space, or any address in the windows, at any time from any vCPU):
 *  - The slot array, and each device's published flag, change only under the host lock, and
 *    every guest look-up (configuration space through 0xCF8/0xCFC or ECAM, a BAR in the
 *    windows) finds the device under the host lock. Configuration space and the MSI-X BAR are
 *    served under that same hold, so pci_dev_unregister (which takes it) never frees what a
 *    vCPU is reading there.
 *  - A device registered in a VM that runs (machine_built: a hot add) is pending: it holds its
 *    slot, BARs and GSIs, but configuration-space and BAR look-ups do not see it, so its BARs
 *    never decode and no vCPU can be inside it. Its owner calls pci_dev_publish() once the
 *    whole add has succeeded; until then any failure unregisters and frees it at once, the
 *    vCPUs running. A device registered before the VM is built is published at once (no vCPU
 *    exists yet).
 *  - Other BAR accesses (bar_read/bar_write) and the KVM ioeventfds bar_map set up run outside
 *    the host lock: a published device is freed only with every vCPU stopped (vm_pause), and
 *    when the vCPUs cannot be stopped it is not freed (hotplug.c tries again later).
 */
#ifndef KEEL_VMM_PCI_H
#define KEEL_VMM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine;
struct pci_host;
struct state_io;

#define PCI_CFG_SIZE	 256 /* conventional space; ECAM's extended space reads as zero */
#define PCI_NUM_BARS	 6
#define PCI_MAX_SLOTS	 32
#define PCI_MSIX_MAX_VEC 64

/* Standard header offsets and bits used here. */
#define PCI_VENDOR_ID	     0x00
#define PCI_DEVICE_ID	     0x02
#define PCI_COMMAND	     0x04
#define PCI_STATUS	     0x06
#define PCI_REVISION	     0x08
#define PCI_CLASS_PROG	     0x09
#define PCI_HEADER_TYPE	     0x0e
#define PCI_BAR0	     0x10
#define PCI_SUBSYS_VENDOR    0x2c
#define PCI_SUBSYS_ID	     0x2e
#define PCI_CAP_PTR	     0x34
#define PCI_INTERRUPT_LINE   0x3c
#define PCI_INTERRUPT_PIN    0x3d
#define PCI_CMD_IO	     0x0001
#define PCI_CMD_MEM	     0x0002
#define PCI_CMD_MASTER	     0x0004
#define PCI_CMD_INTX_OFF     0x0400
#define PCI_STATUS_CAP_LIST  0x0010
#define PCI_CAP_ID_MSIX	     0x11
#define PCI_CAP_ID_VENDOR    0x09

#define PCI_BAR_MEM64	     0x4 /* memory BAR type bits: 64-bit */

#define PCI_MSIX_CTRL_ENABLE 0x8000
#define PCI_MSIX_CTRL_FMASK  0x4000
#define PCI_MSIX_ENTRY_SIZE  16
#define PCI_MSIX_PBA_OFFSET  0x800 /* in the MSI-X BAR, after up to 128 table entries */

struct pci_dev_ops {
	/* Guest access to one of the device's BARs (not the MSI-X BAR, which pci.c serves);
	 * off is relative to the BAR, size 1, 2, 4 or 8. vCPU threads, no PCI lock held. */
	uint64_t (*bar_read)(void *opaque, unsigned bar, uint64_t off, unsigned size);
	void (*bar_write)(void *opaque, unsigned bar, uint64_t off, unsigned size, uint64_t value);
	/* The BAR starts decoding at addr (mapped) or stops (mapped false). Host lock held. */
	void (*bar_map)(void *opaque, unsigned bar, uint64_t addr, bool mapped);
	/* Optional: configuration space at off (a capability the device owns) was written;
	 * or is being read (may replace *value). Host lock held. */
	void (*cfg_write)(void *opaque, unsigned off, unsigned size, uint32_t value);
	void (*cfg_read)(void *opaque, unsigned off, unsigned size, uint32_t *value);
	/* VM reset: back to power-on state. Main thread, vCPUs stopped. */
	void (*reset)(void *opaque);
	/* Optional: a vector's mask bit, the function mask or MSI-X enable changed (a device
	 * whose vectors something else signals directly, vhost-net, must then stop or resume).
	 * Host lock held, msix_lock not. */
	void (*msix_changed)(void *opaque);
};

struct pci_bar {
	uint64_t size; /* 0: unused; else a power of two >= 4096 */
	bool is64;
	uint64_t def_addr; /* where keel-vmm places it at power-on */
	bool mapped;	   /* decoding at map_addr (memory enabled, inside a window) */
	uint64_t map_addr;
};

struct pci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct pci_dev {
	/* Set by the device before pci_dev_register(). */
	const struct pci_dev_ops *ops;
	void *opaque;
	const char *name;

	/* Owned by pci.c. */
	struct pci_host *host;
	unsigned slot;
	bool published; /* guest look-ups see it (host lock; see the rule above) */
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* writable bits of plain registers */
	uint8_t cap_end;	     /* next free capability offset */
	uint8_t cap_last;	     /* offset of the last capability (to chain the next) */
	struct pci_bar bars[PCI_NUM_BARS];

	/* MSI-X: table in msix_bar at 0, PBA at PCI_MSIX_PBA_OFFSET. */
	unsigned msix_nvec;
	unsigned msix_bar;
	uint8_t msix_cap; /* offset of the capability, 0 if none */
	uint32_t msix_gsi_base;
	int msix_irqfd[PCI_MSIX_MAX_VEC];
	/* msix_lock protects pending and the delivery flags below against device threads;
	 * the table itself changes only with both the host lock and msix_lock held. */
	pthread_mutex_t msix_lock;
	struct pci_msix_entry msix_table[PCI_MSIX_MAX_VEC];
	uint64_t msix_pending; /* PBA */
	bool msix_enabled, msix_fmask;
	bool msix_dirty[PCI_MSIX_MAX_VEC]; /* changed since the routes were last set */
};

/* Identity and layout, before registration. */
void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);
/* A memory BAR of size bytes (a power of two, >= 4 KiB). */
int pci_dev_add_bar(struct pci_dev *d, unsigned bar, uint64_t size, bool is64)
	__attribute__((warn_unused_result));
/* Append a capability (cap[0] is its ID; cap[1], the next pointer, is filled in); returns
 * its offset, or 0 when configuration space is full. */
uint8_t pci_dev_add_cap(struct pci_dev *d, const uint8_t *cap, size_t len);
/* MSI-X with nvec vectors, its table and PBA in BAR bar (added here, 4 KiB, 32-bit). */
int pci_dev_add_msix(struct pci_dev *d, unsigned bar, unsigned nvec)
	__attribute__((warn_unused_result));

/* The ECAM window (bus 0) is a movable MMIO range of this name (bus.h): the host bridge's
 * PCIEXBAR places it (x86/q35.h). */
#define PCI_ECAM_BUS_NAME "pci-ecam"

/* Bus 0 with its Q35-compatible host bridge and LPC bridge (x86/q35.h). */
int pci_host_create(struct machine *m, struct pci_host **out) __attribute__((warn_unused_result));
void pci_host_destroy(struct pci_host *h);
/* Put a device on bus 0 at d->slot (-EBUSY if taken, -EINVAL if out of range), or at the
 * lowest free slot when d->slot is 0: assigns its BARs and MSI-X GSIs. */
int pci_dev_register(struct pci_host *h, struct pci_dev *d) __attribute__((warn_unused_result));
/* The whole add of a device registered in a VM that runs has succeeded: the guest may find
 * it from now on (its removal then needs the vCPUs stopped). Main thread. */
void pci_dev_publish(struct pci_dev *d);
/* Take a device off the bus: its BARs stop decoding, its irqfds are closed (main thread,
 * vCPUs stopped; also a device unplugged from a running VM). */
void pci_dev_unregister(struct pci_dev *d);
/* Is bus 0's slot taken (true for a slot out of range)? */
bool pci_slot_used(struct pci_host *h, unsigned slot);
/* The VM's ACPI description: ECAM base, bus range, windows. */
uint64_t pci_window64_base(uint64_t ram_size, bool firmware);
/* Where the 64-bit window the host decodes ends: past keel's own BAR placement and, for a
 * firmware VM, past every aperture OVMF or SeaBIOS may choose: OVMF's classic one
 * (X-PciMmio64Mb at the next 32 GiB boundary) and the dynamic one of OVMF 2022.11 and later
 * (SeaBIOS 1.16.3 does the same below 2^46 once RAM reaches above 4 GiB), the top eighth of the
 * guest-physical address space of phys_bits bits (the guest's CPUID, capped at 47 as OVMF
 * caps it; 0: not known). */
uint64_t pci_window64_end(uint64_t ram_size, bool firmware, unsigned phys_bits);
/* The guest-physical address width a vCPU's CPUID advertises (leaf 0x80000008: the smaller
 * of PhysBits and a non-zero GuestPhysBits), 0 when the leaf is missing. */
struct kvm_cpuid2;
unsigned pci_guest_phys_bits(const struct kvm_cpuid2 *cpuid);

/* Any thread: signal MSI-X vector (or set its pending bit while masked). No-op for a vector
 * out of range or MSI-X disabled. */
void pci_msix_notify(struct pci_dev *d, unsigned vector);
/* Any thread: may vector be signalled straight through its irqfd now (MSI-X enabled, neither
 * the function nor the vector masked)? */
bool pci_msix_deliverable(struct pci_dev *d, unsigned vector);
/* Any thread: one line on d's MSI-X state (enable, function mask, pending bits, each
 * vector's message and mask) for a crash report; waits at most 100 ms for the MSI-X lock. */
void pci_msix_describe(struct pci_dev *d, char *buf, size_t len);

/* Configuration space access (host lock held, or no host: unit tests). */
uint32_t pci_cfg_read(struct pci_dev *d, unsigned off, unsigned size);
void pci_cfg_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t value);
/* MSI-X BAR access (host lock held, or no host). */
uint64_t pci_msix_read(struct pci_dev *d, uint64_t off, unsigned size);
void pci_msix_write(struct pci_dev *d, uint64_t off, unsigned size, uint64_t value);
/* CONFIG_ADDRESS decoding: false when the enable bit is clear or the bus is not 0. */
bool pci_conf1_decode(uint32_t addr, unsigned port_off, unsigned *slot, unsigned *fn,
		      unsigned *reg);
/* Saved state of one device's configuration space, MSI-X table and PBA: the device's own
 * section function calls this first. Checks everything against the device as created;
 * loading re-establishes BAR decoding (bar_map), MSI-X flags and KVM's MSI routes. */
int pci_dev_state(struct state_io *io, struct pci_dev *d) __attribute__((warn_unused_result));

#endif
