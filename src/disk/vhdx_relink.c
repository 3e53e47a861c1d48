/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Relink: point a differencing disk at another parent that reads exactly like its old one
 * (the parent it was merged into, or the same file after a merge renewed its
 * DataWriteGuid). Only the parent locator changes: the new paths and the new parent's
 * DataWriteGuid, written through the log with the metadata table entry in one transaction.
 * No data is read or compared: the caller guarantees the two parents hold the same data
 * (like `qemu-img rebase -u`).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

/* The byte just past the room the locator item may grow into: the next item or the end. */
static uint64_t locator_room_end(struct vhdx *v, const uint8_t *table, uint16_t n, unsigned self)
{
	uint64_t end = v->meta_len;

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = table + VHDX_META_HDR_SIZE + i * VHDX_META_ENTRY_SIZE;
		uint32_t off = le32_load(e + 16), len = le32_load(e + 20);

		if (i != self && len && off >= v->loc_item_off && off < end)
			end = off;
	}
	return end;
}

static int relink(struct vhdx *v, struct disk *pd, const char *child, const char *parent)
{
	static const struct uuid loc_id = VHDX_GUID_PARENT_LOCATOR;
	struct vhdx_log_item items[1 + VHDX_META_MAX_ITEM / VHDX_LOG_SECTOR];
	uint8_t *table = NULL, *loc = NULL, *area = NULL;
	uint32_t len = 0, first, last;
	unsigned self = ~0u, n_items = 0;
	uint16_t n;
	int r;

	if (pd->ops != &vhdx_ops) {
		disk_fail(v->base.err, "cannot relink %s to %s: the parent is not a VHDX file",
			  child, parent);
		r = -EINVAL;
		goto out;
	}
	if (to_vhdx(pd)->lsec != v->lsec || disk_size(pd) < v->vsize) {
		disk_fail(v->base.err,
			  "cannot relink %s to %s: the parent's sector size or size does not match",
			  child, parent);
		r = -EINVAL;
		goto out;
	}
	table = malloc(VHDX_META_TABLE_SIZE);
	loc = calloc(1, VHDX_META_MAX_ITEM);
	if (!table || !loc) {
		r = -ENOMEM;
		goto out;
	}
	r = vhdx_locator_build(child, parent, &to_vhdx(pd)->data_write, loc, VHDX_META_MAX_ITEM,
			       &len);
	if (r) {
		disk_fail(v->base.err,
			  "cannot relink %s to %s: cannot build its parent locator: %s", child,
			  parent, strerror(-r));
		goto out;
	}
	r = vhdx_pread(v, table, VHDX_META_TABLE_SIZE, v->meta_off);
	if (r)
		goto out;
	n = le16_load(table + 10);
	for (unsigned i = 0; i < n && i < VHDX_META_MAX_ENTRIES; i++)
		if (!memcmp(table + VHDX_META_HDR_SIZE + i * VHDX_META_ENTRY_SIZE, loc_id.b, 16))
			self = i;
	if (self == ~0u || v->loc_item_off % VHDX_LOG_SECTOR) {
		disk_fail(v->base.err,
			  "cannot relink %s: its parent locator item is missing or unaligned",
			  child);
		r = -EINVAL;
		goto out;
	}
	if ((uint64_t)v->loc_item_off + len > locator_room_end(v, table, n, self)) {
		disk_fail(v->base.err,
			  "cannot relink %s to %s: the new parent locator (%u bytes) does not fit "
			  "where the old one is",
			  child, parent, len);
		r = -ENOSPC;
		goto out;
	}
	/* The item's sectors (old length or new, whichever is longer), then the table entry. */
	first = v->loc_item_off / VHDX_LOG_SECTOR;
	last = (uint32_t)((v->loc_item_off + (len > v->loc_item_len ? len : v->loc_item_len) - 1) /
			  VHDX_LOG_SECTOR);
	area = calloc(last - first + 1, VHDX_LOG_SECTOR);
	if (!area) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(area, loc, len);
	if (last - first + 2 > vhdx_log_capacity(v)) {
		r = -E2BIG;
		goto out;
	}
	for (uint32_t s = first; s <= last; s++) {
		items[n_items].off = v->meta_off + (uint64_t)s * VHDX_LOG_SECTOR;
		items[n_items++].data = area + (size_t)(s - first) * VHDX_LOG_SECTOR;
	}
	{
		uint32_t eoff = VHDX_META_HDR_SIZE + self * VHDX_META_ENTRY_SIZE;
		uint32_t esec = eoff / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR;

		le32_store(table + eoff + 20, len);
		items[n_items].off = v->meta_off + esec;
		items[n_items++].data = table + esec;
	}
	pthread_mutex_lock(&v->lock);
	r = vhdx_log_commit(v, items, n_items);
	pthread_mutex_unlock(&v->lock);
	if (r)
		disk_fail(v->base.err, "cannot relink %s to %s: writing its metadata failed: %s",
			  child, parent, strerror(-r));
out:
	free(area);
	free(loc);
	free(table);
	return r;
}

int vhdx_relink_disk(struct disk *child, struct disk *parent, const char *parent_path,
		     struct disk_err *err)
{
	struct disk_err *was = child->err;
	int r;

	disk_err_clear(err);
	if (child->ops != &vhdx_ops || !to_vhdx(child)->has_parent || child->rdonly) {
		disk_fail(err,
			  "cannot relink %s: it is not a differencing VHDX disk open for writing",
			  child->path);
		return -EINVAL;
	}
	child->err = err; /* an offline operation: the handle is this call's alone */
	r = relink(to_vhdx(child), parent, child->path, parent_path);
	child->err = was;
	return r;
}

int vhdx_relink(const char *child, const char *parent, struct disk_err *err)
{
	struct disk *d = NULL, *pd = NULL;
	int r;

	disk_err_clear(err);
	/* The old parent may be gone or changed: open the child alone. */
	r = disk_open(child, DISK_OPEN_NOPARENT, &d, err);
	if (r)
		return r;
	r = disk_open(parent, DISK_OPEN_RDONLY, &pd, err);
	if (!r)
		r = vhdx_relink_disk(d, pd, parent, err);
	disk_close(pd);
	disk_close(d);
	return r;
}
