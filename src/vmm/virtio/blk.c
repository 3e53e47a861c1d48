/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk (virtio 1.2, 5.2) on keel's disk library (raw or VHDX, as recorded in the
 * description), over the asynchronous block backend (vmm/blkio): one request queue per vCPU
 * (VIRTIO_BLK_F_MQ), each with its own submission context (an io_uring ring, or the thread
 * pool). The device's I/O thread takes chains, checks them (blk_req.c), maps reads and
 * writes to file extents (disk_map: the whole raw file, a VHDX's allocated blocks, and a
 * dynamic VHDX's new blocks, which the map allocates) and submits them; everything the
 * library must do itself (a differencing VHDX's allocation, partially present blocks,
 * parents, discard, write-zeroes, the VHDX log on flush) runs on a pool thread. The
 * same thread reaps completions and returns them with one interrupt per batch (event index).
 *
 * Cache modes (docs/vm-config.md): none reads and writes the payload through a second,
 * O_DIRECT descriptor of the same file (/proc/self/fd), bouncing guest buffers that are not
 * sector-aligned in memory; writeback and unsafe use the disk's own descriptor (the page
 * cache); unsafe completes flushes without doing them. Flush completes only after
 * disk_flush() (fdatasync, and the VHDX log) has returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "config/vmdef_device.h"
#include "disk/disk.h"
#include "lib/clock.h"
#include "lib/le.h"
#include "lib/dio_align.h"
#include "lib/log.h"
#include "vmm/devmem.h"
#include "vmm/device.h"
#include "vmm/jail_prep.h"
#include "vmm/machine.h"
#include "vmm/parse_euid.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/blk_internal.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/virtio.h"

#define BLK_F_SIZE_MAX	   1
#define BLK_F_SEG_MAX	   2
#define BLK_F_RO	   5
#define BLK_F_BLK_SIZE	   6
#define BLK_F_FLUSH	   9
#define BLK_F_TOPOLOGY	   10
#define BLK_F_MQ	   12
#define BLK_F_DISCARD	   13
#define BLK_F_WRITE_ZEROES 14

#define BLK_BOUNCE_BUDGET  (16u << 20) /* direct-I/O bounce bytes in flight per device */

static struct log_ratelimit blk_rl = LOG_RATELIMIT_INIT(5000, 5);

static struct blk_slot *slot_of(struct virtio_blk *b, unsigned q, unsigned i)
{
	return &b->slots[q * BLK_SLOTS + i];
}

/* I/O thread or reset, vd->lock held: the slot is free again. */
void blk_release_slot(struct virtio_blk *b, struct blk_slot *s)
{
	if (s->bounce) {
		free(s->bounce);
		b->bounce_bytes -= s->bounce_len;
		s->bounce = NULL;
		s->bounce_len = 0;
	}
	s->allocating = false;
	b->freelist[s->q][b->nfree[s->q]++] = s->idx;
	blk_throttle_done(b);
}

/* Write the status, hand the chain back (unless a reset came in between), free the slot.
 * Returns whether the used ring changed. A chain taken is always answered while its rings
 * are mapped, even when the driver has since cleared DRIVER_OK or disabled the queue, or the
 * device needs a reset: an unanswered chain would count as in flight for good and fail every
 * later pause (vq_push does nothing on a queue whose rings are gone). */
static bool blk_complete(struct virtio_blk *b, struct blk_slot *s)
{
	struct virtio_dev *vd = b->vd;
	bool pushed = false;

	if (s->epoch == vd->epoch && vd->q[s->q].vq.ready) {
		if (!s->no_status)
			vq_chain_write(&s->chain, s->chain.out_len - 1, &s->status, 1);
		vq_push(&vd->q[s->q].vq, s->chain.head, s->no_status ? 0 : s->written + 1);
		pushed = true;
	}
	blk_release_slot(b, s);
	return pushed;
}

/* Pool thread: the request through the disk library. */
static int blk_slow_call(void *arg)
{
	struct blk_slot *s = arg;

	s->status = blk_execute(s->b, &s->chain, s->type, s->sector, &s->data, &s->written);
	return 0;
}

static void blk_submit_slow(struct virtio_blk *b, struct blk_slot *s)
{
	struct blkio_req *io = &s->io[0];

	*io = (struct blkio_req){.op = BLKIO_CALL, .call = blk_slow_call, .arg = s, .tag = s};
	s->pending = 1;
	blkio_submit(b->io, s->q, io);
}

/* The part [skip, skip + len) of the request's data (or its bounce) as buffers in s->xiov
 * from *used on; returns how many. */
