/* SPDX-License-Identifier: Apache-2.0 */
/* The device kinds a VM description holds (config/vmdef_device.h). Adding a kind is its own
 * file plus one line here (docs/devices.md). */
#include "config/vmdef_device.h"

/* One kind a line. */
/* clang-format off */
const struct vmdef_device_kind *const vmdef_devices[] = {
	&vmdef_disk_kind,
	&vmdef_nic_kind,
	&vmdef_console_kind,
	&vmdef_rng_kind,
	&vmdef_vsock_kind,
	&vmdef_scsi_kind,
};
/* clang-format on */

const size_t vmdef_ndevices = sizeof(vmdef_devices) / sizeof(vmdef_devices[0]);

unsigned vmdef_device_slot(const struct vmdef_device_kind *k, const struct vm_def *def, unsigned i)
{
	/* The kind's accessor serves assignment too; this only reads through it. */
	return *k->slot((struct vm_def *)def, i);
}
