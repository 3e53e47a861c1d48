/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resize: change the virtual size. Growing may move the BAT to the end of the file when
 * its region is too small (copied and flushed first, then switched with one logged write
 * of both region tables); a fixed disk gets its new blocks allocated. Shrinking refuses if
 * any byte cut off is not zero. The size itself changes last, in one logged sector.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

#define BAT_BATCH 16

/* Sets entries [from, to) to val(i) in batches through the log. */
static int bat_fill(struct vhdx *v, uint64_t from, uint64_t to, uint64_t base, bool fixed)
{
	uint64_t idx[BAT_BATCH], val[BAT_BATCH];
	unsigned n = 0;
	int r = 0;

	for (uint64_t i = from; i < to && r == 0; i++) {
		bool is_bitmap = (i % (v->chunk_ratio + 1)) == v->chunk_ratio;
		uint64_t want = 0;

		if (fixed && !is_bitmap) {
			uint64_t blk = i - i / (v->chunk_ratio + 1);

			want = (base +
				(blk - (from - from / (v->chunk_ratio + 1))) * v->block_size) |
			       VHDX_PAYLOAD_FULLY_PRESENT;
		}
		if (v->bat[i] == want)
			continue;
		idx[n] = i;
		val[n++] = want;
		if (n == BAT_BATCH) {
			r = vhdx_bat_set(v, idx, val, n);
			n = 0;
		}
	}
	if (r == 0 && n)
		r = vhdx_bat_set(v, idx, val, n);
	return r;
}

static int grow_bat(struct vhdx *v, uint64_t entries)
{
	uint64_t words = vhdx_align_up(entries, VHDX_LOG_SECTOR / 8);
	uint64_t old_words = vhdx_align_up(v->bat_entries, VHDX_LOG_SECTOR / 8);
	uint64_t *nb;
	int r;

	if (words > old_words) {
		nb = realloc(v->bat, words * 8);
		if (!nb)
			return -ENOMEM;
		v->bat = nb;
		/* One staged flag per BAT sector, the new ones clean. */
		uint8_t *nd = realloc(v->bat_dirty, words / (VHDX_LOG_SECTOR / 8));

		if (!nd)
			return -ENOMEM;
		memset(nd + v->bat_sectors, 0, words / (VHDX_LOG_SECTOR / 8) - v->bat_sectors);
		v->bat_dirty = nd;
		v->bat_sectors = words / (VHDX_LOG_SECTOR / 8);
		/* Load what the file holds there (normally zeros). */
		uint8_t *raw = malloc((words - old_words) * 8);

		if (!raw)
			return -ENOMEM;
		r = 0;
		if (words * 8 <= v->bat_len)
			r = vhdx_pread(v, raw, (words - old_words) * 8, v->bat_off + old_words * 8);
		else
			memset(raw, 0, (words - old_words) * 8);
		for (uint64_t i = old_words; i < words && r == 0; i++)
			v->bat[i] = le64_load(raw + (i - old_words) * 8);
		free(raw);
		if (r)
			return r;
	}
	if (entries * 8 <= v->bat_len)
		return 0;
	/* Move the BAT to a bigger region at the end of the file. */
	uint64_t len = vhdx_align_up(entries * 8, VHDX_MiB), off;
	struct vhdx_log_item items[2 * VHDX_REGION_SIZE / VHDX_LOG_SECTOR];
	uint8_t *img = calloc(1, len), *rt = malloc(VHDX_REGION_SIZE);

	if (len > UINT32_MAX) {
		r = -EFBIG;
		goto out;
	}
	r = -ENOMEM;
	if (!img || !rt)
		goto out;
	for (uint64_t i = 0; i < old_words; i++)
		le64_store(img + i * 8, v->bat[i]);
	for (uint64_t i = old_words; i < words; i++)
		v->bat[i] = 0;
	r = vhdx_alloc(v, len, &off);
	if (r == 0)
		r = dio_pwrite(v->fd, img, len, off);
	if (r == 0)
		r = vhdx_sync(v);
	if (r)
		goto out;
	vhdx_region_build(rt, off, (uint32_t)len, v->meta_off, (uint32_t)v->meta_len);
	for (unsigned i = 0; i < VHDX_REGION_SIZE / VHDX_LOG_SECTOR; i++) {
		items[i].off = VHDX_REGION1_OFF + i * VHDX_LOG_SECTOR;
		items[i].data = rt + i * VHDX_LOG_SECTOR;
		items[i + VHDX_REGION_SIZE / VHDX_LOG_SECTOR].off =
			VHDX_REGION2_OFF + i * VHDX_LOG_SECTOR;
		items[i + VHDX_REGION_SIZE / VHDX_LOG_SECTOR].data = rt + i * VHDX_LOG_SECTOR;
	}
	r = vhdx_log_commit(v, items, sizeof(items) / sizeof(items[0]));
	if (r)
		goto out;
	v->bat_off = off;
	v->bat_len = len;
out:
	free(img);
	free(rt);
	return r;
}

