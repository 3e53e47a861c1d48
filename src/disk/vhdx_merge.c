/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Merge: fold a differencing disk into its parent. Only sectors present in the child are
 * copied (blocks in the ZERO state copy zeros); the parent is written through its own
 * write path, so its log, allocation and GUID rules apply. The child is removed last.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

#define CHUNK (1u << 20)

/* Copies the child's bytes at [off, off+len) (a file offset foff) into the parent. */
static int copy_range(struct vhdx *c, struct disk *p, uint8_t *buf, uint64_t foff, uint64_t off,
		      uint64_t len)
{
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		int r = vhdx_pread(c, buf, n, foff);

		if (r == 0)
			r = disk_write(p, buf, off, n);
		if (r)
			return r;
		foff += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int zero_range(struct disk *p, uint8_t *buf, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		int r = disk_read(p, buf, off, n);

		if (r == 0 && !dio_is_zero(buf, n)) {
			memset(buf, 0, n);
			r = disk_write(p, buf, off, n);
		}
		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static int merge_blocks(struct vhdx *c, struct disk *p)
{
	uint8_t *buf = malloc(CHUNK);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t b = 0; b < c->payload_blocks && r == 0; b++) {
		uint64_t e = c->bat[vhdx_bat_payload_index(c, b)], s = e & VHDX_BAT_STATE_MASK;
		uint64_t off = b * c->block_size, len = c->block_size;
		uint64_t foff = e & VHDX_BAT_OFFSET_MASK;

		if (off + len > c->vsize)
			len = c->vsize - off;
		switch (s) {
		case VHDX_PAYLOAD_FULLY_PRESENT:
			r = copy_range(c, p, buf, foff, off, len);
			break;
		case VHDX_PAYLOAD_PARTIALLY_PRESENT:
			for (uint64_t done = 0; done < len && r == 0;) {
				uint64_t sector = (off + done) / c->lsec, run;
				bool present;

				r = vhdx_bitmap_query(c, sector, (len - done) / c->lsec, &present,
						      &run);
				if (r)
					break;
				if (present)
					r = copy_range(c, p, buf, foff + done, off + done,
						       run * c->lsec);
				done += run * c->lsec;
			}
			break;
		case VHDX_PAYLOAD_NOT_PRESENT:
			break;
		default: /* ZERO, UNMAPPED, UNDEFINED: the child reads zeros here */
			r = zero_range(p, buf, off, len);
			break;
		}
	}
	free(buf);
	return r;
}

int vhdx_merge_disks(struct disk *child, struct disk *parent, struct disk_err *err)
{
	struct disk_err *was_c = child->err, *was_p = parent->err;
	struct vhdx *c;
	int r;

	disk_err_clear(err);
	if (child->ops != &vhdx_ops || !to_vhdx(child)->has_parent) {
		disk_fail(err, "cannot merge %s: it is not a differencing VHDX disk", child->path);
		return -EINVAL;
	}
	if (parent->ops != &vhdx_ops || parent->rdonly) {
		disk_fail(err, "cannot merge %s into %s: the parent is not a VHDX open for writing",
			  child->path, parent->path);
		return -EINVAL;
	}
	c = to_vhdx(child);
	/* An offline operation: the handles are this call's alone while it runs. */
	child->err = err;
	parent->err = err;
	r = vhdx_parent_check(c, parent, parent->path, err);
	if (!r && disk_size(parent) < c->vsize) {
		disk_fail(err, "cannot merge %s: parent %s is smaller than the child", child->path,
			  parent->path);
		r = -EINVAL;
	}
	if (!r) {
		r = merge_blocks(c, parent);
		if (r == 0)
			r = disk_flush(parent);
		if (r)
			disk_fail(err,
				  "cannot merge %s into %s: %s (the parent may be partly updated; "
				  "the child is kept)",
				  child->path, parent->path, strerror(-r));
	}
	child->err = was_c;
	parent->err = was_p;
	return r;
}

int vhdx_merge(const char *child, char *parent_out, size_t parent_cap, struct disk_err *err)
{
	struct disk *cd = NULL, *pd = NULL;
	char parent[DISK_PATH_MAX];
	int r;

	disk_err_clear(err);
	/* First open resolves and verifies the parent (linkage, sector size). */
	r = disk_open(child, DISK_OPEN_RDONLY, &cd, err);
	if (r)
		return r;
	if (cd->ops != &vhdx_ops || !to_vhdx(cd)->has_parent) {
		disk_fail(err, "cannot merge %s: it is not a differencing VHDX disk", child);
		disk_close(cd);
		return -EINVAL;
	}
	snprintf(parent, sizeof(parent), "%s", to_vhdx(cd)->parent_path);
	disk_close(cd);
	/* Then: the child alone, and the parent writable. */
	r = disk_open(child, DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT, &cd, err);
	if (r)
		return r;
	r = disk_open(parent, 0, &pd, err);
	if (!r)
		r = vhdx_merge_disks(cd, pd, err);
	if (r)
		goto out;
	disk_close(pd);
	pd = NULL;
	if (unlink(child) < 0) {
		r = -errno;
		disk_fail(err, "merged %s into %s but cannot remove it: %s", child, parent,
			  strerror(-r));
	}
	snprintf(parent_out, parent_cap, "%s", parent);
out:
	disk_close(pd);
	disk_close(cd);
	return r;
}
