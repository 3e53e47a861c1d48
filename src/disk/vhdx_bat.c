/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VHDX block allocation table: geometry (payload entries interleaved with one sector bitmap
 * entry per chunk), loading with validation, logged updates and block allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

#define BAT_PER_SECTOR (VHDX_LOG_SECTOR / 8)

static struct log_ratelimit grow_rl = LOG_RATELIMIT_INIT(5000, 5);

void vhdx_geometry(uint64_t vsize, uint32_t block_size, uint32_t lsec, bool differencing,
		   uint64_t *chunk_ratio, uint64_t *payload, uint64_t *bitmaps, uint64_t *entries)
{
	uint64_t cr = ((uint64_t)1 << 23) * lsec / block_size;
	uint64_t p = (vsize + block_size - 1) / block_size;
	uint64_t b = (p + cr - 1) / cr;

	*chunk_ratio = cr;
	*payload = p;
	*bitmaps = b;
	*entries = differencing ? b * (cr + 1) : p + (p ? (p - 1) / cr : 0);
}

static bool in_metadata(const struct vhdx *v, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;

	return off < VHDX_SECTION_SIZE || (off < v->log_off + v->log_len && v->log_off < end) ||
	       (off < v->bat_off + v->bat_len && v->bat_off < end) ||
	       (off < v->meta_off + v->meta_len && v->meta_off < end);
}

int vhdx_bat_load(struct vhdx *v)
{
	const char *path = v->base.path;
	uint64_t fsize, words;
	int r;

	vhdx_geometry(v->vsize, v->block_size, v->lsec, v->has_parent, &v->chunk_ratio,
		      &v->payload_blocks, &v->bitmap_blocks, &v->bat_entries);
	if (v->bat_entries * 8 > v->bat_len) {
		disk_fail(v->base.err,
			  "%s: VHDX BAT region holds %llu entries but the disk needs %llu", path,
			  (unsigned long long)(v->bat_len / 8), (unsigned long long)v->bat_entries);
		return -EINVAL;
	}
	r = vhdx_file_size(v, &fsize);
	if (r)
		return r;
	words = vhdx_align_up(v->bat_entries, BAT_PER_SECTOR);
	if (v->bat_off + words * 8 > fsize) {
		disk_fail(v->base.err,
			  "%s: VHDX BAT at %llu lies beyond the end of the file (%llu bytes)", path,
			  (unsigned long long)v->bat_off, (unsigned long long)fsize);
		return -EINVAL;
	}
	v->bat = malloc(words * 8);
	if (!v->bat)
		return -ENOMEM;
	{
		uint8_t *raw = (uint8_t *)v->bat;

		r = vhdx_pread(v, raw, words * 8, v->bat_off);
		if (r) {
			disk_fail(v->base.err, "%s: cannot read the VHDX BAT: %s", path,
				  strerror(-r));
			return r == -ENODATA ? -EINVAL : r;
		}
		for (uint64_t i = 0; i < words; i++)
			v->bat[i] = le64_load(raw + i * 8);
	}
	v->bat_sectors = words / BAT_PER_SECTOR;
	v->bat_dirty = calloc(v->bat_sectors, 1);
	if (!v->bat_dirty)
		return -ENOMEM;
	if (v->has_parent) {
		v->bitmaps = calloc(v->bitmap_blocks, sizeof(*v->bitmaps));
		v->bm_dirty = calloc(v->bitmap_blocks, sizeof(*v->bm_dirty));
		if (!v->bitmaps || !v->bm_dirty)
			return -ENOMEM;
	}
	/* Validate what I/O relies on: states, and blocks inside the file, clear of metadata. */
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t e = v->bat[i], state = e & VHDX_BAT_STATE_MASK,
			 off = e & VHDX_BAT_OFFSET_MASK;
		bool is_bitmap = (i % (v->chunk_ratio + 1)) == v->chunk_ratio;
		uint64_t len = is_bitmap ? VHDX_BITMAP_SIZE : v->block_size;
		bool present;

		if (is_bitmap) {
			if (state != VHDX_SB_NOT_PRESENT && state != VHDX_SB_PRESENT) {
				disk_fail(
					v->base.err,
					"%s: VHDX sector bitmap entry %llu has invalid state %llu",
					path, (unsigned long long)i, (unsigned long long)state);
				return -EINVAL;
			}
			if (state == VHDX_SB_PRESENT && !v->has_parent) {
				/* Allowed by the spec only for differencing disks; harmless here.
				 */
				continue;
			}
			present = state == VHDX_SB_PRESENT;
		} else {
			if (state == 4 ||
			    (state == VHDX_PAYLOAD_PARTIALLY_PRESENT && !v->has_parent)) {
				disk_fail(v->base.err,
					  "%s: VHDX BAT entry %llu has invalid state %llu", path,
					  (unsigned long long)i, (unsigned long long)state);
				return -EINVAL;
			}
			present = state == VHDX_PAYLOAD_FULLY_PRESENT ||
				  state == VHDX_PAYLOAD_PARTIALLY_PRESENT;
		}
		if (!present)
			continue;
		if (off == 0 || off + len > fsize || in_metadata(v, off, len)) {
			disk_fail(v->base.err, "%s: VHDX BAT entry %llu points to offset %llu, %s",
				  path, (unsigned long long)i, (unsigned long long)off,
				  off + len > fsize ? "beyond the end of the file"
						    : "inside the VHDX metadata");
			return -EINVAL;
		}
	}
	v->file_end = vhdx_align_up(fsize, VHDX_ALIGN);
	v->file_grown = fsize;
	return 0;
}