static int set_vsize(struct vhdx *v, uint64_t size)
{
	static const struct uuid id = VHDX_GUID_VDISK_SIZE;
	uint8_t sec[VHDX_LOG_SECTOR];
	struct vhdx_log_item item;
	uint32_t off, len;
	uint64_t at, s0;
	int r;

	r = vhdx_meta_find(v, &id, &off, &len);
	if (r)
		return r;
	at = v->meta_off + off;
	s0 = at & ~(uint64_t)(VHDX_LOG_SECTOR - 1);
	if (at + 8 > s0 + VHDX_LOG_SECTOR)
		return -EINVAL; /* the item straddles two sectors: not written by any known tool */
	r = vhdx_pread(v, sec, sizeof(sec), s0);
	if (r)
		return r;
	le64_store(sec + (at - s0), size);
	item.off = s0;
	item.data = sec;
	return vhdx_log_commit(v, &item, 1);
}

int vhdx_resize(const char *path, uint64_t size, struct disk_err *err)
{
	struct disk *d = NULL;
	struct vhdx *v;
	uint64_t cr, payload, bitmaps, entries;
	uint8_t *buf = NULL;
	bool fixed;
	int r;

	disk_err_clear(err);
	r = disk_open(path, 0, &d, err);
	if (r)
		return r;
	d->err = err; /* an offline operation: the handle is this call's alone */
	v = to_vhdx(d);
	r = -EINVAL;
	if (d->ops != &vhdx_ops) {
		disk_fail(err, "cannot resize %s: not a VHDX file", path);
		goto out;
	}
	if (v->has_parent) {
		disk_fail(err,
			  "cannot resize %s: it is a differencing disk (merge it first, or resize "
			  "the "
			  "base disk before creating children)",
			  path);
		goto out;
	}
	if (size == 0 || size % v->lsec || size > VHDX_MAX_SIZE) {
		disk_fail(err,
			  "cannot resize %s: size must be a non-zero multiple of %u up to 64 TiB",
			  path, v->lsec);
		goto out;
	}
	r = 0;
	if (size == v->vsize)
		goto out;
	fixed = v->params_flags & VHDX_PARAM_LEAVE_ALLOCATED;
	vhdx_geometry(size, v->block_size, v->lsec, false, &cr, &payload, &bitmaps, &entries);
	pthread_mutex_lock(&v->lock);
	r = vhdx_session_begin(v, true);
	if (r)
		goto unlock;
	if (size < v->vsize) {
		const size_t chunk = 1 << 20;

		buf = malloc(chunk);
		if (!buf) {
			r = -ENOMEM;
			goto unlock;
		}
		pthread_mutex_unlock(&v->lock);
		for (uint64_t o = size, n; o < v->vsize && r == 0; o += n) {
			n = v->vsize - o < chunk ? (size_t)(v->vsize - o) : chunk;
			uint64_t e = v->bat[vhdx_bat_payload_index(v, o / v->block_size)];
			uint64_t st = e & VHDX_BAT_STATE_MASK;

			/* Only allocated blocks can hold data (this is not a differencing disk). */
			if (st != VHDX_PAYLOAD_FULLY_PRESENT &&
			    st != VHDX_PAYLOAD_PARTIALLY_PRESENT) {
				n = (o / v->block_size + 1) * v->block_size - o;
				continue;
			}
			if (n > v->block_size - o % v->block_size)
				n = v->block_size - o % v->block_size;
			r = vhdx_read(d, buf, o, (size_t)n);
			if (r == 0 && !dio_is_zero(buf, (size_t)n)) {
				disk_fail(
					err,
					"cannot shrink %s to %llu bytes: data at offset %llu would "
					"be "
					"lost",
					path, (unsigned long long)size, (unsigned long long)o);
				r = -ENOTEMPTY;
			}
		}
		pthread_mutex_lock(&v->lock);
		if (r == 0)
			r = bat_fill(v, entries, v->bat_entries, 0, false);
		if (r == 0)
			r = set_vsize(v, size);
	} else {
		uint64_t old_payload = v->payload_blocks, base = 0;

		r = grow_bat(v, entries);
		if (r == 0 && fixed && payload > old_payload)
			r = vhdx_alloc(v, (payload - old_payload) * v->block_size, &base);
		if (r == 0 && fixed)
			r = bat_fill(v, vhdx_bat_payload_index(v, old_payload), entries, base,
				     true);
		else if (r == 0)
			r = bat_fill(v, v->bat_entries, entries, 0, false);
		if (r == 0)
			r = set_vsize(v, size);
	}
	if (r == 0) {
		v->vsize = size;
		v->payload_blocks = payload;
		v->bitmap_blocks = bitmaps;
		v->bat_entries = entries;
	}
unlock:
	pthread_mutex_unlock(&v->lock);
	if (r && r != -ENOTEMPTY)
		disk_fail(err, "cannot resize %s: %s", path, strerror(-r));
out:
	free(buf);
	disk_close(d);
	return r;
}
