/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueues (virtio 1.2, 2.7) and THE chain walker: every descriptor chain any device
 * takes from the guest comes through vq_pop(), which validates it whole before the device
 * sees it (DESIGN.md habits 2-4):
 *   - the avail index moves by at most the queue size, every head and next index is below
 *     the size of its table, a chain visits at most as many descriptors as its table holds
 *     (so loops end), and at most VQ_MAX_SEGS buffers in all;
 *   - indirect tables only when VIRTIO_F_INDIRECT_DESC was negotiated, never nested, never
 *     combined with NEXT, a whole number of descriptors;
 *   - every buffer lies wholly in guest RAM (mem_ptr()), and device-writable buffers come
 *     after every device-readable one.
 * Descriptors are copied into locals before use, so the guest cannot change one while it is
 * checked. A vq is used by one thread at a time (its device's I/O thread, under the
 * device's lock).
 */
#ifndef KEEL_VMM_VIRTIO_QUEUE_H
#define KEEL_VMM_VIRTIO_QUEUE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/mem.h"

#define VQ_MAX_SIZE	      1024 /* largest queue size a device offers */
#define VQ_MAX_SEGS	      1024 /* buffers in one chain, direct and indirect together */

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} __attribute__((packed));

/* A validated chain: nin device-readable buffers, then nout device-writable ones. */
struct vq_chain {
	uint16_t head;
	unsigned nin, nout;
	uint64_t in_len, out_len; /* total bytes readable, writable */
	struct iovec seg[VQ_MAX_SEGS];
};

struct vq {
	const struct guest_mem *mem;
	uint16_t size;
	bool ready;
	bool indirect;		      /* VIRTIO_F_INDIRECT_DESC negotiated */
	bool event_idx;		      /* VIRTIO_F_EVENT_IDX negotiated */
	uint8_t *desc, *avail, *used; /* host views of the three rings */
	uint16_t last_avail;	      /* next avail ring entry to take */
	uint16_t used_idx;	      /* next used ring entry to fill */
	uint16_t signalled;	      /* used_idx at the last interrupt */
	bool signalled_valid;
};

/* Why vq_enable refused. */
enum vq_enable_error {
	VQ_OK,
	VQ_BAD_SIZE,  /* zero, above VQ_MAX_SIZE, or not a power of two */
	VQ_BAD_ALIGN, /* a ring address misaligned (16, 2, 4) */
	VQ_NOT_RAM,   /* a ring not wholly in guest RAM */
};

/* Check and map the rings; returns VQ_OK or why not (the queue then stays disabled). */
enum vq_enable_error vq_enable(struct vq *vq, const struct guest_mem *mem, uint16_t size,
			       uint64_t desc, uint64_t avail, uint64_t used, bool indirect,
			       bool event_idx);
void vq_disable(struct vq *vq);
const char *vq_enable_error_str(enum vq_enable_error e);

/* Results of vq_pop besides 1 (a chain) and 0 (nothing available). */
#define VQ_BROKEN    (-EPROTO) /* the ring itself is bad: the device needs a reset */
#define VQ_BAD_CHAIN (-EINVAL) /* this chain is bad; c->head is valid: complete it with 0 */

/*
 * Take the next available chain into c. Returns 1, 0, VQ_BROKEN or VQ_BAD_CHAIN; on
 * VQ_BAD_CHAIN, *why (if given) says what was wrong.
 */
int vq_pop(struct vq *vq, struct vq_chain *c, const char **why);
/* Walk the chain at head again, taken earlier by vq_pop and not yet pushed (a device that
 * held only its head): 1 or VQ_BAD_CHAIN, every buffer checked again. */
int vq_chain_at(struct vq *vq, uint16_t head, struct vq_chain *c, const char **why);
/* Put the chain just popped back (the device found nothing to fill it with yet). */
void vq_unpop(struct vq *vq);
/* Put back every chain popped since the next avail entry was last_avail (none of them
 * pushed; the last pop found no more), and ask for a notification when the driver adds
 * chains beyond those (event index): the device waits for more. Returns whether the driver
 * added some already (then try again). */
bool vq_unpop_to(struct vq *vq, uint16_t last_avail);
/* Return a chain to the driver with written bytes in its writable buffers. */
void vq_push(struct vq *vq, uint16_t head, uint32_t written);
/* Return n chains at once: the driver sees all of their used entries or none (virtio-net's
 * mergeable receive buffers, one frame over several chains). */
void vq_push_many(struct vq *vq, const uint16_t *heads, const uint32_t *written, unsigned n);
/* After pushes: does the driver want an interrupt (event index or NO_INTERRUPT flag)? */
bool vq_need_notify(struct vq *vq);
/* Before sleeping: ask for a notification at the next avail entry (event index), then
 * report whether more chains arrived meanwhile. */
bool vq_rearm(struct vq *vq);
/* The driver's avail index now (vq must be ready): has it added chains since? */
uint16_t vq_avail_idx(const struct vq *vq);
/* The driver's avail index and the used index as the driver sees them, read from the rings
 * (guest memory: the guest's values, for diagnostics). vq must be ready. */
void vq_ring_indices(const struct vq *vq, uint16_t *avail, uint16_t *used);

/* Copy between a chain's buffers and a flat buffer: the readable bytes starting at off,
 * or into the writable bytes starting at off. Return the bytes copied. */
size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *buf, size_t len);
size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *buf, size_t len);

#endif