int vhdx_alloc(struct vhdx *v, uint64_t len, uint64_t *off)
{
	uint64_t o = v->file_end, end = o + vhdx_align_up(len, VHDX_ALIGN), grow;
	int rc;

	if (end > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (end > v->file_grown) {
		/* Several blocks at once; still sparse, as one block at a time was. A size
		 * limit that refuses the room ahead (the file system's largest file,
		 * RLIMIT_FSIZE, a quota) may still take this area alone. */
		grow = end + (uint64_t)v->block_size * (VHDX_GROW_BLOCKS - 1);
		if (grow > (uint64_t)INT64_MAX)
			grow = end;
		rc = ftruncate(v->fd, (off_t)grow);
		if (rc < 0 && grow > end) {
			grow = end;
			rc = ftruncate(v->fd, (off_t)grow);
		}
		if (rc < 0) {
			int e = -errno;

			/* The guest's writes (no caller to tell: err NULL) may fail so in a
			 * loop: ratelimited. */
			if (v->base.err)
				disk_fail(v->base.err, "%s: cannot grow the file to %llu bytes: %s",
					  v->base.path, (unsigned long long)grow, strerror(-e));
			else
				log_warn_ratelimited(
					&grow_rl, "%s: cannot grow the file to %llu bytes: %s",
					v->base.path, (unsigned long long)grow, strerror(-e));
			return e;
		}
		v->file_grown = grow;
	}
	v->file_end = end;
	*off = o;
	return 0;
}

void vhdx_trim_tail(struct vhdx *v)
{
	struct stat st;

	/* Best effort: a tail left behind is unreferenced space, harmless. */
	if (fstat(v->fd, &st) == 0 && (uint64_t)st.st_size > v->file_end &&
	    ftruncate(v->fd, (off_t)v->file_end) < 0)
		log_warn("%s: cannot cut the file's unused tail at %llu: %s", v->base.path,
			 (unsigned long long)v->file_end, strerror(errno));
}

/* Fills items[0..n) with the 4 KiB images of the BAT sectors sec_idx[i]. */
static void sector_images(struct vhdx *v, const uint64_t *sec_idx, unsigned n,
			  uint8_t (*sec)[VHDX_LOG_SECTOR], struct vhdx_log_item *items)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t s = sec_idx[i];

		for (unsigned k = 0; k < BAT_PER_SECTOR; k++)
			le64_store(sec[i] + k * 8, v->bat[s * BAT_PER_SECTOR + k]);
		items[i].off = v->bat_off + s * VHDX_LOG_SECTOR;
		items[i].data = sec[i];
	}
}

