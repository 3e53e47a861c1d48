/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio 1.x modern PCI transport (virtio 1.2, 4.1) and each device's I/O thread. */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/le.h"
#include "lib/lock.h"
#include "vmm/fail_point.h"
#include "vmm/kvm.h"
#include "vmm/virtio/state.h"
#include "vmm/machine.h"
#include "vmm/seccomp_filter.h"

#define VIRTIO_PCI_VENDOR    0x1af4
#define VIRTIO_PCI_DEVICE(t) (0x1040 + (t))
#define VIRTIO_PCI_SUBSYS_ID 0x1100
#define VIRTIO_CAP_COMMON    1
#define VIRTIO_CAP_NOTIFY    2
#define VIRTIO_CAP_ISR	     3
#define VIRTIO_CAP_DEVICE    4
#define VIRTIO_CAP_PCI	     5
#define VIRTIO_COMMON_SIZE   0x38
#define VIRTIO_EV_STOP	     0xffffffffu
#define VIRTIO_EV_FD	     0x10000u

/* Common configuration register offsets (virtio_pci_common_cfg). */
enum {
	CC_DFSELECT = 0x00,
	CC_DF = 0x04,
	CC_GFSELECT = 0x08,
	CC_GF = 0x0c,
	CC_MSIX = 0x10,
	CC_NUMQ = 0x12,
	CC_STATUS = 0x14,
	CC_CFGGEN = 0x15,
	CC_Q_SELECT = 0x16,
	CC_Q_SIZE = 0x18,
	CC_Q_MSIX = 0x1a,
	CC_Q_ENABLE = 0x1c,
	CC_Q_NOFF = 0x1e,
	CC_Q_DESCLO = 0x20,
	CC_Q_DESCHI = 0x24,
	CC_Q_AVAILLO = 0x28,
	CC_Q_AVAILHI = 0x2c,
	CC_Q_USEDLO = 0x30,
	CC_Q_USEDHI = 0x34,
};

static void vd_warn(struct virtio_dev *vd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vd_warn(struct virtio_dev *vd, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!log_ratelimit_ok(&vd->rl))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("%s %02x.0: %s", vd->ops->name, vd->pci.slot, msg);
}

bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
	return vd->driver_features >> bit & 1;
}

