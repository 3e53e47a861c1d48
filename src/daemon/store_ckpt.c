/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's checkpoint records: a VM's whole tree is read at once and written back at
 * once, together with the VM's disk paths, in one transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "lib/log.h"

static void copy_text(sqlite3_stmt *s, int col, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

int store_ckpt_load(struct store *st, const char *vm, struct ckpt_tree *t)
{
	sqlite3_stmt *s = NULL;
	int ret, rc;

	memset(t, 0, sizeof(*t));
	ret = store_prepare(
		st,
		"SELECT id, name, created, seq, parent, hidden, saved, type FROM checkpoints "
		"WHERE vm=?1 ORDER BY seq",
		&s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, vm, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct ckpt *c = ckpt_tree_add(t);

		if (!c) {
			ret = -ENOMEM;
			goto out;
		}
		copy_text(s, 0, c->id, sizeof(c->id));
		copy_text(s, 1, c->name, sizeof(c->name));
		c->created = sqlite3_column_int64(s, 2);
		c->seq = sqlite3_column_int64(s, 3);
		copy_text(s, 4, c->parent, sizeof(c->parent));
		c->hidden = sqlite3_column_int(s, 5) != 0;
		c->saved = sqlite3_column_int(s, 6) != 0;
		c->production = sqlite3_column_text(s, 7) &&
				!strcmp((const char *)sqlite3_column_text(s, 7), "production");
	}
	if (rc != SQLITE_DONE) {
		ret = -EIO;
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	ret = store_prepare(st,
			    "SELECT d.ckpt, d.path FROM checkpoint_disks d JOIN checkpoints c "
			    "ON c.id = d.ckpt WHERE c.vm=?1 ORDER BY d.ckpt, d.idx",
			    &s);
	if (ret)
		goto out;
	sqlite3_bind_text(s, 1, vm, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct ckpt *c = ckpt_tree_by_id(t, (const char *)sqlite3_column_text(s, 0));
		const unsigned char *p = sqlite3_column_text(s, 1);

		if (!c || !p || c->ndisks >= CKPT_DISKS_MAX)
			continue;
		c->disks[c->ndisks] = strdup((const char *)p);
		if (!c->disks[c->ndisks]) {
			ret = -ENOMEM;
			goto out;
		}
		c->ndisks++;
	}
	if (rc != SQLITE_DONE) {
		ret = -EIO;
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	ret = store_prepare(st, "SELECT parent FROM checkpoint_now WHERE vm=?1", &s);
	if (ret)
		goto out;
	sqlite3_bind_text(s, 1, vm, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		copy_text(s, 0, t->now, sizeof(t->now));
	else if (rc != SQLITE_DONE)
		ret = -EIO;
out:
	sqlite3_finalize(s);
	if (ret)
		ckpt_tree_free(t);
	return ret;
}

static int run1(struct store *st, const char *sql, const char *vm)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, sql, &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, vm, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		ret = -EIO;
	sqlite3_finalize(s);
	return ret;
}

static int put_tree(struct store *st, const char *vm, const struct ckpt_tree *t)
{
	sqlite3_stmt *c = NULL, *d = NULL;
	int ret;

	ret = run1(st, "DELETE FROM checkpoints WHERE vm=?1", vm);
	if (!ret)
		ret = run1(st, "DELETE FROM checkpoint_now WHERE vm=?1", vm);
	if (!ret)
		ret = store_prepare(st,
				    "INSERT INTO checkpoints(id, vm, name, created, seq, parent, "
				    "hidden, saved, type) VALUES(?,?,?,?,?,?,?,?,?)",
				    &c);
	if (!ret)
		ret = store_prepare(
			st, "INSERT INTO checkpoint_disks(ckpt, idx, path) VALUES(?,?,?)", &d);
	for (size_t i = 0; !ret && i < t->n; i++) {
		const struct ckpt *k = &t->v[i];

		sqlite3_reset(c);
		sqlite3_bind_text(c, 1, k->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(c, 2, vm, -1, SQLITE_STATIC);
		sqlite3_bind_text(c, 3, k->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(c, 4, k->created);
		sqlite3_bind_int64(c, 5, k->seq);
		if (k->parent[0])
			sqlite3_bind_text(c, 6, k->parent, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(c, 6);
		sqlite3_bind_int(c, 7, k->hidden);
		sqlite3_bind_int(c, 8, k->saved);
		sqlite3_bind_text(c, 9, k->production ? "production" : "standard", -1,
				  SQLITE_STATIC);
		if (sqlite3_step(c) != SQLITE_DONE) {
			ret = sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_UNIQUE ? -EEXIST
											   : -EIO;
			break;
		}
		for (unsigned j = 0; j < k->ndisks; j++) {
			sqlite3_reset(d);
			sqlite3_bind_text(d, 1, k->id, -1, SQLITE_STATIC);
			sqlite3_bind_int(d, 2, (int)j);
			sqlite3_bind_text(d, 3, k->disks[j], -1, SQLITE_STATIC);
			if (sqlite3_step(d) != SQLITE_DONE) {
				ret = -EIO;
				break;
			}
		}
	}
	sqlite3_finalize(c);
	sqlite3_finalize(d);
	if (!ret && t->now[0]) {
		sqlite3_stmt *s = NULL;

		ret = store_prepare(st, "INSERT INTO checkpoint_now(vm, parent) VALUES(?1, ?2)",
				    &s);
		if (!ret) {
			sqlite3_bind_text(s, 1, vm, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, t->now, -1, SQLITE_STATIC);
			if (sqlite3_step(s) != SQLITE_DONE)
				ret = -EIO;
		}
		sqlite3_finalize(s);
	}
	return ret;
}

int store_ckpt_save(struct store *st, const char *vm, const struct ckpt_tree *t,
		    const struct vm_def *def, char *err, size_t errlen)
{
	int ret = store_tx_begin(st);

	if (ret) {
		snprintf(err, errlen, "store busy: %s", sqlite3_errmsg(st->db));
		return ret;
	}
	ret = put_tree(st, vm, t);
	if (ret == -EIO)
		snprintf(err, errlen, "store write failed: %s", sqlite3_errmsg(st->db));
	else if (ret == -EEXIST)
		snprintf(err, errlen, "a checkpoint with that name already exists");
	if (!ret && def)
		ret = store_vm_update_rows(st, def, err, errlen);
	return store_tx_finish(st, ret);
}
