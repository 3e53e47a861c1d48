/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-net's kernel data path: one vhost-net instance per queue pair (vhost_net.h). */
#include "vmm/virtio/vhost_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/log.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/virtio.h"

/* linux/vhost.h brings the kernel's ring structures, whose names queue.h has for its own. */
#define vring_desc linux_vring_desc
#include <linux/vhost.h>
#undef vring_desc

#define VHOST_LOG_PAGE 4096u

static struct log_ratelimit vhost_rl = LOG_RATELIMIT_INIT(5000, 5);
/* The ring features the device offers the guest (virtio/pci.c, virtio/net.c): the kernel
 * must take each of them, whatever the guest then acks. */
#define VHOST_NET_NEED                                                                             \
	(1ull << VIRTIO_F_VERSION_1 | 1ull << NET_F_MRG_RXBUF | 1ull << VIRTIO_F_INDIRECT_DESC |   \
	 1ull << VIRTIO_F_EVENT_IDX)

struct vhost_net {
	int fd;
	struct virtio_dev *vd;
	unsigned rxq; /* the pair's receive queue; its transmit queue is rxq + 1 */
	int tap;
	uint64_t kfeatures; /* what the kernel offers */
	/* The driver's features the rings were handed over with (checked then: FEATURES_OK).
	 * Not vd->driver_features later: a driver that clears FEATURES_OK without a reset
	 * writes any bits there while the kernel still serves the rings. */
	uint64_t features;
	bool running;	/* backend attached: the kernel serves the rings */
	bool failed;	/* a start failed: the user-space path serves this pair from now on */
	bool unwatched; /* the queues' kicks are out of the I/O thread's epoll set */
	bool log_on;	/* VHOST_F_LOG_ALL asked for */
	/* Each ring's call: the irqfd of its vector while that may be signalled, else relay
	 * (an eventfd the I/O thread turns into pci_msix_notify: a masked vector's pending
	 * bit), or -1 without a vector. call is what the kernel has now. */
	int relay[2], call[2];
	uint64_t *log; /* one bit per 4 KiB of guest-physical space (VHOST_SET_LOG_BASE) */
	size_t log_words;
};

