/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/virtio/devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#define VIRTIO_MAX_DEVICES VMDEF_MAX_PCI_DEVICES

struct virtio_devices {
	struct virtio_dev *dev[VIRTIO_MAX_DEVICES];
	unsigned n;
};

int virtio_devices_add(struct vm *vm, struct virtio_dev *vd)
{
	struct virtio_devices *v = vm->virtio;

	if (!v) {
		v = vm->virtio = calloc(1, sizeof(*v));
		if (!v) {
			virtio_dev_destroy(vd);
			return -ENOMEM;
		}
	}
	if (v->n == VIRTIO_MAX_DEVICES) {
		virtio_dev_destroy(vd);
		return -ENOSPC;
	}
	v->dev[v->n++] = vd;
	return 0;
}

void virtio_devices_destroy(struct virtio_devices *v)
{
	unsigned i;

	if (!v)
		return;
	for (i = 0; i < v->n; i++)
		virtio_dev_destroy(v->dev[i]);
	free(v);
}
