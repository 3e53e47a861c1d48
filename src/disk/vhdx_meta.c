/* SPDX-License-Identifier: Apache-2.0 */
/* VHDX metadata region: the table of items and the known items (file parameters, sizes...). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk_internal.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

struct known_item {
	struct uuid id;
	uint32_t len; /* exact length, 0: variable */
	uint32_t flags;
};

enum { IT_PARAMS, IT_VSIZE, IT_PAGE83, IT_LSEC, IT_PSEC, IT_LOCATOR, IT_COUNT };

static const struct known_item known[IT_COUNT] = {
	[IT_PARAMS] = {VHDX_GUID_FILE_PARAMS, 8, VHDX_META_IS_REQUIRED},
	[IT_VSIZE] = {VHDX_GUID_VDISK_SIZE, 8, VHDX_META_IS_REQUIRED | VHDX_META_IS_VDISK},
	[IT_PAGE83] = {VHDX_GUID_PAGE83, 16, VHDX_META_IS_REQUIRED | VHDX_META_IS_VDISK},
	[IT_LSEC] = {VHDX_GUID_LOGICAL_SECTOR, 4, VHDX_META_IS_REQUIRED | VHDX_META_IS_VDISK},
	[IT_PSEC] = {VHDX_GUID_PHYSICAL_SECTOR, 4, VHDX_META_IS_REQUIRED | VHDX_META_IS_VDISK},
	[IT_LOCATOR] = {VHDX_GUID_PARENT_LOCATOR, 0, VHDX_META_IS_REQUIRED},
};

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

int vhdx_meta_find(struct vhdx *v, const struct uuid *item, uint32_t *off, uint32_t *len)
{
	uint8_t *t = malloc(VHDX_META_TABLE_SIZE);
	int r;

	if (!t)
		return -ENOMEM;
	r = vhdx_pread(v, t, VHDX_META_TABLE_SIZE, v->meta_off);
	if (r == 0) {
		uint16_t n = le16_load(t + 10);

		r = -ENOENT;
		for (uint16_t i = 0; i < n && i < VHDX_META_MAX_ENTRIES; i++) {
			const uint8_t *e = t + VHDX_META_HDR_SIZE + i * VHDX_META_ENTRY_SIZE;

			if (memcmp(e, item->b, 16) == 0) {
				*off = le32_load(e + 16);
				*len = le32_load(e + 20);
				r = 0;
				break;
			}
		}
	}
	free(t);
	return r;
}

