/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Creating VHDX files. Layout (as Hyper-V and QEMU lay them out): header section in the
 * first MiB, a 1 MiB log, a 1 MiB metadata region, the BAT, then payload blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"
#include "lib/utf16.h"

#define CREATOR                                                                                    \
	"keel "                                                                                    \
	"0.1"

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static int write_all(int fd, const struct vhdx_meta_params *mp, const uint8_t *locator,
		     uint32_t loc_len, bool fixed)
{
	const uint64_t log_off = VHDX_MiB, meta_off = 2 * VHDX_MiB, bat_off = 3 * VHDX_MiB;
	uint64_t cr, payload, bitmaps, entries, bat_len, data_off;
	struct uuid fw, dw, zero = {{0}};
	uint8_t *buf = NULL;
	size_t clen;
	int r;

	vhdx_geometry(mp->vsize, mp->block_size, mp->lsec, locator != NULL, &cr, &payload, &bitmaps,
		      &entries);
	bat_len = vhdx_align_up(entries * 8, VHDX_MiB);
	if (bat_len > UINT32_MAX)
		return -EFBIG;
	data_off = bat_off + bat_len;
	r = uuid_generate(&fw);
	if (r == 0)
		r = uuid_generate(&dw);
	if (r)
		return r;
	buf = calloc(1, bat_len > VHDX_MiB ? bat_len : VHDX_MiB);
	if (!buf)
		return -ENOMEM;
	/* File identifier and creator. */
	memcpy(buf, VHDX_FILE_SIG, 8);
	r = utf16_from_utf8(CREATOR, buf + 8, 512, &clen);
	if (r)
		goto out;
	vhdx_header_build(buf + VHDX_HEADER1_OFF, 1, &fw, &dw, &zero, log_off,
			  VHDX_LOG_DEFAULT_SIZE);
	vhdx_header_build(buf + VHDX_HEADER2_OFF, 2, &fw, &dw, &zero, log_off,
			  VHDX_LOG_DEFAULT_SIZE);
	vhdx_region_build(buf + VHDX_REGION1_OFF, bat_off, (uint32_t)bat_len, meta_off, VHDX_MiB);
	vhdx_region_build(buf + VHDX_REGION2_OFF, bat_off, (uint32_t)bat_len, meta_off, VHDX_MiB);
	r = dio_pwrite(fd, buf, VHDX_SECTION_SIZE, 0);
	if (r)
		goto out;
	/* Metadata. */
	memset(buf, 0, VHDX_MiB);
	struct vhdx_meta_params p = *mp;

	p.locator = locator;
	p.locator_len = loc_len;
	r = vhdx_meta_build(buf, &p);
	if (r == 0)
		r = dio_pwrite(fd, buf, VHDX_MiB, meta_off);
	if (r)
		goto out;
	/* BAT: empty, or for a fixed disk every payload block present in order. */
	memset(buf, 0, bat_len);
	if (fixed)
		for (uint64_t b = 0; b < payload; b++)
			le64_store(buf + (b + b / cr) * 8,
				   (data_off + b * mp->block_size) | VHDX_PAYLOAD_FULLY_PRESENT);
	r = dio_pwrite(fd, buf, bat_len, bat_off);
	if (r)
		goto out;
	/* The log region must exist in the file (zeros: no entries). */
	if (ftruncate(fd, (off_t)data_off) < 0) {
		r = -errno;
		goto out;
	}
	if (fixed) {
		uint64_t len = payload * mp->block_size;

		if (fallocate(fd, 0, (off_t)data_off, (off_t)len) < 0) {
			if (errno != EOPNOTSUPP && errno != ENOSYS) {
				r = -errno;
				goto out;
			}
			if (ftruncate(fd, (off_t)(data_off + len)) < 0) {
				r = -errno;
				goto out;
			}
		}
	}
	if (fsync(fd) < 0)
		r = -errno;
out:
	free(buf);
	return r;
}

