/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel's chipset registers, Q35-compatible because SeaBIOS and OVMF know only QEMU's
 * machines (docs/devices.md): the MCH host bridge at 00:00.0 (8086:29c0) with PCIEXBAR,
 * which places the ECAM window, the PAM registers and SMRAM/ESMRAMC (read-only: no SMM),
 * and the ICH9 LPC bridge at 00:1f.0 (8086:2918) with PMBASE and ACPI_CNTL, which place the
 * ACPI PM block (dev/pm.h), the PIRQ routing registers and RCBA. At power-on keel-vmm
 * programs them as the firmware would (ECAM at LAYOUT_PCI_ECAM, PM block at PORT_PM_BASE),
 * so a directly booted kernel sees the machine it always saw; firmware may move both.
 */
#ifndef KEEL_VMM_X86_Q35_H
#define KEEL_VMM_X86_Q35_H

#include <stdint.h>

/* MCH configuration registers. */
#define Q35_MCH_VENDOR	     0x8086
#define Q35_MCH_DEVICE	     0x29c0
#define Q35_MCH_PCIEXBAR     0x60 /* 64-bit: base, length (bits 2:1), enable (bit 0) */
#define Q35_MCH_PAM0	     0x90 /* PAM0..PAM6: 0x90..0x96 */
#define Q35_MCH_PAM_COUNT    7
#define Q35_MCH_SMRAM	     0x9d
#define Q35_MCH_ESMRAMC	     0x9e
#define Q35_SMRAM_DEFAULT    0x02 /* C_BASE_SEG = 010: compatible SMRAM, closed */
#define Q35_ESMRAMC_DEFAULT  0x38 /* SM_L1, SM_L2, SM_CACHE; no TSEG */
#define Q35_PCIEXBAR_EN	     0x1
#define Q35_PCIEXBAR_LEN_256 0x0
#define Q35_PCIEXBAR_LEN_128 0x2
#define Q35_PCIEXBAR_LEN_64  0x4

/* LPC bridge configuration registers. */
#define Q35_LPC_SLOT	      31
#define Q35_LPC_VENDOR	      0x8086
#define Q35_LPC_DEVICE	      0x2918
#define Q35_LPC_PMBASE	      0x40 /* bits 15:7 the base, bit 0 reads 1 (I/O space) */
#define Q35_LPC_ACPI_CNTL     0x44 /* bit 7 ACPI_EN: the PM block decodes */
#define Q35_LPC_ACPI_EN	      0x80
#define Q35_LPC_PIRQA	      0x60 /* PIRQA..D_ROUT at 0x60..0x63, PIRQE..H at 0x68..0x6b */
#define Q35_LPC_PIRQE	      0x68
#define Q35_LPC_PIRQ_DISABLED 0x80
#define Q35_LPC_RCBA	      0xf0 /* bits 31:14 the base, bit 0 enable */
#define Q35_RCBA_DEFAULT      0xfed1c000u

struct machine;
struct pci_dev;
struct pci_host;

/* The host bridge's identity and writable registers (its host set afterwards). */
void q35_mch_init(struct pci_dev *mch);
/* Power-on values (PCIEXBAR enabled at LAYOUT_PCI_ECAM, PAM all DRAM-disabled), applied;
 * the host lock held or the vCPUs not running. */
void q35_mch_power_on(struct pci_dev *mch);
/* Move the ECAM window to where PCIEXBAR says (after a restore). */
void q35_mch_apply(const struct pci_dev *mch);
/* Where PCIEXBAR puts ECAM, or BUS_UNMAPPED when disabled. */
uint64_t q35_pciexbar_base(const struct pci_dev *mch);
/* The LPC bridge at 00:1f.0, with its reset and saved-state section ("lpc"). */
int q35_lpc_create(struct machine *m, struct pci_host *h) __attribute__((warn_unused_result));

#endif
