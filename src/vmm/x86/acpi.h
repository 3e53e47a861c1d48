/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI tables for the guest: RSDP, RSDT/XSDT, FADT (with FACS), MADT and a DSDT with
 * \_S5, built into a buffer that is copied to LAYOUT_ACPI. The PM registers the FADT
 * names are emulated by dev/pm.c.
 */
#ifndef KEEL_VMM_X86_ACPI_H
#define KEEL_VMM_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_SIZE 0x10000 /* fits in the reserved BIOS area with room to spare */

/* SLP_TYP for S5 in the DSDT's \_S5 package, as written to PM1a_CNT on power-off. */
#define ACPI_S5_SLP_TYP 5

struct acpi_info {
	uint64_t rsdp; /* guest-physical address of the RSDP */
	size_t size;   /* bytes used in the buffer */
};

/* Build every table into buf (ACPI_MAX_SIZE bytes) for guest address base. */
int acpi_build(uint8_t *buf, uint64_t base, unsigned ncpus, struct acpi_info *info)
	__attribute__((warn_unused_result));

struct acpi_pci;
/* The same, with the PCI host bridge described (MCFG, \_SB.PCI0) when pci is not NULL. */
int acpi_build_with_pci(uint8_t *buf, uint64_t base, unsigned ncpus, const struct acpi_pci *pci,
			struct acpi_info *info) __attribute__((warn_unused_result));

/* The byte sum of a table (0 for a valid table). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif
