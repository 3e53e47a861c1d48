/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel's ACPI tables (acpi.c) for firmware that places them itself, through QEMU's
 * "linker/loader" protocol, which SeaBIOS and OVMF both follow: two fw_cfg files hold the
 * tables ("etc/acpi/tables", allocated high, 64-byte aligned) and the RSDP
 * ("etc/acpi/rsdp", allocated in the F segment where operating systems look for it), and a
 * script ("etc/table-loader") of 128-byte commands tells the firmware to allocate both,
 * add each file's final address to the pointer fields that refer into it, and compute the
 * checksums afterwards. Pointer fields in the files hold offsets into "etc/acpi/tables";
 * checksum bytes are zero (edk2 sums over the field itself).
 */
#ifndef KEEL_VMM_X86_ACPI_LOADER_H
#define KEEL_VMM_X86_ACPI_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/x86/acpi.h"

#define ACPI_LOADER_TABLES "etc/acpi/tables"
#define ACPI_LOADER_RSDP   "etc/acpi/rsdp"
#define ACPI_LOADER_SCRIPT "etc/table-loader"

/* The script's commands (little-endian u32 first, then the command's fields). */
#define ACPI_LOADER_ENTRY	 128
#define ACPI_LOADER_ALLOCATE	 1 /* file[56], align u32, zone u8 */
#define ACPI_LOADER_ADD_POINTER	 2 /* dest[56], src[56], offset u32, size u8 */
#define ACPI_LOADER_ADD_CHECKSUM 3 /* file[56], offset u32, start u32, length u32 */
#define ACPI_LOADER_ZONE_HIGH	 1
#define ACPI_LOADER_ZONE_FSEG	 2
#define ACPI_LOADER_FILE_MAX	 56

#define ACPI_LOADER_MAX_COMMANDS (2 + ACPI_MAX_POINTERS + ACPI_MAX_CHECKSUMS)

struct acpi_loader {
	uint8_t tables[ACPI_MAX_SIZE];
	size_t tables_len;
	uint8_t rsdp[ACPI_RSDP_SIZE];
	uint8_t script[ACPI_LOADER_MAX_COMMANDS * ACPI_LOADER_ENTRY];
	size_t script_len;
};

struct acpi_pci;
/* Build the three files for ncpus, the PCI host bridge (NULL: none) and the PM block at
 * pm_base. Returns 0 or -errno (as acpi_build_platform). The files' sizes depend only on
 * ncpus and whether there is a host bridge. */
int acpi_loader_build(struct acpi_loader *l, unsigned ncpus, const struct acpi_pci *pci,
		      uint16_t pm_base) __attribute__((warn_unused_result));

#endif
