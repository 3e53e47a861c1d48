/* SPDX-License-Identifier: Apache-2.0 */
/* Saved state of a virtio PCI device (docs/state.md): one section per device. */
#ifndef KEEL_VMM_VIRTIO_STATE_H
#define KEEL_VMM_VIRTIO_STATE_H

struct virtio_dev;

/* Register the section "virtio-<type>.<slot>" (e.g. "virtio-rng.02") of a device that is on
 * the bus: its PCI function, the transport, every queue and the device configuration. */
int virtio_state_register(struct virtio_dev *vd) __attribute__((warn_unused_result));

#endif
