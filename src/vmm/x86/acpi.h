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

/* Where the tables refer to each other and carry checksums, for firmware that places them
 * itself (acpi_loader.c): a pointer field holds base + the target's offset in the buffer. */
#define ACPI_MAX_POINTERS  16
#define ACPI_MAX_CHECKSUMS 12

struct acpi_pointer {
	uint32_t offset; /* of the field in the buffer */
	uint8_t size;	 /* 4 or 8 bytes */
};

struct acpi_sum {
	uint32_t offset; /* of the checksum byte */
	uint32_t start, length;
};

struct acpi_info {
	uint64_t rsdp; /* guest-physical address of the RSDP (the buffer's first bytes) */
	size_t size;   /* bytes used in the buffer */
	unsigned npointers, nsums;
	struct acpi_pointer pointers[ACPI_MAX_POINTERS]; /* targets before their referrers */
	struct acpi_sum sums[ACPI_MAX_CHECKSUMS];	 /* in the order they must be computed */
};

/* The RSDP's size (ACPI 2.0+) and its offset in the buffer. */
#define ACPI_RSDP_SIZE	 36
#define ACPI_RSDP_OFFSET 0

/* Build every table into buf (ACPI_MAX_SIZE bytes) for guest address base. */
int acpi_build(uint8_t *buf, uint64_t base, unsigned ncpus, struct acpi_info *info)
	__attribute__((warn_unused_result));

struct acpi_pci;
/* The same, with the PCI host bridge described (MCFG, \_SB.PCI0) when pci is not NULL. */
int acpi_build_with_pci(uint8_t *buf, uint64_t base, unsigned ncpus, const struct acpi_pci *pci,
			struct acpi_info *info) __attribute__((warn_unused_result));

/* The same, with the ACPI PM block at pm_base instead of PORT_PM_BASE (where the chipset's
 * PMBASE put it). */
int acpi_build_platform(uint8_t *buf, uint64_t base, unsigned ncpus, const struct acpi_pci *pci,
			uint16_t pm_base, struct acpi_info *info)
	__attribute__((warn_unused_result));

/* The byte sum of a table (0 for a valid table). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif
