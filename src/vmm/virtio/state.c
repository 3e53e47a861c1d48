/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Saved state of a virtio PCI device (docs/state.md, docs/virtio.md): the PCI function
 * (pci_dev_state), the transport registers, each queue's configuration and the device's
 * positions in its rings, and the device configuration (checked, not stored: it follows
 * from the command line).
 *
 * Quiescing: the VM is paused, so no driver adds work, but a device may still hold chains
 * it took from a ring (virtio-blk requests on its workers). A chain is taken exactly once
 * (vq_pop) and returned exactly once (vq_push), so a queue is idle when its next avail
 * entry to read equals its next used entry to fill; the save waits for that, and refuses
 * when a device stays busy. A restored device therefore owes the driver nothing, and any
 * avail entries not yet taken are read again after the restore (a kick at load).
 */
#include "vmm/virtio/state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/state.h"
#include "vmm/virtio/virtio.h"
#include "vmm/machine.h"

#define STATUS_BITS                                                                                \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |              \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

struct vs_queue {
	uint16_t size, vector;
	bool enabled, ready;
	uint64_t desc, driver, device;
	uint16_t last_avail, used_idx, signalled;
	bool signalled_valid;
};

static bool vector_ok(const struct virtio_dev *vd, uint16_t v)
{
	return v == VIRTIO_NO_VECTOR || v < vd->pci.msix_nvec;
}

static void queue_io(struct state_io *io, struct virtio_dev *vd, unsigned i, struct vs_queue *s)
{
	const struct virtio_queue *q = &vd->q[i];
	enum vq_enable_error e;
	struct vq vq;

	if (state_saving(io)) {
		*s = (struct vs_queue){
			.size = q->size,
			.vector = q->vector,
			.enabled = q->enabled,
			.ready = q->vq.ready,
			.desc = q->desc,
			.driver = q->driver,
			.device = q->device,
			.last_avail = q->vq.last_avail,
			.used_idx = q->vq.used_idx,
			.signalled = q->vq.signalled,
			.signalled_valid = q->vq.signalled_valid,
		};
	}
	s->size = state_u16(io, &s->size, UINT16_MAX);
	s->vector = state_u16(io, &s->vector, UINT16_MAX);
	s->enabled = state_bool(io, &s->enabled);
	s->ready = state_bool(io, &s->ready);
	s->desc = state_u64(io, &s->desc, UINT64_MAX);
	s->driver = state_u64(io, &s->driver, UINT64_MAX);
	s->device = state_u64(io, &s->device, UINT64_MAX);
	s->last_avail = state_u16(io, &s->last_avail, UINT16_MAX);
	s->used_idx = state_u16(io, &s->used_idx, UINT16_MAX);
	s->signalled = state_u16(io, &s->signalled, UINT16_MAX);
	s->signalled_valid = state_bool(io, &s->signalled_valid);
	if (state_error(io) || state_saving(io))
		return;
	if (!vector_ok(vd, s->vector))
		state_fail(io, "queue %u: MSI-X vector %u, the device has %u", i, s->vector,
			   vd->pci.msix_nvec);
	else if (s->ready != s->enabled)
		state_fail(io, "queue %u: enabled %d but ready %d", i, s->enabled, s->ready);
	else if (!s->enabled && (s->last_avail || s->used_idx))
		state_fail(io, "queue %u: disabled but at ring positions %u/%u", i, s->last_avail,
			   s->used_idx);
	else if (s->enabled && s->size > q->max)
		state_fail(io, "queue %u: size %u, the device offers at most %u", i, s->size,
			   q->max);
	else if (s->enabled && (uint16_t)(s->used_idx - s->last_avail) != 0)
		state_fail(io, "queue %u: %u chains were in flight at the save", i,
			   (uint16_t)(s->last_avail - s->used_idx));
	if (state_error(io) || !s->enabled)
		return;
	/* The rings must map now as they did at the save (a local vq: nothing is applied). */
	e = vq_enable(&vq, vd->m->mem, s->size, s->desc, s->driver, s->device, false, false);
	if (e != VQ_OK)
		state_fail(io, "queue %u of size %u at 0x%llx/0x%llx/0x%llx: %s", i, s->size,
			   (unsigned long long)s->desc, (unsigned long long)s->driver,
			   (unsigned long long)s->device, vq_enable_error_str(e));
}

