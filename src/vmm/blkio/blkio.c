/* SPDX-License-Identifier: Apache-2.0 */
/* The asynchronous block backend: io_uring rings per queue, or the thread pool (blkio.h). */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/blkio/blkio.h"
#include "vmm/blkio/pool.h"

/* Pool threads: blocking work only beside io_uring; all I/O without it. */
#define POOL_THREADS_URING 2
#define POOL_THREADS_ALONE 4

static struct log_ratelimit blkio_rl = LOG_RATELIMIT_INIT(5000, 5);

struct blkio_queue {
	struct io_uring ring;
	bool ring_ok;
	unsigned inflight;	/* submitted, not reaped */
	unsigned ring_inflight; /* of which in the ring */
	unsigned to_submit;
};

struct blkio {
	unsigned nqueues;
	bool uring;
	int efd[BLKIO_MAX_QUEUES];
	struct blkio_queue q[BLKIO_MAX_QUEUES];
	struct blkio_pool pool;
};

/* A ring's operations run in the kernel without system calls of their own, out of seccomp's
 * sight: each ring is created disabled, may then run only the operations the backend submits
 * (no open, socket, link, rename ... whatever a compromised worker would put in an SQE), no
 * SQE flags and no later registration, and only then is enabled (docs/security.md). */
int blkio_uring_restrict(struct io_uring *ring)
{
	struct io_uring_restriction res[] = {
		{.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV},
		{.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV},
		{.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC},
		{.opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = 0},
	};
	/* The system call itself: Debian 12's liburing 2.3 declares io_uring_register_restrictions
	 * and io_uring_enable_rings but does not export them. */
	if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res,
		    sizeof(res) / sizeof(res[0])) < 0 ||
	    syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) <
		    0)
		return -errno;
	return 0;
}

/* io_uring rings for every queue, each signalling its eventfd and restricted to the backend's
 * operations; on failure, none. */
static int uring_setup(struct blkio *io, unsigned depth)
{
	unsigned i;
	int r = 0;

	for (i = 0; i < io->nqueues && !r; i++) {
		struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};

		r = io_uring_queue_init_params(depth, &io->q[i].ring, &p);
		if (r)
			break;
		io->q[i].ring_ok = true;
		r = io_uring_register_eventfd(&io->q[i].ring, io->efd[i]);
		r = r ? r : blkio_uring_restrict(&io->q[i].ring);
	}
	if (r) {
		for (i = 0; i < io->nqueues; i++) {
			if (io->q[i].ring_ok)
				io_uring_queue_exit(&io->q[i].ring);
			io->q[i].ring_ok = false;
		}
	}
	return r;
}

int blkio_create(unsigned nqueues, unsigned depth, struct blkio **out, const char **why)
{
	struct blkio *io = calloc(1, sizeof(*io));
	const char *force = getenv("KEEL_BLKIO");
	unsigned i;
	int r;

	*why = "";
	if (!io)
		return -ENOMEM;
	if (!nqueues || nqueues > BLKIO_MAX_QUEUES) {
		free(io);
		return -EINVAL;
	}
	io->nqueues = nqueues;
	for (i = 0; i < BLKIO_MAX_QUEUES; i++)
		io->efd[i] = -1;
	for (i = 0; i < nqueues; i++) {
		io->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (io->efd[i] < 0) {
			r = -errno;
			goto fail;
		}
	}
	if (force && !strcmp(force, "threads")) {
		*why = "KEEL_BLKIO=threads asks for the thread pool";
	} else {
		r = uring_setup(io, depth);
		if (r)
			*why = strerror(-r);
		io->uring = r == 0;
	}
	r = blkio_pool_start(&io->pool, io->uring ? POOL_THREADS_URING : POOL_THREADS_ALONE,
			     io->efd);
	if (r)
		goto fail;
	*out = io;
	return 0;
fail:
	for (i = 0; i < nqueues; i++) {
		if (io->q[i].ring_ok)
			io_uring_queue_exit(&io->q[i].ring);
		if (io->efd[i] >= 0)
			close(io->efd[i]);
	}
	free(io);
	return r;
}

