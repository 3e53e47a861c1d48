/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk's shared state: the device (blk.c) and request checking and the synchronous
 * execution of requests (blk_req.c). Internal to src/vmm/virtio. */
#ifndef KEEL_VMM_VIRTIO_BLK_INTERNAL_H
#define KEEL_VMM_VIRTIO_BLK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config/vmdef.h"
#include "vmm/blkio/blkio.h"
#include "vmm/blkio/qos.h"
#include "vmm/blkio/qos_gate.h"
#include "vmm/virtio/queue.h"

#define BLK_QUEUE_SIZE	256
#define BLK_SEG_MAX	(BLK_QUEUE_SIZE - 2)
#define BLK_MAX_DISCARD 0x3fffffu /* sectors per discard segment (and write-zeroes by discard) */
#define BLK_MAX_DZ_SEGS 32
#define BLK_MAX_REQUEST (32u << 20) /* bytes of one read or write */
/* size_max, the largest segment: seg_max segments of it still fit in one request, so that a
 * guest that follows the two limits never builds a request the device must refuse. */
#define BLK_SEG_SIZE_MAX ((BLK_MAX_REQUEST / BLK_SEG_MAX) & ~4095u)
/* Write-zeroes that writes zeros (not a discard): one segment of at most BLK_MAX_REQUEST,
 * so that it takes no longer than the largest write and a pause, reset or quit never waits
 * for gigabytes of zeros. */
#define BLK_MAX_WZ_WRITTEN (BLK_MAX_REQUEST / 512)
#define BLK_BOUNCE_MAX	   (4u << 20) /* requests with unaligned buffers, at most */
#define BLK_ZERO_CHUNK	   (1u << 20)
#define BLK_CONFIG_SIZE	   0x3c
#define BLK_SLOTS	   32	 /* requests of one queue taken and not yet completed, at most */
#define BLK_MAX_EXTENTS	   4	 /* file extents of one request done directly */
#define BLK_NO_STATUS	   0x100 /* a chain without room for a status byte */

/* How the device's requests went, logged when the disk closes: where the time goes is
 * measured, not guessed (docs/BENCHMARKS.md, bench/virtio). Under vd->lock. */
struct blk_stats {
	uint64_t direct;       /* reads and writes submitted to the backend as file extents */
	uint64_t bounced;      /* of which through an aligned copy of the guest's buffers */
	uint64_t zeros;	       /* reads answered with zeros on the I/O thread */
	uint64_t slow_rw;      /* reads and writes the library did on a pool thread */
	uint64_t parked;       /* writes that waited for another write to allocate their block */
	uint64_t slow_other;   /* flush (VHDX), discard, write-zeroes on a pool thread */
	uint64_t redo;	       /* direct transfers short or refused, done again by the library */
	unsigned max_inflight; /* requests taken and not completed on one queue, at most */
};

/* A run of guest buffers holding a request's data. */
struct blk_data {
	struct iovec seg[VQ_MAX_SEGS];
	unsigned n;
	uint64_t len;
	bool aligned; /* every buffer a whole number of sectors */
};

/* One request in flight on a queue. */
struct blk_slot {
	struct vq_chain chain;
	struct blk_data data;
	struct iovec xiov[VQ_MAX_SEGS + BLK_MAX_EXTENTS]; /* data cut at extent boundaries */
	struct blkio_req io[BLK_MAX_EXTENTS];
	uint64_t want[BLK_MAX_EXTENTS]; /* bytes each direct transfer must move */
	struct virtio_blk *b;
	uint8_t *bounce; /* aligned copy of unaligned guest buffers (direct I/O) */
	size_t bounce_len;
	uint32_t type, epoch, written;
	uint64_t sector;
	uint16_t q, idx;
	unsigned pending; /* blkio requests not yet reaped */
	uint8_t status;
	bool no_status;	   /* the chain has no status byte: complete it with 0 bytes */
	bool failed, redo; /* redo: a short or refused direct transfer, done again by the library */
	bool allocating;   /* a write on the library's path that allocates a block (disk_map) */
	uint64_t first_blk, last_blk; /* the payload blocks a write spans (VHDX) */
};

struct virtio_blk {
	struct disk *disk;
	char path[4096]; /* for messages */
	bool ro;
	bool vhdx;
	bool zeroes_by_discard; /* raw files: a punched hole reads as zeros */
	enum vm_disk_cache cache;
	char serial[20];
	uint64_t sectors;
	uint32_t sector_size;
	uint8_t config[BLK_CONFIG_SIZE];
	struct blk_data data; /* virtio_blk_request() (one caller at a time) */
	uint8_t *zeros;	      /* BLK_ZERO_CHUNK bytes of zeros */

