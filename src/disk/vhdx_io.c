/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VHDX data path: reads through the BAT (and the sector bitmap and parent chain of a
 * differencing disk), writes that allocate blocks on first use (a disk without parent:
 * also for a caller that writes the file itself, vhdx_map), discard and flush.
 * Locking as described in vhdx_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

static struct log_ratelimit io_rl = LOG_RATELIMIT_INIT(5000, 5);

static int parent_read(struct vhdx *v, uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t psz;
	size_t n = len;

	if (!v->parent) {
		memset(buf, 0, len);
		return 0;
	}
	psz = v->parent->ops->size(v->parent);
	if (off >= psz)
		n = 0;
	else if (off + len > psz)
		n = (size_t)(psz - off);
	memset(buf + n, 0, len - n);
	return n ? v->parent->ops->read(v->parent, buf, off, n) : 0;
}

static int file_read(struct vhdx *v, uint8_t *buf, uint64_t foff, size_t len)
{
	int r = vhdx_pread(v, buf, len, foff);

	if (r) {
		log_warn_ratelimited(&io_rl, "%s: cannot read at file offset %llu: %s",
				     v->base.path, (unsigned long long)foff,
				     r == -ENODATA ? "beyond the end of the file" : strerror(-r));
		return r == -ENODATA ? -EIO : r;
	}
	return 0;
}

/* Guest data written by the library: through the caller's O_DIRECT descriptor when the
 * buffer and range suit it (as the caller's own writes to allocated blocks go), else
 * through the library's descriptor. Both are the same file: vhdx_sync covers either. */
static int data_write(struct vhdx *v, const uint8_t *buf, size_t len, uint64_t foff)
{
	if (v->dfd >= 0 && (uintptr_t)buf % v->dio_mem == 0 && len % v->dio_off == 0 &&
	    foff % v->dio_off == 0)
		return dio_pwrite(v->dfd, buf, len, foff);
	return dio_pwrite(v->fd, buf, len, foff);
}

/*
 * Does [off, off + len) read as zeros through v's parent chain? Conservative: a range that
 * some level holds data for, even under a range a nearer level reads as zeros, says no.
 * Parents are read-only, so their BATs do not change under this look.
 */
static bool parents_zero(const struct vhdx *v, uint64_t off, uint64_t len)
{
	const struct vhdx *cur = v;

	while (cur->has_parent) { /* the chain is at most VHDX_MAX_DEPTH long (vhdx_chain_open) */
		const struct disk *pd = cur->parent;
		const struct vhdx *p;
		bool deeper = false;
		uint64_t end;

		if (!pd || pd->ops != &vhdx_ops)
			return false; /* no parent opened (or not one we can look into) */
		p = (const struct vhdx *)pd;
		end = off + len < p->vsize ? off + len : p->vsize;
		for (uint64_t o = off; o < end; o = (o / p->block_size + 1) * p->block_size) {
			uint64_t st =
				vhdx_bat_get(p, vhdx_bat_payload_index(p, o / p->block_size)) &
				VHDX_BAT_STATE_MASK;

			if (st == VHDX_PAYLOAD_FULLY_PRESENT ||
			    st == VHDX_PAYLOAD_PARTIALLY_PRESENT)
				return false;
			deeper = deeper || (st == VHDX_PAYLOAD_NOT_PRESENT && p->has_parent);
		}
		if (!deeper)
			return true;
		cur = p;
	}
	return true;
}

/* Reads [off, off+len) lying within one payload block. */
static int read_block(struct vhdx *v, uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t blk = off / v->block_size, in = off % v->block_size, e, state;
	int r = 0;

	e = vhdx_bat_get(v, vhdx_bat_payload_index(v, blk));
	state = e & VHDX_BAT_STATE_MASK;
	switch (state) {
	case VHDX_PAYLOAD_FULLY_PRESENT:
		return file_read(v, buf, (e & VHDX_BAT_OFFSET_MASK) + in, len);
	case VHDX_PAYLOAD_PARTIALLY_PRESENT:
		while (len && r == 0) {
			uint64_t sector = off / v->lsec, run, n;
			bool present;

			pthread_mutex_lock(&v->lock);
			r = vhdx_bitmap_query(v, sector, (off + len - 1) / v->lsec - sector + 1,
					      &present, &run);
			pthread_mutex_unlock(&v->lock);
			if (r)
				break;
			n = (sector + run) * v->lsec - off;
			if (n > len)
				n = len;
			if (present)
				r = file_read(v, buf,
					      (e & VHDX_BAT_OFFSET_MASK) + off % v->block_size,
					      (size_t)n);
			else
				r = parent_read(v, buf, off, (size_t)n);
			buf += n;
			off += n;
			len -= (size_t)n;
		}
		return r;
	case VHDX_PAYLOAD_NOT_PRESENT:
		if (v->has_parent)
			return parent_read(v, buf, off, len);
		/* fall through */
	default:
		memset(buf, 0, len);
		return 0;
	}
}

