/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel vm import (docs/backup.md, "Import"): a VM registered from a backup directory that keel
 * vm backup made (config.json and disks/diskN.vhdx), as Hyper-V's Import-VM: the backup's
 * files copied into a storage pool (the default: the backup stays reusable), or registered
 * in place (they become the VM's files), keeping the VM's id, or with a new id and new MAC
 * addresses (Copy + GenerateNewId). Everything in the directory is untrusted input: the
 * directory must be in a storage pool, is opened once through it, and its files are opened
 * from that descriptor (openat2: nothing above it, no symlink); the description goes through
 * the parser and limits of a VM's description document, and the files it names besides its
 * disks (kernel, initrd, firmware, DVD media) are not imported; a Generation 2 VM's variable
 * store (nvram/OVMF_VARS.fd) must pass the store check and becomes the VM's; every disk (a
 * virtio-blk disk or one on a SCSI LUN, which it stays on) must be a standalone, consistent
 * VHDX of the backup's disks/ directory, checked and copied from the descriptor opened, never
 * by path or through a parent. The VM is registered only once its
 * files are complete; a failure removes what the import made.
 */
#ifndef KEEL_DAEMON_VM_IMPORT_H
#define KEEL_DAEMON_VM_IMPORT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config/vmdef.h"
#include "daemon/backup_layout.h"
#include "daemon/store.h"
#include "daemon/sup.h"

#define IMPORT_NOTES_MAX     100 /* lines of not_imported; then "and N more not imported" */
#define IMPORT_PROGRESS_FILE "import.progress" /* in the copy's directory: its size, bytes done */
/* Room a copy needs besides its data and BAT, in the free-space check: a dynamic VHDX's
 * header section, log and metadata region (1 MiB each), and 1 MiB to spare. */
#define IMPORT_DISK_OVERHEAD (4ull << 20)

struct import_req {
	const char *from;    /* the backup's directory, an absolute path */
	const char *copy_to; /* a directory pool to copy into (NULL: in_place, else "default") */
	bool in_place;	     /* register the backup's own files */
	bool new_id;	     /* a new id and new MAC addresses (a copy only) */
	const char *name;    /* NULL: the backup's */
	const char *kernel;  /* the VM's kernel and initrd (NULL: none); those the */
	const char *initrd;  /* description names are not imported */
};

/* What import_prepare decided and import_run carries out. */
struct import_plan {
	struct vm_def def; /* the VM to register (its disks: the backup's files for now) */
	char from[PATH_MAX];
	int dir_fd; /* from, opened (O_PATH) through its pool: its files are opened from it */
	/* The backup's disks (virtio-blk and SCSI, in the order of backup_layout.h), ndisks of
	 * them: opened through their pool, and their names in DIR/disks. */
	unsigned ndisks;
	int src_fd[BACKUP_DISKS_MAX];
	char src_file[BACKUP_DISKS_MAX][NAME_MAX + 1];
	char stage[PATH_MAX]; /* copy: POOL/.NAME.import, where the copies are made */
	char final[PATH_MAX]; /* copy: POOL/NAME, what stage becomes when complete */
	char progress[PATH_MAX + 32];
	uint64_t total; /* the disks' virtual sizes: the copy's progress */
	bool in_place, new_id;
	uint8_t *nvram;		   /* a Generation 2 VM's variable store from the backup */
	size_t nvram_size;	   /* (checked), or NULL: the VM gets a new one */
	json_object *not_imported; /* what the directory holds that is not imported, in words */
	unsigned notes_more;	   /* lines past IMPORT_NOTES_MAX, not listed */
};

/*
 * Everything a request can check before the job: the directory, its description and disks
 * (as above), no VM with the same name, id or a MAC of the backup's (unless new_id), the
 * destination pool and POOL/NAME free. A copy's staging directory is made here, so that a
 * second import of the same name is refused at once. 0 or -errno (-EINVAL: bad input or
 * backup, -EEXIST: a clash, -ENOENT: no such pool) with err; on error nothing is left.
 */
int import_prepare(struct store *st, struct sup *sup, const struct import_req *req,
		   struct import_plan *p, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/*
 * The import (a job, keeld's lock held; let go during the checks and the copy): each disk
 * opened again from its descriptor without its parents (still standalone, no overlapping
 * blocks), the pool's free space checked, each disk copied from that handle into the staging
 * directory (only its allocated data: a dynamic VHDX with zeros unallocated; stopped when
 * keeld exits), the directory renamed to POOL/NAME, then the VM checked and registered as a
 * create does. On failure what it made is removed and no VM is registered. *out gets {"vm", "id",
 * "mode": "copy"|"in-place", "new_id", "disks", "not_imported"}.
 */
int import_run(struct store *st, struct sup *sup, struct import_plan *p, json_object **out,
	       char *err, size_t errlen) __attribute__((warn_unused_result));
/* Close and free what a plan holds; a staging directory left (the job never ran) is removed. */
void import_plan_free(struct import_plan *p);

#endif
