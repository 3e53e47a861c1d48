/* SPDX-License-Identifier: Apache-2.0 */
/* The store's virtual switches: one row each, the adapters on them in nics.switch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "lib/error.h"

#define SWITCH_COLUMNS                                                                             \
	"name, type, bridge, subnet, adapter, allow_mgmt, nat, is_default, adapter_addrs, created"

static void text_col(sqlite3_stmt *s, int col, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

static void switch_from_row(sqlite3_stmt *s, struct store_switch *sw)
{
	memset(sw, 0, sizeof(*sw));
	text_col(s, 0, sw->name, sizeof(sw->name));
	text_col(s, 1, sw->type, sizeof(sw->type));
	text_col(s, 2, sw->bridge, sizeof(sw->bridge));
	text_col(s, 3, sw->subnet, sizeof(sw->subnet));
	text_col(s, 4, sw->adapter, sizeof(sw->adapter));
	sw->allow_mgmt = sqlite3_column_int(s, 5) != 0;
	sw->nat = sqlite3_column_int(s, 6) != 0;
	sw->is_default = sqlite3_column_int(s, 7) != 0;
	text_col(s, 8, sw->adapter_addrs, sizeof(sw->adapter_addrs));
	sw->created = sqlite3_column_int64(s, 9);
}

int store_switch_list(struct store *st, struct store_switch **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct store_switch *list = NULL;
	size_t cnt = 0, cap = 0;
	int ret = store_prepare(st, "SELECT " SWITCH_COLUMNS " FROM switches ORDER BY name", &s);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (cnt == cap) {
			struct store_switch *bigger =
				realloc(list, (cap ? cap * 2 : 8) * sizeof(*list));

			if (!bigger) {
				ret = -ENOMEM;
				break;
			}
			list = bigger;
			cap = cap ? cap * 2 : 8;
		}
		switch_from_row(s, &list[cnt++]);
	}
	sqlite3_finalize(s);
	if (ret) {
		free(list);
		return ret;
	}
	*out = list;
	*n = cnt;
	return 0;
}

int store_switch_get(struct store *st, const char *name, struct store_switch *out)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, "SELECT " SWITCH_COLUMNS " FROM switches WHERE name=?1", &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		switch_from_row(s, out);
	else
		ret = -ENOENT;
	sqlite3_finalize(s);
	return ret;
}

/* Run s, which changes one row: 0, -EIO, or -ENOENT when it changed none. */
static int step_one_row(sqlite3_stmt *s)
{
	if (sqlite3_step(s) != SQLITE_DONE)
		return -EIO;
	return sqlite3_changes(sqlite3_db_handle(s)) == 1 ? 0 : -ENOENT;
}

static void bind_switch(sqlite3_stmt *s, const struct store_switch *sw)
{
	sqlite3_bind_text(s, 1, sw->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sw->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, sw->bridge, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, sw->subnet, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, sw->adapter, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, sw->allow_mgmt);
	sqlite3_bind_int(s, 7, sw->nat);
	sqlite3_bind_int(s, 8, sw->is_default);
	sqlite3_bind_text(s, 9, sw->adapter_addrs, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 10, sw->created);
}

int store_switch_insert(struct store *st, const struct store_switch *sw, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(
		    st, "INSERT INTO switches(" SWITCH_COLUMNS ") VALUES(?,?,?,?,?,?,?,?,?,?)", &s),
	    rc;

	if (ret)
		return ret;
	bind_switch(s, sw);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT) {
		const char *msg = sqlite3_errmsg(sqlite3_db_handle(s));

		if (strstr(msg, "is_default"))
			error_set(err, errlen, "there is already a Default Switch");
		else if (strstr(msg, "bridge"))
			error_set(err, errlen, "bridge %s is already a switch's", sw->bridge);
		else
			error_set(err, errlen, "a switch named '%s' already exists", sw->name);
		ret = -EEXIST;
	} else if (rc != SQLITE_DONE) {
		error_set(err, errlen, "store write failed: %s",
			  sqlite3_errmsg(sqlite3_db_handle(s)));
		ret = -EIO;
	}
	sqlite3_finalize(s);
	return ret;
}

