/* SPDX-License-Identifier: Apache-2.0 */
/* The VM's virtio devices, created from its description (disks, NICs, console, entropy),
 * each at the PCI slot the description gives it (config/vmdef.h). */
#ifndef KEEL_VMM_VIRTIO_DEVICES_H
#define KEEL_VMM_VIRTIO_DEVICES_H

#include <stddef.h>

struct vm;
struct virtio_devices;

int virtio_devices_create(struct vm *vm, struct virtio_devices **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Stops every device's I/O thread and frees them (vCPUs stopped). NULL is fine. */
void virtio_devices_destroy(struct virtio_devices *v);

#endif
