/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every host file a VM uses: the files its description names (vmdef_files: kernel or its own
 * firmware file, initrd, virtio-blk disks, SCSI LUN disks, DVD media), the disk files of each
 * of its checkpoints (hidden ones too: their files still hold data), and every parent in the
 * differencing chain of each VHDX among them, as the chain's locators resolve through the
 * storage pools (disk_policy_chain_each). The one list keeld consults before it lets such a
 * file's pool go (pools_delete). The UEFI variable store and saved states live in the VM's
 * own directory, Debian's firmware on the system: no pool holds them.
 */
#ifndef KEEL_DAEMON_VM_FILES_H
#define KEEL_DAEMON_VM_FILES_H

#include <stddef.h>

#include "config/vmdef.h"
#include "daemon/store.h"

/*
 * Call visit for each file def's VM uses, with what it is for a message ("disk", "DVD image",
 * "checkpoint 'c1' disk", "parent in the differencing chain of disk /p/a.vhdx") and its
 * path, until visit returns nonzero (that value is returned). 0 when every file was visited;
 * -errno when the store cannot be read (nothing is known then: a caller that guards files
 * refuses).
 */
int vm_files_each(struct store *st, const struct vm_def *def,
		  int (*visit)(void *ctx, const char *what, const char *path), void *ctx)
	__attribute__((warn_unused_result));

#endif
