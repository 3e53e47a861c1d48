/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Consistency check of a VHDX file and its parent chain. Opening already validates the
 * headers, log, region table, metadata and each BAT entry on its own; this adds what needs
 * the whole picture: overlapping blocks, bitmaps missing for partial blocks, stale copies.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx.h"
#include "disk/vhdx_internal.h"
#include "lib/crc32c.h"

struct extent {
	uint64_t off, len, idx;
};

static int cmp_extent(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* A copy (header or region table) that is not valid: worth a note, not an error. */
static void check_copies(struct vhdx *v, FILE *rep)
{
	static const uint64_t hoff[2] = {VHDX_HEADER1_OFF, VHDX_HEADER2_OFF};
	static const uint64_t roff[2] = {VHDX_REGION1_OFF, VHDX_REGION2_OFF};
	uint8_t *buf = malloc(VHDX_REGION_SIZE), *first = malloc(VHDX_REGION_SIZE);

	if (!buf || !first)
		goto out;
	for (int i = 0; i < 2; i++) {
		uint32_t sum;

		if (vhdx_pread(v, buf, VHDX_HEADER_SIZE, hoff[i]) != 0)
			continue;
		sum = le32_load(buf + 4);
		le32_store(buf + 4, 0);
		if (memcmp(buf, VHDX_HEADER_SIG, 4) != 0 || crc32c(0, buf, VHDX_HEADER_SIZE) != sum)
			fprintf(rep, "%s: note: header %d is not valid (the other one is used)\n",
				v->base.path, i + 1);
	}
	for (int i = 0; i < 2; i++) {
		if (vhdx_pread(v, i ? buf : first, VHDX_REGION_SIZE, roff[i]) != 0)
			goto out;
	}
	if (memcmp(buf, first, VHDX_REGION_SIZE) != 0)
		fprintf(rep, "%s: note: the two region table copies differ\n", v->base.path);
out:
	free(buf);
	free(first);
}

static int check_one(struct vhdx *v, FILE *rep, unsigned *errors)
{
	const char *path = v->base.path;
	struct extent *ext = NULL;
	uint64_t n = 0, allocated = 0;

	check_copies(v, rep);
	if (v->n_overlay)
		fprintf(rep,
			"%s: note: the log holds %u entr%s not yet applied (replayed in memory; "
			"a writable open applies them)\n",
			path, v->replayed_entries, v->replayed_entries == 1 ? "y" : "ies");
	/* One extent per block present (the BAT of a sparse 64 TiB disk of 1 MiB blocks has
	 * 64 Mi entries, few of them present), and the four fixed ones. */
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t s = v->bat[i] & VHDX_BAT_STATE_MASK;

		n += s == VHDX_PAYLOAD_FULLY_PRESENT || s == VHDX_PAYLOAD_PARTIALLY_PRESENT ||
		     ((i % (v->chunk_ratio + 1)) == v->chunk_ratio && s == VHDX_SB_PRESENT);
	}
	ext = calloc(n + 4, sizeof(*ext));
	n = 0;
	if (!ext)
		return -ENOMEM;
	/* The fixed structures count as extents too. */
	ext[n++] = (struct extent){0, VHDX_SECTION_SIZE, UINT64_MAX};
	ext[n++] = (struct extent){v->log_off, v->log_len, UINT64_MAX};
	ext[n++] = (struct extent){v->meta_off, v->meta_len, UINT64_MAX};
	ext[n++] = (struct extent){v->bat_off, v->bat_len, UINT64_MAX};
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t e = v->bat[i], s = e & VHDX_BAT_STATE_MASK;
		bool is_bitmap = (i % (v->chunk_ratio + 1)) == v->chunk_ratio;

		if (is_bitmap) {
			if (s != VHDX_SB_PRESENT)
				continue;
			if (!v->has_parent) {
				fprintf(rep,
					"%s: error: BAT entry %llu: sector bitmap present in a "
					"disk "
					"without a parent\n",
					path, (unsigned long long)i);
				(*errors)++;
			}
			ext[n++] = (struct extent){e & VHDX_BAT_OFFSET_MASK, VHDX_BITMAP_SIZE, i};
			continue;
		}
		if (s == VHDX_PAYLOAD_PARTIALLY_PRESENT) {
			uint64_t chunk = (i / (v->chunk_ratio + 1));
			uint64_t be = v->bat[vhdx_bat_bitmap_index(v, chunk)];

			if ((be & VHDX_BAT_STATE_MASK) != VHDX_SB_PRESENT) {
				fprintf(rep,
					"%s: error: BAT entry %llu: partially present block "
					"without "
					"a sector bitmap\n",
					path, (unsigned long long)i);
				(*errors)++;
			}
		}
		if (s == VHDX_PAYLOAD_FULLY_PRESENT || s == VHDX_PAYLOAD_PARTIALLY_PRESENT) {
			ext[n++] = (struct extent){e & VHDX_BAT_OFFSET_MASK, v->block_size, i};
			allocated++;
		}
	}
	qsort(ext, n, sizeof(*ext), cmp_extent);
	for (uint64_t i = 1; i < n; i++) {
		if (ext[i].off < ext[i - 1].off + ext[i - 1].len) {
			fprintf(rep, "%s: error: %s at %llu overlaps %s at %llu\n", path,
				ext[i].idx == UINT64_MAX ? "a metadata region" : "a block",
				(unsigned long long)ext[i].off,
				ext[i - 1].idx == UINT64_MAX ? "a metadata region" : "a block",
				(unsigned long long)ext[i - 1].off);
			(*errors)++;
		}
	}
	free(ext);
	fprintf(rep, "%s: %s vhdx, %llu of %llu blocks allocated\n", path,
		v->has_parent					 ? "differencing"
		: (v->params_flags & VHDX_PARAM_LEAVE_ALLOCATED) ? "fixed"
								 : "dynamic",
		(unsigned long long)allocated, (unsigned long long)v->payload_blocks);
	return 0;
}

int vhdx_check_disk(struct disk *d, FILE *rep)
{
	unsigned errors = 0;
	int r = 0;

	if (d->ops != &vhdx_ops)
		return -EINVAL;
	for (struct disk *cur = d; cur && r == 0; cur = to_vhdx(cur)->parent)
		r = check_one(to_vhdx(cur), rep, &errors);
	if (r)
		return r;
	if (errors) {
		fprintf(rep, "%s: %u error%s found\n", d->path, errors, errors == 1 ? "" : "s");
		return -EUCLEAN;
	}
	fprintf(rep, "%s: no errors found\n", d->path);
	return 0;
}

int vhdx_check(const char *path, FILE *rep, struct disk_err *err)
{
	struct disk *d = NULL;
	int r;

	disk_err_clear(err);
	r = disk_open(path, DISK_OPEN_RDONLY, &d, err);
	if (r) {
		fprintf(rep, "%s: error: cannot be opened: %s\n", path, disk_why(err, r));
		return r == -EINVAL || r == -ESTALE || r == -ENOENT ? -EUCLEAN : r;
	}
	if (d->ops != &vhdx_ops && disk_format_from_name(path) == DISK_FORMAT_VHDX) {
		fprintf(rep,
			"%s: error: not a VHDX file (no 'vhdxfile' identifier), though its "
			"name says so\n",
			path);
		disk_close(d);
		return -EUCLEAN;
	}
	if (d->ops != &vhdx_ops) {
		fprintf(rep, "%s: raw image, %llu bytes: nothing to check\n", path,
			(unsigned long long)disk_size(d));
		disk_close(d);
		return 0;
	}
	r = vhdx_check_disk(d, rep);
	disk_close(d);
	return r;
}
