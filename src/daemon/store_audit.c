/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's audit records (docs/security.md): one row per state-changing API request and
 * per refused one, each kind with its own retention: the newest STORE_AUDIT_KEEP records of
 * requests served (what changed, or failed to) and, apart, the newest STORE_AUDIT_REFUSED_KEEP
 * refusals, so that a flood of refused requests (any viewer can send them) never pushes an
 * administrator's change out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "lib/clock.h"

/* Refused: nothing was done (403 Forbidden; 413 and 414, refused before routing). The SQL
 * terms below say the same. */
#define REFUSED "status IN (403, 413, 414)"

bool store_audit_refused(unsigned status)
{
	return status == 403 || status == 413 || status == 414;
}

/* Each kind's statements, by enum store_audit_kind: its count, and the removal of its ?1
 * oldest (each kind's partial index of store.c's schema: a few steps, not a walk over the
 * records kept). */
#define BY_KIND(head, tail)                                                                        \
	{                                                                                          \
		[STORE_AUDIT_ALL] = head "1" tail,                                                 \
		[STORE_AUDIT_CHANGES] = head "NOT " REFUSED tail,                                  \
		[STORE_AUDIT_REFUSED] = head REFUSED tail                                          \
	}
static const char *const count_sql[] = BY_KIND("SELECT count(*) FROM audit WHERE ", "");
static const char *const trim_sql[] = BY_KIND(
	"DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE ", " ORDER BY seq LIMIT ?1)");
/* The newest ?2 (of VM ?1 when not NULL), oldest first. */
static const char *const list_sql[] =
	BY_KIND("SELECT * FROM (SELECT seq, time, uid, user, method, path, vm, status, message "
		"FROM audit WHERE (?1 IS NULL OR vm = ?1) AND ",
		" ORDER BY seq DESC LIMIT ?2) ORDER BY seq");

/* sql with ?1 bound to n: stepped to its end, or, with out, handed over unstepped. */
static int run(struct store *st, const char *sql, long long n, sqlite3_stmt **out)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, sql, &s);

	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, n);
	if (out) {
		*out = s;
		return 0;
	}
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	return ret;
}

/* How many records of kind the store holds (once per store_open, or after a failed add). */
static int count(struct store *st, enum store_audit_kind kind, long long *n)
{
	sqlite3_stmt *s = NULL;
	int ret = run(st, count_sql[kind], 0, &s);

	if (ret)
		return ret;
	ret = sqlite3_step(s) == SQLITE_ROW ? 0 : -EIO;
	*n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return ret;
}

int store_audit_add(struct store *st, const struct store_audit *a)
{
	bool refused = store_audit_refused(a->status);
	enum store_audit_kind kind = refused ? STORE_AUDIT_REFUSED : STORE_AUDIT_CHANGES;
	long long keep = refused ? STORE_AUDIT_REFUSED_KEEP : STORE_AUDIT_KEEP, *n;
	sqlite3_stmt *s = NULL;
	int ret = store_tx_begin(st);

	if (!ret && !st->audit_counted) {
		ret = count(st, STORE_AUDIT_CHANGES, &st->audit_n[0]);
		if (!ret)
			ret = count(st, STORE_AUDIT_REFUSED, &st->audit_n[1]);
		st->audit_counted = !ret;
	}
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
	}
	/* Of the new record's kind only, the oldest beyond the newest keep. */
	n = &st->audit_n[refused];
	if (!ret && ++*n > keep) {
		ret = run(st, trim_sql[kind], *n - keep, NULL);
		*n = keep;
	}
	ret = store_tx_finish(st, ret);
	if (ret)
		st->audit_counted = false;
	return ret;
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

int store_audit_list(struct store *st, const char *vm, enum store_audit_kind kind, unsigned limit,
		     json_object **out)
{
	sqlite3_stmt *s = NULL;
	json_object *arr = json_object_new_array();
	int ret, rc;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	ret = store_prepare(st, list_sql[kind], &s);
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