int vhost_net_open(int fd, struct virtio_dev *vd, unsigned rxq, int tap, struct vhost_net **out,
		   char *why, size_t len)
{
	const struct guest_mem *mem = vd->m->mem;
	struct vhost_net *h;
	uint64_t end = 0, f = 0;

	if (ioctl(fd, VHOST_SET_OWNER) < 0) {
		int e = errno;

		snprintf(why, len, "VHOST_SET_OWNER refused: %s", strerror(e));
		close(fd);
		return -e;
	}
	if (ioctl(fd, VHOST_GET_FEATURES, &f) < 0) {
		int e = errno;

		snprintf(why, len, "VHOST_GET_FEATURES refused: %s", strerror(e));
		close(fd);
		return -e;
	}
	if ((f & VHOST_NET_NEED) != VHOST_NET_NEED || !(f >> VHOST_F_LOG_ALL & 1)) {
		snprintf(why, len,
			 "feature mismatch: the host's vhost-net offers 0x%llx, the device needs "
			 "0x%llx and dirty logging",
			 (unsigned long long)f, (unsigned long long)VHOST_NET_NEED);
		close(fd);
		return -EOPNOTSUPP;
	}
	for (unsigned i = 0; i < mem->nregions; i++)
		if (mem->regions[i].gpa + mem->regions[i].size > end)
			end = mem->regions[i].gpa + mem->regions[i].size;
	h = calloc(1, sizeof(*h));
	if (h) {
		h->log_words = (size_t)((end / VHOST_LOG_PAGE + 63) / 64);
		h->log = calloc(h->log_words ? h->log_words : 1, sizeof(uint64_t));
	}
	if (!h || !h->log) {
		free(h);
		snprintf(why, len, "out of memory");
		close(fd);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < 2; i++) {
		h->call[i] = -1;
		h->relay[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (h->relay[i] < 0 || virtio_dev_watch(vd, h->relay[i], EPOLLIN)) {
			int e = errno;

			snprintf(why, len, "the interrupt relay's eventfd: %s", strerror(e));
			h->fd = fd;
			vhost_net_close(h);
			return -e;
		}
	}
	h->fd = fd;
	h->vd = vd;
	h->rxq = rxq;
	h->tap = tap;
	h->kfeatures = f;
	*out = h;
	return 0;
}

void vhost_net_close(struct vhost_net *h)
{
	if (!h)
		return;
	close(h->fd);
	for (unsigned i = 0; i < 2; i++)
		if (h->relay[i] > 0)
			close(h->relay[i]);
	free(h->log);
	free(h);
}

bool vhost_net_running(const struct vhost_net *h)
{
	return h && h->running;
}

/* The queues' kicks go to the kernel only (unwatch) or back to the I/O thread. */
static void vhost_watch(struct vhost_net *h, bool watch)
{
	if (h->unwatched != watch)
		return;
	for (unsigned i = 0; i < 2; i++) {
		int r = virtio_queue_watch(h->vd, h->rxq + i, watch);

		if (r)
			log_warn("virtio-net %02x: queue %u's kick watch: %s", h->vd->pci.slot,
				 h->rxq + i, strerror(-r));
	}
	h->unwatched = !watch;
}

static int vhost_set_mem(struct vhost_net *h)
{
	const struct guest_mem *mem = h->vd->m->mem;
	_Alignas(struct vhost_memory)
		uint8_t buf[sizeof(struct vhost_memory) +
			    MEM_MAX_REGIONS * sizeof(struct vhost_memory_region)];
	struct vhost_memory *t = (struct vhost_memory *)buf;

	memset(buf, 0, sizeof(buf));
	t->nregions = mem->nregions;
	for (unsigned i = 0; i < mem->nregions; i++) {
		t->regions[i].guest_phys_addr = mem->regions[i].gpa;
		t->regions[i].memory_size = mem->regions[i].size;
		t->regions[i].userspace_addr = (uintptr_t)mem->regions[i].hva;
	}
	return ioctl(h->fd, VHOST_SET_MEM_TABLE, t) < 0 ? -errno : 0;
}

static int vhost_set_addr(struct vhost_net *h, unsigned i)
{
	const struct virtio_queue *q = &h->vd->q[h->rxq + i];
	struct vhost_vring_addr a = {
		.index = i,
		.flags = h->log_on ? 1u << VHOST_VRING_F_LOG : 0,
		.desc_user_addr = (uintptr_t)q->vq.desc,
		.avail_user_addr = (uintptr_t)q->vq.avail,
		.used_user_addr = (uintptr_t)q->vq.used,
		.log_guest_addr = q->device,
	};

	return ioctl(h->fd, VHOST_SET_VRING_ADDR, &a) < 0 ? -errno : 0;
}

static int vhost_set_features(struct vhost_net *h)
{
	uint64_t f = (h->features & h->kfeatures) | (h->log_on ? 1ull << VHOST_F_LOG_ALL : 0);

	return ioctl(h->fd, VHOST_SET_FEATURES, &f) < 0 ? -errno : 0;
}

/* Ring i's call now: the irqfd of its queue's MSI-X vector while the vector may be signalled
 * (KVM routes it as the vector's message: a new message needs nothing here), the relay while
 * it is masked (or MSI-X off), none without a vector. */
static int vhost_call_fd(struct vhost_net *h, unsigned i)
{
	struct virtio_dev *vd = h->vd;
	const struct virtio_queue *q = &vd->q[h->rxq + i];

	if (q->vector == VIRTIO_NO_VECTOR || q->vector >= vd->pci.msix_nvec)
		return -1;
	return pci_msix_deliverable(&vd->pci, q->vector) && vd->pci.msix_irqfd[q->vector] >= 0
		       ? vd->pci.msix_irqfd[q->vector]
		       : h->relay[i];
}

static int vhost_set_call(struct vhost_net *h, unsigned i)
{
	struct vhost_vring_file call = {i, vhost_call_fd(h, i)};

	if (call.fd == h->call[i])
		return 0;
	if (ioctl(h->fd, VHOST_SET_VRING_CALL, &call) < 0)
		return -errno;
	h->call[i] = call.fd;
	return 0;
}

void vhost_net_reroute(struct vhost_net *h)
{
	for (unsigned i = 0; h->running && i < 2; i++) {
		int r = vhost_set_call(h, i);

		if (r)
			log_warn_ratelimited(&vhost_rl,
					     "virtio-net %02x: VHOST_SET_VRING_CALL on ring %u: %s",
					     h->vd->pci.slot, i, strerror(-r));
	}
}

bool vhost_net_fd_event(struct vhost_net *h, int fd)
{
	for (unsigned i = 0; i < 2; i++) {
		const struct virtio_queue *q = &h->vd->q[h->rxq + i];
		uint64_t n;

		if (fd != h->relay[i])
			continue;
		if (read(fd, &n, sizeof(n)) == sizeof(n) && q->vector != VIRTIO_NO_VECTOR) {
			h->vd->isr |= 1;
			pci_msix_notify(&h->vd->pci, q->vector); /* pending while masked */
		}
		return true;
	}
	return false;
}

static int vhost_ring(struct vhost_net *h, unsigned i, const char **step)
{
	const struct virtio_dev *vd = h->vd;
	const struct virtio_queue *q = &vd->q[h->rxq + i];
	struct vhost_vring_state num = {i, q->vq.size}, base = {i, q->vq.last_avail};
	struct vhost_vring_file kick = {i, q->kick_fd};
	int r;

	*step = "VHOST_SET_VRING_NUM";
	if (ioctl(h->fd, VHOST_SET_VRING_NUM, &num) < 0)
		return -errno;
	*step = "VHOST_SET_VRING_BASE";
	if (ioctl(h->fd, VHOST_SET_VRING_BASE, &base) < 0)
		return -errno;
	*step = "VHOST_SET_VRING_ADDR";
	r = vhost_set_addr(h, i);
	if (r)
		return r;
	*step = "VHOST_SET_VRING_KICK";
	if (ioctl(h->fd, VHOST_SET_VRING_KICK, &kick) < 0)
		return -errno;
	*step = "VHOST_SET_VRING_CALL";
	h->call[i] = -2; /* set it whatever it was */
	return vhost_set_call(h, i);
}

static void vhost_detach(struct vhost_net *h)
{
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file none = {i, -1};

		if (ioctl(h->fd, VHOST_NET_SET_BACKEND, &none) < 0)
			log_warn("virtio-net %02x: VHOST_NET_SET_BACKEND -1 on ring %u: %s",
				 h->vd->pci.slot, i, strerror(errno));
	}
}

