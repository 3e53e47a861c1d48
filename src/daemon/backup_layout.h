/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layout of a backup directory (docs/backup.md): one file disks/diskN.vhdx per disk of
 * the VM, N counting its virtio-blk disks first, then the disks on its SCSI controller in LUN
 * order (the order of a checkpoint's files, ckpt_vm_disks); a Generation 2 VM's variable store
 * is nvram/OVMF_VARS.fd. keel vm import reads the disks a description names as files of its
 * disks/ directory.
 */
#ifndef KEEL_DAEMON_BACKUP_LAYOUT_H
#define KEEL_DAEMON_BACKUP_LAYOUT_H

#include <stddef.h>

#include "config/vmdef.h"
#include "daemon/ckpt_tree.h"

/* A Generation 2 VM's UEFI variable store in a backup: BACKUP_NVRAM_DIR/BACKUP_NVRAM_NAME. */
#define BACKUP_NVRAM_DIR  "nvram"
#define BACKUP_NVRAM_NAME "OVMF_VARS.fd"
#define BACKUP_NVRAM_FILE BACKUP_NVRAM_DIR "/" BACKUP_NVRAM_NAME

/* The disks a backup copies: every virtio-blk disk and every disk on the SCSI controller (not
 * its DVD drives: their media are not copied), in the order of the copies. */
#define BACKUP_DISKS_MAX CKPT_DISKS_MAX

/*
 * The file of the backup's disks/ directory that a disk path of its description names: the
 * path (where the backup was written) must be absolute, without ".", ".." or empty
 * components, and end in "disks/FILE"; import uses FROM/disks/FILE, so that a backup moved
 * elsewhere still imports and no path in it leads out of FROM. 0 and *file (inside path: a
 * plain name, neither "." nor "..", no '/'), or -EINVAL.
 */
int backup_disk_file(const char *path, const char **file) __attribute__((warn_unused_result));

/* How messages name disk d of def: "disk N" (disks[N]) or "the disk on SCSI LUN L". */
void backup_disk_name(const struct vm_def *def, const struct vm_disk *d, char *buf, size_t len);

/*
 * Every disk of a backup's description (the backup's disks, in their order) mapped onto its
 * file of the backup's disks/ directory by backup_disk_file: 0 with *n disks, disks[k] and
 * files[k] (inside disks[k]->path); or -EINVAL with err naming the first disk whose path is not
 * such a file.
 */
int backup_disk_files(const struct vm_def *def, struct vm_disk *disks[BACKUP_DISKS_MAX],
		      const char *files[BACKUP_DISKS_MAX], unsigned *n, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