static unsigned blk_slice(struct blk_slot *s, uint64_t skip, uint64_t len, unsigned *used)
{
	struct iovec *out = s->xiov + *used;
	unsigned n = 0, i;

	if (s->bounce) {
		out[0] = (struct iovec){s->bounce + skip, len};
		*used += 1;
		return 1;
	}
	for (i = 0; i < s->data.n && len; i++) {
		uint64_t sl = s->data.seg[i].iov_len, take;

		if (skip >= sl) {
			skip -= sl;
			continue;
		}
		take = sl - skip < len ? sl - skip : len;
		out[n++] = (struct iovec){(uint8_t *)s->data.seg[i].iov_base + skip, take};
		len -= take;
		skip = 0;
	}
	*used += n;
	return n;
}

static void blk_zero_slice(const struct iovec *iov, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
}

/* May O_DIRECT take the guest's buffers as they are (else they go through a bounce)? */
static bool blk_mem_aligned(const struct virtio_blk *b, const struct blk_data *d)
{
	for (unsigned i = 0; i < d->n; i++)
		if ((uintptr_t)d->seg[i].iov_base % b->dio_mem || d->seg[i].iov_len % b->dio_mem)
			return false;
	return d->aligned;
}

/* A read or write done on the payload descriptor: map it (at most BLK_MAX_EXTENTS extents,
 * none that only the library can do) and submit one transfer per file extent. Returns false,
 * having submitted nothing, when the library must do it. */
static bool blk_submit_direct(struct virtio_blk *b, struct blk_slot *s)
{
	bool write = s->type == VIRTIO_BLK_T_OUT;
	struct disk_extent ext[BLK_MAX_EXTENTS];
	uint64_t off = s->sector * 512, done = 0;
	unsigned n = 0, used = 0, i;
	bool bounce = b->direct && !blk_mem_aligned(b, &s->data);

	if (!s->data.len || (!b->direct && !s->data.aligned))
		return false;
	while (done < s->data.len) {
		if (n == BLK_MAX_EXTENTS ||
		    disk_map(b->disk, off + done, s->data.len - done, write, &ext[n]) ||
		    ext[n].kind == DISK_EXTENT_LIBRARY || !ext[n].len)
			return false;
		if (ext[n].kind == DISK_EXTENT_FILE && b->direct &&
		    (ext[n].file_off % b->dio_off || ext[n].len % b->dio_off))
			return false;
		done += ext[n++].len;
	}
	if (bounce) {
		size_t len = (s->data.len + 4095) & ~(size_t)4095;

		if (b->bounce_bytes + len > BLK_BOUNCE_BUDGET ||
		    posix_memalign((void **)&s->bounce, 4096, len))
			return false;
		s->bounce_len = len;
		b->bounce_bytes += len;
		if (write) {
			uint64_t at = 0;

			for (i = 0; i < s->data.n; at += s->data.seg[i].iov_len, i++)
				memcpy(s->bounce + at, s->data.seg[i].iov_base,
				       s->data.seg[i].iov_len);
		}
	}
	s->pending = 0;
	done = 0;
	for (i = 0; i < n; done += ext[i].len, i++) {
		unsigned first = used, k = blk_slice(s, done, ext[i].len, &used);

		if (ext[i].kind == DISK_EXTENT_ZERO) {
			blk_zero_slice(s->xiov + first, k);
			continue;
		}
		s->io[s->pending] = (struct blkio_req){
			.op = write ? BLKIO_WRITE : BLKIO_READ,
			.fd = b->pfd,
			.off = ext[i].file_off,
			.iov = s->xiov + first,
			.niov = k,
			.tag = s,
		};
		s->want[s->pending++] = ext[i].len;
	}
	for (i = 0; i < s->pending; i++)
		blkio_submit(b->io, s->q, &s->io[i]);
	if (s->pending) {
		b->stats.direct++;
		b->stats.bounced += s->bounce != NULL;
	} else {
		b->stats.zeros++;
	}
	return true;
}

/* The request's data is in place (or it failed): status and used length. */
static void blk_finish_rw(struct blk_slot *s)
{
	s->status = s->failed ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	s->written = 0;
	if (!s->failed && s->type == VIRTIO_BLK_T_IN) {
		if (s->bounce) {
			uint64_t at = 0;

			for (unsigned i = 0; i < s->data.n; at += s->data.seg[i].iov_len, i++)
				memcpy(s->data.seg[i].iov_base, s->bounce + at,
				       s->data.seg[i].iov_len);
		}
		s->written = (uint32_t)s->data.len;
	}
}

