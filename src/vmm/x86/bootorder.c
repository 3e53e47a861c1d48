/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/bootorder.h"

#include <errno.h>
#include <stdio.h>

int bootorder_build(const struct vm_def *def, char *buf, size_t cap)
{
	size_t len = 0;

	for (unsigned i = 0; i < def->ndisks; i++) {
		int n = snprintf(buf + len, cap - len, "%s/pci@i0cf8/scsi@%x/disk@0,0",
				 i ? "\n" : "", def->disks[i].pci_slot);

		if (n < 0 || (size_t)n >= cap - len)
			return -ENOSPC;
		len += (size_t)n;
	}
	return len ? (int)len + 1 : 0;
}
