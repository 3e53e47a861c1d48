/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/bootorder.h"

#include <errno.h>
#include <stdio.h>

int bootorder_build(const struct vm_def *def, char *buf, size_t cap)
{
	struct vm_boot_dev devs[VMDEF_BOOT_DEVS_MAX];
	unsigned n = vmdef_boot_devices(def, devs);
	size_t len = 0;

	for (unsigned i = 0; i < n; i++) {
		const char *sep = i ? "\n" : "";
		int k;

		switch (devs[i].kind) {
		case VM_BOOTDEV_DISK:
			k = snprintf(buf + len, cap - len, "%s/pci@i0cf8/scsi@%x/disk@0,0", sep,
				     def->disks[devs[i].index].pci_slot);
			break;
		case VM_BOOTDEV_LUN:
			k = snprintf(buf + len, cap - len,
				     "%s/pci@i0cf8/scsi@%x/channel@0/disk@0,%x", sep,
				     def->scsi.pci_slot, devs[i].index);
			break;
		default:
			k = snprintf(buf + len, cap - len, "%s/pci@i0cf8/ethernet@%x", sep,
				     def->nics[devs[i].index].pci_slot);
			break;
		}
		if (k < 0 || (size_t)k >= cap - len)
			return -ENOSPC;
		len += (size_t)k;
	}
	return len ? (int)len + 1 : 0;
}
