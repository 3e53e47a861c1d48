/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's PCI and virtio-pci driver side for the fuzz targets, and the I/O thread's
 * work done on the caller's thread (fake_virtio.h). */
#include "fake_virtio.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_machine.h"
#include "lib/le.h"
#include "vmm/chardev.h"
#include "vmm/device.h"
#include "vmm/pci.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/virtio.h"
#include "vmm/x86/layout.h"

/* The model's class (listed in src/vmm/device_table.c): its state sections. */
extern const struct device_class virtio_rng_class, virtio_console_class, virtio_net_class;

#define SERVE_ROUNDS 1000

/* ---- the devices ---- */

struct virtio_dev *fake_virtio_rng(void)
{
	static struct virtio_dev *vd;

	if (!vd) {
		FAKE_CHECK(virtio_rng_create(fake_machine(), 0, &vd) == 0, "virtio-rng");
		FAKE_CHECK(device_state_register(fake_machine(), &virtio_rng_class, vd->pci.slot,
						 vd) == 0,
			   "virtio-rng state sections");
	}
	return vd;
}

struct virtio_dev *fake_virtio_console(void)
{
	static struct virtio_dev *vd;
	const struct chardev_spec off = {CHARDEV_OFF, NULL};
	char err[256] = "";

	if (!vd) {
		FAKE_CHECK(virtio_console_create(fake_machine(), 0, &off, NULL, &vd, err,
						 sizeof(err)) == 0,
			   "virtio-console: %s", err);
		FAKE_CHECK(device_state_register(fake_machine(), &virtio_console_class,
						 vd->pci.slot, vd) == 0,
			   "virtio-console state sections");
	}
	return vd;
}

struct virtio_dev *fake_virtio_net(int *peer)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
	static struct virtio_dev *vd;
	static int sv[2];
	static uint8_t frame[64 * 1024];

	if (!vd) {
		FAKE_CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) ==
				   0,
			   "socketpair");
		FAKE_CHECK(virtio_net_create_fd(fake_machine(), 0, &sv[0], 1, "fuzz0", mac, &vd) ==
				   0,
			   "virtio-net");
		FAKE_CHECK(device_state_register(fake_machine(), &virtio_net_class, vd->pci.slot,
						 vd) == 0,
			   "virtio-net state sections");
	}
	while (recv(sv[0], frame, sizeof(frame), MSG_DONTWAIT) >= 0)
		;
	while (recv(sv[1], frame, sizeof(frame), MSG_DONTWAIT) >= 0)
		;
	*peer = sv[1];
	return vd;
}

struct virtio_dev *fake_virtio_net_mq(int peer[2])
{
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x5a};
	static struct virtio_dev *vd;
	static int sv[2][2];
	static uint8_t frame[64 * 1024];

	if (!vd) {
		int fds[2];

		for (unsigned k = 0; k < 2; k++) {
			FAKE_CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
					      sv[k]) == 0,
				   "socketpair");
			fds[k] = sv[k][0];
		}
		FAKE_CHECK(virtio_net_create_fd(fake_machine(), 0, fds, 2, "fuzzmq0", mac, &vd) ==
				   0,
			   "virtio-net with two queue pairs");
		FAKE_CHECK(device_state_register(fake_machine(), &virtio_net_class, vd->pci.slot,
						 vd) == 0,
			   "virtio-net state sections");
	}
	for (unsigned k = 0; k < 2; k++) {
		for (unsigned j = 0; j < 2; j++)
			while (recv(sv[k][j], frame, sizeof(frame), MSG_DONTWAIT) >= 0)
				;
		peer[k] = sv[k][1];
	}
	return vd;
}

void fake_virtio_devices(struct virtio_dev *dev[FAKE_VIRTIO_NDEV], int *net_peer)
{
	static bool paused;

	dev[0] = fake_virtio_rng();
	dev[1] = fake_virtio_console();
	dev[2] = fake_virtio_net(net_peer);
	if (!paused)
		fake_machine_pause(true);
	paused = true;
}

