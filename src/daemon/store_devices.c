/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's devices in the store, driven by the description's kind table
 * (config/vmdef_device.h): every kind without storage of its own is kept as its field's
 * JSON, the kind's own to_json and parse, one row of table devices(vm, field, doc) per kind
 * the VM has. So a new kind of device is stored, read back and upgraded with the
 * description's rules without a line here or a schema change (docs/devices.md).
 *
 * The kinds that keeld has stored since before this table keep their columns and tables:
 * disks and adapters (their own tables, which the pools, switches and port forwards query),
 * the console and rng (columns of vms, store.c) and the SCSI controller (store_scsi.c).
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
	{&vmdef_console_kind, NULL, NULL},
	{&vmdef_rng_kind, NULL, NULL},
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

static int put_doc(struct store *st, const struct vm_def *def, const struct vmdef_device_kind *k)
{
	json_object *doc = NULL;
	sqlite3_stmt *s = NULL;
	int ret;

	if (!k->count(def))
		return 0;
	ret = k->to_json(def, &doc);
	if (!ret && !doc)
		return 0; /* the field is null: nothing to keep */
	if (!ret)
		ret = store_prepare(st, "INSERT INTO devices(vm, field, doc) VALUES(?1, ?2, ?3)",
				    &s);
	if (!ret) {
		sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, k->field, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN),
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
	for (size_t i = 0; i < vmdef_ndevices && !ret; i++)
		if (!has_own(vmdef_devices[i]))
			ret = put_doc(st, def, vmdef_devices[i]);
	return ret;
}

/* One row back into def through its kind's parser: what a request would have given. A row
 * that does not parse (edited by hand, or a kind this keeld does not know: a newer keeld
 * wrote it) is an error that names the VM, the field and why, never a device dropped. */
static int load_doc(struct vm_def *def, const char *field, const char *text, char *why, size_t len)
{
	const struct vmdef_device_kind *k = kind_of(field);
	json_object *doc;
	int ret;

	if (!k) {
		snprintf(why, len, "its device field '%s' is unknown to this keeld", field);
		return -EPROTO;
	}
	doc = json_tokener_parse(text);
	if (!doc) {
		snprintf(why, len, "its device field '%s' is not JSON", field);
		return -EPROTO;
	}
	ret = k->parse(def, doc, why, len);
	json_object_put(doc);
	return ret ? -EPROTO : 0;
}

int store_devices_load(struct store *st, struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	int ret = 0, rc = SQLITE_DONE;

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]) && !ret; i++)
		if (own[i].load)
			ret = own[i].load(st, def);
	if (!ret)
		ret = store_prepare(st, "SELECT field, doc FROM devices WHERE vm=?1", &s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	while (!ret && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		char why[256];

		ret = load_doc(def, (const char *)sqlite3_column_text(s, 0),
			       (const char *)sqlite3_column_text(s, 1), why, sizeof(why));
		if (ret)
			log_err("store: VM %s: %s", def->name, why);
	}
	if (!ret && rc != SQLITE_DONE)
		ret = -EIO;
	sqlite3_finalize(s);
	return ret;
}
