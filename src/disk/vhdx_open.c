/* SPDX-License-Identifier: Apache-2.0 */
/* Opening and closing a VHDX file, its info, and the ops table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/vhdx.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

static bool vhdx_probe(const uint8_t *head, size_t len)
{
	return len >= 8 && memcmp(head, VHDX_FILE_SIG, 8) == 0;
}

static void vhdx_free(struct vhdx *v)
{
	struct disk *p = v->parent;

	if (v->bitmaps)
		for (uint64_t i = 0; i < v->bitmap_blocks; i++)
			free(v->bitmaps[i]);
	free(v->bitmaps);
	if (v->bm_dirty)
		for (uint64_t i = 0; i < v->bitmap_blocks; i++)
			free(v->bm_dirty[i]);
	free(v->bm_dirty);
	free(v->bat_dirty);
	free(v->bat);
	vhdx_locator_free(&v->loc);
	vhdx_log_free_overlay(v);
	pthread_mutex_destroy(&v->lock);
	close(v->fd);
	if (v->dfd >= 0)
		close(v->dfd);
	free(v);
	/* The chain below, one level at a time (no recursion however deep it is). */
	while (p) {
		struct disk *next = to_vhdx(p)->parent;

		to_vhdx(p)->parent = NULL;
		p->ops->close(p);
		p = next;
	}
}

int vhdx_open_one(int fd, const char *path, unsigned flags, struct disk **out, struct disk_err *err)
{
	struct vhdx *v = calloc(1, sizeof(*v));
	struct stat st;
	int r;

	disk_err_clear(err);
	if (!v) {
		close(fd);
		return -ENOMEM;
	}
	v->base.ops = &vhdx_ops;
	snprintf(v->base.path, sizeof(v->base.path), "%s", path);
	v->base.rdonly = flags & DISK_OPEN_RDONLY;
	v->base.err = err;
	v->fd = fd;
	v->dfd = -1;
	v->flags = flags;
	pthread_mutex_init(&v->lock, NULL);
	r = disk_lock_fd(fd, path, v->base.rdonly, flags, err);
	if (r == 0)
		r = vhdx_header_load(v);
	if (r == 0)
		r = vhdx_log_open(v);
	if (r == 0)
		r = vhdx_region_load(v);
	if (r == 0)
		r = vhdx_meta_load(v);
	if (r == 0)
		r = vhdx_bat_load(v);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r) {
		vhdx_free(v);
		return r;
	}
	v->durable_size = (uint64_t)st.st_size;
	v->base.err = NULL; /* I/O from now on: its failures are logged */
	*out = &v->base;
	return 0;
}

int vhdx_open_chain(int fd, const char *path, unsigned flags, const int *parents, unsigned nparents,
		    struct disk **out, struct disk_err *err)
{
	struct disk *d;
	int r = vhdx_open_one(fd, path, flags, &d, err);

	if (r) {
		for (unsigned i = 0; parents && i < nparents; i++)
			close(parents[i]);
		return r;
	}
	if (!(flags & DISK_OPEN_NOPARENT)) {
		d->err = err; /* the chain's reasons are this open's */
		r = vhdx_chain_open(to_vhdx(d), parents, nparents);
		d->err = NULL;
	}
	if (r) {
		vhdx_free(to_vhdx(d));
		return r;
	}
	*out = d;
	return 0;
}

static int vhdx_open(int fd, const char *path, unsigned flags, struct disk **out,
		     struct disk_err *err)
{
	return vhdx_open_chain(fd, path, flags, NULL, 0, out, err);
}

static void vhdx_close(struct disk *d)
{
	struct vhdx *v = to_vhdx(d);

	if (!d->rdonly) {
		pthread_mutex_lock(&v->lock);
		if (vhdx_session_end(v) != 0) /* not the failure of a call: keep its reason */
			log_err("%s: closing without a clean log: the next open replays it",
				d->path);
		else
			vhdx_trim_tail(v);
		pthread_mutex_unlock(&v->lock);
	}
	vhdx_free(v);
}

static uint64_t vhdx_size(struct disk *d)
{
	return to_vhdx(d)->vsize;
}

static int vhdx_info(struct disk *d, struct disk_info *out)
{
	struct vhdx *v = to_vhdx(d);
	struct stat st;

	memset(out, 0, sizeof(*out));
	out->format = DISK_FORMAT_VHDX;
	out->type = v->has_parent				     ? DISK_TYPE_DIFFERENCING
		    : (v->params_flags & VHDX_PARAM_LEAVE_ALLOCATED) ? DISK_TYPE_FIXED
								     : DISK_TYPE_DYNAMIC;
	out->virtual_size = v->vsize;
	if (fstat(v->fd, &st) == 0)
		out->file_size = (uint64_t)st.st_size;
	out->block_size = v->block_size;
	out->logical_sector = v->lsec;
	out->physical_sector = v->psec;
	out->blocks_total = v->payload_blocks;
	out->disk_id = v->disk_id;
	out->has_parent = v->has_parent;
	out->log_replayed_in_memory = v->n_overlay > 0 || v->replayed_entries > 0;
	pthread_mutex_lock(&v->lock);
	out->file_write_guid = v->file_write;
	out->data_write_guid = v->data_write;
	out->log_guid = v->log_guid;
	for (uint64_t b = 0; b < v->payload_blocks; b++) {
		uint64_t s = v->bat[vhdx_bat_payload_index(v, b)] & VHDX_BAT_STATE_MASK;

		if (s == VHDX_PAYLOAD_FULLY_PRESENT || s == VHDX_PAYLOAD_PARTIALLY_PRESENT)
			out->blocks_allocated++;
	}
	pthread_mutex_unlock(&v->lock);
	out->allocated_size = out->blocks_allocated * v->block_size;
	if (v->has_parent) {
		const char *link = vhdx_locator_get(&v->loc, "parent_linkage");
		const char *p = v->parent_path;

		if (!p[0])
			p = vhdx_locator_get(&v->loc, "relative_path");
		if (!p)
			p = vhdx_locator_get(&v->loc, "absolute_win32_path");
		snprintf(out->parent_path, sizeof(out->parent_path), "%s", p ? p : "");
		if (link && uuid_parse(link, &out->parent_linkage) != 0)
			memset(&out->parent_linkage, 0, sizeof(out->parent_linkage));
	}
	return 0;
}

const struct disk_ops vhdx_ops = {
	.name = "vhdx",
	.probe = vhdx_probe,
	.open = vhdx_open,
	.read = vhdx_read,
	.write = vhdx_write,
	.map = vhdx_map,
	.fd = vhdx_fd,
	.set_direct = vhdx_set_direct,
	.flush = vhdx_flush,
	.discard = vhdx_discard,
	.size = vhdx_size,
	.close = vhdx_close,
	.info = vhdx_info,
};