bool virtio_queue_ready(struct virtio_dev *vd, unsigned q)
{
	return q < vd->nqueues && (vd->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(vd->status & VIRTIO_STATUS_NEEDS_RESET) && vd->q[q].enabled && vd->q[q].vq.ready;
}

void virtio_needs_reset(struct virtio_dev *vd, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vd_warn(vd, "device needs reset: %s", msg);
	if (vd->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vd->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (vd->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_config_changed(vd);
}

void virtio_config_changed(struct virtio_dev *vd)
{
	vd->config_gen++;
	vd->isr |= 2;
	if (vd->config_vector != VIRTIO_NO_VECTOR)
		pci_msix_notify(&vd->pci, vd->config_vector);
}

void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q)
{
	if (q >= vd->nqueues || !vq_need_notify(&vd->q[q].vq))
		return;
	vd->isr |= 1;
	if (vd->q[q].vector != VIRTIO_NO_VECTOR)
		pci_msix_notify(&vd->pci, vd->q[q].vector);
}

int virtio_pop(struct virtio_dev *vd, unsigned q, struct vq_chain *c)
{
	for (;;) {
		const char *why = NULL;
		int r;

		if (!virtio_queue_ready(vd, q))
			return 0;
		r = vq_pop(&vd->q[q].vq, c, &why);
		if (r >= 0)
			return r;
		if (r == VQ_BROKEN) {
			virtio_needs_reset(vd, "queue %u: %s", q, why);
			return 0;
		}
		vd_warn(vd, "queue %u: rejected chain at descriptor %u: %s", q, c->head, why);
		vq_push(&vd->q[q].vq, c->head, 0);
		virtio_queue_interrupt(vd, q);
	}
}

void virtio_kick(struct virtio_dev *vd, unsigned q)
{
	uint64_t one = 1;

	if (q < vd->nqueues && write(vd->q[q].kick_fd, &one, sizeof(one)) < 0)
		vd_warn(vd, "cannot kick queue %u: %s", q, strerror(errno));
}

/* ---- reset ---- */

static void virtio_reset_locked(struct virtio_dev *vd)
{
	unsigned i;

	vd->epoch++;
	vd->driver_features = 0;
	vd->dfselect = vd->gfselect = 0;
	vd->status = 0;
	vd->isr = 0;
	vd->config_vector = VIRTIO_NO_VECTOR;
	vd->queue_sel = 0;
	for (i = 0; i < vd->nqueues; i++) {
		struct virtio_queue *q = &vd->q[i];

		q->size = q->max;
		q->vector = VIRTIO_NO_VECTOR;
		q->enabled = false;
		q->irq_owed = false;
		q->desc = q->driver = q->device = 0;
		vq_disable(&q->vq);
	}
	if (vd->ops->reset)
		vd->ops->reset(vd);
}

/* ---- common configuration ---- */

static bool vector_ok(struct virtio_dev *vd, uint16_t v)
{
	return v == VIRTIO_NO_VECTOR || v < vd->pci.msix_nvec;
}

static uint32_t common_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
	struct virtio_queue *q = vd->queue_sel < vd->nqueues ? &vd->q[vd->queue_sel] : NULL;
	uint8_t img[VIRTIO_COMMON_SIZE] = {0};
	uint32_t v = 0;
	unsigned i;

#define PUT(o, n, val)                                                                             \
	do {                                                                                       \
		uint64_t _v = (val);                                                               \
		for (i = 0; i < (n); i++)                                                          \
			img[(o) + i] = (uint8_t)(_v >> (8 * i));                                   \
	} while (0)
	PUT(CC_DFSELECT, 4, vd->dfselect);
	PUT(CC_DF, 4, vd->dfselect < 2 ? vd->host_features >> (32 * vd->dfselect) : 0);
	PUT(CC_GFSELECT, 4, vd->gfselect);
	PUT(CC_GF, 4, vd->gfselect < 2 ? vd->driver_features >> (32 * vd->gfselect) : 0);
	PUT(CC_MSIX, 2, vd->config_vector);
	PUT(CC_NUMQ, 2, vd->nqueues);
	PUT(CC_STATUS, 1, vd->status);
	PUT(CC_CFGGEN, 1, vd->config_gen);
	PUT(CC_Q_SELECT, 2, vd->queue_sel);
	if (q) {
		PUT(CC_Q_SIZE, 2, q->size);
		PUT(CC_Q_MSIX, 2, q->vector);
		PUT(CC_Q_ENABLE, 2, q->enabled);
		PUT(CC_Q_NOFF, 2, vd->queue_sel);
		PUT(CC_Q_DESCLO, 8, q->desc);
		PUT(CC_Q_AVAILLO, 8, q->driver);
		PUT(CC_Q_USEDLO, 8, q->device);
	} else {
		PUT(CC_Q_MSIX, 2, VIRTIO_NO_VECTOR);
	}
#undef PUT
	if (off + size > VIRTIO_COMMON_SIZE)
		return 0;
	for (i = 0; i < size; i++)
		v |= (uint32_t)img[off + i] << (8 * i);
	return v;
}

static void set_status(struct virtio_dev *vd, uint8_t v)
{
	uint8_t old = vd->status;

	if (v == 0) {
		virtio_reset_locked(vd);
		return;
	}
	/* Only the bits a driver sets (virtio 1.2, 2.1): the rest would be kept, saved, and
	 * then refused by the restore (state.c), so a guest could make its VM unrestorable. */
	v &= VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |
	     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_FAILED;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		if ((vd->driver_features & ~vd->host_features) ||
		    !virtio_has_feature(vd, VIRTIO_F_VERSION_1)) {
			vd_warn(vd,
				"driver features 0x%llx refused (offered 0x%llx, VERSION_1 "
				"required)",
				(unsigned long long)vd->driver_features,
				(unsigned long long)vd->host_features);
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
		/* Virtio 1.x: no DRIVER_OK before the features were accepted. */
		vd_warn(vd, "DRIVER_OK without FEATURES_OK refused");
		v &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	}
	/* The device's own bit survives driver writes. */
	vd->status = v | (old & VIRTIO_STATUS_NEEDS_RESET);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		unsigned i;

		if (vd->ops->driver_ok)
			vd->ops->driver_ok(vd);
		for (i = 0; i < vd->nqueues; i++)
			if (vd->q[i].enabled)
				virtio_kick(vd, i); /* chains posted before DRIVER_OK */
	}
}

