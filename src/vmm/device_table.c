/* SPDX-License-Identifier: Apache-2.0 */
/* The device tables: every device model keel-vmm has, in the order it is created. Adding a
 * model is its own file plus one line here (docs/devices.md). */
#include "vmm/device.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/vmdef_device.h"
#include "vmm/machine.h"

extern const struct device_class serial_class, i8042_class, rtc_class, pm_class, fw_cfg_class,
	debug_exit_class, pflash_class, debugcon_class;
extern const struct device_class virtio_blk_class, virtio_net_class, virtio_console_class,
	virtio_rng_class, virtio_vsock_class, virtio_scsi_class;

/* Platform devices: fixed ports and interrupts, as on a PC. */
static const struct device_class *const platform_devices[] = {
	&serial_class, &i8042_class,	  &rtc_class,	 &pm_class,
	&fw_cfg_class, &debug_exit_class, &pflash_class, &debugcon_class,
};

/* PCI devices, each at the slot the VM's description gives it. The order is the order in
 * which devices without a slot got theirs (vmdef_assign_slots): keep the two the same. */
static const struct device_class *const pci_devices[] = {
	&virtio_blk_class, &virtio_net_class,	&virtio_console_class,
	&virtio_rng_class, &virtio_vsock_class, &virtio_scsi_class,
};

const struct device_class *const *device_table(enum device_bus bus, size_t *n)
{
	if (bus == DEVICE_BUS_PCI) {
		*n = sizeof(pci_devices) / sizeof(pci_devices[0]);
		return pci_devices;
	}
	*n = sizeof(platform_devices) / sizeof(platform_devices[0]);
	return platform_devices;
}

int devices_create(struct machine *m, enum device_bus bus, char *err, size_t errlen)
{
	size_t n;
	const struct device_class *const *t = device_table(bus, &n);

	for (size_t c = 0; c < n; c++) {
		unsigned count = t[c]->config  ? t[c]->config->count(m->def)
				 : t[c]->count ? t[c]->count(m)
					       : 1;

		for (unsigned i = 0; i < count; i++) {
			int r;

			err[0] = '\0';
			r = t[c]->create(m, i, err, errlen);
			if (r) {
				if (!err[0])
					snprintf(err, errlen, "%s set-up: %s", t[c]->name,
						 strerror(-r));
				return r;
			}
		}
	}
	return 0;
}
