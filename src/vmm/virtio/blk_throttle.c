/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk's storage QoS (blk_internal.h, docs/virtio.md): a request beyond the disk's
 * limits keeps its slot and waits in its queue's FIFO; a timerfd watched by the device's
 * I/O thread fires when the buckets (vmm/blkio/qos.h) hold enough for the oldest waiting
 * request of the next queue in turn, and releases round-robin over the queues. Nothing is
 * dropped, nothing spins, no vCPU thread waits: a queue whose slots are all waiting leaves
 * its further chains in the ring until a completion takes it up again (blk.c's starved).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/blk_internal.h"
#include "vmm/virtio/virtio.h"

static struct log_ratelimit thr_rl = LOG_RATELIMIT_INIT(5000, 5);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned outstanding(const struct virtio_blk *b)
{
	unsigned n = 0;

	for (unsigned q = 0; q < b->nq; q++)
		n += BLK_SLOTS - b->nfree[q];
	return n;
}

int blk_throttle_create(struct virtio_blk *b, const struct vm_disk *spec)
{
	struct blk_qos_limits lim = {spec->max_iops, spec->max_bw, spec->min_iops};
	struct blk_throttle *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->timer_fd < 0) {
		int r = -errno;

		free(t);
		return r;
	}
	blk_qos_init(&t->qos, &lim, now_ns());
	b->thr = t;
	return 0;
}

void blk_throttle_free(struct virtio_blk *b)
{
	if (!b->thr)
		return;
	close(b->thr->timer_fd);
	free(b->thr);
	b->thr = NULL;
}

/* Bytes a checked request moves, for the buckets: a read's or write's data, and the zeros a
 * write-zeroes writes (VHDX: blk_check's length); 0 for a flush, a discard or a write-zeroes
 * that punches a hole (one I/O each). */
static uint64_t req_bytes(const struct blk_slot *s)
{
	return s->type == VIRTIO_BLK_T_IN || s->type == VIRTIO_BLK_T_OUT ||
			       s->type == VIRTIO_BLK_T_WRITE_ZEROES
		       ? s->data.len
		       : 0;
}

static void arm(struct blk_throttle *t, uint64_t ns)
{
	struct itimerspec its = {
		.it_value = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)}};

	if (timerfd_settime(t->timer_fd, 0, &its, NULL))
		log_warn_ratelimited(&thr_rl, "virtio-blk: QoS timer: %s", strerror(errno));
}

bool blk_throttle_gate(struct virtio_blk *b, struct blk_slot *s)
{
	struct blk_throttle *t = b->thr;
	uint64_t wait, now;
	unsigned q = s->q;

	if (!t || s->type == VIRTIO_BLK_T_GET_ID)
		return false;
	now = now_ns();
	/* The windows that ended before s came had what was outstanding without it. */
	blk_qos_tick(&t->qos, outstanding(b) - 1, now);
	if (!blk_qos_limited(&t->qos)) {
		blk_qos_force(&t->qos, req_bytes(s), now); /* counted all the same */
		return false;
	}
	/* Behind the requests already waiting (on any queue: the release takes turns). */
	wait = t->waiting ? 0 : blk_qos_take(&t->qos, req_bytes(s), now);
	if (!t->waiting && !wait)
		return false;
	blk_qos_throttled(&t->qos);
	t->fifo[q][(t->head[q] + t->n[q]) % BLK_SLOTS] = s->idx;
	t->n[q]++;
	if (!t->waiting++)
		arm(t, wait);
	return true;
}

void blk_throttle_release(struct virtio_blk *b, bool force)
{
	struct blk_throttle *t = b->thr;
	bool touched[BLKIO_MAX_QUEUES] = {0}, pushed[BLKIO_MAX_QUEUES] = {0};
	uint64_t now = now_ns();

	if (!t)
		return;
	blk_qos_tick(&t->qos, outstanding(b), now);
	while (t->waiting) {
		unsigned q = t->next_q % b->nq, k;
		struct blk_slot *s;
		uint64_t wait;

		for (k = 0; k < b->nq && !t->n[q]; k++)
			q = (q + 1) % b->nq;
		if (!t->n[q])
			break; /* not reached: waiting counts the FIFOs' entries */
		s = &b->slots[q * BLK_SLOTS + t->fifo[q][t->head[q]]];
		if (force || !blk_qos_limited(&t->qos))
			blk_qos_force(&t->qos, req_bytes(s), now);
		else if ((wait = blk_qos_take(&t->qos, req_bytes(s), now)) != 0) {
			arm(t, wait);
			break;
		}
		t->head[q] = (t->head[q] + 1) % BLK_SLOTS;
		t->n[q]--;
		t->waiting--;
		t->next_q = q + 1;
		touched[q] = true;
		/* A reset since it was taken: give the slot back unanswered (blk_complete's
		 * rule: only the epoch it came in may see it). */
		if (s->epoch != b->vd->epoch) {
			blk_release_slot(b, s);
			continue;
		}
		pushed[q] |= blk_run(b, s);
	}
	for (unsigned q = 0; q < b->nq; q++) {
		if (touched[q])
			blkio_commit(b->io, q);
		if (pushed[q])
			virtio_queue_interrupt(b->vd, q);
	}
}

void blk_throttle_drop(struct virtio_blk *b)
{
	struct blk_throttle *t = b->thr;

	for (unsigned q = 0; t && q < b->nq; q++) {
		for (; t->n[q]; t->n[q]--, t->head[q] = (t->head[q] + 1) % BLK_SLOTS)
			blk_release_slot(b, &b->slots[q * BLK_SLOTS + t->fifo[q][t->head[q]]]);
		t->head[q] = 0;
	}
	if (t)
		t->waiting = 0;
}

bool blk_throttle_fd(struct virtio_blk *b, int fd)
{
	uint64_t n;

	if (!b->thr || fd != b->thr->timer_fd)
		return false;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn_ratelimited(&thr_rl, "virtio-blk: QoS timer read: %s", strerror(errno));
	blk_throttle_release(b, false);
	return true;
}

void blk_throttle_done(struct virtio_blk *b)
{
	unsigned n;

	if (!b->thr)
		return;
	n = outstanding(b);
	/* The windows that ended before this completion had its slot outstanding. */
	blk_qos_tick(&b->thr->qos, n + 1, now_ns());
	if (!n)
		blk_qos_idle(&b->thr->qos);
}

void virtio_blk_qos(struct virtio_dev *vd, const struct blk_qos_limits *set,
		    struct blk_qos_limits *lim, struct blk_qos_stats *st, unsigned *waiting)
{
	struct virtio_blk *b = vd->priv;
	struct blk_throttle *t = b->thr;

	pthread_mutex_lock(&vd->lock);
	/* The windows that ended by now are judged by the limits they had. */
	blk_qos_tick(&t->qos, outstanding(b), now_ns());
	if (set) {
		blk_qos_set(&t->qos, set, now_ns());
		log_info("%s: QoS now max-iops %llu, max-bandwidth %llu bytes/s, min-iops %llu",
			 b->path, (unsigned long long)set->max_iops,
			 (unsigned long long)set->max_bw, (unsigned long long)set->min_iops);
		if (t->waiting)
			arm(t, 1); /* the I/O thread releases what the new limits allow */
	}
	*lim = t->qos.lim;
	*st = t->qos.st;
	*waiting = t->waiting;
	pthread_mutex_unlock(&vd->lock);
}
