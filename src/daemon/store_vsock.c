/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's virtio-vsock device in the store (the description's "vsock" field, docs/vm-config.md):
 * one row of table vsock, none when the VM has no such device. A table of its own, so that an
 * older store gets it empty (no VM has one) without a schema change.
 */
#include <errno.h>
#include <string.h>

#include "config/vmdef.h"
#include "daemon/store.h"
#include "daemon/store_internal.h"

int store_vsock_put(struct store *st, const struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, "DELETE FROM vsock WHERE vm=?1", &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	if (ret || !def->vsock.present)
		return ret;
	ret = store_prepare(st, "INSERT INTO vsock(vm, cid, pci_slot) VALUES(?1, ?2, ?3)", &s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, def->vsock.cid);
	sqlite3_bind_int(s, 3, def->vsock.pci_slot);
	ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	return ret;
}

int store_vsock_load(struct store *st, struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	int ret = store_prepare(st, "SELECT cid, pci_slot FROM vsock WHERE vm=?1", &s);

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	def->vsock = (struct vm_vsock){0};
	if (sqlite3_step(s) == SQLITE_ROW) {
		sqlite3_int64 cid = sqlite3_column_int64(s, 0);
		int slot = sqlite3_column_int(s, 1);

		/* A row edited by hand out of range: vmdef_check says so when the VM is read. */
		def->vsock.present = true;
		def->vsock.cid = cid >= 0 && cid <= UINT32_MAX ? (uint32_t)cid : 0;
		def->vsock.pci_slot = slot >= VMDEF_PCI_SLOT_MIN && slot <= VMDEF_PCI_SLOT_MAX
					      ? (uint8_t)slot
					      : 0;
	}
	sqlite3_finalize(s);
	return 0;
}