void fake_virtio_serve_all(struct virtio_dev *const dev[FAKE_VIRTIO_NDEV], int net_peer)
{
	static uint8_t frame[256];
	unsigned i;

	for (i = 0; i < FAKE_VIRTIO_NDEV; i++)
		fake_virtio_serve(dev[i]);
	fake_chardev_flush(fake_chardev(0));
	while (read(net_peer, frame, sizeof(frame)) >= 0)
		;
}

void fake_virtio_check_all(struct virtio_dev *const dev[FAKE_VIRTIO_NDEV])
{
	unsigned i, held = 0;

	for (i = 0; i < FAKE_VIRTIO_NDEV; i++) {
		fake_pci_check(&dev[i]->pci);
		held += fake_virtio_check(dev[i]);
	}
	FAKE_CHECK(held == fake_ioeventfds(), "%u ioeventfds registered, the devices hold %u",
		   fake_ioeventfds(), held);
}

/* ---- PCI ---- */

uint64_t fake_ecam_read(unsigned slot, unsigned off, unsigned size)
{
	return fake_mmio_read(LAYOUT_PCI_ECAM + ((uint64_t)(slot & 31) << 15) + (off & 0xfff),
			      size);
}

void fake_ecam_write(unsigned slot, unsigned off, unsigned size, uint64_t value)
{
	fake_mmio_write(LAYOUT_PCI_ECAM + ((uint64_t)(slot & 31) << 15) + (off & 0xfff), size,
			value);
}

uint64_t fake_pci_bar(const struct pci_dev *d, unsigned bar)
{
	return bar < PCI_NUM_BARS && d->bars[bar].mapped ? d->bars[bar].map_addr : 0;
}

static bool in_window(uint64_t a, uint64_t size)
{
	uint64_t w64 = pci_window64_base(fake_machine()->def->memory, false);
	uint64_t e64 = pci_window64_end(fake_machine()->def->memory, false, 0);

	if (a >= LAYOUT_PCI_MMIO32 &&
	    a - LAYOUT_PCI_MMIO32 <= LAYOUT_PCI_MMIO32_END - LAYOUT_PCI_MMIO32 - size)
		return true;
	return a >= w64 && a - w64 <= e64 - w64 - size;
}

static void check_msix(const struct pci_dev *d)
{
	uint16_t ctrl = (uint16_t)le_load(d->cfg + d->msix_cap + 2, 2);
	unsigned v;

	FAKE_CHECK((ctrl & 0x7ff) == d->msix_nvec - 1, "%s: MSI-X table size field 0x%x", d->name,
		   ctrl);
	FAKE_CHECK(d->msix_enabled == !!(ctrl & PCI_MSIX_CTRL_ENABLE) &&
			   d->msix_fmask == !!(ctrl & PCI_MSIX_CTRL_FMASK),
		   "%s: MSI-X flags differ from message control 0x%x", d->name, ctrl);
	FAKE_CHECK(d->msix_nvec == 64 || !(d->msix_pending >> d->msix_nvec),
		   "%s: pending bits 0x%llx beyond %u vectors", d->name,
		   (unsigned long long)d->msix_pending, d->msix_nvec);
	for (v = 0; v < d->msix_nvec; v++) {
		const struct pci_msix_entry *e = &d->msix_table[v];
		uint64_t addr;
		uint32_t data;

		FAKE_CHECK(!(e->addr_lo & 3) && e->ctrl <= 1, "%s: vector %u holds 0x%x/0x%x",
			   d->name, v, e->addr_lo, e->ctrl);
		if (!d->msix_enabled || d->msix_fmask || (e->ctrl & 1))
			continue;
		/* Deliverable: nothing left pending, and KVM routes the message it holds. */
		FAKE_CHECK(!(d->msix_pending >> v & 1), "%s: vector %u deliverable but pending",
			   d->name, v);
		if ((e->addr_lo & 0xfff00000u) != 0xfee00000u)
			continue;
		FAKE_CHECK(fake_msi_route(d->msix_gsi_base + v, &addr, &data) &&
				   addr == ((uint64_t)e->addr_hi << 32 | e->addr_lo) &&
				   data == e->data,
			   "%s: vector %u (GSI %u) unmasked without its route", d->name, v,
			   d->msix_gsi_base + v);
	}
}