/* I/O thread, vd->lock held: start the request just taken into s, unless the disk's QoS
 * makes it wait (blk_throttle.c). Returns whether it completed at once (the used ring
 * changed). */
static bool blk_start(struct virtio_blk *b, struct blk_slot *s)
{
	unsigned st = blk_check(b, &s->chain, &s->type, &s->sector, &s->data);

	s->failed = s->redo = false;
	s->written = 0;
	s->pending = 0;
	s->no_status = st == BLK_NO_STATUS;
	if (st != VIRTIO_BLK_S_OK) {
		s->status = s->no_status ? 0 : (uint8_t)st;
		return blk_complete(b, s);
	}
	return !blk_throttle_gate(b, s) && blk_run(b, s);
}

/* Does the library allocate a block for this write (disk_map says so for a block neither
 * fully nor partially present that it did not allocate itself)? A map that fails says yes:
 * the library reports the error. */
static bool blk_allocates(const struct virtio_blk *b, const struct blk_slot *s)
{
	uint64_t off = s->sector * 512, done = 0;
	struct disk_extent e;

	while (done < s->data.len) {
		if (disk_map(b->disk, off + done, s->data.len - done, true, &e) || !e.len)
			return true;
		if (e.alloc)
			return true;
		done += e.len;
	}
	return false;
}

/* A write the library must do that allocates a block: does another such write span one of
 * its payload blocks? Then it waits in b->parked for that one to complete (this one then
 * goes straight to the file, or the library writes into the block now present). Else it is
 * marked as such a write. Only a differencing disk's allocations are the library's (its
 * sector bitmap), or a dynamic disk's whose map could not allocate without waiting (the
 * image lock held by a flush's commit) or at all (the file cannot grow): disk_map
 * allocates a dynamic disk's new block itself, so the writes into it go straight to the
 * file, the first included, and none waits here. A library write into blocks present (a
 * differencing disk's partially present block, a sub-sector write with cache=writeback,
 * more extents than BLK_MAX_EXTENTS, a bounce past its budget) neither waits nor makes
 * others wait. */
static bool blk_park(struct virtio_blk *b, struct blk_slot *s)
{
	if (!b->block_size || !s->data.len || !blk_allocates(b, s))
		return false;
	s->first_blk = s->sector * 512 / b->block_size;
	s->last_blk = (s->sector * 512 + s->data.len - 1) / b->block_size;
	for (unsigned i = 0; i < b->nq * BLK_SLOTS; i++) {
		const struct blk_slot *o = &b->slots[i];

		if (o->allocating && o->first_blk <= s->last_blk && s->first_blk <= o->last_blk) {
			b->parked[b->nparked++] = (uint16_t)(s->q * BLK_SLOTS + s->idx);
			b->stats.parked++;
			return true;
		}
	}
	s->allocating = true;
	return false;
}

bool blk_run(struct virtio_blk *b, struct blk_slot *s)
{
	switch (s->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (blk_submit_direct(b, s)) {
			if (s->pending)
				return false;
			blk_finish_rw(s); /* zeros only */
			goto now;
		}
		if (s->type == VIRTIO_BLK_T_OUT && blk_park(b, s))
			return false;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (b->cache == VM_DISK_CACHE_UNSAFE) {
			s->status = VIRTIO_BLK_S_OK; /* said loudly at start-up */
			goto now;
		}
		if (!b->vhdx) { /* raw: the flush is fdatasync */
			s->io[0] = (struct blkio_req){.op = BLKIO_FSYNC, .fd = b->pfd, .tag = s};
			s->want[0] = 0;
			s->pending = 1;
			blkio_submit(b->io, s->q, &s->io[0]);
			return false;
		}
		break;
	case VIRTIO_BLK_T_GET_ID:
		s->status = blk_execute(b, &s->chain, s->type, s->sector, &s->data, &s->written);
		goto now;
	default:
		break;
	}
	if (s->type == VIRTIO_BLK_T_IN || s->type == VIRTIO_BLK_T_OUT)
		b->stats.slow_rw++;
	else
		b->stats.slow_other++;
	blk_submit_slow(b, s);
	return false;
now:
	return blk_complete(b, s);
}

/* A write on the library's path completed (queue q is being reaped): start the writes that
 * waited for it again, each on its own queue. Returns whether q's used ring changed. */