static void queue_enable(struct virtio_dev *vd, struct virtio_queue *q, unsigned qi)
{
	enum vq_enable_error e;

	if (q->enabled)
		return;
	if (q->size > q->max) {
		virtio_needs_reset(vd, "queue %u: size %u is larger than the %u this device offers",
				   qi, q->size, q->max);
		return;
	}
	e = vq_enable(&q->vq, vd->m->mem, q->size, q->desc, q->driver, q->device,
		      virtio_has_feature(vd, VIRTIO_F_INDIRECT_DESC),
		      virtio_has_feature(vd, VIRTIO_F_EVENT_IDX));
	if (e != VQ_OK) {
		virtio_needs_reset(vd, "queue %u of size %u at 0x%llx/0x%llx/0x%llx: %s", qi,
				   q->size, (unsigned long long)q->desc,
				   (unsigned long long)q->driver, (unsigned long long)q->device,
				   vq_enable_error_str(e));
		return;
	}
	q->enabled = true;
	if (vd->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_kick(vd, qi);
}

static void set64(uint64_t *f, bool hi, uint32_t v)
{
	*f = hi ? (*f & 0xffffffffull) | (uint64_t)v << 32 : (*f & ~0xffffffffull) | v;
}

static void common_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t v)
{
	struct virtio_queue *q = vd->queue_sel < vd->nqueues ? &vd->q[vd->queue_sel] : NULL;
	bool q_locked = q && q->enabled; /* queue fields are read-only once enabled */
	bool feat_locked = vd->status & VIRTIO_STATUS_FEATURES_OK;

	switch (off | size << 8) {
	case CC_DFSELECT | 4 << 8:
		vd->dfselect = v;
		break;
	case CC_GFSELECT | 4 << 8:
		vd->gfselect = v;
		break;
	case CC_GF | 4 << 8:
		if (feat_locked || vd->gfselect >= 2)
			break;
		set64(&vd->driver_features, vd->gfselect == 1, v);
		break;
	case CC_MSIX | 2 << 8:
		vd->config_vector = vector_ok(vd, (uint16_t)v) ? (uint16_t)v : VIRTIO_NO_VECTOR;
		break;
	case CC_STATUS | 1 << 8:
		set_status(vd, (uint8_t)v);
		break;
	case CC_Q_SELECT | 2 << 8:
		vd->queue_sel = (uint16_t)v;
		break;
	case CC_Q_SIZE | 2 << 8:
		if (q && !q_locked)
			q->size = (uint16_t)v; /* checked when the queue is enabled */
		break;
	case CC_Q_MSIX | 2 << 8:
		if (q)
			q->vector = vector_ok(vd, (uint16_t)v) ? (uint16_t)v : VIRTIO_NO_VECTOR;
		if (q && vd->ops->vectors_changed)
			vd->ops->vectors_changed(vd);
		break;
	case CC_Q_ENABLE | 2 << 8:
		if (q && v == 1)
			queue_enable(vd, q, vd->queue_sel);
		else if (q && v == 0 && q->enabled)
			virtio_needs_reset(vd, "queue %u disabled by writing 0 to queue_enable",
					   vd->queue_sel);
		break;
	case CC_Q_DESCLO | 4 << 8:
	case CC_Q_DESCHI | 4 << 8:
		if (q && !q_locked)
			set64(&q->desc, off == CC_Q_DESCHI, v);
		break;
	case CC_Q_AVAILLO | 4 << 8:
	case CC_Q_AVAILHI | 4 << 8:
		if (q && !q_locked)
			set64(&q->driver, off == CC_Q_AVAILHI, v);
		break;
	case CC_Q_USEDLO | 4 << 8:
	case CC_Q_USEDHI | 4 << 8:
		if (q && !q_locked)
			set64(&q->device, off == CC_Q_USEDHI, v);
		break;
	default:
		vd_warn(vd, "ignored %u-byte write of 0x%x to common configuration offset 0x%x",
			size, v, off);
		break;
	}
}

/* ---- the transport BAR ---- */

static uint64_t vd_bar_read(void *opaque, unsigned bar, uint64_t off, unsigned size)
{
	struct virtio_dev *vd = opaque;
	uint64_t v = 0;

	if (bar != VIRTIO_BAR || size == 8)
		return 0;
	pthread_mutex_lock(&vd->lock);
	if (off < VIRTIO_COMMON_OFF + VIRTIO_COMMON_SIZE) {
		v = common_read(vd, (unsigned)off, size);
	} else if (off == VIRTIO_ISR_OFF) {
		v = vd->isr; /* reading clears it */
		vd->isr = 0;
	} else if (off >= VIRTIO_DEVICE_OFF && off - VIRTIO_DEVICE_OFF + size <= vd->config_size) {
		uint8_t buf[4] = {0};

		vd->ops->config_read(vd, (unsigned)(off - VIRTIO_DEVICE_OFF), buf, size);
		v = le32_load(buf);
	}
	pthread_mutex_unlock(&vd->lock);
	return v;
}