/* Device configuration as the device presents it now. */
static void read_config(struct virtio_dev *vd, uint8_t *buf)
{
	unsigned off;

	memset(buf, 0, 0x1000);
	vd->host_reading = true; /* not the driver's read (virtio-net's link) */
	for (off = 0; off + 4 <= vd->config_size; off += 4)
		vd->ops->config_read(vd, off, buf + off, 4);
	for (; off < vd->config_size; off++)
		vd->ops->config_read(vd, off, buf + off, 1);
	vd->host_reading = false;
}

int virtio_state(struct state_io *io, void *opaque)
{
	struct virtio_dev *vd = opaque;
	struct vs_queue qs[VIRTIO_MAX_QUEUES] = {0};
	static uint8_t cfg[0x1000], now[0x1000]; /* main thread only: save and restore */
	uint64_t host_features = vd->host_features, driver_features = vd->driver_features;
	uint32_t nqueues = vd->nqueues, cfg_size = vd->config_size, dfselect = vd->dfselect,
		 gfselect = vd->gfselect;
	uint8_t status = vd->status, config_gen = vd->config_gen, isr = vd->isr;
	uint16_t config_vector = vd->config_vector, queue_sel = vd->queue_sel;
	bool driver_ok;
	unsigned i;
	int r;

	r = pci_dev_state(io, &vd->pci);
	if (r)
		return r;
	if (state_saving(io)) {
		r = virtio_lock_idle(vd);
		if (r) {
			state_fail(io, "%s %02x.0: requests still in flight after %u ms",
				   vd->ops->name, vd->pci.slot, VIRTIO_IDLE_WAIT_MS);
			return state_error(io);
		}
		host_features = vd->host_features;
		driver_features = vd->driver_features;
		dfselect = vd->dfselect;
		gfselect = vd->gfselect;
		status = vd->status;
		config_gen = vd->config_gen;
		isr = vd->isr;
		config_vector = vd->config_vector;
		queue_sel = vd->queue_sel;
		read_config(vd, cfg);
	}
	host_features = state_u64(io, &host_features, UINT64_MAX);
	driver_features = state_u64(io, &driver_features, UINT64_MAX);
	dfselect = state_u32(io, &dfselect, UINT32_MAX);
	gfselect = state_u32(io, &gfselect, UINT32_MAX);
	status = state_u8(io, &status, UINT8_MAX);
	config_gen = state_u8(io, &config_gen, UINT8_MAX);
	isr = state_u8(io, &isr, 3);
	config_vector = state_u16(io, &config_vector, UINT16_MAX);
	queue_sel = state_u16(io, &queue_sel, UINT16_MAX);
	nqueues = state_u32(io, &nqueues, VIRTIO_MAX_QUEUES);
	cfg_size = state_u32(io, &cfg_size, 0x1000);
	if (!state_error(io) && !state_saving(io)) {
		/* A device that offers more now (a newer keel-vmm: virtio-net's mergeable
		 * buffers and receive offloads) takes a state saved with fewer: the driver
		 * negotiated from the saved set, and sees the rest only after a reset. */
		if (host_features & ~vd->host_features)
			state_fail(io,
				   "saved with features 0x%llx, the device offers 0x%llx (not "
				   "0x%llx)",
				   (unsigned long long)host_features,
				   (unsigned long long)vd->host_features,
				   (unsigned long long)(host_features & ~vd->host_features));
		else if (nqueues != vd->nqueues || cfg_size != vd->config_size)
			state_fail(io,
				   "saved with %u queues and %u bytes of configuration, the "
				   "device has %u and %u",
				   nqueues, cfg_size, vd->nqueues, vd->config_size);
		/* keel's devices are modern only: DRIVER_OK needs FEATURES_OK (pci.c refuses
		 * it otherwise), as a saved state must. */
		else if ((status & VIRTIO_STATUS_DRIVER_OK) &&
			 !(status & VIRTIO_STATUS_FEATURES_OK))
			state_fail(io, "device status 0x%02x: DRIVER_OK without FEATURES_OK",
				   status);
		/* Before FEATURES_OK the driver may have written any bits (the device then
		 * refuses FEATURES_OK): only accepted features must have been offered. */
		else if ((status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)) &&
			 (driver_features & ~host_features))
			state_fail(io,
				   "driver features 0x%llx were never offered (0x%llx: not 0x%llx)",
				   (unsigned long long)driver_features,
				   (unsigned long long)host_features,
				   (unsigned long long)(driver_features & ~host_features));
		else if (status & ~STATUS_BITS)
			state_fail(io, "device status 0x%02x has unknown bits", status);
		else if ((status & VIRTIO_STATUS_FEATURES_OK) &&
			 !(driver_features >> VIRTIO_F_VERSION_1 & 1))
			state_fail(io, "FEATURES_OK without VERSION_1");
		else if (!vector_ok(vd, config_vector))
			state_fail(io, "configuration MSI-X vector %u, the device has %u",
				   config_vector, vd->pci.msix_nvec);
	}
	driver_ok = status & VIRTIO_STATUS_DRIVER_OK;
	for (i = 0; i < vd->nqueues && !state_error(io); i++)
		queue_io(io, vd, i, &qs[i]);
	state_blob(io, cfg, vd->config_size);
	if (state_saving(io))
		pthread_mutex_unlock(&vd->lock);
	if (state_error(io) || state_saving(io))
		return state_error(io);
	read_config(vd, now);
	if (memcmp(cfg, now, vd->config_size)) {
		for (i = 0; i < vd->config_size && cfg[i] == now[i]; i++)
			;
		state_fail(io,
			   "device configuration byte %u was 0x%02x at the save, the device has "
			   "0x%02x (a different MAC, disk size or device option)",
			   i, cfg[i], now[i]);
	}
	if (state_error(io) || !state_applying(io))
		return state_error(io);

	pthread_mutex_lock(&vd->lock);
	vd->epoch++; /* a new driver instance for work begun before (virtio-net's wait) */
	vd->driver_features = driver_features;
	vd->dfselect = dfselect;
	vd->gfselect = gfselect;
	vd->status = status;
	vd->config_gen = config_gen;
	vd->isr = isr;
	vd->config_vector = config_vector;
	vd->queue_sel = queue_sel;
	for (i = 0; i < vd->nqueues; i++) {
		struct virtio_queue *q = &vd->q[i];
		const struct vs_queue *s = &qs[i];

		q->size = s->size;
		q->vector = s->vector;
		q->desc = s->desc;
		q->driver = s->driver;
		q->device = s->device;
		q->enabled = false;
		vq_disable(&q->vq);
		if (!s->enabled)
			continue;
		if (vq_enable(&q->vq, vd->m->mem, s->size, s->desc, s->driver, s->device,
			      virtio_has_feature(vd, VIRTIO_F_INDIRECT_DESC),
			      virtio_has_feature(vd, VIRTIO_F_EVENT_IDX)) != VQ_OK) {
			state_fail(io, "queue %u: its rings no longer map", i);
			break;
		}
		q->enabled = true;
		q->vq.last_avail = s->last_avail;
		q->vq.used_idx = s->used_idx;
		q->vq.signalled = s->signalled;
		q->vq.signalled_valid = s->signalled_valid;
		/* An interrupt the device sent just before the save may still have been on its
		 * way through KVM's irqfd (injected later, by a work item) when the LAPIC was
		 * read, so the saved machine never got it; with event index the device then
		 * never signals again and the driver waits for ever. Interrupt every queue
		 * once when the restored VM runs (a spurious one costs the driver a look). */
		q->irq_owed = driver_ok;
	}
	if (vd->ops->loaded)
		vd->ops->loaded(vd);
	pthread_mutex_unlock(&vd->lock);
	/* Chains the driver posted that the device had not taken yet are read now. */
	for (i = 0; i < vd->nqueues && !state_error(io); i++)
		if (qs[i].enabled && driver_ok)
			virtio_kick(vd, i);
	return state_error(io);
}
