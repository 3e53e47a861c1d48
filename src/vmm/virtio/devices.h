/* SPDX-License-Identifier: Apache-2.0 */
/* The VM's virtio devices, kept for their teardown: each device model's class
 * (device_table.c) creates its devices and adds them here. */
#ifndef KEEL_VMM_VIRTIO_DEVICES_H
#define KEEL_VMM_VIRTIO_DEVICES_H

#include <stddef.h>

struct vm;
struct virtio_dev;
struct virtio_devices;

/* Keep vd with the VM's others (vm->virtio); on failure vd is destroyed. */
int virtio_devices_add(struct vm *vm, struct virtio_dev *vd) __attribute__((warn_unused_result));
/* Stops every device's I/O thread and frees them (vCPUs stopped). NULL is fine. */
void virtio_devices_destroy(struct virtio_devices *v);

#endif