int vhdx_create(const char *path, const struct disk_create_opts *o, struct disk_err *err)
{
	struct vhdx_meta_params mp = {0};
	struct disk *parent = NULL;
	uint8_t *loc = NULL;
	uint32_t loc_len = 0;
	bool diff = o->type == DISK_TYPE_DIFFERENCING;
	int fd = -1, r;

	disk_err_clear(err);
	mp.block_size = o->block_size ? o->block_size : VHDX_DEFAULT_BLOCK;
	mp.lsec = o->logical_sector ? o->logical_sector : 512;
	mp.psec = o->physical_sector ? o->physical_sector : 4096;
	mp.vsize = o->size;
	mp.flags = o->type == DISK_TYPE_FIXED ? VHDX_PARAM_LEAVE_ALLOCATED : 0;
	if (diff) {
		struct disk_info pi;

		if (!o->parent) {
			disk_fail(err, "cannot create %s: a differencing disk needs --parent",
				  path);
			return -EINVAL;
		}
		if (o->parent_disk)
			parent = o->parent_disk;
		else if ((r = disk_open(o->parent, DISK_OPEN_RDONLY, &parent, err)))
			return r;
		r = disk_info(parent, &pi);
		if (r == 0 && pi.format != DISK_FORMAT_VHDX) {
			disk_fail(err, "cannot create %s: parent %s is not a VHDX file", path,
				  o->parent);
			r = -EINVAL;
		}
		if (r)
			goto out;
		if (o->size && o->size != pi.virtual_size) {
			disk_fail(err,
				  "cannot create %s: a differencing disk has its parent's size "
				  "(%llu)",
				  path, (unsigned long long)pi.virtual_size);
			r = -EINVAL;
			goto out;
		}
		if (o->logical_sector && o->logical_sector != pi.logical_sector) {
			disk_fail(err,
				  "cannot create %s: a differencing disk has its parent's sector "
				  "size "
				  "(%u)",
				  path, pi.logical_sector);
			r = -EINVAL;
			goto out;
		}
		mp.vsize = pi.virtual_size;
		mp.lsec = pi.logical_sector;
		mp.psec = o->physical_sector ? o->physical_sector : pi.physical_sector;
		mp.flags = VHDX_PARAM_HAS_PARENT;
	}
	if (!pow2(mp.block_size) || mp.block_size < VHDX_MIN_BLOCK ||
	    mp.block_size > VHDX_MAX_BLOCK) {
		disk_fail(err,
			  "cannot create %s: block size must be a power of 2 from 1 MiB to 256 MiB",
			  path);
		r = -EINVAL;
		goto out;
	}
	if ((mp.lsec != 512 && mp.lsec != 4096) || (mp.psec != 512 && mp.psec != 4096)) {
		disk_fail(err, "cannot create %s: sector sizes must be 512 or 4096", path);
		r = -EINVAL;
		goto out;
	}
	if (mp.vsize == 0 || mp.vsize % mp.lsec || mp.vsize > VHDX_MAX_SIZE) {
		disk_fail(err,
			  "cannot create %s: size must be a non-zero multiple of %u up to 64 TiB",
			  path, mp.lsec);
		r = -EINVAL;
		goto out;
	}
	r = uuid_generate(&mp.disk_id);
	if (r)
		goto out;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		disk_fail(err, "cannot create %s: %s", path, strerror(-r));
		goto out;
	}
	if (diff) {
		loc = malloc(VHDX_MiB / 2);
		r = loc ? vhdx_locator_build(path, o->parent, &to_vhdx(parent)->data_write, loc,
					     VHDX_MiB / 2, &loc_len)
			: -ENOMEM;
		if (r) {
			disk_fail(err, "cannot create %s: cannot record parent %s: %s", path,
				  o->parent, strerror(-r));
			goto fail;
		}
	}
	r = write_all(fd, &mp, loc, loc_len, o->type == DISK_TYPE_FIXED);
	if (r) {
		disk_fail(err, "cannot create %s: %s", path, strerror(-r));
		goto fail;
	}
	goto out;
fail:
	unlink(path);
out:
	if (fd >= 0)
		close(fd);
	free(loc);
	if (parent != o->parent_disk)
		disk_close(parent);
	return r;
}
