/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sector bitmaps of differencing disks: one 1 MiB block per chunk of payload blocks, one bit
 * per logical sector (1: the sector is in this file, 0: read it from the parent). Cached in
 * memory on first use; changes go through the log, one 4 KiB bitmap sector at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk_internal.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

#define SECTORS_PER_BITMAP (1ull << 23)

/* Loads chunk c's bitmap into the cache; *bm stays NULL when none is allocated. */
static int bitmap_get(struct vhdx *v, uint64_t c, uint8_t **bm)
{
	uint64_t e, off;
	int r;

	*bm = NULL;
	if (c >= v->bitmap_blocks)
		return -EINVAL;
	if (v->bitmaps[c]) {
		*bm = v->bitmaps[c];
		return 0;
	}
	e = v->bat[vhdx_bat_bitmap_index(v, c)];
	if ((e & VHDX_BAT_STATE_MASK) != VHDX_SB_PRESENT)
		return 0;
	off = e & VHDX_BAT_OFFSET_MASK;
	v->bitmaps[c] = malloc(VHDX_BITMAP_SIZE);
	if (!v->bitmaps[c])
		return -ENOMEM;
	r = vhdx_pread(v, v->bitmaps[c], VHDX_BITMAP_SIZE, off);
	if (r) {
		disk_fail(v->base.err, "%s: cannot read VHDX sector bitmap %llu: %s", v->base.path,
			  (unsigned long long)c, strerror(-r));
		free(v->bitmaps[c]);
		v->bitmaps[c] = NULL;
		return r == -ENODATA ? -EIO : r;
	}
	*bm = v->bitmaps[c];
	return 0;
}

static bool bit(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] >> (i % 8) & 1;
}

int vhdx_bitmap_query(struct vhdx *v, uint64_t sector, uint64_t max, bool *present, uint64_t *run)
{
	uint64_t c = sector / SECTORS_PER_BITMAP, i = sector % SECTORS_PER_BITMAP, n = 1;
	uint8_t *bm;
	int r = bitmap_get(v, c, &bm);

	if (r)
		return r;
	if (max > SECTORS_PER_BITMAP - i)
		max = SECTORS_PER_BITMAP - i;
	if (!bm) {
		*present = false;
		*run = max;
		return 0;
	}
	*present = bit(bm, i);
	while (n < max && bit(bm, i + n) == *present)
		n++;
	*run = n;
	return 0;
}

static void set_bits(uint8_t *bm, uint64_t first, uint64_t count, bool val)
{
	for (uint64_t i = first; i < first + count; i++) {
		if ((i % 8) == 0 && first + count - i >= 8) {
			bm[i / 8] = val ? 0xff : 0;
			i += 7;
			continue;
		}
		if (val)
			bm[i / 8] |= (uint8_t)(1u << (i % 8));
		else
			bm[i / 8] &= (uint8_t) ~(1u << (i % 8));
	}
}

int vhdx_bitmap_set(struct vhdx *v, uint64_t sector, uint64_t count, bool reset)
{
	uint64_t c = sector / SECTORS_PER_BITMAP, i = sector % SECTORS_PER_BITMAP;
	uint64_t spb = v->block_size / v->lsec,
		 blk_first = (sector / spb) * spb % SECTORS_PER_BITMAP;
	struct vhdx_log_item items[64];
	uint8_t *bm, *copy = NULL;
	uint64_t s0, s1;
	unsigned n = 0;
	int r;

	r = bitmap_get(v, c, &bm);
	if (r)
		return r;
	if (!bm) {
		uint64_t off, idx = vhdx_bat_bitmap_index(v, c), val;

		bm = calloc(1, VHDX_BITMAP_SIZE);
		if (!bm)
			return -ENOMEM;
		r = vhdx_alloc(v, VHDX_BITMAP_SIZE, &off);
		val = off | VHDX_SB_PRESENT;
		if (r == 0)
			r = vhdx_bat_set(v, &idx, &val, 1);
		if (r) {
			free(bm);
			return r;
		}
		v->bitmaps[c] = bm;
	}
	/* Work on a copy so a failed commit leaves the cache as the file is. */
	copy = malloc(VHDX_BITMAP_SIZE);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, bm, VHDX_BITMAP_SIZE);
	if (reset)
		set_bits(copy, blk_first, spb, false);
	set_bits(copy, i, count, true);
	s0 = (reset ? blk_first : i) / 8 / VHDX_LOG_SECTOR;
	s1 = ((reset ? blk_first + spb : i + count) - 1) / 8 / VHDX_LOG_SECTOR;
	uint64_t base = v->bat[vhdx_bat_bitmap_index(v, c)] & VHDX_BAT_OFFSET_MASK;

	for (uint64_t s = s0; s <= s1; s++) {
		if (memcmp(copy + s * VHDX_LOG_SECTOR, bm + s * VHDX_LOG_SECTOR, VHDX_LOG_SECTOR) ==
		    0)
			continue;
		if (n == sizeof(items) / sizeof(items[0])) {
			r = -E2BIG;
			goto out;
		}
		items[n].off = base + s * VHDX_LOG_SECTOR;
		items[n].data = copy + s * VHDX_LOG_SECTOR;
		n++;
	}
	r = vhdx_log_commit(v, items, n);
	if (r == 0)
		memcpy(bm + s0 * VHDX_LOG_SECTOR, copy + s0 * VHDX_LOG_SECTOR,
		       (s1 - s0 + 1) * VHDX_LOG_SECTOR);
out:
	free(copy);
	return r;
}