static bool blk_unpark(struct virtio_blk *b, unsigned q)
{
	uint16_t waiting[BLKIO_MAX_QUEUES * BLK_SLOTS];
	unsigned n = b->nparked, touched = 0, irq = 0;

	memcpy(waiting, b->parked, n * sizeof(waiting[0]));
	b->nparked = 0;
	for (unsigned i = 0; i < n; i++) {
		struct blk_slot *s = &b->slots[waiting[i]];

		touched |= 1u << s->q;
		if (blk_run(b, s))
			irq |= 1u << s->q;
	}
	for (unsigned o = 0; o < b->nq; o++) {
		if (o == q || !(touched & 1u << o))
			continue;
		blkio_commit(b->io, o);
		if (irq & 1u << o)
			virtio_queue_interrupt(b->vd, o);
	}
	return irq & 1u << q;
}

/* I/O thread, vd->lock held: take chains into free slots and start them. */
static void blk_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_blk *b = vd->priv;
	bool pushed = false;

	if (q >= b->nq)
		return;
	for (;;) {
		struct blk_slot *s;
		int r;

		if (!b->nfree[q]) {
			b->starved[q] = true; /* a completion takes the queue up again */
			break;
		}
		s = slot_of(b, q, b->freelist[q][b->nfree[q] - 1]);
		r = virtio_pop(vd, q, &s->chain);
		if (r <= 0) {
			if (virtio_queue_ready(vd, q) && vq_rearm(&vd->q[q].vq))
				continue;
			break;
		}
		b->nfree[q]--;
		if (BLK_SLOTS - b->nfree[q] > b->stats.max_inflight)
			b->stats.max_inflight = BLK_SLOTS - b->nfree[q];
		s->epoch = vd->epoch;
		pushed |= blk_start(b, s);
	}
	blkio_commit(b->io, q);
	if (pushed)
		virtio_queue_interrupt(vd, q);
}

/* One transfer of s came back. Returns true when s is done (no transfer left out). */
static bool blk_reaped(struct virtio_blk *b, struct blkio_req *io)
{
	struct blk_slot *s = io->tag;
	unsigned i = (unsigned)(io - s->io);

	if (io->op != BLKIO_CALL) {
		if (io->res == -EINVAL && b->direct && io->op != BLKIO_FSYNC) {
			log_warn_ratelimited(&blk_rl,
					     "%s: direct I/O refused at file offset %llu; done "
					     "through the page cache",
					     b->path, (unsigned long long)io->off);
			s->redo = true;
		} else if (io->res < 0) {
			log_warn_ratelimited(&blk_rl, "%s: %s at file offset %llu: %s", b->path,
					     io->op == BLKIO_READ    ? "read"
					     : io->op == BLKIO_WRITE ? "write"
								     : "flush",
					     (unsigned long long)io->off, strerror((int)-io->res));
			s->failed = true;
		} else if (io->op != BLKIO_FSYNC && (uint64_t)io->res != s->want[i]) {
			s->redo = true; /* short: the file ended, or a signal */
		}
	}
	return --s->pending == 0;
}

/* Reap q's completions (with wait, until none is in flight), complete the requests that
 * are done, interrupt once; vd->lock held. */
static void blk_complete_queue(struct virtio_blk *b, unsigned q, bool wait)
{
	struct virtio_dev *vd = b->vd;
	struct blkio_req *done[64];
	bool pushed = false;
	unsigned n, i;

	while ((n = blkio_reap(b->io, q, done, 64, wait)) > 0) {
		for (i = 0; i < n; i++) {
			struct blk_slot *s = done[i]->tag;

			if (!blk_reaped(b, done[i]))
				continue;
			if (done[i]->op == BLKIO_CALL) {
				bool allocating = s->allocating;

				pushed |= blk_complete(b, s);
				if (allocating && b->nparked)
					pushed |= blk_unpark(b, q);
			} else if (s->redo && !s->failed) {
				s->redo = false;
				b->stats.redo++;
				blk_submit_slow(b, s);
			} else {
				if (s->type != VIRTIO_BLK_T_FLUSH)
					blk_finish_rw(s);
				else
					s->status =
						s->failed ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
				pushed |= blk_complete(b, s);
			}
		}
		blkio_commit(b->io, q);
		if (n < 64 && !wait)
			break;
	}
	if (pushed)
		virtio_queue_interrupt(vd, q);
}

/* The backend's eventfd of one queue: reap, complete, interrupt once, take more chains if
 * the queue ran out of slots. */
static void blk_fd_event(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct virtio_blk *b = vd->priv;
	unsigned q;

	if (blk_throttle_fd(b, fd))
		return;
	for (q = 0; q < b->nq && blkio_event_fd(b->io, q) != fd; q++)
		;
	if (q == b->nq)
		return;
	blk_complete_queue(b, q, false);
	if (b->starved[q]) {
		b->starved[q] = false;
		if (virtio_queue_ready(vd, q))
			blk_queue_notify(vd, q);
	}
}