int vhdx_read(struct disk *d, void *buf, uint64_t off, size_t len)
{
	struct vhdx *v = to_vhdx(d);
	uint8_t *p = buf;

	while (len) {
		size_t n = v->block_size - off % v->block_size;
		int r;

		if (n > len)
			n = len;
		r = read_block(v, p, off, n);
		if (r)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * A block of a disk without parent that is not present (it reads as zeros) gets a new
 * extent at the end of the file, its BAT entry staged as fully present at once, before any
 * data is written into it; *e is the new entry. [L]
 *
 * Why the entry may come before the data: the new extent is a hole of the file (vhdx_alloc
 * grows the file sparse and never hands out a range twice), so a read of any part of the
 * block before a write lands there returns zeros, which is exactly the block's content
 * before that write; no reader, the guest included, can see anything else. So every write
 * into the block, the first included, is a write into a present block: it needs no lock
 * and may be done by the caller on the file (vhdx_map), and writes into the same new block
 * at once all map to the same extent instead of waiting for one another.
 *
 * Crash safety is as for any write into a present block (a block's unwritten parts are
 * holes too): the entry reaches the file only with the next vhdx_bat_commit, whose
 * fdatasync comes first. A flush covers the writes that completed before it was asked
 * for (virtio-blk: those the guest saw complete), since that fdatasync starts after them;
 * it may also log the entry of a block whose first write is still in flight, which then
 * reads as zeros after a crash, or with that write's data: a write the guest was not
 * promised, lost or done, never garbage from the guest's point of view. (On a host file
 * system that does not order data before metadata, an in-flight write into a hole may show
 * stale host blocks after a host crash; that is so for every write into a hole of a
 * present block, and the commit's fdatasync still covers every completed one.)
 */
static int new_block(struct vhdx *v, uint64_t idx, uint64_t *e)
{
	uint64_t noff;
	int r = vhdx_alloc(v, v->block_size, &noff);

	if (r)
		return r;
	*e = noff | VHDX_PAYLOAD_FULLY_PRESENT;
	/* A failed commit (at the staging limit) leaves the entry in memory, as before. */
	return vhdx_bat_stage(v, idx, *e);
}

/* Writes [off, off+len) lying within one payload block. */
static int write_block(struct vhdx *v, const uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t blk = off / v->block_size, in = off % v->block_size;
	uint64_t idx = vhdx_bat_payload_index(v, blk), e, state, noff, val;
	bool whole = in == 0 && len == v->block_size;
	int r;

	e = vhdx_bat_get(v, idx);
	if ((e & VHDX_BAT_STATE_MASK) == VHDX_PAYLOAD_FULLY_PRESENT) {
		r = data_write(v, buf, len, (e & VHDX_BAT_OFFSET_MASK) + in);
		goto out;
	}
	pthread_mutex_lock(&v->lock);
	e = v->bat[idx]; /* allocated by another writer meanwhile? */
	state = e & VHDX_BAT_STATE_MASK;
	if (state == VHDX_PAYLOAD_FULLY_PRESENT) {
		pthread_mutex_unlock(&v->lock);
		r = data_write(v, buf, len, (e & VHDX_BAT_OFFSET_MASK) + in);
		goto out;
	}
	if (state == VHDX_PAYLOAD_PARTIALLY_PRESENT) {
		pthread_mutex_unlock(&v->lock);
		r = data_write(v, buf, len, (e & VHDX_BAT_OFFSET_MASK) + in);
		if (r)
			goto out;
		pthread_mutex_lock(&v->lock);
		r = vhdx_bitmap_set(v, off / v->lsec, len / v->lsec, false);
		pthread_mutex_unlock(&v->lock);
		goto out;
	}
	if (!v->has_parent) { /* as vhdx_map allocates it: the entry first, then the data */
		r = new_block(v, idx, &e);
		pthread_mutex_unlock(&v->lock);
		if (r == 0)
			r = data_write(v, buf, len, (e & VHDX_BAT_OFFSET_MASK) + in);
		goto out;
	}
	/*
	 * Not allocated in a differencing disk: a new block at the end of the file, zeroed,
	 * data written first (under the lock: a second writer to the block waits), then its
	 * BAT entry staged (logged with the next flush: vhdx_internal.h). In a differencing
	 * disk it is partially present (the rest from the parent, through the sector bitmap),
	 * unless the parent chain reads the whole block as zeros, as the new block's rest does:
	 * then it is fully present, with no bitmap bits and direct I/O from then on.
	 */
	r = vhdx_alloc(v, v->block_size, &noff);
	if (r == 0)
		r = data_write(v, buf, len, noff + in);
	if (r == 0 && v->has_parent && state == VHDX_PAYLOAD_NOT_PRESENT && !whole &&
	    !parents_zero(v, off - in, v->block_size)) {
		r = vhdx_bitmap_set(v, off / v->lsec, len / v->lsec, true);
		val = noff | VHDX_PAYLOAD_PARTIALLY_PRESENT;
	} else {
		val = noff | VHDX_PAYLOAD_FULLY_PRESENT;
	}
	if (r == 0)
		r = vhdx_bat_stage(v, idx, val);
	pthread_mutex_unlock(&v->lock);
out:
	if (r)
		log_warn_ratelimited(&io_rl, "%s: cannot write at disk offset %llu: %s",
				     v->base.path, (unsigned long long)off, strerror(-r));
	return r;
}

/* A differencing disk's sub-sector write: read the whole sectors, merge, write back. */
static int write_unaligned(struct vhdx *v, const uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t a = off / v->lsec * v->lsec, b = vhdx_align_up(off + len, v->lsec);
	uint8_t *tmp = malloc((size_t)(b - a));
	int r;

	if (!tmp)
		return -ENOMEM;
	r = vhdx_read(&v->base, tmp, a, (size_t)(b - a));
	if (r == 0) {
		memcpy(tmp + (off - a), buf, len);
		r = vhdx_write(&v->base, tmp, a, (size_t)(b - a));
	}
	free(tmp);
	return r;
}

static int begin_data(struct vhdx *v)
{
	int r = 0;

	if (__atomic_load_n(&v->data_changed, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&v->lock);
	r = vhdx_session_begin(v, true);
	pthread_mutex_unlock(&v->lock);
	return r;
}

int vhdx_write(struct disk *d, const void *buf, uint64_t off, size_t len)
{
	struct vhdx *v = to_vhdx(d);
	const uint8_t *p = buf;
	int r;

	if (d->rdonly)
		return -EROFS;
	if (v->has_parent && (off % v->lsec || len % v->lsec))
		return write_unaligned(v, buf, off, len);
	r = begin_data(v);
	while (r == 0 && len) {
		size_t n = v->block_size - off % v->block_size;

		if (n > len)
			n = len;
		r = write_block(v, p, off, n);
		p += n;
		off += n;
		len -= n;
	}
	return r;
}

/*
 * vhdx_map's write into a block not present of a disk without parent: the block allocated
 * on the caller's thread (new_block), unless that would make it wait: for the lock (held by
 * another thread's commit or discard, which does fdatasync and log writes under it) or for
 * a commit of its own (the staged sectors at VHDX_STAGE_MAX). Then, or when the file cannot
 * grow, nonzero: the write stays the library's, which allocates on its own thread (and
 * fails the write with the error, logged, as any allocation that fails there).
 */
static int map_new_block(struct vhdx *v, uint64_t idx, uint64_t *e)
{
	int r = -EAGAIN;

	if (pthread_mutex_trylock(&v->lock))
		return -EAGAIN;
	*e = v->bat[idx]; /* allocated by another writer meanwhile? */
	if ((*e & VHDX_BAT_STATE_MASK) == VHDX_PAYLOAD_FULLY_PRESENT)
		r = 0;
	else if (!vhdx_bat_stage_commits(v, idx))
		r = new_block(v, idx, e);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* One BAT lookup: an allocated block is a file extent; a block that reads as zeros is one
 * for reads; a write into a block not present of a disk without parent allocates it here
 * (map_new_block) and is a file extent too; everything else (a differencing disk's
 * allocation, partially present blocks, a parent's data, a differencing disk's sub-sector
 * writes, an allocation that would wait) stays with vhdx_read/vhdx_write, a write to a
 * block neither fully nor partially present marked as allocating it. */
int vhdx_map(struct disk *d, uint64_t off, uint64_t len, bool write, struct disk_extent *out)
{
	struct vhdx *v = to_vhdx(d);
	uint64_t blk = off / v->block_size, in = off % v->block_size, e, state;
	uint64_t n = v->block_size - in < len ? v->block_size - in : len;
	uint64_t idx = vhdx_bat_payload_index(v, blk);
	int r;

	e = vhdx_bat_get(v, idx);
	state = e & VHDX_BAT_STATE_MASK;
	if (write && !v->has_parent && state != VHDX_PAYLOAD_FULLY_PRESENT) {
		r = begin_data(v); /* the file marked as changed before the entry exists */
		if (r)
			return r;
		if (map_new_block(v, idx, &e) == 0)
			state = VHDX_PAYLOAD_FULLY_PRESENT;
	}
	*out = (struct disk_extent){
		.kind = DISK_EXTENT_LIBRARY,
		.len = n,
		.alloc = write && state != VHDX_PAYLOAD_FULLY_PRESENT &&
			 state != VHDX_PAYLOAD_PARTIALLY_PRESENT,
	};
	if (write && v->has_parent && (off % v->lsec || n % v->lsec))
		return 0;
	if (state == VHDX_PAYLOAD_FULLY_PRESENT) {
		if (write && (r = begin_data(v)) != 0)
			return r;
		out->kind = DISK_EXTENT_FILE;
		out->file_off = (e & VHDX_BAT_OFFSET_MASK) + in;
	} else if (!write && state != VHDX_PAYLOAD_PARTIALLY_PRESENT &&
		   !(state == VHDX_PAYLOAD_NOT_PRESENT && v->has_parent)) {
		out->kind = DISK_EXTENT_ZERO; /* as read_block() reads it */
	}
	return 0;
}

int vhdx_fd(struct disk *d)
{
	return to_vhdx(d)->fd;
}

int vhdx_set_direct(struct disk *d, int fd, uint32_t mem_align, uint32_t off_align)
{
	struct vhdx *v = to_vhdx(d);
	int dup_fd;

	if (d->rdonly || !mem_align || !off_align)
		return 0;
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0)
		return -errno;
	if (v->dfd >= 0)
		close(v->dfd);
	v->dfd = dup_fd;
	v->dio_mem = mem_align;
	v->dio_off = off_align;
	return 0;
}

int vhdx_flush(struct disk *d)
{
	struct vhdx *v = to_vhdx(d);
	int r;

	if (d->rdonly)
		return 0;
	/*
	 * Blocks allocated since the last flush: their data, then their BAT entries (logged);
	 * that commit's fdatasyncs start after this call, so they cover the caller's writes.
	 * If another thread's commit took them first (its fdatasync may have started before
	 * the caller's writes completed), sync here as when nothing was staged.
	 */
	if (__atomic_load_n(&v->n_dirty, __ATOMIC_ACQUIRE)) {
		bool committed;

		if (v->flush_race)
			v->flush_race(v);
		pthread_mutex_lock(&v->lock);
		committed = v->n_dirty != 0;
		r = vhdx_bat_commit(v);
		pthread_mutex_unlock(&v->lock);
		if (r || committed)
			return r;
	}
	r = vhdx_sync(v);
	if (r)
		disk_fail(d->err, "%s: cannot flush: %s", d->path, strerror(-r));
	return r;
}

static void punch(struct vhdx *v, uint64_t off, uint64_t len)
{
	/* Best effort: the space is given back to the host file system if it can. */
	if (fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) <
		    0 &&
	    errno != EOPNOTSUPP && errno != ENOSYS)
		log_warn_ratelimited(&io_rl, "%s: cannot punch a hole at %llu: %s", v->base.path,
				     (unsigned long long)off, strerror(errno));
}

int vhdx_discard(struct disk *d, uint64_t off, uint64_t len)
{
	struct vhdx *v = to_vhdx(d);
	bool fixed = (v->params_flags & VHDX_PARAM_LEAVE_ALLOCATED) && !v->has_parent;
	int r;

	if (d->rdonly)
		return -EROFS;
	r = begin_data(v);
	while (r == 0 && len) {
		uint64_t blk = off / v->block_size, in = off % v->block_size;
		uint64_t n = v->block_size - in, idx = vhdx_bat_payload_index(v, blk), e, state;

		if (n > len)
			n = len;
		pthread_mutex_lock(&v->lock);
		e = v->bat[idx];
		state = e & VHDX_BAT_STATE_MASK;
		if (state == VHDX_PAYLOAD_FULLY_PRESENT && (fixed || n < v->block_size)) {
			/* Keep the block; its discarded part reads as zeros. */
			uint64_t a = vhdx_align_up(in, 4096), b = (in + n) & ~4095ull;

			if (b > a)
				punch(v, (e & VHDX_BAT_OFFSET_MASK) + a, b - a);
		} else if (n == v->block_size && (state == VHDX_PAYLOAD_FULLY_PRESENT ||
						  state == VHDX_PAYLOAD_PARTIALLY_PRESENT)) {
			/* Drop the whole block: zeros in a child (never the parent's data). */
			uint64_t val = v->has_parent ? VHDX_PAYLOAD_ZERO : VHDX_PAYLOAD_NOT_PRESENT;

			r = vhdx_bat_set(v, &idx, &val, 1);
			if (r == 0)
				punch(v, e & VHDX_BAT_OFFSET_MASK, v->block_size);
		}
		pthread_mutex_unlock(&v->lock);
		off += n;
		len -= n;
	}
	return r;
}
