/* SPDX-License-Identifier: Apache-2.0 */
/* Saved state of a virtio PCI device (docs/state.md): one section per device. */
#ifndef KEEL_VMM_VIRTIO_STATE_H
#define KEEL_VMM_VIRTIO_STATE_H

#include "vmm/state.h"

#define STATE_VIRTIO_VERSION 1u

/* The section of a virtio device that is on the bus (opaque: its struct virtio_dev): its
 * PCI function, the transport, every queue and the device configuration. Each virtio
 * model's class lists it as {"virtio-<type>", STATE_VIRTIO_VERSION, virtio_state}, so the
 * section is "virtio-<type>.<slot>", e.g. "virtio-rng.02" (vmm/device.h). */
int virtio_state(struct state_io *io, void *opaque);

#endif
