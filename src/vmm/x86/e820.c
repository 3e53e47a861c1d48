/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/e820.h"

#include "vmm/x86/layout.h"

unsigned e820_build(const struct guest_mem *mem, struct e820_entry map[E820_MAX])
{
	unsigned n = 0, i;

	/* Conventional memory, then the EBDA and the BIOS area (where the ACPI tables are),
	 * reserved as on any PC. */
	map[n++] = (struct e820_entry){0, LAYOUT_EBDA, E820_RAM};
	map[n++] = (struct e820_entry){LAYOUT_EBDA, LAYOUT_LOWMEM_TOP - LAYOUT_EBDA, E820_RESERVED};
	map[n++] = (struct e820_entry){LAYOUT_BIOS, LAYOUT_BIOS_END - LAYOUT_BIOS, E820_RESERVED};
	for (i = 0; i < mem->nregions; i++) {
		uint64_t start = mem->regions[i].gpa, end = start + mem->regions[i].size;

		if (start < LAYOUT_BIOS_END)
			start = LAYOUT_BIOS_END;
		if (end > start)
			map[n++] = (struct e820_entry){start, end - start, E820_RAM};
	}
	return n;
}

unsigned e820_build_firmware(const struct guest_mem *mem, struct e820_entry map[E820_MAX])
{
	unsigned n = 0, i;

	for (i = 0; i < mem->nregions; i++)
		map[n++] = (struct e820_entry){mem->regions[i].gpa, mem->regions[i].size, E820_RAM};
	map[n++] = (struct e820_entry){
		LAYOUT_IDENTITY_MAP, LAYOUT_TSS + 3 * 4 * KiB - LAYOUT_IDENTITY_MAP, E820_RESERVED};
	return n;
}
