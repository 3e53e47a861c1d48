/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's virtio-scsi controller in the store (the description's "scsi" field,
 * docs/vm-config.md): its slot in table scsi, its LUNs in table scsi_luns (a disk's storage
 * QoS too, from schema 12), no rows when the VM has none. Tables of their own, so that an older
 * store gets them empty (no VM has a controller) without a schema change.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmdef.h"
#include "disk/disk.h"
#include "daemon/store.h"
#include "daemon/store_internal.h"

static const char *const lun_types[] = {"disk", "dvd"};

static int run_delete(struct store *st, const char *sql, const char *uuid)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, sql, &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	return ret;
}

int store_scsi_put(struct store *st, const struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	int ret = run_delete(st, "DELETE FROM scsi_luns WHERE vm=?1", def->uuid);

	if (!ret)
		ret = run_delete(st, "DELETE FROM scsi WHERE vm=?1", def->uuid);
	if (ret || !def->scsi.nluns)
		return ret;
	ret = store_prepare(st, "INSERT INTO scsi(vm, pci_slot) VALUES(?1, ?2)", &s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, def->scsi.pci_slot);
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	if (ret)
		return ret;
	ret = store_prepare(
		st,
		"INSERT INTO scsi_luns(vm, idx, type, path, format, cache, readonly, "
		"serial, max_iops, max_bw, min_iops) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		"?8, ?9, ?10, ?11)",
		&s);
	for (unsigned i = 0; !ret && i < def->scsi.nluns; i++) {
		const struct vm_lun *l = &def->scsi.luns[i];

		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, (int)i);
		sqlite3_bind_text(s, 3, lun_types[l->type], -1, SQLITE_STATIC);
		if (l->disk.path)
			sqlite3_bind_text(s, 4, l->disk.path, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 4);
		sqlite3_bind_text(s, 5, vmdef_disk_format_name(l->disk.format), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 6, vmdef_disk_cache_name(l->disk.cache), -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 7, l->disk.readonly);
		sqlite3_bind_text(s, 8, l->disk.serial, -1, SQLITE_STATIC);
		store_disk_qos_bind(s, 9, &l->disk);
		ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(s);
	return ret;
}

/* One row into l; a row edited by hand into nonsense becomes what vmdef_check refuses
 * (an unknown type a DVD drive, an unknown format raw). A DVD medium is always raw. */
static int load_lun(sqlite3_stmt *s, struct vm_lun *l)
{
	const char *type = (const char *)sqlite3_column_text(s, 0);
	const char *path = (const char *)sqlite3_column_text(s, 1);
	const char *format = (const char *)sqlite3_column_text(s, 2);
	const char *cache = (const char *)sqlite3_column_text(s, 3);
	const char *serial = (const char *)sqlite3_column_text(s, 5);

	*l = (struct vm_lun){.type = type && !strcmp(type, "disk") ? VM_LUN_DISK : VM_LUN_DVD};
	/* "auto": a LUN disk stored before LUN formats were pinned at attach; it is pinned
	 * as attach would have: by its name, never by its contents (the guest writes them). */
	if (format && !strcmp(format, "auto") && l->type == VM_LUN_DISK && path)
		l->disk.format = disk_format_from_name(path) == DISK_FORMAT_VHDX ? VM_DISK_VHDX
										 : VM_DISK_RAW;
	else
		l->disk.format = format && !strcmp(format, "vhdx") ? VM_DISK_VHDX : VM_DISK_RAW;
	if (!cache || vmdef_disk_cache_parse(cache, &l->disk.cache))
		l->disk.cache = VM_DISK_CACHE_NONE;
	l->disk.readonly = l->type == VM_LUN_DVD || sqlite3_column_int(s, 4);
	if (serial && strlen(serial) <= VMDEF_SERIAL_MAX)
		strcpy(l->disk.serial, serial);
	if (l->type == VM_LUN_DISK) /* a DVD drive has no QoS */
		store_disk_qos_load(s, 6, &l->disk);
	if (path) {
		l->disk.path = strdup(path);
		if (!l->disk.path)
			return -ENOMEM;
	}
	return 0;
}

int store_scsi_load(struct store *st, struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, "SELECT pci_slot FROM scsi WHERE vm=?1", &s);
	int slot = 0;

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	def->scsi.nluns = 0;
	def->scsi.pci_slot = 0;
	if (sqlite3_step(s) == SQLITE_ROW)
		slot = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	def->scsi.pci_slot =
		slot >= VMDEF_PCI_SLOT_MIN && slot <= VMDEF_PCI_SLOT_MAX ? (uint8_t)slot : 0;
	ret = store_prepare(st,
			    "SELECT type, path, format, cache, readonly, serial, max_iops, max_bw, "
			    "min_iops FROM scsi_luns WHERE vm=?1 ORDER BY idx",
			    &s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	while (!ret && sqlite3_step(s) == SQLITE_ROW && def->scsi.nluns < VMDEF_MAX_LUNS) {
		ret = load_lun(s, &def->scsi.luns[def->scsi.nluns]);
		if (!ret)
			def->scsi.nluns++;
	}
	sqlite3_finalize(s);
	return ret;
}