void fake_pci_check(const struct pci_dev *d)
{
	bool mem = le_load(d->cfg + PCI_COMMAND, 2) & PCI_CMD_MEM;
	unsigned i;

	for (i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &d->bars[i];
		uint64_t reg;
		bool want;

		if (!b->size) {
			FAKE_CHECK((i > 0 && d->bars[i - 1].is64) ||
					   !le_load(d->cfg + PCI_BAR0 + 4 * i, 4),
				   "%s: unimplemented BAR %u reads 0x%llx", d->name, i,
				   (unsigned long long)le_load(d->cfg + PCI_BAR0 + 4 * i, 4));
			continue;
		}
		reg = le_load(d->cfg + PCI_BAR0 + 4 * i, 4) & ~0xfull;
		if (b->is64)
			reg |= le_load(d->cfg + PCI_BAR0 + 4 * (i + 1), 4) << 32;
		FAKE_CHECK(!(reg & (b->size - 1)), "%s: BAR %u at 0x%llx, size 0x%llx", d->name, i,
			   (unsigned long long)reg, (unsigned long long)b->size);
		want = mem && reg && in_window(reg, b->size);
		FAKE_CHECK(b->mapped == want && (!want || b->map_addr == reg),
			   "%s: BAR %u at 0x%llx %s decoding (memory %s)", d->name, i,
			   (unsigned long long)reg, b->mapped ? "is" : "is not",
			   mem ? "on" : "off");
	}
	if (d->msix_cap)
		check_msix(d);
}

/* ---- virtio-pci ---- */

uint64_t fake_virtio_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
	uint64_t bar = fake_pci_bar(&vd->pci, VIRTIO_BAR);

	return bar ? fake_mmio_read(bar + off, size) : ~0ull;
}

void fake_virtio_write(struct virtio_dev *vd, unsigned off, unsigned size, uint64_t value)
{
	uint64_t bar = fake_pci_bar(&vd->pci, VIRTIO_BAR);

	if (bar)
		fake_mmio_write(bar + off, size, value);
}

static void write64(struct virtio_dev *vd, unsigned off, uint64_t v)
{
	fake_virtio_write(vd, off, 4, (uint32_t)v);
	fake_virtio_write(vd, off + 4, 4, v >> 32);
}

