/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/virtio/queue.h"

#include <string.h>

#define VRING_AVAIL_F_NO_INTERRUPT 1

/* Ring layout (virtio 1.2, 2.7): avail = flags, idx, ring[size], used_event;
 * used = flags, idx, ring[size] of {id, len}, avail_event. */
static uint16_t *avail_idx(const struct vq *vq)
{
	return (uint16_t *)(vq->avail + 2);
}

static uint16_t *avail_ring(struct vq *vq, uint16_t i)
{
	return (uint16_t *)(vq->avail + 4 + 2 * (size_t)i);
}

static uint16_t *used_idx_p(const struct vq *vq)
{
	return (uint16_t *)(vq->used + 2);
}

const char *vq_enable_error_str(enum vq_enable_error e)
{
	switch (e) {
	case VQ_OK:
		return "ok";
	case VQ_BAD_SIZE:
		return "queue size is zero, too large or not a power of two";
	case VQ_BAD_ALIGN:
		return "a ring address is misaligned";
	case VQ_NOT_RAM:
		return "a ring is not in guest RAM";
	}
	return "?";
}

enum vq_enable_error vq_enable(struct vq *vq, const struct guest_mem *mem, uint16_t size,
			       uint64_t desc, uint64_t avail, uint64_t used, bool indirect,
			       bool event_idx)
{
	uint8_t *d, *a, *u;

	memset(vq, 0, sizeof(*vq));
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)))
		return VQ_BAD_SIZE;
	if ((desc & 15) || (avail & 1) || (used & 3))
		return VQ_BAD_ALIGN;
	d = mem_ptr(mem, desc, 16ull * size);
	a = mem_ptr(mem, avail, 6 + 2ull * size);
	u = mem_ptr(mem, used, 6 + 8ull * size);
	if (!d || !a || !u)
		return VQ_NOT_RAM;
	vq->mem = mem;
	vq->size = size;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->indirect = indirect;
	vq->event_idx = event_idx;
	vq->ready = true;
	return VQ_OK;
}

