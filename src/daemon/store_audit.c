/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's audit records (docs/security.md): one row per state-changing API request,
 * the newest STORE_AUDIT_KEEP kept.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "lib/clock.h"

int store_audit_add(struct store *st, const struct store_audit *a)
{
	sqlite3_stmt *s = NULL;
	int ret = store_tx_begin(st);

	if (!ret)
		ret = store_prepare(st,
				    "INSERT INTO audit(time, uid, user, method, path, vm, status, "
				    "message) VALUES(?,?,?,?,?,?,?,?)",
				    &s);
	if (!ret) {
		sqlite3_bind_int64(s, 1, a->time);
		sqlite3_bind_int64(s, 2, a->uid);
		sqlite3_bind_text(s, 3, a->user, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, a->method, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, a->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 6, a->vm, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 7, (int)a->status);
		sqlite3_bind_text(s, 8, a->message, -1, SQLITE_STATIC);
		ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_finalize(s);
		s = NULL;
	}
	if (!ret)
		ret = store_prepare(
			st, "DELETE FROM audit WHERE seq <= (SELECT max(seq) FROM audit) - ?1", &s);
	if (!ret) {
		sqlite3_bind_int(s, 1, STORE_AUDIT_KEEP);
		ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_finalize(s);
	}
	return store_tx_finish(st, ret);
}

static json_object *row_json(sqlite3_stmt *s)
{
	json_object *o = json_object_new_object();
	char when[CLOCK_UTC_LEN];
	const unsigned char *vm = sqlite3_column_text(s, 6);

	if (!o)
		return NULL;
	clock_utc_text((time_t)sqlite3_column_int64(s, 1), when);
	json_object_object_add(o, "seq", json_object_new_int64(sqlite3_column_int64(s, 0)));
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "uid", json_object_new_int64(sqlite3_column_int64(s, 2)));
	json_object_object_add(o, "user",
			       json_object_new_string((const char *)sqlite3_column_text(s, 3)));
	json_object_object_add(o, "method",
			       json_object_new_string((const char *)sqlite3_column_text(s, 4)));
	json_object_object_add(o, "path",
			       json_object_new_string((const char *)sqlite3_column_text(s, 5)));
	json_object_object_add(o, "vm",
			       vm && vm[0] ? json_object_new_string((const char *)vm) : NULL);
	json_object_object_add(o, "status", json_object_new_int(sqlite3_column_int(s, 7)));
	json_object_object_add(o, "message",
			       json_object_new_string((const char *)sqlite3_column_text(s, 8)));
	return o;
}

int store_audit_list(struct store *st, const char *vm, unsigned limit, json_object **out)
{
	sqlite3_stmt *s = NULL;
	json_object *arr = json_object_new_array();
	int ret, rc;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	/* The newest `limit`, oldest first. */
	ret = store_prepare(st,
			    "SELECT * FROM (SELECT seq, time, uid, user, method, path, vm, status, "
			    "message FROM audit WHERE ?1 IS NULL OR vm = ?1 ORDER BY seq DESC "
			    "LIMIT ?2) ORDER BY seq",
			    &s);
	if (ret) {
		json_object_put(arr);
		return ret;
	}
	if (vm)
		sqlite3_bind_text(s, 1, vm, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_object *o = row_json(s);

		if (!o) {
			ret = -ENOMEM;
			break;
		}
		json_object_array_add(arr, o);
	}
	if (!ret && rc != SQLITE_DONE)
		ret = -EIO;
	sqlite3_finalize(s);
	if (ret)
		json_object_put(arr);
	else
		*out = arr;
	return ret;
}
