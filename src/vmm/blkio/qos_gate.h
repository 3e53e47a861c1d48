/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage QoS's waiting room (docs/virtio.md), one per device: virtio-blk has one bucket
 * (the disk's, qos.h) and a FIFO per request queue; virtio-scsi a bucket and a FIFO per
 * LUN. A request beyond its bucket's limits keeps the device's slot it was taken into and
 * waits, in order, in its FIFO (which holds the slots' ids); a timerfd watched by the
 * device's I/O thread fires when the bucket of the next waiting request holds enough, and a
 * release takes turns over the FIFOs, so that a queue (or a LUN) the guest floods does not
 * starve the others of the same bucket, and a LUN at its limits does not hold up another
 * LUN's requests already taken. Nothing is dropped, nothing spins, no vCPU thread waits.
 * Under the device's lock.
 */
#ifndef KEEL_VMM_BLKIO_QOS_GATE_H
#define KEEL_VMM_BLKIO_QOS_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/blkio/qos.h"

#define QOS_GATE_FIFOS 8  /* virtio-blk's queues (BLKIO_MAX_QUEUES), virtio-scsi's LUNs */
#define QOS_GATE_DEPTH 32 /* requests one FIFO holds: the device's slots behind it */

/* What the gate asks of the device, about a request in FIFO fifo's slot id. */
struct qos_gate_ops {
	/* The bytes it moves, for the bucket (0: a request that counts one I/O). */
	uint64_t (*bytes)(void *opaque, unsigned fifo, uint16_t id);
	/* Start it now (released; it was charged). The device checks that its driver is still
	 * the one that gave it. */
	void (*run)(void *opaque, unsigned fifo, uint16_t id);
	/* A reset: give its slot back untouched. */
	void (*drop)(void *opaque, unsigned fifo, uint16_t id);
	/* Requests on bucket b taken and not completed (the minimum-IOPS windows). */
	unsigned (*outstanding)(void *opaque, unsigned b);
};

struct qos_gate {
	const struct qos_gate_ops *ops;
	void *opaque;
	unsigned nfifo, nbucket;
	uint8_t bucket_of[QOS_GATE_FIFOS]; /* FIFO f's bucket */
	struct blk_qos bucket[QOS_GATE_FIFOS];
	int timer_fd;
	uint64_t deadline_ns; /* when the timer fires (monotonic), 0: not armed */
	uint16_t fifo[QOS_GATE_FIFOS][QOS_GATE_DEPTH]; /* ids, oldest at head */
	unsigned head[QOS_GATE_FIFOS], n[QOS_GATE_FIFOS];
	unsigned waiting[QOS_GATE_FIFOS]; /* per bucket, over its FIFOs */
	unsigned total;			  /* waiting in every FIFO */
	unsigned next;			  /* the FIFO released from first next time */
};

/* nfifo FIFOs, FIFO f on bucket bucket_of[f] (< nbucket), bucket b starting with lim[b];
 * -errno (the timer). */
int qos_gate_init(struct qos_gate *g, const struct qos_gate_ops *ops, void *opaque, unsigned nfifo,
		  unsigned nbucket, const uint8_t *bucket_of, const struct blk_qos_limits *lim)
	__attribute__((warn_unused_result));
void qos_gate_fini(struct qos_gate *g);
/* A checked request of FIFO fifo in slot id, moving bytes: false when it may start now
 * (charged, or its bucket has no limit), true when it waits (queued behind the requests of
 * its bucket already waiting; the timer armed). */
bool qos_gate_admit(struct qos_gate *g, unsigned fifo, uint16_t id, uint64_t bytes);
/* Start what the buckets allow now (force: everything waiting, a pause's drain), in turn
 * over the FIFOs (ops->run); arm the timer for the rest. */
void qos_gate_release(struct qos_gate *g, bool force);
/* A reset: every waiting request's slot back (ops->drop). */
void qos_gate_drop(struct qos_gate *g);
/* Take the requests of FIFO fifo that pick chooses out of the gate (a task management
 * function cancels them), the others keeping their order: their ids in out (in order), how
 * many returned. The caller answers them and gives their slots back. */
unsigned qos_gate_remove(struct qos_gate *g, unsigned fifo, bool (*pick)(void *arg, uint16_t id),
			 void *arg, uint16_t out[QOS_GATE_DEPTH]);
/* fd ready on the I/O thread: true when it is the gate's timer (read, and a release done). */
bool qos_gate_timer(struct qos_gate *g, int fd);
/* A request on bucket b completed (its slot free again): the minimum-IOPS windows, and
 * whether the bucket went idle. */
void qos_gate_done(struct qos_gate *g, unsigned b);
/* Bucket b's limits: set (NULL: unchanged; the bucket starts full, counters kept), then its
 * limits, counters and requests waiting now. */
void qos_gate_query(struct qos_gate *g, unsigned b, const struct blk_qos_limits *set,
		    struct blk_qos_limits *lim, struct blk_qos_stats *st, unsigned *waiting);

/* Log a disk's limits, named what: at its start (changed false: only when it has some) or
 * after a change ("QoS now ..."). */
void qos_gate_log(const char *what, const struct blk_qos_limits *lim, bool changed);

#endif
