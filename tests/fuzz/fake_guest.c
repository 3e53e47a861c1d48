/* SPDX-License-Identifier: Apache-2.0 */
/* A guest driver whose chains come from the fuzz input (fake_guest.h). */
#include "fake_guest.h"

#include <stdlib.h>
#include <string.h>

#include "fake_machine.h"
#include "lib/le.h"
#include "vmm/mem.h"
#include "vmm/virtio/virtio.h"
#include "vmm/x86/layout.h"

/* Queue i's rings at RING(i), +0x1000, +0x2000; an indirect table area after them; buffers
 * in the rest of RAM. Queues 2 and up (virtio-net's second pair and control queue) have at
 * most SMALL_MAX entries, their rings at SMALL_RING(i), +0x100, +0x200 in high RAM. */
#define RING(i)	      (0x3000u * (i))
#define SMALL_MAX     16u
#define SMALL_RING(i) (LAYOUT_HIGH_RAM + 0x400u * ((i)-2))
#define INDIRECT      0x6000u
#define BUFFERS	      0x7000u

/* What the device may do with the chains the driver posted, found before it runs by walking
 * them as it will (a copy of its ring state, the same walker). */
struct walk {
	bool seen[VQ_MAX_SIZE];
	uint64_t out_len[VQ_MAX_SIZE]; /* by head: the most writable bytes of its chains */
	/* By head: where its first FAKE_GUEST_HEAD_BYTES writable bytes are (NULL past the
	 * chain's end); valid when no two chains' writable buffers overlap (!aliased). */
	uint8_t *head_out[VQ_MAX_SIZE][FAKE_GUEST_HEAD_BYTES];
	bool aliased;
	unsigned nsegs;
	struct iovec segs[4096]; /* the writable buffers, to find overlaps (more: aliased) */
};

static struct walk walks[FAKE_GUEST_QUEUES];
/* A writable buffer overlaps a ring or table of some queue: what the walk found may not be
 * what the device takes, and the used rings prove little. */
static bool clobber;
static struct vq_chain chain;

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
	return mem_ptr(fake_machine()->mem, gpa, len);
}

/* Buffers in the buffer area (most), anywhere in low RAM or past it, or in high RAM. */
static uint64_t buffer_addr(uint32_t a)
{
	if (!(a & 0x80000000u))
		return BUFFERS + a % (FAKE_RAM_LOW - BUFFERS);
	return a & 0x40000000u ? LAYOUT_HIGH_RAM + (a & 0x3fffffff) : a & 0x3fffffff;
}

static unsigned nqueues(const struct fake_guest *g)
{
	return g->vd->nqueues < FAKE_GUEST_QUEUES ? g->vd->nqueues : FAKE_GUEST_QUEUES;
}

/* What the walker reads: every queue's rings and the indirect tables its descriptors name. */
static struct {
	const uint8_t *p;
	size_t len;
} meta[FAKE_GUEST_QUEUES * (3 + VQ_MAX_SIZE)];
static unsigned nmeta;

static void add_meta(const void *p, size_t len)
{
	if (p)
		meta[nmeta++] = (typeof(meta[0])){p, len};
}

static void find_meta(const struct fake_guest *g)
{
	unsigned q, i;

	nmeta = 0;
	for (q = 0; q < nqueues(g); q++) {
		const struct vq *vq = &g->vd->q[q].vq;

		if (!vq->ready)
			continue;
		add_meta(vq->desc, 16u * vq->size);
		add_meta(vq->avail, 6u + 2u * vq->size);
		add_meta(vq->used, 6u + 8u * vq->size);
		for (i = 0; i < vq->size; i++) {
			const uint8_t *d = vq->desc + 16 * i;
			uint32_t len = (uint32_t)le_load(d + 8, 4);

			if (le_load(d + 12, 2) & VRING_DESC_F_INDIRECT)
				add_meta(mem_ptr(vq->mem, le_load(d, 8), len), len);
		}
	}
}

static bool on_meta(const void *p, size_t len)
{
	const uint8_t *a = p;
	unsigned i;

	for (i = 0; i < nmeta; i++)
		if (a < meta[i].p + meta[i].len && meta[i].p < a + len)
			return true;
	return false;
}

static void record_out(struct walk *w, const struct vq_chain *c)
{
	unsigned i, k = 0;

	for (i = c->nin; i < c->nin + c->nout; i++) {
		uint8_t *p = c->seg[i].iov_base;
		size_t j;

		for (j = 0; j < c->seg[i].iov_len && k < FAKE_GUEST_HEAD_BYTES; j++)
			w->head_out[c->head][k++] = p + j;
		if (w->nsegs == sizeof(w->segs) / sizeof(w->segs[0]))
			w->aliased = true;
		else
			w->segs[w->nsegs++] = c->seg[i];
	}
	for (; k < FAKE_GUEST_HEAD_BYTES; k++)
		w->head_out[c->head][k] = NULL;
}

