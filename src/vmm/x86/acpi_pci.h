/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ACPI description of keel's PCI host bridge: the MCFG table (ECAM) and DSDT AML for
 * \_SB.PCI0 (PNP0A08, bus 0, the port and memory windows in _CRS) and a motherboard
 * resource device (PNP0C02) that reserves the ECAM range, as Linux requires before it
 * uses MMCONFIG. With hot-pluggable slots: a device per slot (_ADR, _SUN, _EJ0), the
 * controller's registers (dev/pcihp_regs.h) as an operation region, its port range reserved
 * (PNP0A06), and \_GPE._E01 that notifies the slots the controller reports: 1 (device
 * check) for an added device, 3 (eject request) for one the host removes.
 */
#ifndef KEEL_VMM_X86_ACPI_PCI_H
#define KEEL_VMM_X86_ACPI_PCI_H

#include <stddef.h>
#include <stdint.h>

struct vm_def;

struct acpi_pci {
	uint64_t ecam, ecam_size; /* bus 0 .. ecam_size / 1 MiB - 1 */
	uint64_t mmio32, mmio32_size;
	uint64_t mmio64, mmio64_size;
	uint64_t mmio32_hi, mmio32_hi_size; /* a second 32-bit window (0 size: none) */
	uint32_t hp_slots; /* hot-pluggable slots (dev/pcihp_regs.h); 0: no hot plug AML */
	uint16_t hp_port;  /* the hot plug controller's registers */
};

#define ACPI_MCFG_SIZE 60

/* keel's host bridge for the VM def (its RAM, direct or firmware boot) with ECAM at ecam
 * (layout.h): the 32-bit window the host decodes, less the 256 MiB ECAM window when that lies
 * inside it (so two windows, the second possibly empty), and the whole 64-bit one, which
 * for a firmware VM reaches 2^phys_bits (pci_window64_end). */
void acpi_pci_layout(struct acpi_pci *pci, const struct vm_def *def, uint64_t ecam,
		     unsigned phys_bits);

/* DSDT AML for the host bridge into buf; returns its length, 0 if cap is too small. At most
 * ACPI_PCI_AML_MAX bytes. */
#define ACPI_PCI_AML_MAX 4096
size_t acpi_pci_aml(uint8_t *buf, size_t cap, const struct acpi_pci *pci);
/* The body of the MCFG table after its 36-byte header (ACPI_MCFG_SIZE - 36 bytes). */
void acpi_pci_mcfg_body(uint8_t *body, const struct acpi_pci *pci);

#endif
