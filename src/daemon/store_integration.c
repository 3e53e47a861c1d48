/* SPDX-License-Identifier: Apache-2.0 */
/* The store's integration services: which ones each VM has turned off (all on by default),
 * the description's "integration_disabled" (written and read with the VM's devices). */
#include <errno.h>
#include <string.h>

#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "lib/agentproto.h"

int store_integration_disabled(struct store *st, const char *uuid, uint32_t *mask)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, "SELECT service FROM integration_disabled WHERE vm=?1", &s);

	*mask = 0;
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		int svc = ap_service_by_name((const char *)sqlite3_column_text(s, 0));

		if (svc >= 0)
			*mask |= 1u << svc;
	}
	sqlite3_finalize(s);
	return 0;
}

int store_integration_set(struct store *st, const char *uuid, const char *service, bool enabled)
{
	sqlite3_stmt *s = NULL;
	int ret;

	if (ap_service_by_name(service) < 0)
		return -EINVAL;
	ret = store_tx_begin(st);
	if (ret)
		return ret;
	ret = store_prepare(st,
			    enabled ? "DELETE FROM integration_disabled WHERE vm=?1 AND service=?2"
				    : "INSERT OR IGNORE INTO integration_disabled(vm, service) "
				      "VALUES(?1, ?2)",
			    &s);
	if (!ret) {
		sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, service, -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE)
			ret = -EIO;
		sqlite3_finalize(s);
	}
	return store_tx_finish(st, ret);
}

int store_integration_put(struct store *st, const struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, "DELETE FROM integration_disabled WHERE vm=?1", &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	if (ret || !def->integration_off)
		return ret;
	ret = store_prepare(st, "INSERT INTO integration_disabled(vm, service) VALUES(?1, ?2)", &s);
	if (ret)
		return ret;
	for (unsigned k = 0; !ret && k < AP_S_COUNT; k++) {
		if (!(def->integration_off >> k & 1))
			continue;
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, ap_service_name(k), -1, SQLITE_STATIC);
		ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(s);
	return ret;
}
