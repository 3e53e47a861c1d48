/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/smbios.h"

#include <string.h>

#include "lib/le.h"
#include "lib/uuid.h"
#include "vmm/x86/acpi.h"

#define TYPE1_SIZE 27 /* the formatted part of System Information, SMBIOS 2.4+ */

/* Append a NUL-terminated string to a structure's string set. */
static size_t put_string(uint8_t *p, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(p, s, n);
	return n;
}

size_t smbios_build(const struct vm_def *def, uint8_t tables[SMBIOS_TABLES_MAX],
		    uint8_t anchor[SMBIOS_ANCHOR_SIZE])
{
	struct uuid u = {0};
	size_t len = 0, t1, max;
	uint8_t *t = tables;

	memset(tables, 0, SMBIOS_TABLES_MAX);
	if (def->uuid[0] && uuid_parse(def->uuid, &u))
		memset(&u, 0, sizeof(u)); /* all zeros: "not present" */
	/* Type 1, handle 0x0100: strings 1 manufacturer, 2 product, 3 version, 4 serial
	 * (the VM's UUID as text, or none), 5 family. The UUID field is SMBIOS 2.6's encoding,
	 * the first three fields little-endian: lib/uuid.h's layout. */
	t[0] = 1;
	t[1] = TYPE1_SIZE;
	le16_store(t + 2, 0x0100);
	t[4] = 1;
	t[5] = 2;
	t[6] = 3;
	t[7] = def->uuid[0] ? 4 : 0;
	memcpy(t + 8, u.b, 16);
	t[24] = 6; /* wake-up type: power switch */
	t[25] = 0; /* no SKU */
	t[26] = def->uuid[0] ? 5 : 4;
	len = TYPE1_SIZE;
	len += put_string(t + len, SMBIOS_MANUFACTURER);
	len += put_string(t + len, SMBIOS_PRODUCT);
	len += put_string(t + len, "1");
	if (def->uuid[0])
		len += put_string(t + len, def->uuid);
	len += put_string(t + len, SMBIOS_FAMILY);
	t[len++] = 0; /* the string set ends with an empty string */
	t1 = len;
	/* Type 127, end of table, handle 0x7f00. */
	t[len] = 127;
	t[len + 1] = 4;
	le16_store(t + len + 2, 0x7f00);
	len += 4 + 2;
	max = t1 > len - t1 ? t1 : len - t1;

	memset(anchor, 0, SMBIOS_ANCHOR_SIZE);
	memcpy(anchor, "_SM_", 4);
	anchor[5] = SMBIOS_ANCHOR_SIZE;
	anchor[6] = 2; /* SMBIOS 2.8 */
	anchor[7] = 8;
	le16_store(anchor + 8, (uint16_t)max);
	memcpy(anchor + 16, "_DMI_", 5);
	le16_store(anchor + 22, (uint16_t)len);
	le32_store(anchor + 24, 0); /* the firmware places the tables */
	le16_store(anchor + 28, 2);
	anchor[30] = 0x28;
	anchor[21] = (uint8_t)(0x100 - acpi_checksum(anchor + 16, SMBIOS_ANCHOR_SIZE - 16));
	anchor[4] = (uint8_t)(0x100 - acpi_checksum(anchor, SMBIOS_ANCHOR_SIZE));
	return len;
}
