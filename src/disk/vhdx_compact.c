/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compact: drop blocks that hold only zeros, then move the remaining blocks (and sector
 * bitmaps) down into the gaps, lowest first, and truncate the file. Each move copies the
 * block to space nothing references, flushes, and only then switches its BAT entry through
 * the log; a move whose target overlaps its source goes through the end of the file first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

#define CHUNK (1u << 20)

struct ext {
	uint64_t off, len, idx;
};

static int cmp_ext(const void *a, const void *b)
{
	const struct ext *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static int drop_zero_blocks(struct vhdx *v, uint8_t *buf)
{
	for (uint64_t b = 0; b < v->payload_blocks; b++) {
		uint64_t idx = vhdx_bat_payload_index(v, b), e = v->bat[idx];
		uint64_t val = v->has_parent ? VHDX_PAYLOAD_ZERO : VHDX_PAYLOAD_NOT_PRESENT;
		bool zero = true;
		int r;

		if ((e & VHDX_BAT_STATE_MASK) != VHDX_PAYLOAD_FULLY_PRESENT)
			continue;
		for (uint64_t o = 0; o < v->block_size && zero; o += CHUNK) {
			r = vhdx_pread(v, buf, CHUNK, (e & VHDX_BAT_OFFSET_MASK) + o);
			if (r)
				return r;
			zero = dio_is_zero(buf, CHUNK);
		}
		if (zero) {
			r = vhdx_bat_set(v, &idx, &val, 1);
			if (r)
				return r;
		}
	}
	return 0;
}

static int copy(struct vhdx *v, uint8_t *buf, uint64_t from, uint64_t to, uint64_t len)
{
	for (uint64_t o = 0; o < len; o += CHUNK) {
		int r = vhdx_pread(v, buf, CHUNK, from + o);

		if (r == 0)
			r = dio_pwrite(v->fd, buf, CHUNK, to + o);
		if (r)
			return r;
	}
	return vhdx_sync(v);
}

static int move(struct vhdx *v, uint8_t *buf, struct ext *x, uint64_t to)
{
	uint64_t state = v->bat[x->idx] & VHDX_BAT_STATE_MASK, val;
	int r;

	if (to + x->len > x->off) {
		uint64_t tmp;

		r = vhdx_alloc(v, x->len, &tmp);
		if (r == 0)
			r = copy(v, buf, x->off, tmp, x->len);
		val = tmp | state;
		if (r == 0)
			r = vhdx_bat_set(v, &x->idx, &val, 1);
		if (r)
			return r;
		x->off = tmp;
	}
	r = copy(v, buf, x->off, to, x->len);
	val = to | state;
	if (r == 0)
		r = vhdx_bat_set(v, &x->idx, &val, 1);
	if (r == 0)
		x->off = to;
	return r;
}

/* Lowest offset >= at where [off, off+len) misses the fixed structures. */
static uint64_t place(const struct vhdx *v, uint64_t at, uint64_t len)
{
	const uint64_t fixed[4][2] = {{0, VHDX_SECTION_SIZE},
				      {v->log_off, v->log_len},
				      {v->meta_off, v->meta_len},
				      {v->bat_off, v->bat_len}};
	bool moved = true;

	while (moved) {
		moved = false;
		for (int i = 0; i < 4; i++) {
			if (at < fixed[i][0] + fixed[i][1] && fixed[i][0] < at + len) {
				at = fixed[i][0] + fixed[i][1];
				moved = true;
			}
		}
	}
	return at;
}

static int pack(struct vhdx *v, uint8_t *buf, uint64_t *end)
{
	struct ext *x = calloc(v->bat_entries + 1, sizeof(*x));
	uint64_t n = 0, cursor = 0;
	int r = 0;

	if (!x)
		return -ENOMEM;
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t e = v->bat[i], s = e & VHDX_BAT_STATE_MASK;
		bool is_bitmap = (i % (v->chunk_ratio + 1)) == v->chunk_ratio;

		if (is_bitmap ? s == VHDX_SB_PRESENT
			      : (s == VHDX_PAYLOAD_FULLY_PRESENT ||
				 s == VHDX_PAYLOAD_PARTIALLY_PRESENT))
			x[n++] = (struct ext){e & VHDX_BAT_OFFSET_MASK,
					      is_bitmap ? VHDX_BITMAP_SIZE : v->block_size, i};
	}
	qsort(x, n, sizeof(*x), cmp_ext);
	for (uint64_t i = 0; i < n && r == 0; i++) {
		uint64_t to = place(v, cursor, x[i].len);

		if (to < x[i].off)
			r = move(v, buf, &x[i], to);
		cursor = x[i].off + x[i].len;
	}
	/* The end: past every block and every fixed structure. */
	*end = place(v, cursor, 1);
	free(x);
	return r;
}

int vhdx_compact(const char *path, uint64_t *freed, struct disk_err *err)
{
	struct disk *d = NULL;
	struct vhdx *v;
	uint8_t *buf = NULL;
	struct stat st;
	uint64_t before, end;
	int r;

	r = disk_open(path, DISK_OPEN_NOPARENT, &d, err);
	if (r)
		return r;
	d->err = err; /* an offline operation: the handle is this call's alone */
	v = to_vhdx(d);
	if (d->ops != &vhdx_ops) {
		disk_fail(err, "cannot compact %s: not a VHDX file", path);
		r = -EINVAL;
		goto out;
	}
	if ((v->params_flags & VHDX_PARAM_LEAVE_ALLOCATED) && !v->has_parent) {
		disk_fail(
			err,
			"cannot compact %s: a fixed disk keeps every block (convert it to dynamic)",
			path);
		r = -EINVAL;
		goto out;
	}
	buf = malloc(CHUNK);
	if (!buf || fstat(v->fd, &st) < 0) {
		r = buf ? -errno : -ENOMEM;
		goto out;
	}
	before = (uint64_t)st.st_size;
	pthread_mutex_lock(&v->lock);
	r = drop_zero_blocks(v, buf);
	if (r == 0)
		r = pack(v, buf, &end);
	/* Close the log before cutting the file: its entry names the longer size. */
	if (r == 0)
		r = vhdx_session_end(v);
	if (r == 0 && end < before) {
		if (ftruncate(v->fd, (off_t)end) < 0 || fdatasync(v->fd) < 0)
			r = -errno;
	}
	pthread_mutex_unlock(&v->lock);
	if (r == 0)
		*freed = end < before ? before - end : 0;
	else
		disk_fail(err, "cannot compact %s: %s", path, strerror(-r));
out:
	free(buf);
	disk_close(d);
	return r;
}