static void vd_bar_write(void *opaque, unsigned bar, uint64_t off, unsigned size, uint64_t value)
{
	struct virtio_dev *vd = opaque;

	if (bar != VIRTIO_BAR)
		return;
	if (off >= VIRTIO_NOTIFY_OFF &&
	    off < VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * vd->nqueues) {
		/* A notification KVM did not turn into an ioeventfd signal (odd width, or no
		 * ioeventfd): the same path. */
		virtio_kick(vd, (unsigned)((off - VIRTIO_NOTIFY_OFF) / VIRTIO_NOTIFY_MULT));
		return;
	}
	if (size == 8)
		return;
	pthread_mutex_lock(&vd->lock);
	if (off < VIRTIO_COMMON_OFF + VIRTIO_COMMON_SIZE) {
		common_write(vd, (unsigned)off, size, (uint32_t)value);
	} else if (off >= VIRTIO_DEVICE_OFF && off - VIRTIO_DEVICE_OFF + size <= vd->config_size &&
		   vd->ops->config_write) {
		uint8_t buf[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
				  (uint8_t)(value >> 24)};

		vd->ops->config_write(vd, (unsigned)(off - VIRTIO_DEVICE_OFF), buf, size);
	}
	pthread_mutex_unlock(&vd->lock);
}

/* The notify area moved: (de)register one KVM ioeventfd per queue. Host lock held. */
static void vd_bar_map(void *opaque, unsigned bar, uint64_t addr, bool mapped)
{
	struct virtio_dev *vd = opaque;
	unsigned i;

	if (bar != VIRTIO_BAR)
		return;
	for (i = 0; i < vd->nqueues; i++) {
		struct virtio_queue *q = &vd->q[i];
		int r;

		if (q->ioeventfd) {
			r = machine_ioeventfd(vd->m, q->notify_addr, 2, q->kick_fd, false);
			if (r)
				log_warn("%s: KVM_IOEVENTFD deassign at 0x%llx: %s", vd->ops->name,
					 (unsigned long long)q->notify_addr, strerror(-r));
			q->ioeventfd = false;
		}
		if (!mapped)
			continue;
		q->notify_addr = addr + VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * i;
		r = machine_ioeventfd(vd->m, q->notify_addr, 2, q->kick_fd, true);
		if (r)
			vd_warn(vd,
				"KVM_IOEVENTFD at 0x%llx: %s (notifications take the slow path)",
				(unsigned long long)q->notify_addr, strerror(-r));
		else
			q->ioeventfd = true;
	}
}

/* VIRTIO_PCI_CAP_PCI_CFG: a window onto the BARs through configuration space. */
struct pcicfg_window {
	uint8_t bar;
	uint32_t offset, length;
};

static struct pcicfg_window pcicfg_get(struct virtio_dev *vd)
{
	const uint8_t *c = vd->pci.cfg + vd->pcicfg_cap;
	struct pcicfg_window w;

	w.bar = c[4];
	memcpy(&w.offset, c + 8, 4);
	memcpy(&w.length, c + 12, 4);
	return w;
}

static void vd_cfg_write(void *opaque, unsigned off, unsigned size, uint32_t value)
{
	struct virtio_dev *vd = opaque;
	struct pcicfg_window w;

	if (!vd->pcicfg_cap || off != vd->pcicfg_cap + 16u)
		return;
	w = pcicfg_get(vd);
	if (w.length != size || (w.length != 1 && w.length != 2 && w.length != 4) ||
	    (uint64_t)w.offset + w.length > VIRTIO_BAR_SIZE)
		return;
	vd_bar_write(vd, w.bar, w.offset, size, value);
}

static void vd_cfg_read(void *opaque, unsigned off, unsigned size, uint32_t *value)
{
	struct virtio_dev *vd = opaque;
	struct pcicfg_window w;

	if (!vd->pcicfg_cap || off != vd->pcicfg_cap + 16u)
		return;
	w = pcicfg_get(vd);
	if (w.length != size || (w.length != 1 && w.length != 2 && w.length != 4) ||
	    (uint64_t)w.offset + w.length > VIRTIO_BAR_SIZE)
		return;
	*value = (uint32_t)vd_bar_read(vd, w.bar, w.offset, size);
}

static void vd_pci_reset(void *opaque)
{
	struct virtio_dev *vd = opaque;
	unsigned i;

	pthread_mutex_lock(&vd->lock);
	for (i = 0; i < vd->nqueues; i++)
		vd->q[i].ioeventfd = false; /* they went with the old KVM VM */
	virtio_reset_locked(vd);
	vd->config_gen = 0;
	pthread_mutex_unlock(&vd->lock);
}

static void vd_msix_changed(void *opaque)
{
	struct virtio_dev *vd = opaque;

	if (!vd->ops->vectors_changed)
		return;
	pthread_mutex_lock(&vd->lock);
	vd->ops->vectors_changed(vd);
	pthread_mutex_unlock(&vd->lock);
}

