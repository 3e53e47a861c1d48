/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk's storage QoS (blk_internal.h, docs/virtio.md) on the waiting room shared with
 * virtio-scsi (vmm/blkio/qos_gate.h): a request beyond the disk's limits keeps its slot and
 * waits in its queue's FIFO; the gate's timer, watched by the device's I/O thread, releases
 * round-robin over the queues as the disk's bucket refills. A queue whose slots are all
 * waiting leaves its further chains in the ring until a completion takes it up again (blk.c's
 * starved).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/blk_internal.h"
#include "vmm/virtio/virtio.h"

_Static_assert(BLKIO_MAX_QUEUES <= QOS_GATE_FIFOS && BLK_SLOTS <= QOS_GATE_DEPTH,
	       "a FIFO per queue, deep enough for its slots");

static unsigned outstanding(void *opaque, unsigned bucket)
{
	const struct virtio_blk *b = opaque;
	unsigned n = 0;

	for (unsigned q = 0; q < b->nq; q++)
		n += BLK_SLOTS - b->nfree[q];
	return n;
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

static uint64_t gate_bytes(void *opaque, unsigned q, uint16_t id)
{
	struct virtio_blk *b = opaque;

	return req_bytes(&b->slots[q * BLK_SLOTS + id]);
}

/* Released: started now, its queue committed and interrupted after the release. */
static void gate_run(void *opaque, unsigned q, uint16_t id)
{
	struct virtio_blk *b = opaque;
	struct blk_slot *s = &b->slots[q * BLK_SLOTS + id];

	b->thr->touched[q] = true;
	/* A reset since it was taken: give the slot back unanswered (blk_complete's rule: only
	 * the epoch it came in may see it). */
	if (s->epoch != b->vd->epoch) {
		blk_release_slot(b, s);
		return;
	}
	b->thr->pushed[q] |= blk_run(b, s);
}

static void gate_drop(void *opaque, unsigned q, uint16_t id)
{
	struct virtio_blk *b = opaque;

	blk_release_slot(b, &b->slots[q * BLK_SLOTS + id]);
}

static const struct qos_gate_ops blk_gate_ops = {
	.bytes = gate_bytes,
	.run = gate_run,
	.drop = gate_drop,
	.outstanding = outstanding,
};

int blk_throttle_create(struct virtio_blk *b, const struct vm_disk *spec)
{
	struct blk_qos_limits lim = {spec->max_iops, spec->max_bw, spec->min_iops};
	static const uint8_t one_bucket[QOS_GATE_FIFOS] = {0};
	struct blk_throttle *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	r = qos_gate_init(&t->gate, &blk_gate_ops, b, b->nq, 1, one_bucket, &lim);
	if (r) {
		qos_gate_fini(&t->gate);
		free(t);
		return r;
	}
	b->thr = t;
	return 0;
}

void blk_throttle_free(struct virtio_blk *b)
{
	if (!b->thr)
		return;
	qos_gate_fini(&b->thr->gate);
	free(b->thr);
	b->thr = NULL;
}

bool blk_throttle_gate(struct virtio_blk *b, struct blk_slot *s)
{
	if (!b->thr || s->type == VIRTIO_BLK_T_GET_ID)
		return false;
	return qos_gate_admit(&b->thr->gate, s->q, s->idx, req_bytes(s));
}

/* Around a release: which queues it touched and answered, then their commits and
 * interrupts. */
static void release_begin(struct blk_throttle *t)
{
	memset(t->touched, 0, sizeof(t->touched));
	memset(t->pushed, 0, sizeof(t->pushed));
}

static void release_end(struct virtio_blk *b)
{
	for (unsigned q = 0; q < b->nq; q++) {
		if (b->thr->touched[q])
			blkio_commit(b->io, q);
		if (b->thr->pushed[q])
			virtio_queue_interrupt(b->vd, q);
	}
}

void blk_throttle_release(struct virtio_blk *b, bool force)
{
	if (!b->thr)
		return;
	release_begin(b->thr);
	qos_gate_release(&b->thr->gate, force);
	release_end(b);
}

void blk_throttle_drop(struct virtio_blk *b)
{
	if (b->thr)
		qos_gate_drop(&b->thr->gate);
}

bool blk_throttle_fd(struct virtio_blk *b, int fd)
{
	if (!b->thr || fd != b->thr->gate.timer_fd)
		return false;
	release_begin(b->thr);
	qos_gate_timer(&b->thr->gate, fd);
	release_end(b);
	return true;
}

void blk_throttle_done(struct virtio_blk *b)
{
	if (b->thr)
		qos_gate_done(&b->thr->gate, 0);
}

void virtio_blk_qos(struct virtio_dev *vd, const struct blk_qos_limits *set,
		    struct blk_qos_limits *lim, struct blk_qos_stats *st, unsigned *waiting)
{
	struct virtio_blk *b = vd->priv;

	pthread_mutex_lock(&vd->lock);
	qos_gate_query(&b->thr->gate, 0, set, lim, st, waiting);
	if (set)
		qos_gate_log(b->path, set, true);
	pthread_mutex_unlock(&vd->lock);
}
