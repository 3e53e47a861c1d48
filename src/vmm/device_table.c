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
#if defined(KEEL_TEST_HOOKS)
/* Test builds only: the seccomp probe (dev/seccomp_probe.h). Release builds have none. */
extern const struct device_class seccomp_probe_class;
#define TEST_PLATFORM_DEVICES &seccomp_probe_class,
#else
#define TEST_PLATFORM_DEVICES
#endif
extern const struct device_class virtio_blk_class, virtio_net_class, virtio_console_class,
	virtio_rng_class, virtio_vsock_class, virtio_scsi_class;

/* Platform devices: fixed ports and interrupts, as on a PC. */
/* clang-format off */
static const struct device_class *const platform_devices[] = {
	&serial_class, &i8042_class,	  &rtc_class,	 &pm_class,
	&fw_cfg_class, &debug_exit_class, &pflash_class, &debugcon_class,
	TEST_PLATFORM_DEVICES
};
/* clang-format on */

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
			/* A PCI device's state sections are named by its slot, the one the
			 * description gives it and create puts it at: never 0 (every device of
			 * a description has one after vmdef_assign_slots), or two devices of a
			 * class would save under one name. */
			unsigned slot =
				t[c]->config ? vmdef_device_slot(t[c]->config, m->def, i) : 0;
			void *obj = NULL;
			int r;

			if (bus == DEVICE_BUS_PCI && t[c]->config && !slot) {
				snprintf(err, errlen,
					 "%s %u has no PCI slot in the description (its slots were "
					 "not assigned)",
					 t[c]->name, i);
				return -EINVAL;
			}
			err[0] = '\0';
			r = t[c]->create(m, i, &obj, err, errlen);
			r = r ?: device_state_register(m, t[c], slot, obj);
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

void device_state_name(const struct device_class *c, unsigned k, unsigned slot,
		       char name[STATE_NAME_MAX + 1])
{
	if (slot)
		snprintf(name, STATE_NAME_MAX + 1, "%s.%02x", c->state[k].name, slot);
	else
		snprintf(name, STATE_NAME_MAX + 1, "%s", c->state[k].name);
}

int device_state_register(struct machine *m, const struct device_class *c, unsigned slot, void *obj)
{
	for (size_t k = 0; k < DEVICE_STATES && c->state[k].name; k++) {
		char name[STATE_NAME_MAX + 1];
		int r;

		device_state_name(c, (unsigned)k, slot, name);
		r = machine_add_state_section(m, name, c->state[k].version, c->state[k].fn, obj);
		if (r)
			return r;
	}
	return 0;
}