static const struct pci_dev_ops virtio_pci_ops = {
	.bar_read = vd_bar_read,
	.bar_write = vd_bar_write,
	.bar_map = vd_bar_map,
	.cfg_write = vd_cfg_write,
	.cfg_read = vd_cfg_read,
	.reset = vd_pci_reset,
	.msix_changed = vd_msix_changed,
};

/* ---- the I/O thread ---- */

/* Queues whose device still holds chains it took (vd->lock held). */
static unsigned busy_queues(const struct virtio_dev *vd)
{
	unsigned i, n = 0;

	for (i = 0; i < vd->nqueues; i++)
		if (vd->q[i].enabled && vd->q[i].vq.ready &&
		    vd->q[i].vq.last_avail != vd->q[i].vq.used_idx)
			n++;
	return n;
}

int virtio_lock_idle_until(struct virtio_dev *vd, long long deadline_ms)
{
	struct timespec ms = {0, 1000000};

	for (;;) {
		pthread_mutex_lock(&vd->lock);
		if (!busy_queues(vd))
			return 0;
		pthread_mutex_unlock(&vd->lock);
		if (clock_mono_ms() >= deadline_ms)
			return -EBUSY;
		nanosleep(&ms, NULL);
	}
}

int virtio_lock_idle(struct virtio_dev *vd)
{
	return virtio_lock_idle_until(vd, clock_mono_ms() + VIRTIO_IDLE_WAIT_MS);
}

/* While the VM is paused, wait; false when the thread must end. Events that came meanwhile
 * stay pending on their (level-triggered) fds and are served after the resume. */
static bool virtio_thread_park(struct virtio_iothread *io)
{
	struct virtio_dev *vd = io->vd;
	bool go_on;

	pthread_mutex_lock(&vd->lock);
	while (vd->paused && !vd->stopping) {
		if (!io->parked) {
			io->parked = true;
			vd->nparked++;
			pthread_cond_broadcast(&vd->cond);
		}
		pthread_cond_wait(&vd->cond, &vd->lock);
	}
	if (io->parked) {
		io->parked = false;
		vd->nparked--;
	}
	go_on = !vd->stopping;
	pthread_mutex_unlock(&vd->lock);
	return go_on;
}

/* Wake every I/O thread (to park or to end). */
static void virtio_wake_threads(struct virtio_dev *vd)
{
	uint64_t one = 1;

	for (unsigned t = 0; t < vd->nstarted; t++)
		if (write(vd->io[t].stop_fd, &one, sizeof(one)) != sizeof(one))
			log_err("%s: cannot wake I/O thread %u: %s", vd->ops->name, t,
				strerror(errno));
}

/* Pause hook: park the I/O threads (no new chains are taken, no tap or host input is read
 * on them), have the device complete the chains already taken (ops->quiesce: virtio-blk's
 * requests in flight on its block backend), then check that none is left. Resume: unpark it, send
 * the interrupts a restore owes (state.c) and kick every queue. Console input (taken on the loop
 * thread, like the save) still lands in the guest's receive buffers while paused, as it does in the
 * UART's FIFO: both are saved, so nothing typed at a paused VM is lost. */
static int virtio_pause(void *opaque, bool pause)
{
	struct virtio_dev *vd = opaque;
	long long deadline;

	pthread_mutex_lock(&vd->lock);
	vd->paused = pause;
	pthread_cond_broadcast(&vd->cond);
	pthread_mutex_unlock(&vd->lock);
	if (!vd->nstarted)
		return 0;
	if (!pause) {
		pthread_mutex_lock(&vd->lock);
		for (unsigned i = 0; i < vd->nqueues; i++) {
			struct virtio_queue *q = &vd->q[i];

			if (!q->irq_owed)
				continue;
			q->irq_owed = false;
			vd->isr |= 1;
			if (q->vector != VIRTIO_NO_VECTOR)
				pci_msix_notify(&vd->pci, q->vector);
		}
		pthread_mutex_unlock(&vd->lock);
		/* Serve whatever came while paused; a queue with nothing new ignores the
		 * kick. */
		for (unsigned i = 0; i < vd->nqueues; i++)
			virtio_kick(vd, i);
		return 0;
	}
	virtio_wake_threads(vd);
	pthread_mutex_lock(&vd->lock);
	while (vd->nparked < vd->nstarted)
		pthread_cond_wait(&vd->cond, &vd->lock);
	/* One budget for both: a request the back end never finishes (a hung disk) fails the
	 * pause after VIRTIO_IDLE_WAIT_MS, as keeld expects, instead of hanging it. */
	deadline = clock_mono_ms() + VIRTIO_IDLE_WAIT_MS;
	if (vd->ops->quiesce)
		vd->ops->quiesce(vd, deadline);
	pthread_mutex_unlock(&vd->lock);
	if (virtio_lock_idle_until(vd, deadline)) {
		log_warn("%s %02x: requests still in flight %u ms after the pause: the pause fails "
			 "and the VM carries on",
			 vd->ops->name, vd->pci.slot, VIRTIO_IDLE_WAIT_MS);
		return -EBUSY;
	}
	pthread_mutex_unlock(&vd->lock);
	return 0;
}