static int seg_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct iovec *)a)->iov_base,
		  y = (uintptr_t)((const struct iovec *)b)->iov_base;

	return x < y ? -1 : x > y;
}

/* Do any two writable buffers overlap? */
static void find_aliases(struct walk *w)
{
	unsigned i;

	if (w->aliased || w->nsegs < 2)
		return;
	qsort(w->segs, w->nsegs, sizeof(w->segs[0]), seg_cmp);
	for (i = 1; i < w->nsegs && !w->aliased; i++)
		w->aliased = (uintptr_t)w->segs[i - 1].iov_base + w->segs[i - 1].iov_len >
			     (uintptr_t)w->segs[i].iov_base;
}

static void walk(const struct fake_guest *g, unsigned q)
{
	struct vq vq = g->vd->q[q].vq; /* vq_pop only reads guest memory */
	struct walk *w = &walks[q];
	unsigned n, i;
	int r;

	memset(w->seen, 0, sizeof(w->seen));
	memset(w->out_len, 0, sizeof(w->out_len));
	w->aliased = false;
	w->nsegs = 0;
	if (!vq.ready)
		return;
	for (n = 0; n <= vq.size; n++) {
		r = vq_pop(&vq, &chain, NULL);
		if (r == 0 || r == VQ_BROKEN)
			break;
		if (w->seen[chain.head])
			w->aliased = true; /* a head posted twice: its buffers written twice */
		w->seen[chain.head] = true;
		if (r != 1)
			continue;
		if (chain.out_len > w->out_len[chain.head])
			w->out_len[chain.head] = chain.out_len;
		for (i = chain.nin; i < chain.nin + chain.nout && !clobber; i++)
			clobber = on_meta(chain.seg[i].iov_base, chain.seg[i].iov_len);
		record_out(w, &chain);
	}
	find_aliases(w);
}

/* A queue's chains as the walk found them: the address of writable byte off (below
 * FAKE_GUEST_HEAD_BYTES) of head's chain, or NULL when the chain has no such byte or the
 * device's writes may have landed on it more than once (chains overlap). */
uint8_t *fake_guest_out_byte(unsigned q, uint16_t head, unsigned off)
{
	const struct walk *w = &walks[q];

	if (q >= FAKE_GUEST_QUEUES || head >= VQ_MAX_SIZE || off >= FAKE_GUEST_HEAD_BYTES ||
	    w->aliased || clobber || !w->seen[head])
		return NULL;
	return w->head_out[head][off];
}

/* The used entries the device added: a head it could have taken, no more bytes than its
 * chain could hold or the target allows. */
static void check_used(struct fake_guest *g, unsigned q)
{
	const struct vq *vq = &g->vd->q[q].vq;
	uint16_t n = (uint16_t)(vq->used_idx - g->used_seen[q]), k;

	if (!vq->ready)
		return;
	FAKE_CHECK(vq->last_avail == vq->used_idx, "queue %u: %u chains taken, %u returned", q,
		   vq->last_avail, vq->used_idx);
	if (n > vq->size)
		n = vq->size;
	for (k = (uint16_t)(vq->used_idx - n); k != vq->used_idx && !clobber; k++) {
		const uint8_t *e = vq->used + 4 + 8 * (k & (vq->size - 1));
		uint32_t id = (uint32_t)le_load(e, 4), len = (uint32_t)le_load(e + 4, 4);

		FAKE_CHECK(id < vq->size && walks[q].seen[id], "queue %u: used id %u", q, id);
		FAKE_CHECK(len <= walks[q].out_len[id] && len <= g->max_used[q],
			   "queue %u: %u bytes used of head %u's %llu", q, len, id,
			   (unsigned long long)walks[q].out_len[id]);
	}
	g->used_seen[q] = vq->used_idx;
}

void fake_guest_expect(struct fake_guest *g)
{
	unsigned i;

	clobber = false;
	find_meta(g);
	for (i = 0; i < nqueues(g); i++)
		walk(g, i);
}

void fake_guest_verify(struct fake_guest *g)
{
	unsigned i;

	for (i = 0; i < nqueues(g); i++)
		check_used(g, i);
}

void fake_guest_serve(struct fake_guest *g)
{
	fake_guest_expect(g);
	fake_virtio_serve(g->vd);
	if (g->served)
		g->served(g);
	fake_guest_verify(g);
}

void fake_guest_check(struct fake_guest *g)
{
	FAKE_CHECK(fake_virtio_check(g->vd) == fake_ioeventfds(), "ioeventfds");
	fake_pci_check(&g->vd->pci);
}

/* Bring-up on the rings as they are now (zeroed at power-on, or left by a device reset). */
static void start(struct fake_guest *g)
{
	unsigned i;

	for (i = 0; i < nqueues(g); i++) {
		memset(ram(g->q[i].avail, 4), 0, 4);
		g->used_seen[i] = 0;
	}
	FAKE_CHECK(fake_virtio_start(g->vd, g->features, g->q, nqueues(g)), "%s bring-up",
		   g->vd->ops->name);
	fake_guest_serve(g); /* DRIVER_OK kicked the queues */
}