/* Pausing, the I/O thread parked (vd->lock held): complete every request in flight, polling
 * until deadline_ms at most (a request the back end never finishes must fail the pause, not
 * hang it); chains left in the rings wait for the resume (which kicks every queue). */
static void blk_quiesce(struct virtio_dev *vd, long long deadline_ms)
{
	struct virtio_blk *b = vd->priv;
	struct timespec ms = {0, 1000000};

	blk_throttle_release(b, true); /* what waits for the buckets goes now */
	for (;;) {
		bool busy = false;

		/* Reap every queue first: a completion on one queue may start writes that
		 * waited for it (blk_unpark) on another, already looked at. */
		for (unsigned q = 0; b->io && q < b->nq; q++)
			blk_complete_queue(b, q, false);
		for (unsigned q = 0; b->io && q < b->nq; q++)
			busy |= blkio_inflight(b->io, q) != 0;
		busy |= b->nparked != 0;
		if (!busy || clock_mono_ms() >= deadline_ms)
			return;
		nanosleep(&ms, NULL);
	}
}

/* Wait for every transfer in flight and drop the requests (their buffers belong to a driver
 * instance that is gone), vd->lock held or the I/O thread stopped. */
static void blk_drain(struct virtio_blk *b)
{
	struct blkio_req *done[64];

	blk_throttle_drop(b);
	for (unsigned q = 0; b->io && q < b->nq; q++) {
		while (blkio_inflight(b->io, q)) {
			unsigned n = blkio_reap(b->io, q, done, 64, true);

			for (unsigned i = 0; i < n; i++)
				if (blk_reaped(b, done[i]))
					blk_release_slot(b, done[i]->tag);
		}
		b->starved[q] = false;
	}
	/* Waiting for a write just dropped: nothing of theirs was submitted. */
	for (unsigned i = 0; i < b->nparked; i++)
		blk_release_slot(b, &b->slots[b->parked[i]]);
	b->nparked = 0;
}

unsigned virtio_blk_inflight(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;
	unsigned n = 0;

	pthread_mutex_lock(&vd->lock);
	for (unsigned q = 0; b->io && q < b->nq; q++)
		n += blkio_inflight(b->io, q);
	pthread_mutex_unlock(&vd->lock);
	return n;
}

/* Device reset (vd->lock held): no buffer of the old driver instance is touched after. */
static void blk_reset(struct virtio_dev *vd)
{
	blk_drain(vd->priv);
}

static void blk_config_read(struct virtio_dev *vd, unsigned off, void *buf, unsigned len)
{
	struct virtio_blk *b = vd->priv;

	if (off <= BLK_CONFIG_SIZE && len <= BLK_CONFIG_SIZE - off)
		memcpy(buf, b->config + off, len);
}

void virtio_blk_free(struct virtio_blk *b)
{
	if (!b)
		return;
	blk_drain(b);
	blk_throttle_free(b);
	if (b->io)
		log_info("%s: requests: %llu direct (%llu bounced), %llu zeros, %llu read/write "
			 "by the library (%llu more waited for an allocation), %llu other by the "
			 "library, %llu redone; at most %u in flight on a queue",
			 b->path, (unsigned long long)b->stats.direct,
			 (unsigned long long)b->stats.bounced, (unsigned long long)b->stats.zeros,
			 (unsigned long long)b->stats.slow_rw, (unsigned long long)b->stats.parked,
			 (unsigned long long)b->stats.slow_other, (unsigned long long)b->stats.redo,
			 b->stats.max_inflight);
	blkio_destroy(b->io);
	devmem_free(b->slots, (size_t)b->nq * BLK_SLOTS * sizeof(*b->slots));
	free(b->parked);
	if (b->pfd_owned)
		close(b->pfd);
	if (b->disk) {
		/* Every mode, unsafe too: a clean end leaves the file as durable as others do. */
		if (!b->ro && disk_flush(b->disk))
			log_err("%s: final flush failed", b->path);
		disk_close(b->disk);
	}
	devmem_free(b->zeros, BLK_ZERO_CHUNK);
	free(b);
}

static void blk_release(struct virtio_dev *vd)
{
	virtio_blk_free(vd->priv);
}

static const struct virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.device_type = VIRTIO_ID_BLOCK,
	.class_code = 0x018000, /* mass storage, other */
	.seccomp = SECCOMP_DISK,
	.queue_notify = blk_queue_notify,
	.config_read = blk_config_read,
	.reset = blk_reset,
	.quiesce = blk_quiesce,
	.fd_event = blk_fd_event,
	.release = blk_release,
};

/* A passed disk with no chain passed: it must have no parent. */
static const int no_parents[1] = {-1};