/* The report's lines for this device: status, each enabled queue's indices (the driver's,
 * read from the rings, and how far keel-vmm took and answered them) and vector, and MSI-X.
 * vCPUs and the device's thread may hold the lock for a moment: wait a little for it, never
 * for long (a guest must not be able to hang or silence the report). */
static void virtio_report(void *opaque, struct machine_report *r)
{
	struct virtio_dev *vd = opaque;
	char line[1024];
	size_t n;
	unsigned i;

	if (!lock_within_ms(&vd->lock, 100)) {
		machine_report_line(r, "%s %02x: busy for 100 ms, no queue state", vd->ops->name,
				    vd->pci.slot);
		goto msix;
	}
	n = (size_t)snprintf(line, sizeof(line), "%s %02x: status 0x%x, features 0x%llx, isr %u;",
			     vd->ops->name, vd->pci.slot, vd->status,
			     (unsigned long long)vd->driver_features, vd->isr);
	for (i = 0; i < vd->nqueues && n < sizeof(line); i++) {
		struct vq *vq = &vd->q[i].vq;
		uint16_t avail, used;

		if (!vq->ready)
			continue;
		vq_ring_indices(vq, &avail, &used);
		n += (size_t)snprintf(line + n, sizeof(line) - n,
				      " q%u size %u avail %u (taken %u) used %u (written %u) "
				      "vector %u;",
				      i, vq->size, avail, vq->last_avail, used, vq->used_idx,
				      vd->q[i].vector);
	}
	pthread_mutex_unlock(&vd->lock);
	machine_report_line(r, "%s", line);
msix:
	pci_msix_describe(&vd->pci, line, sizeof(line));
	machine_report_line(r, "%s %02x: %s", vd->ops->name, vd->pci.slot, line);
}

static void virtio_thread_loop(struct virtio_iothread *io)
{
	struct virtio_dev *vd = io->vd;

	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(io->epfd, evs, 8, -1), i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("%s: epoll_wait: %s", vd->ops->name, strerror(errno));
			return;
		}
		for (i = 0; i < n; i++) {
			uint32_t tag = evs[i].data.u32;
			uint64_t cnt;

			if (tag == VIRTIO_EV_STOP) {
				if (read(io->stop_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
					log_debug("%s: eventfd read: %s", vd->ops->name,
						  strerror(errno));
				if (!virtio_thread_park(io))
					return;
				continue;
			}
			if (tag & VIRTIO_EV_FD) {
				pthread_mutex_lock(&vd->lock);
				io->served++;
				if (vd->ops->fd_event)
					vd->ops->fd_event(vd, (int)(tag & 0xffff), evs[i].events);
				pthread_mutex_unlock(&vd->lock);
				continue;
			}
			if (tag >= vd->nqueues ||
			    read(vd->q[tag].kick_fd, &cnt, sizeof(cnt)) != sizeof(cnt))
				continue;
			pthread_mutex_lock(&vd->lock);
			io->served++;
			if (virtio_queue_ready(vd, tag))
				vd->ops->queue_notify(vd, tag);
			pthread_mutex_unlock(&vd->lock);
		}
	}
}

static void *virtio_thread(void *arg)
{
	struct virtio_iothread *io = arg;
	struct virtio_dev *vd = io->vd;
	char name[32];

	/* The first thread keeps the name a device with one has; pair k's is ".k" after it
	 * (the kernel keeps 15 characters: "vio-net-1f.7" fits). */
	if (io->index)
		snprintf(name, sizeof(name), "vio-%.5s-%02x.%u", vd->ops->name + 7, vd->pci.slot,
			 io->index);
	else
		snprintf(name, sizeof(name), "vio-%.5s-%02x", vd->ops->name + 7, vd->pci.slot);
	name[15] = '\0';
	pthread_setname_np(pthread_self(), name);
	/* Never serve the guest under a wider filter than the device's own. */
	if (seccomp_thread_begin(vd->ops->seccomp)) {
		log_err("%s: cannot install its I/O thread's seccomp filter: the worker ends",
			vd->ops->name);
		_exit(1);
	}
	virtio_thread_loop(io);
	seccomp_thread_end();
	return NULL;
}

