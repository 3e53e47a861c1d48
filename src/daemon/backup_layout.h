/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layout of a backup directory as keel vm import reads it (docs/backup.md): the disks a
 * description names are files of its disks/ directory; a Generation 2 VM's variable store is
 * nvram/OVMF_VARS.fd.
 */
#ifndef KEEL_DAEMON_BACKUP_LAYOUT_H
#define KEEL_DAEMON_BACKUP_LAYOUT_H

/*
 * The file of the backup's disks/ directory that a disk path of its description names: the
 * path (where the backup was written) must be absolute, without ".", ".." or empty
 * components, and end in "disks/FILE"; import uses FROM/disks/FILE, so that a backup moved
 * elsewhere still imports and no path in it leads out of FROM. 0 and *file (inside path: a
 * plain name, neither "." nor "..", no '/'), or -EINVAL.
 */
/* A Generation 2 VM's UEFI variable store in a backup: BACKUP_NVRAM_DIR/BACKUP_NVRAM_NAME. */
#define BACKUP_NVRAM_DIR  "nvram"
#define BACKUP_NVRAM_NAME "OVMF_VARS.fd"
#define BACKUP_NVRAM_FILE BACKUP_NVRAM_DIR "/" BACKUP_NVRAM_NAME

int backup_disk_file(const char *path, const char **file) __attribute__((warn_unused_result));

#endif
