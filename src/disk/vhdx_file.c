/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File access for the VHDX code: reads see the in-memory log replay of a read-only open
 * (sectors and zero ranges laid over the file, and a file size extended as the log says).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk_io.h"
#include "disk/vhdx_internal.h"

int vhdx_file_size(struct vhdx *v, uint64_t *size)
{
	struct stat st;

	if (fstat(v->fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	if (v->overlay_size > *size)
		*size = v->overlay_size;
	return 0;
}

int vhdx_pread(struct vhdx *v, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	int r = dio_pread(v->fd, buf, len, off);

	if (r == -ENODATA && v->overlay_size >= off + len) {
		/* The replayed log extends the file: what lies past the real end is zero. */
		struct stat st;

		if (fstat(v->fd, &st) < 0)
			return -errno;
		memset(buf, 0, len);
		r = 0;
		if ((uint64_t)st.st_size > off)
			r = dio_pread(v->fd, buf, (size_t)((uint64_t)st.st_size - off), off);
	}
	if (r)
		return r;
	/* Later overlay entries win: apply in log order. */
	for (size_t i = 0; i < v->n_overlay; i++) {
		const struct vhdx_overlay *o = &v->overlay[i];
		uint64_t a = o->off > off ? o->off : off;
		uint64_t b = o->off + o->len < off + len ? o->off + o->len : off + len;

		if (a >= b)
			continue;
		if (o->data)
			memcpy(p + (a - off), o->data + (a - o->off), (size_t)(b - a));
		else
			memset(p + (a - off), 0, (size_t)(b - a));
	}
	return 0;
}

int vhdx_sync(struct vhdx *v)
{
	struct stat st;
	bool sized = fstat(v->fd, &st) == 0;
	uint64_t cur;

	__atomic_add_fetch(&v->syncs, 1, __ATOMIC_RELAXED);
	if (fdatasync(v->fd) < 0)
		return -errno;
	/* The size seen before the flush is durable now (the log's FlushedFileOffset). */
	cur = __atomic_load_n(&v->durable_size, __ATOMIC_ACQUIRE);
	while (sized && (uint64_t)st.st_size > cur &&
	       !__atomic_compare_exchange_n(&v->durable_size, &cur, (uint64_t)st.st_size, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	return 0;
}
