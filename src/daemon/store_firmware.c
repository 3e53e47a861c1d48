/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How a VM boots through firmware, in the store (the description's "generation",
 * "firmware_file", "nvram", "boot_order" and "boot_menu", docs/vm-config.md): one row of table
 * firmware, none for a VM that boots its kernel directly (whose vms.kernel holds the kernel; a
 * firmware VM's is ''). A table of its own, so that an older store gets it empty (every VM
 * there boots a kernel) without a schema change.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmdef.h"
#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "lib/log.h"

int store_firmware_put(struct store *st, const struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	char order[VMDEF_BOOT_MAX * 8];
	int ret = store_prepare(st, "DELETE FROM firmware WHERE vm=?1", &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	if (ret || def->firmware == VM_FIRMWARE_NONE)
		return ret;
	ret = store_prepare(
		st,
		"INSERT INTO firmware(vm, generation, firmware_file, nvram, boot_order, "
		"boot_menu) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
		&s);
	if (ret)
		return ret;
	order[0] = '\0';
	if (def->nboot)
		vmdef_boot_text(def, order, sizeof(order));
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)vmdef_generation(def));
	if (def->firmware_file)
		sqlite3_bind_text(s, 3, def->firmware_file, -1, SQLITE_STATIC);
	if (def->nvram)
		sqlite3_bind_text(s, 4, def->nvram, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, order, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, def->boot_menu);
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	return ret;
}

static int dup_text(sqlite3_stmt *s, int col, char **out)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	*out = t ? strdup((const char *)t) : NULL;
	return t && !*out ? -ENOMEM : 0;
}

int store_firmware_load(struct store *st, struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st,
				"SELECT generation, firmware_file, nvram, boot_order, boot_menu "
				"FROM firmware "
				"WHERE vm=?1",
				&s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *order = sqlite3_column_text(s, 3);
		char why[256];

		int gen = sqlite3_column_int(s, 0);

		/* A generation this keeld does not know: a damaged row, not a guess. */
		if (sqlite3_column_type(s, 0) != SQLITE_INTEGER || (gen != 1 && gen != 2)) {
			log_err("store: VM %s: its firmware row has generation '%s', not 1 or 2",
				def->name,
				sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0)
							  : "NULL");
			sqlite3_finalize(s);
			return -EPROTO;
		}
		def->firmware = gen == 1 ? VM_FIRMWARE_BIOS : VM_FIRMWARE_UEFI;
		def->boot_menu = sqlite3_column_int(s, 4) != 0;
		free(def->kernel); /* '' in vms.kernel */
		def->kernel = NULL;
		ret = dup_text(s, 1, &def->firmware_file);
		if (!ret)
			ret = dup_text(s, 2, &def->nvram);
		/* A row edited by hand: the default order, and the log says why. */
		if (!ret && order && vmdef_boot_parse(def, (const char *)order, why, sizeof(why)))
			log_warn("store: VM %s: %s", def->name, why);
	}
	sqlite3_finalize(s);
	return ret;
}
