/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage QoS of one disk (Hyper-V's Set-VMHardDiskDrive -MaximumIOPS -MinimumIOPS, and a
 * bandwidth limit): two token buckets, one of normalized I/Os and one of bytes, each
 * refilled at its limit per second and holding at most one second of it (the burst). Pure
 * logic on a clock the caller passes (nanoseconds, monotonic), so that the unit test drives
 * it with its own clock; the device (virtio/blk.c) queues what must wait and arms a timer.
 *
 * I/Os are normalized as Hyper-V does: a request counts one I/O per 8 KiB started
 * (BLK_QOS_IO_BYTES), at least one (a flush, a discard). A limit of 0 is no limit.
 *
 * Minimum IOPS, as on Hyper-V, reserves nothing: at the end of each second (BLK_QOS_WINDOW_NS)
 * in which the disk had requests outstanding the whole time yet served fewer normalized
 * I/Os than min_iops, the second counts as a shortfall (below_min set until a second that
 * met it).
 */
#ifndef KEEL_VMM_BLKIO_QOS_H
#define KEEL_VMM_BLKIO_QOS_H

#include <stdbool.h>
#include <stdint.h>

#define BLK_QOS_IO_BYTES  8192u
#define BLK_QOS_WINDOW_NS 1000000000ull

struct blk_qos_limits {
	uint64_t max_iops; /* normalized I/Os per second, 0: none */
	uint64_t max_bw;   /* bytes per second, 0: none */
	uint64_t min_iops; /* normalized I/Os per second below which a second is a shortfall */
};

struct blk_qos_stats {
	uint64_t requests;	    /* admitted */
	uint64_t ios;		    /* normalized I/Os admitted */
	uint64_t bytes;		    /* data bytes admitted */
	uint64_t throttled;	    /* requests that had to wait for tokens */
	uint64_t below_min_seconds; /* shortfalls of min_iops */
	bool below_min;		    /* the last whole second was one */
};

struct blk_qos {
	struct blk_qos_limits lim;
	/* Tokens in nano-units (a unit per second refills rate units per nanosecond), which
	 * may go below zero by one request larger than the burst. */
	__int128 iops_tok, bw_tok;
	uint64_t last_ns;
	uint64_t win_start_ns, win_ios;
	bool win_idle; /* nothing outstanding at some point of the window */
	struct blk_qos_stats st;
};

/* Normalized I/Os of a request moving bytes. */
uint64_t blk_qos_cost(uint64_t bytes);
/* Start with full buckets. */
void blk_qos_init(struct blk_qos *q, const struct blk_qos_limits *lim, uint64_t now_ns);
/* New limits, counters kept; the buckets start full again. */
void blk_qos_set(struct blk_qos *q, const struct blk_qos_limits *lim, uint64_t now_ns);
bool blk_qos_limited(const struct blk_qos *q);
/* May a request moving bytes start now? Then it is charged and 0 returned; else the
 * nanoseconds until it may (at least 1), nothing charged. A request larger than the burst
 * starts once the bucket is full and leaves it in debt. */
uint64_t blk_qos_take(struct blk_qos *q, uint64_t bytes, uint64_t now_ns);
/* The same request is charged whatever the buckets hold (a pause drains the queue); a
 * bucket's debt stays at most one burst plus this request. */
void blk_qos_force(struct blk_qos *q, uint64_t bytes, uint64_t now_ns);
/* A request had to wait (counted once per request). */
void blk_qos_throttled(struct blk_qos *q);
/* Close the windows that ended by now_ns; outstanding: requests taken and not completed. */
void blk_qos_tick(struct blk_qos *q, unsigned outstanding, uint64_t now_ns);
/* The device has nothing outstanding now. */
void blk_qos_idle(struct blk_qos *q);

#endif