/* Every early return closes the chain passed with the disk: no parent's descriptor stays open
 * in a worker whose disk was refused. */
static void close_chain(const struct machine_chain *chain)
{
	for (unsigned j = 0; chain && j < chain->n; j++)
		close(chain->fd[j]);
}

static int blk_open_disk(const struct vm_disk *spec, int fd, const struct machine_chain *chain,
			 struct virtio_blk *b, char *err, size_t errlen)
{
	enum disk_format f = spec->format == VM_DISK_VHDX ? DISK_FORMAT_VHDX : DISK_FORMAT_RAW;
	unsigned flags = spec->readonly ? DISK_OPEN_RDONLY : 0;
	struct disk_err why = {{0}};
	int r;

	/* As recorded in the description (vm_disk.format): never guessed from the contents. */
	if (fd >= 0 && !spec->readonly && (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR) {
		snprintf(err, errlen, "disk %s: its passed descriptor is not open for writing",
			 spec->path);
		close(fd);
		close_chain(chain);
		return -EBADF;
	}
	if (fd < 0)
		close_chain(chain); /* nothing takes them: the disk is opened by its path */
	/* A passed disk comes with its whole chain: no parent is opened by path. */
	parse_euid_note(PARSE_DISK);
	r = fd >= 0 ? disk_open_chain_fd(fd, spec->path, f, flags, chain ? chain->fd : no_parents,
					 chain ? chain->n : 0, &b->disk, &why)
		    : disk_open_as(spec->path, f, flags, &b->disk, &why);
	if (r) {
		const char *busy = r == -EWOULDBLOCK || r == -EAGAIN
					   ? " (another program has it open for writing)"
					   : "";

		if (why.msg[0]) /* the library's reason names the file */
			snprintf(err, errlen, "%s%s", why.msg, busy);
		else
			snprintf(err, errlen, "disk %s: %s%s", spec->path, strerror(-r), busy);
	}
	return r;
}

/* The device configuration (virtio 1.2, 5.2.4). */
static void blk_fill_config(struct virtio_blk *b, const struct disk_info *info)
{
	uint32_t phys =
		info->physical_sector > b->sector_size ? info->physical_sector : b->sector_size;
	uint8_t exp = 0;

	while ((b->sector_size << exp) < phys && exp < 12)
		exp++;
	le_store(b->config + 0x00, b->sectors, 8);	     /* capacity */
	le_store(b->config + 0x08, BLK_SEG_SIZE_MAX, 4);     /* size_max */
	le_store(b->config + 0x0c, BLK_SEG_MAX, 4);	     /* seg_max */
	le_store(b->config + 0x14, b->sector_size, 4);	     /* blk_size */
	b->config[0x18] = exp;				     /* physical_block_exp */
	b->config[0x19] = 0;				     /* alignment_offset */
	le_store(b->config + 0x1a, 1u << exp, 2);	     /* min_io_size (blocks) */
	le_store(b->config + 0x1c, 0, 4);		     /* opt_io_size: none */
	le_store(b->config + 0x22, b->nq, 2);		     /* num_queues */
	le_store(b->config + 0x24, BLK_MAX_DISCARD, 4);	     /* max_discard_sectors */
	le_store(b->config + 0x28, BLK_MAX_DZ_SEGS, 4);	     /* max_discard_seg */
	le_store(b->config + 0x2c, b->sector_size / 512, 4); /* discard_sector_alignment */
	le_store(b->config + 0x30, b->zeroes_by_discard ? BLK_MAX_DISCARD : BLK_MAX_WZ_WRITTEN,
		 4); /* max_write_zeroes_sectors */
	le_store(b->config + 0x34, b->zeroes_by_discard ? BLK_MAX_DZ_SEGS : 1,
		 4);				/* max_write_zeroes_seg */
	b->config[0x38] = b->zeroes_by_discard; /* write_zeroes_may_unmap */
}

int virtio_blk_open(const struct vm_disk *spec, int fd, const struct machine_chain *chain,
		    struct virtio_blk **out, char *err, size_t errlen)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	struct disk_info info;
	int r;