void vq_disable(struct vq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

static int bad(const char **why, const char *what)
{
	if (why)
		*why = what;
	return VQ_BAD_CHAIN;
}

int vq_pop(struct vq *vq, struct vq_chain *c, const char **why)
{
	uint16_t avail, head;

	if (!vq->ready)
		return 0;
	avail = __atomic_load_n(avail_idx(vq), __ATOMIC_ACQUIRE);
	if (avail == vq->last_avail)
		return 0;
	if ((uint16_t)(avail - vq->last_avail) > vq->size) {
		if (why)
			*why = "avail index moved by more than the queue size";
		return VQ_BROKEN;
	}
	head = __atomic_load_n(avail_ring(vq, vq->last_avail & (vq->size - 1)), __ATOMIC_RELAXED);
	if (head >= vq->size) {
		if (why)
			*why = "head descriptor index out of range";
		return VQ_BROKEN;
	}
	vq->last_avail++;
	return vq_chain_at(vq, head, c, why);
}

int vq_chain_at(struct vq *vq, uint16_t head, struct vq_chain *c, const char **why)
{
	const uint8_t *table;
	uint32_t tsize, hops = 0;
	uint16_t idx;
	bool in_indirect = false;

	if (!vq->ready || head >= vq->size)
		return bad(why, "head descriptor index out of range");
	c->head = head;
	c->nin = c->nout = 0;
	c->in_len = c->out_len = 0;
	table = vq->desc;
	tsize = vq->size;
	idx = head;
	for (;;) {
		struct vring_desc d;
		void *p;

		if (hops++ >= tsize)
			return bad(why, "descriptor chain loops or is longer than its table");
		memcpy(&d, table + 16 * (size_t)idx, sizeof(d)); /* one copy, then checks */
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return bad(why,
					   "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
			if (in_indirect)
				return bad(why, "nested indirect descriptor");
			if (d.flags & VRING_DESC_F_NEXT)
				return bad(why, "indirect descriptor with NEXT");
			if (d.len == 0 || d.len % 16 || d.len / 16 > VQ_MAX_SEGS)
				return bad(why,
					   "indirect table length is not 1 to 1024 descriptors");
			table = mem_ptr(vq->mem, d.addr, d.len);
			if (!table)
				return bad(why, "indirect table is not in guest RAM");
			tsize = d.len / 16;
			in_indirect = true;
			hops = 0;
			idx = 0;
			continue;
		}
		if (d.len) {
			bool w = d.flags & VRING_DESC_F_WRITE;

			p = mem_ptr(vq->mem, d.addr, d.len);
			if (!p)
				return bad(why, "buffer is not in guest RAM");
			if (!w && c->nout)
				return bad(why,
					   "device-readable buffer after a device-writable one");
			if (c->nin + c->nout == VQ_MAX_SEGS)
				return bad(why, "more than 1024 buffers in one chain");
			c->seg[c->nin + c->nout] = (struct iovec){p, d.len};
			if (w) {
				c->nout++;
				c->out_len += d.len;
			} else {
				c->nin++;
				c->in_len += d.len;
			}
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= tsize)
			return bad(why, "next descriptor index out of range");
		idx = d.next;
	}
	return 1;
}

void vq_unpop(struct vq *vq)
{
	vq->last_avail--;
}

bool vq_unpop_to(struct vq *vq, uint16_t last_avail)
{
	uint16_t seen = vq->last_avail; /* the driver's avail index when the last pop found none */

	if (!vq->ready)
		return false;
	vq->last_avail = last_avail;
	if (vq->event_idx) /* avail_event: kick me when the driver adds entry seen */
		__atomic_store_n((uint16_t *)(vq->used + 4 + 8 * (size_t)vq->size), seen,
				 __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(avail_idx(vq), __ATOMIC_ACQUIRE) != seen;
}

void vq_push_many(struct vq *vq, const uint16_t *heads, const uint32_t *written, unsigned n)
{
	unsigned i;

	if (!vq->ready)
		return;
	for (i = 0; i < n; i++) {
		uint8_t *e =
			vq->used + 4 + 8 * (size_t)((uint16_t)(vq->used_idx + i) & (vq->size - 1));
		uint32_t id = heads[i];

		memcpy(e, &id, 4);
		memcpy(e + 4, &written[i], 4);
	}
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	__atomic_store_n(used_idx_p(vq), vq->used_idx, __ATOMIC_RELEASE);
}

void vq_push(struct vq *vq, uint16_t head, uint32_t written)
{
	vq_push_many(vq, &head, &written, 1);
}

bool vq_need_notify(struct vq *vq)
{
	uint16_t old, now, event;

	if (!vq->ready)
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* used idx before the driver's fields */
	if (!vq->event_idx)
		return !(__atomic_load_n((uint16_t *)vq->avail, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	now = vq->used_idx;
	old = vq->signalled;
	vq->signalled = now;
	if (!vq->signalled_valid) {
		vq->signalled_valid = true;
		return true;
	}
	event = __atomic_load_n(avail_ring(vq, vq->size), __ATOMIC_RELAXED); /* used_event */
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

uint16_t vq_avail_idx(const struct vq *vq)
{
	return __atomic_load_n(avail_idx(vq), __ATOMIC_ACQUIRE);
}

void vq_ring_indices(const struct vq *vq, uint16_t *avail, uint16_t *used)
{
	*avail = __atomic_load_n(avail_idx(vq), __ATOMIC_RELAXED);
	*used = __atomic_load_n(used_idx_p(vq), __ATOMIC_RELAXED);
}

bool vq_rearm(struct vq *vq)
{
	if (!vq->ready)
		return false;
	if (vq->event_idx) /* avail_event: kick me when the driver adds entry last_avail */
		__atomic_store_n((uint16_t *)(vq->used + 4 + 8 * (size_t)vq->size), vq->last_avail,
				 __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(avail_idx(vq), __ATOMIC_ACQUIRE) != vq->last_avail;
}

size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;
	unsigned i;

	for (i = 0; i < c->nin && done < len; i++) {
		size_t n;

		if (off >= c->seg[i].iov_len) {
			off -= c->seg[i].iov_len;
			continue;
		}
		n = c->seg[i].iov_len - off;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)buf + done, (uint8_t *)c->seg[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *buf, size_t len)
{
	size_t done = 0;
	unsigned i;

	for (i = c->nin; i < c->nin + c->nout && done < len; i++) {
		size_t n;

		if (off >= c->seg[i].iov_len) {
			off -= c->seg[i].iov_len;
			continue;
		}
		n = c->seg[i].iov_len - off;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)c->seg[i].iov_base + off, (const uint8_t *)buf + done, n);
		done += n;
		off = 0;
	}
	return done;
}
