/* SPDX-License-Identifier: Apache-2.0 */
/* The store's storage pools: a name, a type and a directory, or the block devices it names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "lib/error.h"

void store_pool_free(struct store_pool *p)
{
	for (unsigned i = 0; i < p->ndevices; i++)
		free(p->devices[i]);
	free(p->devices);
	p->devices = NULL;
	p->ndevices = 0;
}

static int load_devices(struct store *st, struct store_pool *p)
{
	sqlite3_stmt *s = NULL;
	int ret =
		store_prepare(st, "SELECT path FROM pool_devices WHERE pool=?1 ORDER BY path", &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, p->name, -1, SQLITE_STATIC);
	p->devices = calloc(STORE_POOL_DEVICES_MAX, sizeof(*p->devices));
	if (!p->devices)
		ret = -ENOMEM;
	while (!ret && sqlite3_step(s) == SQLITE_ROW && p->ndevices < STORE_POOL_DEVICES_MAX) {
		p->devices[p->ndevices] = strdup((const char *)sqlite3_column_text(s, 0));
		if (!p->devices[p->ndevices])
			ret = -ENOMEM;
		else
			p->ndevices++;
	}
	sqlite3_finalize(s);
	return ret;
}

int store_pool_list(struct store *st, struct store_pool **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct store_pool *list = NULL;
	size_t cnt = 0, cap = 0;
	int ret =
		store_prepare(st, "SELECT name, type, path, created FROM pools ORDER BY name", &s);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	while (!ret && sqlite3_step(s) == SQLITE_ROW) {
		struct store_pool *p;

		if (cnt == cap) {
			struct store_pool *bigger =
				realloc(list, (cap ? cap * 2 : 8) * sizeof(*list));

			if (!bigger) {
				ret = -ENOMEM;
				break;
			}
			list = bigger;
			cap = cap ? cap * 2 : 8;
		}
		p = &list[cnt++];
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", (const char *)sqlite3_column_text(s, 0));
		p->block = !strcmp((const char *)sqlite3_column_text(s, 1), "block");
		snprintf(p->path, sizeof(p->path), "%s", (const char *)sqlite3_column_text(s, 2));
		p->created = sqlite3_column_int64(s, 3);
	}
	sqlite3_finalize(s);
	for (size_t i = 0; !ret && i < cnt; i++)
		if (list[i].block)
			ret = load_devices(st, &list[i]);
	if (ret) {
		for (size_t i = 0; i < cnt; i++)
			store_pool_free(&list[i]);
		free(list);
		return ret;
	}
	*out = list;
	*n = cnt;
	return 0;
}

int store_pool_insert(struct store *st, const struct store_pool *p, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int ret = store_tx_begin(st), rc;

	if (!ret)
		ret = store_prepare(
			st, "INSERT INTO pools(name, type, path, created) VALUES(?,?,?,?)", &s);
	if (!ret) {
		sqlite3_bind_text(s, 1, p->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, p->block ? "block" : "dir", -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, p->path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, p->created);
		rc = sqlite3_step(s);
		if (rc == SQLITE_CONSTRAINT) {
			error_set(err, errlen, "a pool named '%s' already exists", p->name);
			ret = -EEXIST;
		} else if (rc != SQLITE_DONE) {
			ret = -EIO;
		}
		sqlite3_finalize(s);
		s = NULL;
	}
	if (!ret && p->ndevices)
		ret = store_prepare(st, "INSERT INTO pool_devices(pool, path) VALUES(?,?)", &s);
	for (unsigned i = 0; !ret && i < p->ndevices; i++) {
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, p->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, p->devices[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if (rc == SQLITE_CONSTRAINT) {
			error_set(err, errlen, "device %s already belongs to a pool",
				  p->devices[i]);
			ret = -EEXIST;
		} else if (rc != SQLITE_DONE) {
			ret = -EIO;
		}
	}
	sqlite3_finalize(s);
	return store_tx_finish(st, ret);
}

int store_pool_delete(struct store *st, const char *name)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, "DELETE FROM pools WHERE name=?1", &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	if (!ret && sqlite3_changes(sqlite3_db_handle(s)) == 0)
		ret = -ENOENT;
	sqlite3_finalize(s);
	return ret;
}