int vhdx_bat_commit(struct vhdx *v)
{
	unsigned cap = vhdx_log_capacity(v);
	uint64_t *key = NULL;
	uint8_t(*sec)[VHDX_LOG_SECTOR] = NULL;
	struct vhdx_log_item *items = NULL;
	int r;

	if (v->n_dirty == 0)
		return 0;
	if (cap > VHDX_STAGE_MAX)
		cap = VHDX_STAGE_MAX;
	/*
	 * The staged blocks' data first (and the data under staged sector bitmap bits), then
	 * the entries and bits that point to it: a BAT entry on disk must never name a block
	 * whose data may not be durable (a crash could expose stale host blocks there on file
	 * systems that do not order data before metadata).
	 */
	r = vhdx_sync(v);
	if (r) {
		disk_fail(v->base.err, "%s: cannot flush new blocks' data: %s", v->base.path,
			  strerror(-r));
		return r;
	}
	key = malloc(cap * sizeof(*key));
	sec = malloc((size_t)cap * VHDX_LOG_SECTOR);
	items = malloc(cap * sizeof(*items));
	if (!key || !sec || !items || !cap)
		r = -ENOMEM;
	/*
	 * One transaction holds everything staged (at most VHDX_STAGE_MAX sectors) unless the
	 * log is smaller; then bitmap sectors go first: bits set under a block whose entry
	 * is not yet logged are not read (the block reads from the parent).
	 */
	while (r == 0 && v->n_dirty) {
		unsigned nb = v->has_parent ? vhdx_bitmap_staged(v, items, key, cap) : 0, n = nb;

		for (uint64_t s = 0; s < v->bat_sectors && n < cap; s++)
			if (v->bat_dirty[s])
				key[n++] = s;
		if (n == 0) {
			r = -EIO; /* n_dirty counts sectors that are not staged: a bug */
			break;
		}
		sector_images(v, key + nb, n - nb, sec, items + nb);
		r = vhdx_log_commit(v, items, n);
		if (r)
			break;
		if (nb)
			vhdx_bitmap_clean(v, key, nb);
		for (unsigned i = nb; i < n; i++)
			v->bat_dirty[key[i]] = 0;
		__atomic_store_n(&v->n_dirty, v->n_dirty - (n - nb), __ATOMIC_RELEASE);
	}
	free(key);
	free(sec);
	free(items);
	return r;
}

int vhdx_bat_stage(struct vhdx *v, uint64_t idx, uint64_t val)
{
	uint64_t s = idx / BAT_PER_SECTOR;

	vhdx_bat_store(v, idx, val);
	if (!v->bat_dirty[s]) {
		v->bat_dirty[s] = 1;
		__atomic_store_n(&v->n_dirty, v->n_dirty + 1, __ATOMIC_RELEASE);
	}
	return v->n_dirty >= VHDX_STAGE_MAX ? vhdx_bat_commit(v) : 0;
}

bool vhdx_bat_stage_commits(const struct vhdx *v, uint64_t idx)
{
	return v->n_dirty + !v->bat_dirty[idx / BAT_PER_SECTOR] >= VHDX_STAGE_MAX;
}

int vhdx_bat_set(struct vhdx *v, const uint64_t *idx, const uint64_t *val, unsigned n)
{
	struct vhdx_log_item items[16] = {0};
	uint8_t(*sec)[VHDX_LOG_SECTOR] = NULL;
	uint64_t *old = NULL, sidx[16] = {0};
	unsigned ns = 0;
	int r;

	if (n > 16)
		return -E2BIG;
	/* Staged entries may share these sectors: they go first, with their data flushed. */
	r = vhdx_bat_commit(v);
	if (r)
		return r;
	r = -ENOMEM;
	sec = malloc(n * VHDX_LOG_SECTOR);
	old = malloc(n * sizeof(*old));
	if (!sec || !old)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		old[i] = v->bat[idx[i]];
		vhdx_bat_store(v, idx[i], val[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t s = idx[i] / BAT_PER_SECTOR;
		bool dup = false;

		for (unsigned j = 0; j < ns; j++)
			dup = dup || sidx[j] == s;
		if (!dup)
			sidx[ns++] = s;
	}
	sector_images(v, sidx, ns, sec, items);
	r = vhdx_log_commit(v, items, ns);
	if (r)
		for (unsigned i = n; i-- > 0;)
			vhdx_bat_store(v, idx[i], old[i]);
out:
	free(sec);
	free(old);
	return r;
}
