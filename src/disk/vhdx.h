/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VHDX operations beyond the ops table: create, check, resize, compact and merge.
 * I/O goes through vhdx_ops (disk.h). Offline operations take the file's exclusive lock.
 * Each writes why it failed into err (NULL: logged only), as disk.h says.
 */
#ifndef KEEL_DISK_VHDX_H
#define KEEL_DISK_VHDX_H

#include <stdint.h>
#include <stdio.h>

#include "disk/disk.h"

#define VHDX_DEFAULT_BLOCK (32u << 20)

int vhdx_create(const char *path, const struct disk_create_opts *o, struct disk_err *err)
	__attribute__((warn_unused_result));

/*
 * Checks every structure of the file (and opens its parent chain). Writes one line per
 * problem found to `report`, then a summary line. Returns 0 when clean, -EUCLEAN when
 * inconsistent, or another -errno when the file cannot be read at all.
 */
int vhdx_check(const char *path, FILE *report, struct disk_err *err)
	__attribute__((warn_unused_result));
/* The same on an open VHDX handle (and the parents it opened; none with
 * DISK_OPEN_NOPARENT): blocks overlapping each other or the metadata, bitmaps. -EINVAL
 * for a handle of another format. */
int vhdx_check_disk(struct disk *d, FILE *report) __attribute__((warn_unused_result));

/* Changes the virtual size: grows, or shrinks when nothing but zeros is cut off. */
int vhdx_resize(const char *path, uint64_t size, struct disk_err *err)
	__attribute__((warn_unused_result));

/*
 * Gives back space: blocks holding only zeros are dropped, and the remaining blocks are
 * moved down over the gaps so the file can be truncated. *freed gets the bytes saved.
 */
int vhdx_compact(const char *path, uint64_t *freed, struct disk_err *err)
	__attribute__((warn_unused_result));

/*
 * Folds a differencing disk into its parent: every sector present in the child is written
 * into the parent, which is flushed; then the child file is deleted.
 */
int vhdx_merge(const char *child, char *parent_out, size_t parent_cap, struct disk_err *err)
	__attribute__((warn_unused_result));

/*
 * Points differencing disk `child` at `parent` (new paths and the parent's DataWriteGuid)
 * without reading any data: the caller guarantees parent reads exactly like the old parent,
 * e.g. the old parent's own parent after the old parent was merged into it (vhdx_relink.c).
 */
int vhdx_relink(const char *child, const char *parent, struct disk_err *err)
	__attribute__((warn_unused_result));

/*
 * The same two on handles the caller opened, for keeld, which opens every file of a chain
 * itself through its storage pools and must work on the files it checked, never on what a
 * path names later. vhdx_merge_disks: child (a differencing VHDX; DISK_OPEN_NOPARENT is
 * enough) folded into parent, opened writable with its own chain, which must be the file
 * child's parent linkage names; the child's file is left for the caller to remove.
 * vhdx_relink_disk: child (opened writable, DISK_OPEN_NOPARENT) pointed at parent (a VHDX
 * opened with its chain), named parent_path in the new locator. 0 or -errno with err.
 */
int vhdx_merge_disks(struct disk *child, struct disk *parent, struct disk_err *err)
	__attribute__((warn_unused_result));
int vhdx_relink_disk(struct disk *child, struct disk *parent, const char *parent_path,
		     struct disk_err *err) __attribute__((warn_unused_result));

#endif
