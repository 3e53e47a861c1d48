/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/acpi_loader.h"

#include <string.h>

#include "lib/le.h"

/* The file a buffer offset of acpi_build's lies in, and the offset within that file. */
static const char *file_of(size_t off, uint32_t *file_off)
{
	if (off < ACPI_RSDP_OFFSET + ACPI_RSDP_SIZE) {
		*file_off = (uint32_t)(off - ACPI_RSDP_OFFSET);
		return ACPI_LOADER_RSDP;
	}
	*file_off = (uint32_t)off;
	return ACPI_LOADER_TABLES;
}

static uint8_t *next_command(struct acpi_loader *l, uint32_t command)
{
	uint8_t *e = l->script + l->script_len;

	memset(e, 0, ACPI_LOADER_ENTRY);
	le32_store(e, command);
	l->script_len += ACPI_LOADER_ENTRY;
	return e + 4;
}

static void put_name(uint8_t *field, const char *name)
{
	memcpy(field, name, strlen(name)); /* NUL-padded: the entry was zeroed */
}

static void add_allocate(struct acpi_loader *l, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *p = next_command(l, ACPI_LOADER_ALLOCATE);

	put_name(p, file);
	le32_store(p + ACPI_LOADER_FILE_MAX, align);
	p[ACPI_LOADER_FILE_MAX + 4] = zone;
}

int acpi_loader_build(struct acpi_loader *l, unsigned ncpus, const struct acpi_pci *pci,
		      uint16_t pm_base)
{
	struct acpi_info info;
	unsigned i;
	int r;

	r = acpi_build_platform(l->tables, 0, ncpus, pci, pm_base, &info);
	if (r)
		return r;
	memcpy(l->rsdp, l->tables + ACPI_RSDP_OFFSET, ACPI_RSDP_SIZE);
	memset(l->tables + ACPI_RSDP_OFFSET, 0, ACPI_RSDP_SIZE);
	l->tables_len = info.size;
	l->script_len = 0;

	add_allocate(l, ACPI_LOADER_RSDP, 16, ACPI_LOADER_ZONE_FSEG);
	add_allocate(l, ACPI_LOADER_TABLES, 64, ACPI_LOADER_ZONE_HIGH);
	for (i = 0; i < info.npointers; i++) {
		uint32_t off;
		const char *dest = file_of(info.pointers[i].offset, &off);
		uint8_t *p = next_command(l, ACPI_LOADER_ADD_POINTER);

		put_name(p, dest);
		put_name(p + ACPI_LOADER_FILE_MAX, ACPI_LOADER_TABLES);
		le32_store(p + 2 * ACPI_LOADER_FILE_MAX, off);
		p[2 * ACPI_LOADER_FILE_MAX + 4] = info.pointers[i].size;
	}
	for (i = 0; i < info.nsums; i++) {
		uint32_t off, start;
		const char *file = file_of(info.sums[i].offset, &off);
		uint8_t *p = next_command(l, ACPI_LOADER_ADD_CHECKSUM);

		file_of(info.sums[i].start, &start);
		if (info.sums[i].offset < ACPI_RSDP_OFFSET + ACPI_RSDP_SIZE)
			l->rsdp[off] = 0;
		else
			l->tables[off] = 0;
		put_name(p, file);
		le32_store(p + ACPI_LOADER_FILE_MAX, off);
		le32_store(p + ACPI_LOADER_FILE_MAX + 4, start);
		le32_store(p + ACPI_LOADER_FILE_MAX + 8, info.sums[i].length);
	}
	return 0;
}
