/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/virtio/devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/blk.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#define VIRTIO_MAX_DEVICES VMDEF_MAX_PCI_DEVICES

struct virtio_devices {
	struct virtio_dev *dev[VIRTIO_MAX_DEVICES];
	unsigned n;
};

int virtio_devices_create(struct vm *vm, struct virtio_devices **out, char *err, size_t errlen)
{
	const struct vm_config *cfg = vm->cfg;
	struct virtio_devices *v = calloc(1, sizeof(*v));
	int r = 0;

	if (!v)
		return -ENOMEM;
	*out = v;
	for (unsigned i = 0; i < cfg->def.ndisks; i++) {
		r = virtio_blk_create(vm, &cfg->def.disks[i], &v->dev[v->n], err, errlen);
		if (r)
			return r;
		v->n++;
	}
	for (unsigned i = 0; i < cfg->def.nnics; i++) {
		r = virtio_net_create(vm, &cfg->def.nics[i], &v->dev[v->n], err, errlen);
		if (r)
			return r;
		v->n++;
	}
	if (cfg->def.console.present) {
		r = virtio_console_create(vm, cfg->def.console.pci_slot, &cfg->console, vm->loop,
					  &v->dev[v->n], err, errlen);
		if (r)
			return r;
		v->n++;
	}
	if (cfg->def.rng.present) {
		r = virtio_rng_create(vm, cfg->def.rng.pci_slot, &v->dev[v->n]);
		if (r) {
			snprintf(err, errlen, "virtio-rng set-up: %s", strerror(-r));
			return r;
		}
		v->n++;
	}
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
