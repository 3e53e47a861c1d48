/* SPDX-License-Identifier: Apache-2.0 */
/* The format-independent entry points: detection, argument checks, create and convert. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/disk_internal.h"
#include "disk/vhdx_internal.h"
#include "disk/disk_io.h"
#include "disk/raw.h"
#include "disk/vhdx.h"
#include "lib/log.h"

/* Detection order: specific signatures first, raw last (it matches anything). */
static const struct disk_ops *const formats[] = {
	&vhdx_ops,
	&raw_ops,
};

int disk_lock_fd(int fd, const char *path, bool rdonly, unsigned flags, struct disk_err *err)
{
	if (flags & DISK_OPEN_NOLOCK)
		return 0;
	if (flock(fd, (rdonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		int e = -errno;

		if (e == -EWOULDBLOCK) {
			disk_fail(err, "%s is in use by another program (%s)", path,
				  rdonly ? "open for writing" : "open");
			return -EBUSY;
		}
		/* File systems without flock support: go on unlocked. */
		if (e != -ENOLCK && e != -EOPNOTSUPP) {
			disk_fail(err, "cannot lock %s: %s", path, strerror(-e));
			return e;
		}
	}
	return 0;
}

/* The format whose signature the file's first bytes carry (raw matches anything). */
static int probe_fd(int fd, const char *path, enum disk_format *out, struct disk_err *err)
{
	uint8_t head[8];
	ssize_t n = pread(fd, head, sizeof(head), 0);

	if (n < 0) {
		int r = -errno;

		disk_fail(err, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (formats[i]->probe(head, (size_t)n)) {
			*out = formats[i] == &vhdx_ops ? DISK_FORMAT_VHDX : DISK_FORMAT_RAW;
			return 0;
		}
	}
	*out = DISK_FORMAT_RAW;
	return 0;
}

/* What a file of mode m is, for a refusal. */
static const char *file_kind(mode_t m)
{
	return S_ISFIFO(m)   ? "a FIFO"
	       : S_ISSOCK(m) ? "a socket"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISDIR(m)  ? "a directory"
	       : S_ISBLK(m)  ? "a block device"
			     : "of an unknown type";
}

static bool file_ok(const struct stat *s, bool blk_ok, char *why, size_t whylen)
{
	if (S_ISREG(s->st_mode) || (blk_ok && S_ISBLK(s->st_mode)))
		return true;
	snprintf(why, whylen, "it is %s, not a regular file%s", file_kind(s->st_mode),
		 blk_ok ? " or a block device" : "");
	return false;
}

int disk_open_file(const char *path, int oflags, bool blk_ok, char *why, size_t whylen)
{
	int look = open(path, O_PATH | O_CLOEXEC), fd = -1, fl, r = 0;
	struct stat a, b;

	if (look < 0 || fstat(look, &a) < 0) {
		r = -errno;
		goto out;
	}
	if (!file_ok(&a, blk_ok, why, whylen)) {
		r = -EINVAL;
		goto out;
	}
	fd = open(path, oflags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &b) < 0 || (fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	/* Replaced between the look and the open: the type of what was opened decides. */
	if (!file_ok(&b, blk_ok, why, whylen))
		r = -EINVAL;
	else if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		r = -EAGAIN;
out:
	if (r && r != -EINVAL)
		snprintf(why, whylen, "%s",
			 r == -EAGAIN ? "it was replaced while being opened" : strerror(-r));
	if (look >= 0)
		close(look);
	if (r && fd >= 0)
		close(fd);
	return r ? r : fd;
}

int disk_probe(const char *path, enum disk_format *out, struct disk_err *err)
{
	char why[128];
	int fd = disk_open_file(path, O_RDONLY, true, why, sizeof(why)), r;

	disk_err_clear(err);
	if (fd < 0) {
		disk_fail(err, "cannot open %s: %s", path, why);
		return fd;
	}
	r = probe_fd(fd, path, out, err);
	close(fd);
	return r;
}

int disk_probe_fd(int fd, const char *path, enum disk_format *out, struct disk_err *err)
{
	disk_err_clear(err);
	return probe_fd(fd, path, out, err);
}

int disk_open_fd(int fd, const char *path, unsigned flags, struct disk **out, struct disk_err *err)
{
	enum disk_format f;
	int r;

	disk_err_clear(err);
	r = probe_fd(fd, path, &f, err);
	if (r) {
		close(fd);
		return r;
	}
	return disk_open_fd_as(fd, path, f, flags, out, err);
}

/* What every open sets on the handle its format made. */
static void opened(struct disk *d, const struct disk_ops *ops, unsigned flags, const char *path)
{
	d->ops = ops;
	d->rdonly = flags & DISK_OPEN_RDONLY;
	if (!d->path[0])
		snprintf(d->path, sizeof(d->path), "%s", path);
}

int disk_open_fd_as(int fd, const char *path, enum disk_format format, unsigned flags,
		    struct disk **out, struct disk_err *err)
{
	const struct disk_ops *ops = format == DISK_FORMAT_VHDX ? &vhdx_ops : &raw_ops;
	int r;

	disk_err_clear(err);
	if (ops == &raw_ops) {
		r = disk_lock_fd(fd, path, flags & DISK_OPEN_RDONLY, flags, err);
		if (r) {
			close(fd);
			return r;
		}
	}
	/* The format's open owns fd from here, closing it on failure. */
	r = ops->open(fd, path, flags, out, err);
	if (r) {
		if (ops == &raw_ops)
			close(fd);
		return r;
	}
	opened(*out, ops, flags, path);
	(*out)->err = NULL; /* I/O from now on: its failures are logged */
	return 0;
}

int disk_open_chain_fd(int fd, const char *path, enum disk_format format, unsigned flags,
		       const int *parents, unsigned nparents, struct disk **out,
		       struct disk_err *err)
{
	int r;

	disk_err_clear(err);
	if (!parents || format != DISK_FORMAT_VHDX) {
		if (parents && nparents) {
			disk_fail(err, "%s: %u parent%s passed for a %s disk", path, nparents,
				  nparents == 1 ? "" : "s", disk_format_name(format));
			for (unsigned i = 0; i < nparents; i++)
				close(parents[i]);
			close(fd);
			return -EINVAL;
		}
		return disk_open_fd_as(fd, path, format, flags, out, err);
	}
	r = vhdx_open_chain(fd, path, flags & ~DISK_OPEN_NOPARENT, parents, nparents, out, err);
	if (r)
		return r;
	opened(*out, &vhdx_ops, flags, path);
	return 0;
}

static int open_file(const char *path, unsigned flags, struct disk_err *err)
{
	char why[128];
	int fd = disk_open_file(path, (flags & DISK_OPEN_RDONLY) ? O_RDONLY : O_RDWR, true, why,
				sizeof(why));

	if (fd < 0)
		disk_fail(err, "cannot open %s: %s", path, why);
	return fd;
}

int disk_open(const char *path, unsigned flags, struct disk **out, struct disk_err *err)
{
	int fd;

	disk_err_clear(err);
	fd = open_file(path, flags, err);
	return fd < 0 ? fd : disk_open_fd(fd, path, flags, out, err);
}

int disk_open_as(const char *path, enum disk_format format, unsigned flags, struct disk **out,
		 struct disk_err *err)
{
	int fd;

	disk_err_clear(err);
	fd = open_file(path, flags, err);
	return fd < 0 ? fd : disk_open_fd_as(fd, path, format, flags, out, err);
}

static int check_range(struct disk *d, uint64_t off, uint64_t len, const char *what)
{
	uint64_t size = d->ops->size(d);

	if (off % 512 || len % 512 || off > size || len > size - off) {
		disk_fail(
			d->err,
			"%s: %s of %llu bytes at %llu is unaligned or beyond the disk (%llu bytes)",
			d->path, what, (unsigned long long)len, (unsigned long long)off,
			(unsigned long long)size);
		return -EINVAL;
	}
	return 0;
}

int disk_read(struct disk *d, void *buf, uint64_t off, size_t len)
{
	int r = check_range(d, off, len, "read");

	return r ? r : d->ops->read(d, buf, off, len);
}

int disk_write(struct disk *d, const void *buf, uint64_t off, size_t len)
{
	int r = check_range(d, off, len, "write");

	if (r == 0 && d->rdonly)
		r = -EROFS;
	return r ? r : d->ops->write(d, buf, off, len);
}

int disk_flush(struct disk *d)
{
	return d->ops->flush(d);
}

int disk_discard(struct disk *d, uint64_t off, uint64_t len)
{
	int r = check_range(d, off, len, "discard");

	if (r == 0 && d->rdonly)
		r = -EROFS;
	return r ? r : d->ops->discard(d, off, len);
}

int disk_zero(struct disk *d, uint64_t off, uint64_t len)
{
	int r = check_range(d, off, len, "zeroing");

	if (r == 0 && d->rdonly)
		r = -EROFS;
	if (r)
		return r;
	return d->ops->zero ? d->ops->zero(d, off, len) : -EOPNOTSUPP;
}

int disk_map(struct disk *d, uint64_t off, uint64_t len, bool write, struct disk_extent *out)
{
	int r = check_range(d, off, len, write ? "write" : "read");

	if (r == 0 && write && d->rdonly)
		r = -EROFS;
	if (r)
		return r;
	if (!d->ops->map) {
		*out = (struct disk_extent){
			.kind = DISK_EXTENT_LIBRARY, .len = len, .alloc = write};
		return 0;
	}
	return d->ops->map(d, off, len, write, out);
}

int disk_fd(struct disk *d)
{
	return d->ops->fd ? d->ops->fd(d) : -1;
}

int disk_set_direct(struct disk *d, int fd, uint32_t mem_align, uint32_t off_align)
{
	return d->ops->set_direct ? d->ops->set_direct(d, fd, mem_align, off_align) : 0;
}

uint64_t disk_size(struct disk *d)
{
	return d->ops->size(d);
}

int disk_info(struct disk *d, struct disk_info *out)
{
	return d->ops->info(d, out);
}

void disk_close(struct disk *d)
{
	if (d)
		d->ops->close(d);
}

const char *disk_format_name(enum disk_format f)
{
	return f == DISK_FORMAT_VHDX ? "vhdx" : "raw";
}

int disk_format_parse(const char *name, enum disk_format *out)
{
	if (!strcmp(name, "raw"))
		*out = DISK_FORMAT_RAW;
	else if (!strcmp(name, "vhdx"))
		*out = DISK_FORMAT_VHDX;
	else
		return -EINVAL;
	return 0;
}

const char *disk_type_name(enum disk_type t)
{
	switch (t) {
	case DISK_TYPE_FIXED:
		return "fixed";
	case DISK_TYPE_DYNAMIC:
		return "dynamic";
	default:
		return "differencing";
	}
}

enum disk_format disk_format_from_name(const char *path)
{
	size_t n = strlen(path);

	if ((n >= 5 && strcasecmp(path + n - 5, ".vhdx") == 0) ||
	    (n >= 6 && strcasecmp(path + n - 6, ".avhdx") == 0))
		return DISK_FORMAT_VHDX;
	return DISK_FORMAT_RAW;
}

int disk_create(const char *path, const struct disk_create_opts *o, struct disk_err *err)
{
	disk_err_clear(err);
	if (o->format == DISK_FORMAT_RAW) {
		if (o->type == DISK_TYPE_DIFFERENCING) {
			disk_fail(err, "cannot create %s: raw disks have no differencing type",
				  path);
			return -EINVAL;
		}
		if (o->size == 0 || o->size % 512) {
			disk_fail(err, "cannot create %s: size must be a non-zero multiple of 512",
				  path);
			return -EINVAL;
		}
		return raw_create(path, o->size, err);
	}
	return vhdx_create(path, o, err);
}

int disk_convert(const char *src, const char *dst, const struct disk_create_opts *o,
		 struct disk_err *err)
{
	return disk_convert_progress(src, dst, o, NULL, NULL, err);
}

struct progress_void {
	void (*fn)(void *arg, uint64_t done);
	void *arg;
};

static bool progress_go_on(void *arg, uint64_t done)
{
	struct progress_void *pv = arg;

	pv->fn(pv->arg, done);
	return true;
}

int disk_convert_progress(const char *src, const char *dst, const struct disk_create_opts *o,
			  void (*progress)(void *arg, uint64_t done), void *arg,
			  struct disk_err *err)
{
	struct progress_void pv = {progress, arg};
	struct disk *in = NULL;
	int r;

	r = disk_open(src, DISK_OPEN_RDONLY, &in, err);
	if (r)
		return r;
	r = disk_convert_from(in, dst, o, progress ? progress_go_on : NULL, &pv, err);
	disk_close(in);
	return r;
}

int disk_convert_from(struct disk *in, const char *dst, const struct disk_create_opts *o,
		      bool (*progress)(void *arg, uint64_t done), void *arg, struct disk_err *err)
{
	struct disk_create_opts co = *o;
	struct disk *out = NULL;
	struct disk_err *in_err = in->err;
	struct disk_info info;
	const size_t chunk = 1 << 20;
	uint8_t *buf = NULL;
	uint64_t size;
	bool created = false;
	int r;

	disk_err_clear(err);
	in->err = err; /* for this call, in's failures are its reasons */
	r = disk_info(in, &info);
	if (r)
		goto out;
	size = disk_size(in);
	co.size = size;
	if (co.type == DISK_TYPE_DIFFERENCING) {
		disk_fail(err,
			  "cannot convert to a differencing disk; convert makes a standalone copy");
		r = -EINVAL;
		goto out;
	}
	if (co.format == DISK_FORMAT_VHDX && !co.logical_sector)
		co.logical_sector = info.logical_sector;
	if (co.format == DISK_FORMAT_VHDX && !co.block_size && info.block_size)
		co.block_size = info.block_size;
	if (co.format == DISK_FORMAT_VHDX && size % (co.logical_sector ? co.logical_sector : 512)) {
		disk_fail(err,
			  "cannot convert %s: its size %llu is not a multiple of the sector size",
			  in->path, (unsigned long long)size);
		r = -EINVAL;
		goto out;
	}
	r = disk_create(dst, &co, err);
	if (r)
		goto out;
	created = true;
	r = disk_open(dst, 0, &out, err);
	if (r)
		goto out;
	out->err = err;
	buf = malloc(chunk);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;

		r = disk_read(in, buf, off, n);
		if (r)
			goto out;
		/* Zeros stay unallocated (dynamic VHDX, sparse raw); fixed files are zero already.
		 */
		if (!dio_is_zero(buf, n))
			r = disk_write(out, buf, off, n);
		if (r)
			goto out;
		if (progress && !progress(arg, off + n)) {
			disk_fail(err, "the copy of %s was stopped", in->path);
			r = -ECANCELED;
			goto out;
		}
	}
	r = disk_flush(out);
out:
	in->err = in_err;
	free(buf);
	disk_close(out);
	if (r && created)
		unlink(dst);
	return r;
}

void disk_fail(struct disk_err *err, const char *fmt, ...)
{
	char line[DISK_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_err("%s", line);
	if (err)
		memcpy(err->msg, line, sizeof(line));
}

void disk_err_clear(struct disk_err *err)
{
	if (err)
		err->msg[0] = '\0';
}

const char *disk_why(const struct disk_err *err, int r)
{
	return err && err->msg[0] ? err->msg : strerror(-r);
}