	if (!b)
		return -ENOMEM;
	b->pfd = -1;
	b->nq = 1;
	b->zeros = devmem_alloc(BLK_ZERO_CHUNK);
	if (!b->zeros) {
		free(b);
		return -ENOMEM;
	}
	snprintf(b->path, sizeof(b->path), "%s", spec->path);
	b->ro = spec->readonly;
	b->cache = spec->cache;
	r = blk_open_disk(spec, fd, chain, b, err, errlen);
	if (r) {
		devmem_free(b->zeros, BLK_ZERO_CHUNK);
		free(b);
		return r;
	}
	r = disk_info(b->disk, &info);
	if (r) {
		snprintf(err, errlen, "--disk %s: cannot read its format information: %s",
			 spec->path, strerror(-r));
		virtio_blk_free(b);
		return r;
	}
	b->vhdx = info.format == DISK_FORMAT_VHDX;
	b->block_size = b->vhdx ? info.block_size : 0;
	b->zeroes_by_discard = info.format == DISK_FORMAT_RAW;
	b->sector_size = info.logical_sector >= 512 ? info.logical_sector : 512;
	b->sectors = disk_size(b->disk) / 512;
	memcpy(b->serial, spec->serial, strnlen(spec->serial, sizeof(b->serial)));
	blk_fill_config(b, &info);
	*out = b;
	return 0;
}

uint64_t virtio_blk_features(const struct virtio_blk *b)
{
	uint64_t f = 1ull << BLK_F_SIZE_MAX | 1ull << BLK_F_SEG_MAX | 1ull << BLK_F_BLK_SIZE |
		     1ull << BLK_F_FLUSH | 1ull << BLK_F_TOPOLOGY | 1ull << BLK_F_MQ;

	if (b->ro)
		f |= 1ull << BLK_F_RO;
	else
		f |= 1ull << BLK_F_DISCARD | 1ull << BLK_F_WRITE_ZEROES;
	return f;
}

/* The payload's descriptor for the cache mode: cache=none opens the disk's file again with
 * O_DIRECT (through /proc/self/fd, so a descriptor passed by keeld works too); a file
 * system without O_DIRECT (or no /proc) keeps the page cache, said once per disk. */
static void blk_open_payload(struct virtio_blk *b)
{
	int fd;

	b->pfd = disk_fd(b->disk);
	if (b->cache != VM_DISK_CACHE_NONE || b->pfd < 0)
		return;
	fd = jail_reopen(b->pfd, BLK_DIRECT_FLAGS(b->ro));
	if (fd < 0) {
		log_warn("%s: cache=none: cannot open it for direct I/O (%s); its data goes "
			 "through the host's page cache, as with cache=writeback",
			 b->path, strerror(errno));
		return;
	}
	/* The file system's own alignments (a 4 KiB-sector device needs 4096); without an
	 * answer, the 512 bytes every Linux block device takes. The bounce buffers are
	 * page-aligned, so a file asking more than a page for buffers keeps the page cache. */
	struct dio_align a = {512, 512};
	int r = dio_align_of(fd, &a);

	if (r < 0 || !a.mem || !a.off || a.mem > 4096 || a.off > 4096 || a.off % 512 ||
	    (a.mem & (a.mem - 1)) || (a.off & (a.off - 1))) {
		log_warn("%s: cache=none: %s; its data goes through the host's page cache, as "
			 "with cache=writeback",
			 b->path,
			 r < 0	 ? "cannot read its direct I/O alignment"
			 : a.mem ? "its file system's direct I/O alignment is one keel cannot use"
				 : "its file system does not do direct I/O on it");
		close(fd);
		return;
	}
	b->pfd = fd;
	b->pfd_owned = true;
	b->direct = true;
	b->dio_mem = a.mem;
	b->dio_off = a.off;
	/* The library's own data writes (a VHDX block's first write) bypass the cache too. */
	r = disk_set_direct(b->disk, fd, a.mem, a.off);
	if (r)
		log_warn("%s: cache=none: the disk library cannot take the direct descriptor "
			 "(%s); a new block's first write goes through the page cache",
			 b->path, strerror(-r));
}

/* The backend and the request slots, before the guest runs (io_uring rings are set up
 * here, so that no io_uring_setup is needed later). */
