/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel vm backup (docs/backup.md): an application-consistent copy of a VM's disks and its
 * definition into a directory, while the VM runs. A running (or paused) VM gets a production
 * checkpoint for the time of the copy (Hyper-V's recovery checkpoint: the guest frozen
 * through keel-agent while its disks move onto differencing children, crash-consistent when
 * it has no agent), the frozen files are copied with keeld's lock let go while the guest
 * goes on writing to the children, and the checkpoint is deleted, which merges the children
 * back: the VM ends on its original files with every write. An Off, Crashed or Saved VM's
 * files are copied as they are (the job owns the VM, so nothing starts it meanwhile).
 */
#ifndef KEEL_DAEMON_BACKUP_H
#define KEEL_DAEMON_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "daemon/ckpt.h"

#define BACKUP_PROGRESS_FILE                                                                       \
	"backup.progress" /* in the VM's directory: its size is the bytes done */

/* What the request can check before the job: to is an absolute path of a directory without
 * TO/NAME in it, the VM's disks (virtio-blk and SCSI) can be read and checkpointed (VHDX:
 * a raw disk is -EMEDIUMTYPE, as for a checkpoint). *total gets the sum
 * of the disks' virtual sizes (the job's progress). 0 or -errno (-EINVAL, -EEXIST, -ENOENT,
 * -EBUSY, -EMEDIUMTYPE) with err. */
int backup_check(struct ckpt_ctx *cc, const struct vm_def *def, const char *to, uint64_t *total,
		 char *err, size_t errlen) __attribute__((warn_unused_result));
/* The backup into TO/NAME: disks/diskN.vhdx (standalone VHDX copies, each disk's whole
 * chain: the virtio-blk disks, then the SCSI controller's disks in LUN order, backup_layout.h)
 * and config.json (the VM's description with the copies as its disks, on their LUNs; DVD
 * drives keep the media they name, which are not copied). *out gets
 * {"dir", "config", "disks", "consistency": "application"|"crash"|"off", "fallback"?}.
 * With keeld's lock held and the VM owned (a job). */
int backup_run(struct ckpt_ctx *cc, const struct vm_def *def, const char *to, json_object **out,
	       char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