void fake_guest_start(struct fake_guest *g, const uint8_t *hdr)
{
	unsigned i;

	memmove(g->hdr, hdr, FAKE_GUEST_HEADER);
	fake_ioeventfd_enable(hdr[0] & 8);
	fake_machine_reset();
	fake_virtio_serve(g->vd); /* kicks left from the last input find no queue */
	g->features = (uint64_t)(hdr[0] >> 4) | (uint64_t)(hdr[0] & 1) << VIRTIO_F_INDIRECT_DESC |
		      (uint64_t)(hdr[0] >> 1 & 1) << VIRTIO_F_EVENT_IDX | g->extra_features;
	for (i = 0; i < nqueues(g); i++) {
		uint16_t max = i < 2 || g->vd->q[i].max < SMALL_MAX ? g->vd->q[i].max : SMALL_MAX;
		uint64_t ring = i < 2 ? RING(i) : SMALL_RING(i);

		g->q[i] = (struct fake_vq){
			.size = (uint16_t)(1u << ((hdr[1] >> (4 * (i & 1)) & 0xf) %
						  (__builtin_ctz(max) + 1u))),
			.vector = hdr[0] & 4 ? VIRTIO_NO_VECTOR : (uint16_t)(i + 1),
			.desc = ring,
			.avail = ring + (i < 2 ? 0x1000 : 0x100),
			.used = ring + (i < 2 ? 0x2000 : 0x200),
		};
	}
	start(g);
}

size_t fake_guest_op(struct fake_guest *g, const uint8_t *data, size_t size)
{
	unsigned qi = (data[0] >> 4) % nqueues(g);
	const struct fake_vq *q = &g->q[qi];
	uint8_t *p;
	size_t n;
	uint16_t idx;

	switch (data[0] & 0xf) {
	case 0: /* a descriptor: index, address, length, flags, next; bit 5: the indirect area */
		if (size < 14)
			return 0;
		idx = (uint16_t)le_load(data + 1, 2);
		p = data[0] & 0x20 ? ram(INDIRECT + 16u * (idx % 256), 16)
				   : ram(q->desc + 16u * (idx % q->size), 16);
		le_store(p, buffer_addr((uint32_t)le_load(data + 3, 4)), 8);
		memcpy(p + 8, data + 7, 4);
		le_store(p + 12, data[11], 2);
		memcpy(p + 14, data + 12, 2);
		return 14;
	case 1: /* post a head */
		if (size < 3)
			return 0;
		p = ram(q->avail, 4 + 2u * q->size);
		idx = (uint16_t)le_load(p + 2, 2);
		memcpy(p + 4 + 2 * (idx % q->size), data + 1, 2);
		le_store(p + 2, (uint16_t)(idx + 1), 2);
		return 3;
	case 2:
		fake_virtio_notify(g->vd, qi);
		return 1;
	case 3:
		fake_guest_serve(g);
		return 1;
	case 4: /* up to 32 bytes anywhere in low RAM but the used rings */
		if (size < 4 || size < 4u + data[3] % 33)
			return 0;
		n = data[3] % 33;
		idx = (uint16_t)(le_load(data + 1, 2) % (FAKE_RAM_LOW - n));
		if (idx % 0x3000 + n <= 0x2000 || idx >= 0x6000)
			memcpy(ram(idx, n), data + 4, n);
		return 4 + n;
	case 5: /* the driver resets the device and starts it again */
		fake_virtio_write(g->vd, FAKE_CC(device_status), 1, 0);
		start(g);
		return 1;
	case 6: /* the VM resets: RAM is zero, the driver starts again */
		fake_guest_start(g, g->hdr);
		return 1;
	case 7: /* a common configuration register: offset, width, value */
		if (size < 7)
			return 0;
		fake_virtio_write(g->vd, data[1] % sizeof(struct virtio_pci_common_cfg),
				  1u << (data[2] & 3), (uint32_t)le_load(data + 3, 4));
		return 7;
	default:
		fake_machine_save_restore();
		fake_guest_serve(g);
		return 1;
	}
}

void fake_guest_run(struct fake_guest *g, const uint8_t *data, size_t size,
		    size_t (*op)(const uint8_t *data, size_t size))
{
	size_t n;

	if (size < FAKE_GUEST_HEADER)
		return;
	fake_guest_start(g, data);
	for (data += FAKE_GUEST_HEADER, size -= FAKE_GUEST_HEADER; size; data += n, size -= n) {
		n = (data[0] & 0xf) < FAKE_GUEST_OPS ? fake_guest_op(g, data, size)
						     : op(data, size);
		if (!n)
			break;
		fake_guest_check(g);
	}
}