	/* The device (blk.c); everything below under vd->lock once the device runs. */
	struct virtio_dev *vd;
	struct blkio *io;
	int pfd;	/* the payload's descriptor: O_DIRECT for cache=none, else the disk's */
	bool pfd_owned; /* pfd is ours to close */
	bool direct;	/* pfd has O_DIRECT */
	uint32_t dio_mem, dio_off; /* its alignments: buffers, file offsets (lib/dio_align.h) */
	unsigned nq;
	struct blk_slot *slots; /* nq * BLK_SLOTS */
	uint16_t freelist[BLKIO_MAX_QUEUES][BLK_SLOTS];
	unsigned nfree[BLKIO_MAX_QUEUES];
	bool starved[BLKIO_MAX_QUEUES]; /* chains left in the ring for want of a slot */
	uint64_t bounce_bytes;		/* allocated for direct I/O bounces */
	struct blk_throttle *thr;	/* storage QoS (blk_throttle.c) */
	/* VHDX: a write that needs the library to allocate (a differencing disk's new block:
	 * a dynamic disk's are allocated by disk_map) while another such write spans one of
	 * its blocks waits here (slot numbers, q * BLK_SLOTS + i) and is started again when
	 * that write completes: the first write into a new block allocates it, the others
	 * then go straight to the file instead of queueing on the library's lock one by one. */
	uint32_t block_size; /* payload block size; 0: raw, nothing waits */
	uint16_t *parked;
	unsigned nparked;
	struct blk_stats stats;
};

/* Storage QoS of the device (blk_throttle.c): its waiting room (vmm/blkio/qos_gate.h) with
 * the disk's one bucket and a FIFO per queue, released round-robin over the queues as the
 * bucket refills (so that a queue the guest floods does not starve the others); the queues a
 * release touched and answered, committed and interrupted after it. Under vd->lock once the
 * device runs. */
struct blk_throttle {
	struct qos_gate gate;
	bool touched[BLKIO_MAX_QUEUES], pushed[BLKIO_MAX_QUEUES];
};

/* The timer and the buckets from the description's limits; -errno. */
int blk_throttle_create(struct virtio_blk *b, const struct vm_disk *spec)
	__attribute__((warn_unused_result));
void blk_throttle_free(struct virtio_blk *b);
/* A checked request in s: true when it must wait (it is queued; the timer starts it). */
bool blk_throttle_gate(struct virtio_blk *b, struct blk_slot *s);
/* Start what the buckets allow now (force: everything waiting, a pause's drain), commit and
 * interrupt the queues that got some; arm the timer for the rest. */
void blk_throttle_release(struct virtio_blk *b, bool force);
/* A reset: free the waiting slots without touching their chains. */
void blk_throttle_drop(struct virtio_blk *b);
/* The timer fired (fd is the timer's; false if fd is another). */
bool blk_throttle_fd(struct virtio_blk *b, int fd);
/* A completion: the minimum-IOPS windows, and whether the device went idle. */
void blk_throttle_done(struct virtio_blk *b);
/* blk.c: start a request that passed blk_check (returns whether it completed at once), and
 * give a slot back. */
bool blk_run(struct virtio_blk *b, struct blk_slot *s);
void blk_release_slot(struct virtio_blk *b, struct blk_slot *s);

/*
 * Check chain c as a request: its header, its status byte, and for reads and writes its data
 * (into d: whole sectors inside the disk, at most BLK_MAX_REQUEST); for a write-zeroes that
 * writes its zeros (VHDX), d->len is the length it asks for, which the execution holds it
 * to. Returns VIRTIO_BLK_S_OK
 * when the request is to be executed (*type and *sector set), another status to complete it
 * with at once, or BLK_NO_STATUS.
 */
unsigned blk_check(struct virtio_blk *b, const struct vq_chain *c, uint32_t *type, uint64_t *sector,
		   struct blk_data *d);
/* Execute a checked request through the disk library (blocking); returns its status and
 * sets *written, the bytes written into its data buffers. */
uint8_t blk_execute(struct virtio_blk *b, const struct vq_chain *c, uint32_t type, uint64_t sector,
		    const struct blk_data *d, uint32_t *written);

#endif