int vhost_net_start(struct vhost_net *h)
{
	struct virtio_dev *vd = h->vd;
	const char *step = "VHOST_SET_FEATURES";
	uint64_t logbase = (uintptr_t)h->log;
	unsigned i = 0;
	int r;

	if (h->running || h->failed || vd->paused || !virtio_queue_ready(vd, h->rxq) ||
	    !virtio_queue_ready(vd, h->rxq + 1))
		return 0;
	h->features = vd->driver_features;
	r = vhost_set_features(h);
	if (!r) {
		step = "VHOST_SET_MEM_TABLE";
		r = vhost_set_mem(h);
	}
	if (!r) {
		step = "VHOST_SET_LOG_BASE";
		r = ioctl(h->fd, VHOST_SET_LOG_BASE, &logbase) < 0 ? -errno : 0;
	}
	for (i = 0; !r && i < 2; i++)
		r = vhost_ring(h, i, &step);
	if (r)
		goto fail;
	vhost_watch(h, false);
	for (i = 0; i < 2; i++) {
		struct vhost_vring_file be = {i, h->tap};

		if (ioctl(h->fd, VHOST_NET_SET_BACKEND, &be) < 0) {
			r = -errno;
			step = "VHOST_NET_SET_BACKEND";
			if (i) {
				/* The receive ring was the kernel's for a moment: it may have
				 * taken (and returned) chains. Take the rings back as a stop
				 * does, at the kernel's indexes, or the user-space path would
				 * fill used entries the kernel filled. */
				h->running = true;
				vhost_net_stop(h, true);
			} else {
				vhost_watch(h, true);
			}
			goto fail;
		}
	}
	h->running = true;
	return 0;
fail:
	/* The rings stay the user-space path's, from the indexes they have now. */
	h->failed = true;
	log_warn("virtio-net %02x: vhost-net: %s refused (queue pair %u): %s; the user-space "
		 "data path serves the adapter from now on",
		 vd->pci.slot, step, h->rxq / 2, strerror(-r));
	return r;
}

void vhost_net_give_up(struct vhost_net *h)
{
	if (h)
		h->failed = true;
}

void vhost_net_stop(struct vhost_net *h, bool keep)
{
	struct virtio_dev *vd = h->vd;

	if (!h->running)
		return;
	vhost_detach(h);
	h->running = false;
	for (unsigned i = 0; i < 2; i++) {
		struct virtio_queue *q = &vd->q[h->rxq + i];
		struct vhost_vring_state s = {.index = i};

		if (ioctl(h->fd, VHOST_GET_VRING_BASE, &s) < 0) {
			log_warn("virtio-net %02x: VHOST_GET_VRING_BASE on ring %u: %s",
				 vd->pci.slot, i, strerror(errno));
			continue;
		}
		if (!keep || !q->vq.ready)
			continue;
		/* Where the kernel got to: the next avail entry it would take. Every chain it
		 * took is returned before the backend is detached, so the device's used index
		 * is that too: never the used ring's, which is guest memory (a driver that
		 * wrote another would make the saved state "in flight", unrestorable, and every
		 * later pause wait for chains that do not exist). The next interrupt is sent
		 * whatever the event index says. */
		q->vq.last_avail = (uint16_t)s.num;
		q->vq.used_idx = (uint16_t)s.num;
		q->vq.signalled_valid = false;
		if ((uint16_t)le_load(q->vq.used + 2, 2) != q->vq.used_idx)
			log_warn_ratelimited(&vhost_rl,
					     "virtio-net %02x: ring %u's used index is %u in guest "
					     "memory, %u taken: the device goes on from %u",
					     vd->pci.slot, i, (unsigned)le_load(q->vq.used + 2, 2),
					     q->vq.used_idx, q->vq.used_idx);
	}
	vhost_watch(h, true);
	if (keep)
		for (unsigned i = 0; i < 2; i++)
			virtio_kick(vd, h->rxq + i);
}

int vhost_net_log(struct vhost_net *h, bool on)
{
	int r = 0;

	h->log_on = on;
	if (!h->running)
		return 0;
	r = vhost_set_features(h);
	for (unsigned i = 0; !r && i < 2; i++)
		r = vhost_set_addr(h, i);
	return r;
}

size_t vhost_net_log_harvest(struct vhost_net *h, uint64_t *bitmap, size_t words)
{
	for (size_t i = 0; i < words && i < h->log_words; i++)
		bitmap[i] |= __atomic_exchange_n(&h->log[i], 0, __ATOMIC_ACQ_REL);
	return h->log_words;
}