int virtio_dev_watch_on(struct virtio_dev *vd, unsigned t, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = VIRTIO_EV_FD | (uint32_t)fd};

	if (fd < 0 || fd > 0xffff || t >= vd->nthreads)
		return -EINVAL;
	return epoll_ctl(vd->io[t].epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int virtio_dev_watch_mod_on(struct virtio_dev *vd, unsigned t, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = VIRTIO_EV_FD | (uint32_t)fd};

	if (t >= vd->nthreads)
		return -EINVAL;
	return epoll_ctl(vd->io[t].epfd, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
}

int virtio_dev_watch(struct virtio_dev *vd, int fd, uint32_t events)
{
	return virtio_dev_watch_on(vd, 0, fd, events);
}

int virtio_dev_watch_mod(struct virtio_dev *vd, int fd, uint32_t events)
{
	return virtio_dev_watch_mod_on(vd, 0, fd, events);
}

int virtio_queue_watch(struct virtio_dev *vd, unsigned q, bool watch)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = q};

	if (q >= vd->nqueues)
		return -EINVAL;
	return epoll_ctl(vd->io[vd->q[q].thread].epfd, watch ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
			 vd->q[q].kick_fd, &ev)
		       ? -errno
		       : 0;
}

int virtio_dev_unwatch(struct virtio_dev *vd, int fd)
{
	return epoll_ctl(vd->io[0].epfd, EPOLL_CTL_DEL, fd, NULL) ? -errno : 0;
}

/* ---- creation ---- */

static int add_vcap(struct virtio_dev *vd, uint8_t type, uint32_t off, uint32_t len, size_t caplen)
{
	uint8_t cap[20] = {PCI_CAP_ID_VENDOR, 0, (uint8_t)caplen, type, VIRTIO_BAR};
	uint32_t mult = VIRTIO_NOTIFY_MULT;
	uint8_t at;

	if (type == VIRTIO_CAP_PCI)
		cap[4] = 0;
	memcpy(cap + 8, &off, 4);
	memcpy(cap + 12, &len, 4);
	if (type == VIRTIO_CAP_NOTIFY)
		memcpy(cap + 16, &mult, 4);
	at = pci_dev_add_cap(&vd->pci, cap, caplen);
	if (!at)
		return -ENOSPC;
	if (type == VIRTIO_CAP_PCI) {
		/* bar, offset, length and the data window are the driver's to write. */
		memset(vd->pci.wmask + at + 4, 0xff, 1);
		memset(vd->pci.wmask + at + 8, 0xff, 8);
		vd->pcicfg_cap = at;
	}
	return 0;
}

/* Close what virtio_dev_create opened (the threads stopped or never started). */
static void virtio_dev_close(struct virtio_dev *vd)
{
	for (unsigned i = 0; i < vd->nqueues; i++)
		if (vd->q[i].kick_fd >= 0)
			close(vd->q[i].kick_fd);
	for (unsigned t = 0; t < VIRTIO_MAX_THREADS; t++) {
		if (vd->io[t].epfd >= 0)
			close(vd->io[t].epfd);
		if (vd->io[t].stop_fd >= 0)
			close(vd->io[t].stop_fd);
	}
	pthread_cond_destroy(&vd->cond);
}

/* End the I/O threads started (main thread). */
static void virtio_dev_stop_threads(struct virtio_dev *vd)
{
	if (!vd->nstarted)
		return;
	pthread_mutex_lock(&vd->lock);
	vd->stopping = true;
	pthread_cond_broadcast(&vd->cond);
	pthread_mutex_unlock(&vd->lock);
	virtio_wake_threads(vd);
	for (unsigned t = 0; t < vd->nstarted; t++)
		vthread_join(&vd->io[t].thread);
	vd->nstarted = 0;
}

/* The I/O threads' epoll sets and wake-ups, and each queue's kick eventfd on its thread. */
static int virtio_dev_open_threads(struct virtio_dev *vd)
{
	unsigned t, i;

	vd->nthreads = vd->ops->threads ? vd->ops->threads(vd) : 1;
	if (vd->nthreads < 1 || vd->nthreads > VIRTIO_MAX_THREADS)
		return -EINVAL;
	for (t = 0; t < vd->nthreads; t++) {
		struct virtio_iothread *io = &vd->io[t];
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = VIRTIO_EV_STOP};

		io->vd = vd;
		io->index = t;
		io->epfd = epoll_create1(EPOLL_CLOEXEC);
		io->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (io->epfd < 0 || io->stop_fd < 0 ||
		    epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->stop_fd, &ev))
			return -errno;
	}
	for (i = 0; i < vd->nqueues; i++) {
		struct epoll_event qev = {.events = EPOLLIN, .data.u32 = i};

		t = vd->ops->queue_thread ? vd->ops->queue_thread(vd, i) : 0;
		if (t >= vd->nthreads)
			return -EINVAL;
		vd->q[i].thread = t;
		vd->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vd->q[i].kick_fd < 0 ||
		    epoll_ctl(vd->io[t].epfd, EPOLL_CTL_ADD, vd->q[i].kick_fd, &qev))
			return -errno;
	}
	return 0;
}