static int blk_start_backend(struct virtio_blk *b, const struct vm_disk *spec, unsigned nq,
			     char *err, size_t errlen)
{
	struct disk_info info;
	const char *fmt;
	static bool said;
	const char *why;
	int r;

	b->nq = nq;
	le_store(b->config + 0x22, nq, 2);
	/* 1.5 MiB of address space a queue (each slot has room for a chain of VQ_MAX_SEGS
	 * buffers), of which a request touches a few pages: devmem.h. */
	b->slots = devmem_alloc((size_t)nq * BLK_SLOTS * sizeof(*b->slots));
	b->parked = calloc((size_t)nq * BLK_SLOTS, sizeof(*b->parked));
	if (!b->slots || !b->parked) {
		snprintf(err, errlen, "--disk %s: out of memory", b->path);
		return -ENOMEM;
	}
	for (unsigned q = 0; q < nq; q++) {
		for (unsigned i = 0; i < BLK_SLOTS; i++) {
			struct blk_slot *s = slot_of(b, q, i);

			s->b = b;
			s->q = (uint16_t)q;
			s->idx = (uint16_t)i;
			b->freelist[q][b->nfree[q]++] = (uint16_t)(BLK_SLOTS - 1 - i);
		}
	}
	r = blk_throttle_create(b, spec);
	if (r) {
		snprintf(err, errlen, "--disk %s: cannot set up its QoS timer: %s", b->path,
			 strerror(-r));
		return r;
	}
	r = blkio_create(nq, BLK_SLOTS * BLK_MAX_EXTENTS, &b->io, &why);
	if (r) {
		snprintf(err, errlen, "--disk %s: cannot start the block backend: %s", b->path,
			 strerror(-r));
		return r;
	}
	if (!blkio_uses_uring(b->io) && !said) {
		said = true;
		log_warn("io_uring is not available (%s): disk I/O goes through a thread pool",
			 why);
	}
	blk_open_payload(b);
	if (b->cache == VM_DISK_CACHE_UNSAFE)
		log_warn("%s: cache=unsafe: the guest's flushes are IGNORED; a host crash or "
			 "power loss can lose or corrupt this disk's data",
			 b->path);
	/* The format the disk was opened as, which the tests read (a raw disk stays raw). */
	fmt = disk_info(b->disk, &info) ? "format unknown" : disk_format_name(info.format);
	log_info("%s: virtio-blk (%s), %u queue%s, cache=%s%s, %s", b->path, fmt, nq,
		 nq == 1 ? "" : "s", vmdef_disk_cache_name(b->cache),
		 b->cache == VM_DISK_CACHE_NONE && !b->direct ? " (page cache)" : "",
		 blkio_uses_uring(b->io) ? "io_uring" : "thread pool");
	qos_gate_log(b->path, &b->thr->gate.bucket[0].lim, false);
	return 0;
}

int virtio_blk_create(struct machine *m, const struct vm_disk *spec, int fd,
		      const struct machine_chain *chain, struct virtio_dev **out, char *err,
		      size_t errlen)
{
	unsigned nq = m->def->cpus ? m->def->cpus : 1;
	struct virtio_blk *b;
	int r = virtio_blk_open(spec, fd, chain, &b, err, errlen);

	if (r)
		return r;
	if (nq > BLKIO_MAX_QUEUES)
		nq = BLKIO_MAX_QUEUES;
	if (nq > VIRTIO_MAX_QUEUES)
		nq = VIRTIO_MAX_QUEUES;
	r = blk_start_backend(b, spec, nq, err, errlen);
	if (r) {
		virtio_blk_free(b);
		return r;
	}
	r = virtio_dev_create(m, spec->pci_slot, &blk_ops, b, virtio_blk_features(b), nq,
			      BLK_QUEUE_SIZE, BLK_CONFIG_SIZE, out);
	if (r) {
		snprintf(err, errlen, "--disk %s: virtio-blk set-up: %s", spec->path, strerror(-r));
		virtio_blk_free(b);
		return r;
	}
	b->vd = *out;
	r = virtio_dev_watch(*out, b->thr->gate.timer_fd, EPOLLIN);
	if (r) {
		snprintf(err, errlen, "--disk %s: cannot watch its QoS timer: %s", spec->path,
			 strerror(-r));
		virtio_dev_destroy(*out); /* frees b */
		return r;
	}
	for (unsigned q = 0; q < nq; q++) {
		r = virtio_dev_watch(*out, blkio_event_fd(b->io, q), EPOLLIN);
		if (r) {
			snprintf(err, errlen, "--disk %s: cannot watch its completions: %s",
				 spec->path, strerror(-r));
			virtio_dev_destroy(*out); /* frees b */
			return r;
		}
	}
	return 0;
}

static int blk_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int r = virtio_blk_create(m, &m->def->disks[i], m->disk_fds[i],
				  m->disk_chains ? &m->disk_chains[i] : NULL, &vd, err, errlen);

	r = r ?: virtio_dev_keep(m, vd);
	if (!r)
		*obj = vd;
	if (!r && machine_set_disk_dev(m, i, vd))
		log_warn("disk %u: its QoS cannot be changed while the VM runs", i);
	return r;
}

/* One per disk of the description. */
const struct device_class virtio_blk_class = {
	.name = "virtio-blk",
	.config = &vmdef_disk_kind,
	.state = {{"virtio-blk", STATE_VIRTIO_VERSION, virtio_state}},
	.create = blk_class_create};