void blkio_destroy(struct blkio *io)
{
	if (!io)
		return;
	blkio_pool_stop(&io->pool);
	for (unsigned i = 0; i < io->nqueues; i++) {
		if (io->q[i].ring_ok)
			io_uring_queue_exit(&io->q[i].ring);
		close(io->efd[i]);
	}
	free(io);
}

bool blkio_uses_uring(const struct blkio *io)
{
	return io->uring;
}

int blkio_event_fd(const struct blkio *io, unsigned q)
{
	return q < io->nqueues ? io->efd[q] : -1;
}

void blkio_submit(struct blkio *io, unsigned q, struct blkio_req *r)
{
	struct blkio_queue *bq = &io->q[q];
	struct io_uring_sqe *sqe;

	r->q = q;
	bq->inflight++;
	if (!io->uring || r->op == BLKIO_CALL) {
		blkio_pool_submit(&io->pool, r);
		return;
	}
	sqe = io_uring_get_sqe(&bq->ring);
	if (!sqe) { /* the ring is full: hand it to the kernel, then there is room */
		blkio_commit(io, q);
		sqe = io_uring_get_sqe(&bq->ring);
	}
	if (!sqe) {
		blkio_pool_submit(&io->pool, r);
		return;
	}
	if (r->op == BLKIO_READ)
		io_uring_prep_readv(sqe, r->fd, r->iov, r->niov, r->off);
	else if (r->op == BLKIO_WRITE)
		io_uring_prep_writev(sqe, r->fd, r->iov, r->niov, r->off);
	else
		io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, r);
	bq->to_submit++;
	bq->ring_inflight++;
}

void blkio_commit(struct blkio *io, unsigned q)
{
	struct blkio_queue *bq = &io->q[q];

	while (io->uring && bq->to_submit) {
		int r = io_uring_submit(&bq->ring);

		if (r == -EINTR)
			continue;
		if (r < 0) {
			/* The entries stay in the ring for the next commit. */
			log_warn_ratelimited(&blkio_rl, "blkio: io_uring submit: %s", strerror(-r));
			return;
		}
		bq->to_submit = (unsigned)r >= bq->to_submit ? 0 : bq->to_submit - (unsigned)r;
	}
}

static unsigned uring_reap(struct blkio_queue *bq, struct blkio_req **out, unsigned max, bool wait)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	while (n < max) {
		int r = io_uring_peek_cqe(&bq->ring, &cqe);

		if (r == -EAGAIN && wait && n == 0)
			r = io_uring_wait_cqe(&bq->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r)
			break;
		out[n] = io_uring_cqe_get_data(cqe);
		out[n]->res = cqe->res;
		io_uring_cqe_seen(&bq->ring, cqe);
		n++;
	}
	return n;
}

unsigned blkio_reap(struct blkio *io, unsigned q, struct blkio_req **out, unsigned max, bool wait)
{
	struct blkio_queue *bq = &io->q[q];
	uint64_t cnt;
	unsigned n = 0;

	if (read(io->efd[q], &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_debug("blkio: eventfd read: %s", strerror(errno));
	if (wait && !bq->inflight)
		wait = false;
	blkio_commit(io, q);
	for (;;) {
		unsigned k = io->uring ? uring_reap(bq, out + n, max - n, false) : 0;

		bq->ring_inflight -= k;
		n += k;
		n += blkio_pool_reap(&io->pool, q, out + n, max - n, false);
		if (n || !wait)
			break;
		/* Nothing yet: sleep on the side that has work out. */
		if (bq->ring_inflight) {
			k = uring_reap(bq, out + n, max - n, true);
			bq->ring_inflight -= k;
			n += k;
		} else {
			n += blkio_pool_reap(&io->pool, q, out + n, max - n, true);
		}
		if (n)
			break;
	}
	bq->inflight -= n;
	return n;
}

unsigned blkio_inflight(const struct blkio *io, unsigned q)
{
	return io->q[q].inflight;
}