int store_switch_update(struct store *st, const struct store_switch *sw)
{
	sqlite3_stmt *s = NULL;
	int ret =
		store_prepare(st,
			      "UPDATE switches SET name=?1, type=?2, bridge=?3, subnet=?4, "
			      "adapter=?5, allow_mgmt=?6, nat=?7, is_default=?8, adapter_addrs=?9, "
			      "created=?10 WHERE name=?1",
			      &s);

	if (ret)
		return ret;
	bind_switch(s, sw);
	ret = step_one_row(s);
	sqlite3_finalize(s);
	return ret;
}

int store_switch_set_addrs(struct store *st, const char *name, const char *addrs)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, "UPDATE switches SET adapter_addrs=?2 WHERE name=?1", &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, addrs, -1, SQLITE_STATIC);
	ret = step_one_row(s);
	sqlite3_finalize(s);
	return ret;
}

int store_switch_users(struct store *st, const char *name, char *users, size_t size)
{
	sqlite3_stmt *s = NULL;
	size_t len = 0;
	int ret = store_prepare(st,
				"SELECT DISTINCT vms.name FROM nics JOIN vms ON vms.uuid = nics.vm "
				"WHERE nics.switch=?1 ORDER BY vms.name",
				&s);

	users[0] = '\0';
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW && len < size) {
		int n = snprintf(users + len, size - len, "%s'%s'", len ? ", " : "",
				 (const char *)sqlite3_column_text(s, 0));

		len += n > 0 ? (size_t)n : 0;
	}
	sqlite3_finalize(s);
	return 0;
}

int store_switch_delete(struct store *st, const char *name, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	char users[1024];
	int ret = store_tx_begin(st);

	if (!ret)
		ret = store_switch_users(st, name, users, sizeof(users));
	if (!ret && users[0]) {
		error_set(err, errlen,
			  "switch '%s' is in use by VM %s: move or remove their adapters first",
			  name, users);
		ret = -EBUSY;
	}
	if (!ret)
		ret = store_prepare(st, "DELETE FROM switches WHERE name=?1", &s);
	if (!ret) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		ret = step_one_row(s);
		sqlite3_finalize(s);
	}
	if (ret == -ENOENT)
		error_set(err, errlen, "no switch named '%s'", name);
	return store_tx_finish(st, ret);
}

int store_switch_ports(struct store *st, const char *name, struct vm_nic **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct vm_nic *list = NULL;
	size_t cnt = 0, cap = 0;
	int ret = store_prepare(
		st,
		"SELECT tap, mac, vlan, guards, vlan_trunk, native_vlan, bw_out, bw_in FROM nics "
		"WHERE switch=?1 ORDER BY mac",
		&s);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct vm_nic *nic;
		int guards;

		if (cnt == cap) {
			struct vm_nic *bigger = realloc(list, (cap ? cap * 2 : 16) * sizeof(*list));

			if (!bigger) {
				ret = -ENOMEM;
				break;
			}
			list = bigger;
			cap = cap ? cap * 2 : 16;
		}
		nic = &list[cnt++];
		memset(nic, 0, sizeof(*nic));
		text_col(s, 0, nic->tap, sizeof(nic->tap));
		text_col(s, 1, nic->mac, sizeof(nic->mac));
		snprintf(nic->sw, sizeof(nic->sw), "%s", name);
		nic->vlan = (uint16_t)sqlite3_column_int(s, 2);
		guards = sqlite3_column_int(s, 3);
		store_nic_set_guards(nic, guards);
		store_nic_set_trunk(nic, s, 4);
	}
	sqlite3_finalize(s);
	if (ret) {
		free(list);
		return ret;
	}
	*out = list;
	*n = cnt;
	return 0;
}

int store_forward_list(struct store *st, const char *name, struct store_forward **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct store_forward *list = NULL;
	size_t cnt = 0, cap = 0;
	int ret = store_prepare(
		st,
		"SELECT f.switch, f.proto, f.host_port, f.vm, vms.name, f.mac, "
		"f.address, f.port FROM switch_forwards f JOIN vms ON vms.uuid = f.vm "
		"WHERE ?1 IS NULL OR f.switch = ?1 ORDER BY f.proto, f.host_port",
		&s);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	if (name)
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct store_forward *f;

		if (cnt == cap) {
			struct store_forward *bigger =
				realloc(list, (cap ? cap * 2 : 8) * sizeof(*list));

			if (!bigger) {
				ret = -ENOMEM;
				break;
			}
			list = bigger;
			cap = cap ? cap * 2 : 8;
		}
		f = &list[cnt++];
		memset(f, 0, sizeof(*f));
		text_col(s, 0, f->sw, sizeof(f->sw));
		text_col(s, 1, f->proto, sizeof(f->proto));
		f->host_port = (unsigned)sqlite3_column_int(s, 2);
		text_col(s, 3, f->vm, sizeof(f->vm));
		text_col(s, 4, f->vm_name, sizeof(f->vm_name));
		text_col(s, 5, f->mac, sizeof(f->mac));
		text_col(s, 6, f->address, sizeof(f->address));
		f->port = (unsigned)sqlite3_column_int(s, 7);
	}
	sqlite3_finalize(s);
	if (ret) {
		free(list);
		return ret;
	}
	*out = list;
	*n = cnt;
	return 0;
}