bool fake_virtio_start(struct virtio_dev *vd, uint64_t features, const struct fake_vq *q,
		       unsigned nq)
{
	unsigned slot = vd->pci.slot, i;
	uint64_t offered, msix;
	uint8_t status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	fake_ecam_write(slot, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	/* MSI-X as Linux brings it up (unless it is on already): messages written while the
	 * function is masked, so KVM's routes are set once, when it is enabled. */
	msix = vd->pci.msix_enabled ? 0 : fake_pci_bar(&vd->pci, VIRTIO_MSIX_BAR);
	for (i = 0; msix && i < vd->pci.msix_nvec; i++) {
		fake_mmio_write(msix + 16 * i, 8, 0xfee00000u);
		fake_mmio_write(msix + 16 * i + 8, 4, 0x30 + i);
	}
	fake_ecam_write(slot, vd->pci.msix_cap + 2u, 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	for (i = 0; msix && i < vd->pci.msix_nvec; i++)
		fake_mmio_write(msix + 16 * i + 12, 4, 0);
	fake_ecam_write(slot, vd->pci.msix_cap + 2u, 2, PCI_MSIX_CTRL_ENABLE);
	fake_virtio_write(vd, FAKE_CC(device_status), 1, 0);
	fake_virtio_write(vd, FAKE_CC(device_status), 1, VIRTIO_STATUS_ACKNOWLEDGE);
	fake_virtio_write(vd, FAKE_CC(device_status), 1, status);
	fake_virtio_write(vd, FAKE_CC(device_feature_select), 4, 0);
	offered = (uint32_t)fake_virtio_read(vd, FAKE_CC(device_feature), 4);
	fake_virtio_write(vd, FAKE_CC(device_feature_select), 4, 1);
	offered |= fake_virtio_read(vd, FAKE_CC(device_feature), 4) << 32;
	features = (features | 1ull << VIRTIO_F_VERSION_1) & offered;
	fake_virtio_write(vd, FAKE_CC(guest_feature_select), 4, 0);
	fake_virtio_write(vd, FAKE_CC(guest_feature), 4, (uint32_t)features);
	fake_virtio_write(vd, FAKE_CC(guest_feature_select), 4, 1);
	fake_virtio_write(vd, FAKE_CC(guest_feature), 4, features >> 32);
	status |= VIRTIO_STATUS_FEATURES_OK;
	fake_virtio_write(vd, FAKE_CC(device_status), 1, status);
	if (!(fake_virtio_read(vd, FAKE_CC(device_status), 1) & VIRTIO_STATUS_FEATURES_OK))
		return false;
	fake_virtio_write(vd, FAKE_CC(msix_config), 2, 0);
	for (i = 0; i < nq; i++) {
		fake_virtio_write(vd, FAKE_CC(queue_select), 2, i);
		fake_virtio_write(vd, FAKE_CC(queue_size), 2, q[i].size);
		fake_virtio_write(vd, FAKE_CC(queue_msix_vector), 2, q[i].vector);
		write64(vd, FAKE_CC(queue_desc_lo), q[i].desc);
		write64(vd, FAKE_CC(queue_avail_lo), q[i].avail);
		write64(vd, FAKE_CC(queue_used_lo), q[i].used);
		fake_virtio_write(vd, FAKE_CC(queue_enable), 2, 1);
		if (fake_virtio_read(vd, FAKE_CC(queue_enable), 2) != 1)
			return false;
	}
	fake_virtio_write(vd, FAKE_CC(device_status), 1, status | VIRTIO_STATUS_DRIVER_OK);
	return (fake_virtio_read(vd, FAKE_CC(device_status), 1) &
		(VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) == VIRTIO_STATUS_DRIVER_OK;
}

void fake_virtio_notify(struct virtio_dev *vd, unsigned q)
{
	fake_virtio_write(vd, VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * q, 2, q);
}

/* Event tags (virtio/pci.c): a queue's index, an fd with bit 16 set, or all ones for the
 * thread's own wake-up eventfd. */
bool fake_virtio_restart(struct virtio_dev *vd, uint64_t features, unsigned nq, uint16_t qsize,
			 uint64_t stride)
{
	struct fake_vq q[VIRTIO_MAX_QUEUES];

	fake_machine_reset();
	fake_virtio_serve(vd);
	for (unsigned i = 0; i < nq && i < VIRTIO_MAX_QUEUES; i++)
		q[i] = (struct fake_vq){.size = qsize,
					.vector = (uint16_t)(i + 1),
					.desc = stride * i,
					.avail = stride * i + 0x100,
					.used = stride * i + 0x200};
	return nq <= VIRTIO_MAX_QUEUES && fake_virtio_start(vd, features, q, nq);
}

void fake_virtio_queue_notify(struct virtio_dev *vd, unsigned q)
{
	pthread_mutex_lock(&vd->lock);
	vd->ops->queue_notify(vd, q);
	pthread_mutex_unlock(&vd->lock);
}

uint16_t fake_virtio_used_idx(uint64_t used)
{
	return le16_load(fake_ram(used + 2, 2));
}

/* One round of thread t's events; false when it had none. */
static bool serve_thread(struct virtio_dev *vd, unsigned t)
{
	struct virtio_iothread *io = &vd->io[t];
	struct epoll_event evs[8];
	int n = epoll_wait(io->epfd, evs, 8, 0), i;

	FAKE_CHECK(n >= 0, "epoll_wait on %s", vd->ops->name);
	for (i = 0; i < n; i++) {
		uint32_t tag = evs[i].data.u32;
		uint64_t cnt;

		if (tag == UINT32_MAX) {
			FAKE_CHECK(read(io->stop_fd, &cnt, sizeof(cnt)) == sizeof(cnt),
				   "wake-up eventfd");
			continue;
		}
		pthread_mutex_lock(&vd->lock);
		if (tag >= vd->nqueues)
			vd->ops->fd_event(vd, (int)(tag & 0xffff), evs[i].events);
		else if (read(vd->q[tag].kick_fd, &cnt, sizeof(cnt)) == sizeof(cnt) &&
			 virtio_queue_ready(vd, tag))
			vd->ops->queue_notify(vd, tag);
		pthread_mutex_unlock(&vd->lock);
	}
	return n > 0;
}

void fake_virtio_serve(struct virtio_dev *vd)
{
	unsigned round;

	for (round = 0; round < SERVE_ROUNDS; round++) {
		bool any = false;

		/* Every I/O thread's set, as the device's threads would (one per pair). */
		for (unsigned t = 0; t < vd->nthreads; t++)
			any |= serve_thread(vd, t);
		if (!any)
			return;
	}
	FAKE_CHECK(false, "%s keeps its I/O thread busy (%u rounds of events)", vd->ops->name,
		   SERVE_ROUNDS);
}

unsigned fake_virtio_check(struct virtio_dev *vd)
{
	uint64_t bar = fake_pci_bar(&vd->pci, VIRTIO_BAR);
	unsigned i, held = 0;

	FAKE_CHECK(vd->config_vector == VIRTIO_NO_VECTOR || vd->config_vector < vd->pci.msix_nvec,
		   "%s: configuration vector %u", vd->ops->name, vd->config_vector);
	FAKE_CHECK(!(vd->status & VIRTIO_STATUS_DRIVER_OK) ||
			   (vd->status & VIRTIO_STATUS_FEATURES_OK),
		   "%s: DRIVER_OK without FEATURES_OK", vd->ops->name);
	FAKE_CHECK(!(vd->status & VIRTIO_STATUS_FEATURES_OK) ||
			   (!(vd->driver_features & ~vd->host_features) &&
			    virtio_has_feature(vd, VIRTIO_F_VERSION_1)),
		   "%s: features 0x%llx accepted", vd->ops->name,
		   (unsigned long long)vd->driver_features);
	FAKE_CHECK(vd->isr <= 3, "%s: ISR 0x%x", vd->ops->name, vd->isr);
	for (i = 0; i < vd->nqueues; i++) {
		const struct virtio_queue *q = &vd->q[i];
		const struct vq *vq = &q->vq;

		FAKE_CHECK(q->vector == VIRTIO_NO_VECTOR || q->vector < vd->pci.msix_nvec,
			   "%s: queue %u vector %u", vd->ops->name, i, q->vector);
		FAKE_CHECK(q->enabled == vq->ready, "%s: queue %u enabled %d, ready %d",
			   vd->ops->name, i, q->enabled, vq->ready);
		if (q->enabled) {
			FAKE_CHECK(vq->size == q->size && vq->size <= q->max &&
					   !(vq->size & (vq->size - 1)),
				   "%s: queue %u of size %u (%u)", vd->ops->name, i, vq->size,
				   q->size);
			FAKE_CHECK(fake_ram_holds(vq->desc, 16u * vq->size) &&
					   fake_ram_holds(vq->avail, 6u + 2u * vq->size) &&
					   fake_ram_holds(vq->used, 6u + 8u * vq->size),
				   "%s: queue %u rings outside guest RAM", vd->ops->name, i);
		}
		if (!q->ioeventfd)
			continue;
		held++;
		FAKE_CHECK(
			bar && q->notify_addr == bar + VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * i &&
				fake_ioeventfd_at(q->notify_addr) == q->kick_fd,
			"%s: queue %u ioeventfd at 0x%llx, BAR at 0x%llx", vd->ops->name, i,
			(unsigned long long)q->notify_addr, (unsigned long long)bar);
	}
	return held;
}
