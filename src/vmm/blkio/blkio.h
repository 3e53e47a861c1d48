/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The asynchronous block backend under virtio-blk (and virtio-scsi when it comes): one
 * submission context per device queue. Reads, writes and flushes go to an io_uring ring per
 * queue (liburing), set up here before the guest runs; where the kernel refuses io_uring (or
 * KEEL_BLKIO=threads asks for it, for tests) they go to a thread pool instead, which also
 * runs BLKIO_CALL work (the disk library's synchronous paths: VHDX allocation, discards).
 *
 * Completions are signalled on an eventfd per queue (blkio_event_fd) that the device's I/O
 * thread watches; it reaps them with blkio_reap. A queue's submit, commit and reap calls
 * come from one thread at a time (the caller's lock; virtio-blk: vd->lock).
 *
 * System calls at run time: io_uring_enter (commit, and waits on reset/stop), read and
 * write on the eventfds; the pool threads: preadv, pwritev, fdatasync, futex, and whatever
 * a BLKIO_CALL does (the disk library: pread, pwrite, fdatasync, fallocate, fstat).
 */
#ifndef KEEL_VMM_BLKIO_BLKIO_H
#define KEEL_VMM_BLKIO_BLKIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define BLKIO_MAX_QUEUES 8

enum blkio_op {
	BLKIO_READ,  /* preadv(fd, iov, niov, off) */
	BLKIO_WRITE, /* pwritev(fd, iov, niov, off) */
	BLKIO_FSYNC, /* fdatasync(fd) */
	BLKIO_CALL,  /* call(arg) on a pool thread: blocking work */
};

struct blkio_req {
	enum blkio_op op;
	int fd;
	uint64_t off;
	const struct iovec *iov; /* valid until the request is reaped */
	unsigned niov;
	int (*call)(void *arg);
	void *arg;
	void *tag;		/* the caller's */
	int64_t res;		/* on reap: bytes moved (read, write), 0, or -errno */
	struct blkio_req *next; /* internal: pool lists */
	unsigned q;		/* internal: the queue it was submitted on */
};

struct blkio;

/* nqueues contexts, each taking at most depth requests at once. *why says, for the log,
 * why io_uring is not used ("" when it is). */
int blkio_create(unsigned nqueues, unsigned depth, struct blkio **out, const char **why)
	__attribute__((warn_unused_result));
/* Every request must have been reaped. */
void blkio_destroy(struct blkio *io);
bool blkio_uses_uring(const struct blkio *io);
int blkio_event_fd(const struct blkio *io, unsigned q);
/* Queue r on q; it starts at the next blkio_commit (pool work starts at once). */
void blkio_submit(struct blkio *io, unsigned q, struct blkio_req *r);
void blkio_commit(struct blkio *io, unsigned q);
/* Completed requests of q, at most max; with wait, blocks until at least one completes
 * unless none is in flight. */
unsigned blkio_reap(struct blkio *io, unsigned q, struct blkio_req **out, unsigned max, bool wait);
/* Requests submitted on q and not reaped yet. */
unsigned blkio_inflight(const struct blkio *io, unsigned q);

/* Restrict a ring created with IORING_SETUP_R_DISABLED to the backend's operations (READV,
 * WRITEV, FSYNC; no SQE flags, no later registration) and enable it; 0 or -errno. Every ring
 * of blkio_create goes through it: seccomp cannot see what a ring does (docs/security.md). */
struct io_uring;
int blkio_uring_restrict(struct io_uring *ring) __attribute__((warn_unused_result));

#endif
