/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What keeld decides about a VM's files when they are attached (create, or a change): every
 * one in a storage pool (pools.h), no disk that another running VM writes (or that this VM
 * would write while another uses it; checked again at start), and each disk's format, pinned
 * once and kept with the disk (docs/vm-config.md, docs/security.md).
 */
#ifndef KEEL_DAEMON_DISK_POLICY_H
#define KEEL_DAEMON_DISK_POLICY_H

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config/vmdef.h"
#include "daemon/store.h"
#include "daemon/sup.h"
#include "disk/disk.h"

/*
 * Attach nd's files (old: the description before the change; NULL at create): each in a
 * storage pool, no disk shared with a running VM where either writes it, then each disk's
 * format pinned (virtio-blk disks and SCSI LUN disks alike; a DVD medium is an ISO image,
 * read-only raw by nature, always raw): a disk old had at the same path keeps its format
 * unless the request names
 * one; any other is taken from its name (*.vhdx, *.avhdx: VHDX; else raw) or from the
 * request, and must agree with the file: VHDX must open as VHDX, and a file the name calls
 * raw that begins with a VHDX header is refused, so that the administrator says which it is.
 * The contents of a disk already attached are never looked at again (the guest writes them).
 * 0, or -EINVAL/-EBUSY/-errno with err naming the file and what to do; nd's formats are
 * pinned only on success.
 */
int disk_policy_attach(struct store *st, struct sup *sup, struct vm_def *nd,
		       const struct vm_def *old, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * The DVD part of disk_policy_attach alone, for media put back into nd's drives (a
 * checkpoint's, at apply): each medium opened through its pool and checked to be an ISO
 * image (pools_open_medium), none shared with a running VM that writes it, all pinned raw.
 * nd's disks are neither opened nor looked at. 0, or -EINVAL/-EBUSY/-errno with err.
 */
int disk_policy_attach_media(struct store *st, struct sup *sup, struct vm_def *nd, char *err,
			     size_t errlen) __attribute__((warn_unused_result));

/*
 * No disk of nd (virtio-blk disks, SCSI LUN disks, DVD media) is a file that another VM with
 * a worker has, where either of them writes it (an ISO image read-only on both sides is
 * shared): at attach, and again at start (sup_start), since two VMs that are off may be given
 * the same disk. 0, or -EBUSY with err naming the disk and the other VM.
 */
int disk_policy_check_sharing(struct store *st, struct sup *sup, const struct vm_def *nd, char *err,
			      size_t errlen) __attribute__((warn_unused_result));

/*
 * A VHDX's whole differencing chain is in storage pools: the disk at path (what: "disk",
 * "parent", for messages) is opened through
 * its pool, its parents are found as keel-vmm finds them, and each must open through a pool
 * too (a locator pointing anywhere else is refused with its path). At most
 * DISK_POLICY_MAX_DEPTH parents. Returns how many parents, or -EINVAL with err. With fds, the
 * parents stay open, read-only and as their pools opened them, nearest first, in
 * fds[0..max) (the caller closes them; more than max: -E2BIG with err), for a worker that
 * opens no parent itself (docs/security.md).
 */
#define DISK_POLICY_MAX_DEPTH 256 /* the disk library's own bound */
int disk_policy_check_chain(struct store *st, const char *what, const char *path, int *fds,
			    unsigned max, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * disk_policy_check_chain, and the disk at path opened read-only with its whole chain on the
 * descriptors that check opened (no file opened by path) into *out, for keeld's own work on
 * a chain (a checkpoint's new differencing children). 0, or -EINVAL with err.
 */
int disk_policy_open_chain(struct store *st, const char *what, const char *path, struct disk **out,
			   char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * disk_policy_check_chain without a message, calling visit with the path of each parent as the
 * file system resolves it (nearest first) until one returns nonzero (then 1 is returned) or
 * the chain ends or cannot be followed further (0): for keeld's count of the files a VM
 * uses (vm_files.h).
 */
int disk_policy_chain_each(struct store *st, const char *path,
			   int (*visit)(void *ctx, const char *parent), void *ctx);

/*
 * Pin the format of disk d being attached (see disk_policy_attach; old: the description
 * before the change, or NULL), reading only fd, the descriptor its pool opened for it: never
 * the file its path names by then. 0, or -EINVAL with err; d->format is set on success.
 */
int disk_policy_pin_fd(struct vm_disk *d, int fd, const struct vm_def *old, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

/*
 * A checkpoint delete's merge of differencing disk child into its parent, on the files keeld
 * checked. disk_policy_merge_open (under keeld's lock): child's chain through the pools with
 * its linkage (as disk_policy_check_chain), the parent the chain found compared (device and
 * inode) with parent opened for writing through its pool, both kept open in *m; -EINVAL,
 * -EIO (another file) or -errno with err. disk_policy_merge_run (it may take long; keeld's
 * lock may be let go): the merge on those handles, then the child's file removed when its
 * path still names it (-EIO otherwise, naming it). disk_policy_merge_close ends either.
 */
struct disk_policy_merge {
	struct disk *child, *parent;
	struct stat st, pst; /* the child's and the parent's files as opened */
	char path[PATH_MAX]; /* the child's */
};
int disk_policy_merge_open(struct store *st, const char *child, const char *parent,
			   struct disk_policy_merge *m, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int disk_policy_merge_run(struct disk_policy_merge *m, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void disk_policy_merge_close(struct disk_policy_merge *m);

/*
 * Point differencing disk child (its old parent merged away) at parent, which reads as the old
 * one did: child opened writable through its pool, parent with its whole chain through the
 * pools and checked (disk_policy_open_chain); the new locator names that file. 0, or -EINVAL
 * (a file refused, naming it) or -errno with err.
 */
int disk_policy_relink(struct store *st, const char *child, const char *parent, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

/*
 * How many parents the differencing chains of all nd's VHDX disks and LUNs have together,
 * or -E2BIG with err when more than the VMDEF_CHAIN_FDS_MAX a worker takes (err names that
 * total and how to merge), or -EINVAL with err from disk_policy_check_chain. For an
 * attach, and before a checkpoint adds one parent to every VHDX disk.
 */
int disk_policy_chain_total(struct store *st, const struct vm_def *nd, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
