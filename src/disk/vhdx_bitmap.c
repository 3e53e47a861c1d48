/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sector bitmaps of differencing disks: one 1 MiB block per chunk of payload blocks, one bit
 * per logical sector (1: the sector is in this file, 0: read it from the parent). Cached in
 * memory on first use; a write that sets bits changes the cache and stages the 4 KiB bitmap
 * sectors it changed, logged with the staged BAT sectors at the next vhdx_bat_commit.
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

/* Bitmap sectors per 1 MiB bitmap block. */
#define BM_SECTORS (VHDX_BITMAP_SIZE / VHDX_LOG_SECTOR)

/* Marks bitmap sector s of chunk c staged (logged by the next vhdx_bat_commit). */
static void stage_sector(struct vhdx *v, uint64_t c, uint64_t s)
{
	if (!v->bm_dirty[c][s]) {
		v->bm_dirty[c][s] = 1;
		__atomic_store_n(&v->n_dirty, v->n_dirty + 1, __ATOMIC_RELEASE);
	}
}

int vhdx_bitmap_set(struct vhdx *v, uint64_t sector, uint64_t count, bool reset)
{
	uint64_t c = sector / SECTORS_PER_BITMAP, i = sector % SECTORS_PER_BITMAP;
	uint64_t spb = v->block_size / v->lsec,
		 blk_first = (sector / spb) * spb % SECTORS_PER_BITMAP;
	uint64_t s0 = (reset ? blk_first : i) / 8 / VHDX_LOG_SECTOR;
	uint64_t s1 = ((reset ? blk_first + spb : i + count) - 1) / 8 / VHDX_LOG_SECTOR;
	uint8_t *bm, *old;
	int r;

	if (s1 - s0 + 1 > VHDX_STAGE_MAX)
		return -E2BIG;
	/* Room in one transaction with what is staged for this change's bitmap sectors, a new
	 * bitmap block's BAT sector and the block's own BAT sector. */
	if (v->n_dirty + (s1 - s0 + 3) > VHDX_STAGE_MAX) {
		r = vhdx_bat_commit(v);
		if (r)
			return r;
	}
	r = bitmap_get(v, c, &bm);
	if (r)
		return r;
	if (!bm) {
		/* A new bitmap block: zeros (all from the parent), its entry staged like a
		 * block's, logged with the bitmap sectors below. */
		uint64_t off;

		bm = calloc(1, VHDX_BITMAP_SIZE);
		if (!bm)
			return -ENOMEM;
		r = vhdx_alloc(v, VHDX_BITMAP_SIZE, &off);
		if (r == 0)
			r = vhdx_bat_stage(v, vhdx_bat_bitmap_index(v, c), off | VHDX_SB_PRESENT);
		if (r) {
			free(bm);
			return r;
		}
		v->bitmaps[c] = bm;
	}
	/* Everything that can fail before the cache changes: a changed bit is always staged. */
	if (!v->bm_dirty[c])
		v->bm_dirty[c] = calloc(BM_SECTORS, 1);
	old = malloc((s1 - s0 + 1) * VHDX_LOG_SECTOR);
	if (!old || !v->bm_dirty[c]) {
		free(old);
		return -ENOMEM;
	}
	memcpy(old, bm + s0 * VHDX_LOG_SECTOR, (s1 - s0 + 1) * VHDX_LOG_SECTOR);
	/* The cache changes at once (readers see the bits: the data is written); the file's
	 * bitmap at the next commit, after that data is flushed (vhdx_internal.h). */
	if (reset)
		set_bits(bm, blk_first, spb, false);
	set_bits(bm, i, count, true);
	for (uint64_t s = s0; s <= s1; s++)
		if (memcmp(old + (s - s0) * VHDX_LOG_SECTOR, bm + s * VHDX_LOG_SECTOR,
			   VHDX_LOG_SECTOR))
			stage_sector(v, c, s);
	free(old);
	return 0;
}

unsigned vhdx_bitmap_staged(struct vhdx *v, struct vhdx_log_item *items, uint64_t *keys,
			    unsigned cap)
{
	unsigned n = 0;

	for (uint64_t c = 0; v->bm_dirty && c < v->bitmap_blocks && n < cap; c++) {
		uint64_t base = v->bat[vhdx_bat_bitmap_index(v, c)] & VHDX_BAT_OFFSET_MASK;

		for (uint64_t s = 0; v->bm_dirty[c] && s < BM_SECTORS && n < cap; s++) {
			if (!v->bm_dirty[c][s])
				continue;
			items[n].off = base + s * VHDX_LOG_SECTOR;
			items[n].data = v->bitmaps[c] + s * VHDX_LOG_SECTOR;
			keys[n++] = c * BM_SECTORS + s;
		}
	}
	return n;
}

void vhdx_bitmap_clean(struct vhdx *v, const uint64_t *keys, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		v->bm_dirty[keys[k] / BM_SECTORS][keys[k] % BM_SECTORS] = 0;
	__atomic_store_n(&v->n_dirty, v->n_dirty - n, __ATOMIC_RELEASE);
}
