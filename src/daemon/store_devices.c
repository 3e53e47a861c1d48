/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's devices in the store, driven by the description's kind table
 * (config/vmdef_device.h): every kind without storage of its own is kept as its field's
 * JSON, the kind's own to_json and parse, one row of table devices(vm, field, doc) per kind
 * the VM has. So a new kind of device is stored, read back and upgraded with the
 * description's rules without a line here or a schema change (docs/devices.md).
 *
 * A kind a VM has by default (rng) and this VM has not is kept as a row whose doc is null, so
 * it reads back without one.
 *
 * Three kinds keep storage of their own, because other parts of keeld query their rows, not
 * only the VM's description: disks and adapters (tables disks and nics, which storage pools,
 * virtual switches and their port forwards look up by path, tap, MAC or switch) and the SCSI
 * controller's LUNs (store_scsi.c, whose paths pools look up like disks'). The console and
 * rng had columns of vms until schema 9 moved them here (store.c, migrate_8_to_9), as schema
 * 7 did vsock's table.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "config/vmdef_device.h"
#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "lib/log.h"

/* The kinds with storage of their own: put and load NULL when store.c writes them with the
 * VM's row. */
static const struct {
	const struct vmdef_device_kind *kind;
	int (*put)(struct store *st, const struct vm_def *def);
	int (*load)(struct store *st, struct vm_def *def);
} own[] = {
	{&vmdef_disk_kind, NULL, NULL},
	{&vmdef_nic_kind, NULL, NULL},
	{&vmdef_scsi_kind, store_scsi_put, store_scsi_load},
};

static bool has_own(const struct vmdef_device_kind *k)
{
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (own[i].kind == k)
			return true;
	return false;
}

static const struct vmdef_device_kind *kind_of(const char *field)
{
	for (size_t i = 0; i < vmdef_ndevices; i++)
		if (!strcmp(vmdef_devices[i]->field, field) && !has_own(vmdef_devices[i]))
			return vmdef_devices[i];
	return NULL;
}

/* blank: a description as vmdef_init leaves it, to tell a kind absent by default (no row)
 * from one a VM has unless told otherwise (a null row when it has none). */
static int put_doc(struct store *st, const struct vm_def *def, const struct vmdef_device_kind *k,
		   const struct vm_def *blank)
{
	json_object *doc = NULL;
	sqlite3_stmt *s = NULL;
	int ret = 0;

	if (!k->count(def) && !k->count(blank))
		return 0;
	if (k->count(def))
		ret = k->to_json(def, &doc);
	if (!ret && !doc && !k->count(blank))
		return 0; /* the field is null, as by default: nothing to keep */
	if (!ret)
		ret = store_prepare(st, "INSERT INTO devices(vm, field, doc) VALUES(?1, ?2, ?3)",
				    &s);
	if (!ret) {
		sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, k->field, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3,
				  doc ? json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN)
				      : "null",
				  -1, SQLITE_TRANSIENT);
		ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(s);
	json_object_put(doc);
	return ret;
}

int store_devices_put(struct store *st, const struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	struct vm_def blank;
	int ret = 0;

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]) && !ret; i++)
		if (own[i].put)
			ret = own[i].put(st, def);
	if (!ret)
		ret = store_prepare(st, "DELETE FROM devices WHERE vm=?1", &s);
	if (!ret) {
		sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
		ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(s);
	vmdef_init(&blank);
	for (size_t i = 0; i < vmdef_ndevices && !ret; i++)
		if (!has_own(vmdef_devices[i]))
			ret = put_doc(st, def, vmdef_devices[i], &blank);
	vmdef_free(&blank);
	return ret;
}

/* One row back into def through its kind's parser: what a request would have given. A row
 * that does not parse (edited by hand, or a kind this keeld does not know: a newer keeld
 * wrote it) is an error that names the VM, the field and why, never a device dropped. */
static int load_doc(struct vm_def *def, const char *field, const char *text, char *why, size_t len)
{
	const struct vmdef_device_kind *k = kind_of(field);
	enum json_tokener_error jerr;
	json_object *doc;
	int ret;

	if (!k) {
		snprintf(why, len, "its device field '%s' is unknown to this keeld", field);
		return -EPROTO;
	}
	/* JSON null parses to NULL, told from an error by the tokener's verdict. */
	doc = json_tokener_parse_verbose(text, &jerr);
	if (jerr != json_tokener_success) {
		snprintf(why, len, "its device field '%s' is not JSON", field);
		return -EPROTO;
	}
	ret = k->parse(def, doc, why, len);
	json_object_put(doc);
	return ret ? -EPROTO : 0;
}

int store_devices_load(struct store *st, struct vm_def *def, char *why, size_t len)
{
	sqlite3_stmt *s = NULL;
	int ret = 0, rc = SQLITE_DONE, bad = 0;

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]) && !ret; i++)
		if (own[i].load)
			ret = own[i].load(st, def);
	if (!ret)
		ret = store_prepare(st, "SELECT field, doc FROM devices WHERE vm=?1", &s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	/* A row that does not parse is reported (the first one's why) and the others still
	 * read: the VM is kept with what could be read, marked damaged by the caller. */
	while (!ret && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *field = (const char *)sqlite3_column_text(s, 0);
		const char *text = (const char *)sqlite3_column_text(s, 1);
		char one[256];

		if (!field || !text) {
			ret = -ENOMEM; /* both columns are NOT NULL: SQLite ran out of memory */
			break;
		}
		if (load_doc(def, field, text, one, sizeof(one))) {
			log_err("store: VM %s: %s", def->name, one);
			if (!bad++)
				snprintf(why, len, "%s", one);
		}
	}
	if (!ret && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = -EIO;
	sqlite3_finalize(s);
	return ret ? ret : bad ? -EPROTO : 0;
}