int virtio_dev_create(struct machine *m, unsigned slot, const struct virtio_dev_ops *ops,
		      void *priv, uint64_t features, unsigned nqueues, uint16_t queue_max,
		      unsigned config_size, struct virtio_dev **out)
{
	struct virtio_dev *vd;
	unsigned i;
	int r;

	if (nqueues == 0 || nqueues > VIRTIO_MAX_QUEUES || config_size > 0x1000 || queue_max == 0 ||
	    queue_max > VQ_MAX_SIZE || (queue_max & (queue_max - 1)))
		return -EINVAL;
	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	vd->ops = ops;
	vd->priv = priv;
	vd->m = m;
	vd->host_features = features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC |
			    1ull << VIRTIO_F_EVENT_IDX;
	vd->config_size = config_size;
	vd->nqueues = nqueues;
	vd->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5000, 10);
	for (i = 0; i < VIRTIO_MAX_THREADS; i++)
		vd->io[i].epfd = vd->io[i].stop_fd = -1;
	pthread_mutex_init(&vd->lock, NULL);
	pthread_cond_init(&vd->cond, NULL);
	for (i = 0; i < nqueues; i++) {
		vd->q[i].max = queue_max;
		vd->q[i].kick_fd = -1;
	}
	virtio_reset_locked(vd);

	pci_dev_init(&vd->pci, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE(ops->device_type),
		     ops->class_code, 1, VIRTIO_PCI_VENDOR, VIRTIO_PCI_SUBSYS_ID);
	vd->pci.ops = &virtio_pci_ops;
	vd->pci.opaque = vd;
	vd->pci.name = ops->name;
	r = pci_dev_add_msix(&vd->pci, VIRTIO_MSIX_BAR, nqueues + 1);
	r = r ?: pci_dev_add_bar(&vd->pci, VIRTIO_BAR, VIRTIO_BAR_SIZE, true);
	r = r ?: add_vcap(vd, VIRTIO_CAP_COMMON, VIRTIO_COMMON_OFF, VIRTIO_COMMON_SIZE, 16);
	r = r
		    ?: add_vcap(vd, VIRTIO_CAP_NOTIFY, VIRTIO_NOTIFY_OFF,
				VIRTIO_NOTIFY_MULT * nqueues, 20);
	r = r ?: add_vcap(vd, VIRTIO_CAP_ISR, VIRTIO_ISR_OFF, 1, 16);
	if (!r && config_size)
		r = add_vcap(vd, VIRTIO_CAP_DEVICE, VIRTIO_DEVICE_OFF, config_size, 16);
	r = r ?: add_vcap(vd, VIRTIO_CAP_PCI, 0, 0, 20);
	r = r ?: virtio_dev_open_threads(vd);
	if (r)
		goto fail;
	vd->pci.slot = slot;
	r = pci_dev_register(m->pci, &vd->pci);
	if (r)
		goto fail;
	r = machine_add_pause_hook(m, virtio_pause, vd);
	r = r ?: machine_add_report(m, virtio_report, vd);
	for (i = 0; !r && i < vd->nthreads; i++) {
		seccomp_thread_expect();
		r = fail_point("virtio-thread-start")
			    ?: vthread_start(&vd->io[i].thread, virtio_thread, &vd->io[i]);
		if (r)
			seccomp_thread_unexpect();
		else
			vd->nstarted++;
	}
	if (r) { /* in a VM that runs the device is still pending (pci.h): no vCPU is in it */
		machine_forget(m, vd);
		virtio_dev_stop_threads(vd);
		pci_dev_unregister(&vd->pci);
		goto fail;
	}
	*out = vd;
	return 0;
fail:
	virtio_dev_close(vd);
	free(vd);
	return r;
}

void virtio_dev_destroy(struct virtio_dev *vd)
{
	if (!vd)
		return;
	machine_forget(vd->m, vd); /* a set-up that failed after virtio_dev_create */
	virtio_dev_stop_threads(vd);
	pci_dev_unregister(&vd->pci);
	if (vd->ops->release)
		vd->ops->release(vd);
	else
		free(vd->priv);
	virtio_dev_close(vd);
	free(vd);
}

static void virtio_dev_teardown(void *opaque)
{
	virtio_dev_destroy(opaque);
}

int virtio_dev_keep(struct machine *m, struct virtio_dev *vd)
{
	/* On failure vd stays: its BARs and hooks point at it, and the VM is not built. */
	return machine_add_teardown(m, virtio_dev_teardown, vd);
}