int vhdx_meta_load(struct vhdx *v)
{
	const char *path = v->base.path;
	uint8_t *t = malloc(VHDX_META_TABLE_SIZE);
	uint8_t *item = NULL;
	bool seen[IT_COUNT] = {false};
	uint16_t n;
	int r;

	if (!t)
		return -ENOMEM;
	r = vhdx_pread(v, t, VHDX_META_TABLE_SIZE, v->meta_off);
	if (r) {
		disk_fail(v->base.err, "%s: cannot read the VHDX metadata table: %s", path,
			  r == -ENODATA ? "file too short" : strerror(-r));
		r = r == -ENODATA ? -EINVAL : r;
		goto out;
	}
	r = -EINVAL;
	if (memcmp(t, VHDX_METADATA_SIG, 8) != 0) {
		disk_fail(v->base.err, "%s: VHDX metadata table has no 'metadata' signature", path);
		goto out;
	}
	n = le16_load(t + 10);
	if (n > VHDX_META_MAX_ENTRIES) {
		disk_fail(v->base.err, "%s: VHDX metadata table has %u entries (at most 2047)",
			  path, n);
		goto out;
	}
	item = malloc(VHDX_META_MAX_ITEM);
	if (!item) {
		r = -ENOMEM;
		goto out;
	}
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *e = t + VHDX_META_HDR_SIZE + i * VHDX_META_ENTRY_SIZE;
		uint32_t off = le32_load(e + 16), len = le32_load(e + 20),
			 flags = le32_load(e + 24);
		struct uuid id;
		int k;

		memcpy(id.b, e, 16);
		for (k = 0; k < IT_COUNT; k++)
			if (uuid_equal(&id, &known[k].id))
				break;
		if (len && (off < VHDX_META_TABLE_SIZE || len > VHDX_META_MAX_ITEM ||
			    (uint64_t)off + len > v->meta_len)) {
			disk_fail(v->base.err,
				  "%s: VHDX metadata item %u lies outside the metadata region",
				  path, i);
			goto out;
		}
		if (k == IT_COUNT) {
			if ((flags & VHDX_META_IS_REQUIRED) && !(flags & VHDX_META_IS_USER)) {
				char s[UUID_STR_LEN];

				uuid_format(&id, true, s);
				disk_fail(
					v->base.err,
					"%s: VHDX metadata item %s is required but unknown to keel",
					path, s);
				goto out;
			}
			continue;
		}
		if (seen[k]) {
			disk_fail(v->base.err, "%s: VHDX metadata item %u appears twice", path, i);
			goto out;
		}
		seen[k] = true;
		if ((known[k].len && len != known[k].len) || (k == IT_LOCATOR && len < 20)) {
			disk_fail(v->base.err, "%s: VHDX metadata item %u has length %u", path, i,
				  len);
			goto out;
		}
		r = vhdx_pread(v, item, len, v->meta_off + off);
		if (r) {
			disk_fail(v->base.err, "%s: cannot read VHDX metadata item %u: %s", path, i,
				  r == -ENODATA ? "file too short" : strerror(-r));
			r = r == -ENODATA ? -EINVAL : r;
			goto out;
		}
		r = -EINVAL;
		switch (k) {
		case IT_PARAMS:
			v->block_size = le32_load(item);
			v->params_flags = le32_load(item + 4);
			break;
		case IT_VSIZE:
			v->vsize = le64_load(item);
			break;
		case IT_PAGE83:
			memcpy(v->disk_id.b, item, 16);
			break;
		case IT_LSEC:
			v->lsec = le32_load(item);
			break;
		case IT_PSEC:
			v->psec = le32_load(item);
			break;
		case IT_LOCATOR:
			v->loc_item_off = off;
			v->loc_item_len = len;
			r = vhdx_locator_parse(v, item, len);
			if (r)
				goto out;
			r = -EINVAL;
			break;
		}
	}
	for (int k = 0; k < IT_LOCATOR; k++) {
		if (!seen[k]) {
			char s[UUID_STR_LEN];

			uuid_format(&known[k].id, true, s);
			disk_fail(v->base.err, "%s: required VHDX metadata item %s is missing",
				  path, s);
			goto out;
		}
	}
	v->has_parent = v->params_flags & VHDX_PARAM_HAS_PARENT;
	if (v->block_size < VHDX_MIN_BLOCK || v->block_size > VHDX_MAX_BLOCK ||
	    !is_pow2(v->block_size)) {
		disk_fail(v->base.err,
			  "%s: VHDX metadata: block size %u is not a power of 2 from 1 MiB to "
			  "256 MiB",
			  path, v->block_size);
		goto out;
	}
	if ((v->lsec != 512 && v->lsec != 4096) || (v->psec != 512 && v->psec != 4096)) {
		disk_fail(v->base.err,
			  "%s: VHDX sector sizes %u/%u (logical/physical) are not 512 or 4096",
			  path, v->lsec, v->psec);
		goto out;
	}
	if (v->vsize == 0 || v->vsize > VHDX_MAX_SIZE || v->vsize % v->lsec) {
		disk_fail(v->base.err,
			  "%s: VHDX virtual size %llu is not a multiple of %u up to 64 TiB", path,
			  (unsigned long long)v->vsize, v->lsec);
		goto out;
	}
	if (v->has_parent != seen[IT_LOCATOR]) {
		disk_fail(v->base.err, "%s: VHDX %s", path,
			  v->has_parent ? "differencing disk has no parent locator"
					: "parent locator present on a disk without a parent");
		goto out;
	}
	r = 0;
out:
	free(item);
	free(t);
	return r;
}

int vhdx_meta_build(uint8_t *region, const struct vhdx_meta_params *p)
{
	uint32_t off = VHDX_META_TABLE_SIZE;
	unsigned n = 0;

	memcpy(region, VHDX_METADATA_SIG, 8);
	for (int k = 0; k < IT_COUNT; k++) {
		uint8_t *e = region + VHDX_META_HDR_SIZE + n * VHDX_META_ENTRY_SIZE;
		uint8_t *d = region + off;
		uint32_t len = known[k].len;

		switch (k) {
		case IT_PARAMS:
			le32_store(d, p->block_size);
			le32_store(d + 4, p->flags);
			break;
		case IT_VSIZE:
			le64_store(d, p->vsize);
			break;
		case IT_PAGE83:
			memcpy(d, p->disk_id.b, 16);
			break;
		case IT_LSEC:
			le32_store(d, p->lsec);
			break;
		case IT_PSEC:
			le32_store(d, p->psec);
			break;
		case IT_LOCATOR:
			if (!p->locator)
				continue;
			len = p->locator_len;
			if ((uint64_t)off + len > VHDX_MiB)
				return -ENAMETOOLONG;
			memcpy(d, p->locator, len);
			break;
		}
		memcpy(e, known[k].id.b, 16);
		le32_store(e + 16, off);
		le32_store(e + 20, len);
		le32_store(e + 24, known[k].flags);
		/* Each item in its own 4 KiB sector so a size change logs one sector. */
		off += (uint32_t)vhdx_align_up(len, VHDX_LOG_SECTOR);
		n++;
	}
	le16_store(region + 10, (uint16_t)n);
	return 0;
}