int store_forward_insert(struct store *st, const struct store_forward *f, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st,
				"INSERT INTO switch_forwards(switch, proto, host_port, vm, mac, "
				"address, port) VALUES(?,?,?,?,?,?,?)",
				&s),
	    rc;

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, f->sw, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, f->proto, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, (int)f->host_port);
	sqlite3_bind_text(s, 4, f->vm, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, f->mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, f->address, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 7, (int)f->port);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT) {
		error_set(err, errlen, "host port %s/%u is already forwarded", f->proto,
			  f->host_port);
		ret = -EEXIST;
	} else if (rc != SQLITE_DONE) {
		error_set(err, errlen, "store write failed: %s",
			  sqlite3_errmsg(sqlite3_db_handle(s)));
		ret = -EIO;
	}
	sqlite3_finalize(s);
	return ret;
}

int store_forward_delete(struct store *st, const char *name, const char *proto, unsigned host_port)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st,
				"DELETE FROM switch_forwards WHERE switch=?1 AND proto=?2 AND "
				"host_port=?3",
				&s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, proto, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, (int)host_port);
	ret = step_one_row(s);
	sqlite3_finalize(s);
	return ret;
}

int store_forward_prune(struct store *st, const char *uuid)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st,
				"DELETE FROM switch_forwards WHERE vm=?1 AND NOT EXISTS (SELECT 1 "
				"FROM nics WHERE nics.vm=?1 AND nics.switch=switch_forwards.switch "
				"AND nics.mac=switch_forwards.mac)",
				&s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		ret = -EIO;
	sqlite3_finalize(s);
	return ret;
}

int store_nic_guards(const struct vm_nic *nic)
{
	return nic->mac_spoofing | nic->dhcp_guard << 1 | nic->router_guard << 2 |
	       nic->port_isolation << 3 | (nic->port_mirroring == VM_MIRROR_SOURCE) << 4 |
	       (nic->port_mirroring == VM_MIRROR_DESTINATION) << 5 |
	       (nic->vhost == VM_VHOST_OFF) << 6 | (nic->vhost == VM_VHOST_ON) << 7;
}

void store_nic_set_guards(struct vm_nic *nic, int guards)
{
	nic->mac_spoofing = guards & 1;
	nic->dhcp_guard = (guards & 2) != 0;
	nic->router_guard = (guards & 4) != 0;
	nic->port_isolation = (guards & 8) != 0;
	/* both bits (a damaged row): no mirroring */
	nic->port_mirroring = (guards & 48) == 16   ? VM_MIRROR_SOURCE
			      : (guards & 48) == 32 ? VM_MIRROR_DESTINATION
						    : VM_MIRROR_NONE;
	/* both bits (a damaged row): the default */
	nic->vhost = (guards & 192) == 64    ? VM_VHOST_OFF
		     : (guards & 192) == 128 ? VM_VHOST_ON
					     : VM_VHOST_AUTO;
}

void store_nic_set_trunk(struct vm_nic *nic, sqlite3_stmt *s, int col)
{
	int native = sqlite3_column_int(s, col + 1);
	sqlite3_int64 out = sqlite3_column_int64(s, col + 2), in = sqlite3_column_int64(s, col + 3);

	text_col(s, col, nic->vlan_trunk, sizeof(nic->vlan_trunk));
	if (vmdef_vlan_list(nic->vlan_trunk, NULL, NULL))
		nic->vlan_trunk[0] = '\0'; /* damaged: no trunk */
	nic->native_vlan = native >= 1 && native <= VMDEF_VLAN_MAX ? (uint16_t)native : 0;
	nic->bw_out = out > 0 ? (uint64_t)out : 0;
	nic->bw_in = in > 0 ? (uint64_t)in : 0;
}
