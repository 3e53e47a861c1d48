/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Raw images: the file is the disk. Thread safety needs nothing beyond pread/pwrite:
 * the handle holds no mutable state after open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/disk.h"
#include "disk/disk_io.h"
#include "disk/raw.h"
#include "lib/log.h"

struct raw {
	struct disk base;
	int fd;
	uint64_t size; /* fixed at open */
};

static struct raw *to_raw(struct disk *d)
{
	return (struct raw *)d;
}

static bool raw_probe(const uint8_t *head, size_t len)
{
	return true; /* anything that is not another format */
}

static int raw_open(int fd, const char *path, unsigned flags, struct disk **out,
		    struct disk_err *err)
{
	struct raw *r;
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int e = -errno;

		disk_fail(err, "cannot stat %s: %s", path, strerror(-e));
		return e;
	}
	/* A block device's size is not in st_size (0): ask the device. */
	uint64_t bytes = (uint64_t)st.st_size;

	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
		int e = -errno;

		disk_fail(err, "cannot read the size of block device %s: %s", path, strerror(-e));
		return e;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->base.ops = &raw_ops;
	r->fd = fd;
	r->size = bytes & ~511ull;
	if (bytes != r->size)
		log_warn("%s: size %llu is not a multiple of 512; the last %llu bytes are ignored",
			 path, (unsigned long long)bytes, (unsigned long long)(bytes % 512));
	*out = &r->base;
	return 0;
}

static int raw_read(struct disk *d, void *buf, uint64_t off, size_t len)
{
	int r = dio_pread(to_raw(d)->fd, buf, len, off);

	if (r == -ENODATA) {
		/* The file shrank under us: what is gone reads as zeros. */
		memset(buf, 0, len);
		r = 0;
		struct stat st;

		if (fstat(to_raw(d)->fd, &st) == 0 && (uint64_t)st.st_size > off)
			r = dio_pread(to_raw(d)->fd, buf, (size_t)((uint64_t)st.st_size - off),
				      off);
	}
	if (r)
		disk_fail(d->err, "cannot read %s at %llu: %s", d->path, (unsigned long long)off,
			  strerror(-r));
	return r;
}

static int raw_write(struct disk *d, const void *buf, uint64_t off, size_t len)
{
	int r = dio_pwrite(to_raw(d)->fd, buf, len, off);

	if (r)
		disk_fail(d->err, "cannot write %s at %llu: %s", d->path, (unsigned long long)off,
			  strerror(-r));
	return r;
}

static int raw_flush(struct disk *d)
{
	if (fdatasync(to_raw(d)->fd) < 0) {
		int e = -errno;

		disk_fail(d->err, "cannot flush %s: %s", d->path, strerror(-e));
		return e;
	}
	return 0;
}

static int raw_discard(struct disk *d, uint64_t off, uint64_t len)
{
	if (fallocate(to_raw(d)->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) < 0) {
		/* Discard is advisory: a file system without hole punching keeps the data. */
		if (errno == EOPNOTSUPP || errno == ENOSYS)
			return 0;
		int e = -errno;

		disk_fail(d->err, "cannot discard %s at %llu: %s", d->path, (unsigned long long)off,
			  strerror(-e));
		return e;
	}
	return 0;
}

/* A punched hole reads as zeros; where the file system cannot punch, a zeroed range
 * (FALLOC_FL_ZERO_RANGE) is next best; block devices take both (discard or write-zeroes). */
static int raw_zero(struct disk *d, uint64_t off, uint64_t len)
{
	static const int modes[] = {FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				    FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (fallocate(to_raw(d)->fd, modes[i], (off_t)off, (off_t)len) == 0)
			return 0;
		if (errno != EOPNOTSUPP && errno != ENOSYS) {
			int e = -errno;

			disk_fail(d->err, "cannot zero %s at %llu: %s", d->path,
				  (unsigned long long)off, strerror(-e));
			return e;
		}
	}
	return -EOPNOTSUPP;
}

/* The file is the disk: one extent. */
static int raw_map(struct disk *d, uint64_t off, uint64_t len, bool write, struct disk_extent *out)
{
	*out = (struct disk_extent){.kind = DISK_EXTENT_FILE, .file_off = off, .len = len};
	return 0;
}

static int raw_fd(struct disk *d)
{
	return to_raw(d)->fd;
}

static uint64_t raw_size(struct disk *d)
{
	return to_raw(d)->size;
}

static void raw_close(struct disk *d)
{
	close(to_raw(d)->fd);
	free(d);
}

static int raw_info(struct disk *d, struct disk_info *out)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	out->format = DISK_FORMAT_RAW;
	out->type = DISK_TYPE_FIXED;
	out->virtual_size = to_raw(d)->size;
	if (fstat(to_raw(d)->fd, &st) == 0) {
		out->file_size = (uint64_t)st.st_size;
		out->allocated_size = (uint64_t)st.st_blocks * 512;
	}
	out->logical_sector = 512;
	out->physical_sector = 512;
	return 0;
}

int raw_create(const char *path, uint64_t size, struct disk_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = 0;

	if (fd < 0) {
		r = -errno;
		disk_fail(err, "cannot create %s: %s", path, strerror(-r));
		return r;
	}
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
		r = -errno;
		disk_fail(err, "cannot size %s to %llu bytes: %s", path, (unsigned long long)size,
			  strerror(-r));
		unlink(path);
	}
	close(fd);
	return r;
}

int raw_resize(const char *path, uint64_t size, struct disk_err *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct stat st;
	uint8_t *buf = NULL;
	int r = 0;

	disk_err_clear(err);
	if (fd < 0) {
		r = -errno;
		disk_fail(err, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (size < (uint64_t)st.st_size) {
		/* Shrink only over zeros. */
		buf = malloc(1 << 20);
		if (!buf) {
			r = -ENOMEM;
			goto out;
		}
		for (uint64_t o = size; o < (uint64_t)st.st_size; o += 1 << 20) {
			size_t n = (size_t)((uint64_t)st.st_size - o < (1 << 20) ? st.st_size - o
										 : 1 << 20);

			r = dio_pread(fd, buf, n, o);
			if (r)
				goto out;
			if (!dio_is_zero(buf, n)) {
				disk_fail(
					err,
					"cannot shrink %s to %llu bytes: data at offset %llu would "
					"be lost",
					path, (unsigned long long)size, (unsigned long long)o);
				r = -ENOTEMPTY;
				goto out;
			}
		}
	}
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0)
		r = -errno;
out:
	if (r && r != -ENOTEMPTY)
		disk_fail(err, "cannot resize %s: %s", path, strerror(-r));
	free(buf);
	close(fd);
	return r;
}

const struct disk_ops raw_ops = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.read = raw_read,
	.write = raw_write,
	.flush = raw_flush,
	.discard = raw_discard,
	.zero = raw_zero,
	.size = raw_size,
	.close = raw_close,
	.info = raw_info,
	.map = raw_map,
	.fd = raw_fd,
};
