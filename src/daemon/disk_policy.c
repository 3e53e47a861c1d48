/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/disk_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/vmdef.h"
#include "daemon/pools.h"
#include "disk/disk.h"
#include "lib/error.h"

/* The disk old had at path (a virtio-blk disk or a SCSI LUN disk), or NULL. */
static const struct vm_disk *attached(const struct vm_def *old, const char *path)
{
	for (unsigned i = 0; old && i < old->ndisks; i++)
		if (!strcmp(old->disks[i].path, path))
			return &old->disks[i];
	for (unsigned i = 0; old && i < old->scsi.nluns; i++)
		if (old->scsi.luns[i].type == VM_LUN_DISK && old->scsi.luns[i].disk.path &&
		    !strcmp(old->scsi.luns[i].disk.path, path))
			return &old->scsi.luns[i].disk;
	return NULL;
}

/* The disk nd has at index i of its virtio-blk disks followed by its SCSI LUNs, or NULL for
 * a LUN with no file; a DVD drive's medium (read-only raw) only when dvd, else NULL. */
static const struct vm_disk *nth_disk(const struct vm_def *nd, unsigned i, bool dvd)
{
	const struct vm_lun *l = i >= nd->ndisks ? &nd->scsi.luns[i - nd->ndisks] : NULL;

	if (!l)
		return &nd->disks[i];
	return (l->type == VM_LUN_DISK || dvd) && l->disk.path ? &l->disk : NULL;
}

/* A disk attached now, as format f (given, or from its name): the file must agree. */
static int check_new(const struct vm_disk *d, enum vm_disk_format f, bool given, char *err,
		     size_t errlen)
{
	enum disk_format found;
	struct disk *h = NULL;
	struct disk_err why;
	int r;

	if (f == VM_DISK_VHDX) {
		r = disk_open_as(d->path, DISK_FORMAT_VHDX,
				 DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT | DISK_OPEN_NOLOCK, &h,
				 &why);
		disk_close(h);
		if (r)
			error_set(err, errlen, "disk %s %s VHDX, but it does not open as one: %s",
				  d->path, given ? "is given as" : "is named as",
				  disk_why(&why, r));
		return r ? -EINVAL : 0;
	}
	if (given)
		return 0; /* raw, as the administrator said: whatever the file begins with */
	r = disk_probe(d->path, &found, &why);
	if (r) {
		if (why.msg[0]) /* the library's line names the file */
			error_set(err, errlen, "%s", why.msg);
		else
			error_set(err, errlen, "disk %s: %s", d->path, strerror(-r));
		return -EINVAL;
	}
	if (found == DISK_FORMAT_VHDX) {
		error_set(err, errlen,
			  "disk %s begins with a VHDX header but its name does not end in .vhdx: "
			  "say which it is (format vhdx, or raw to show the guest the file's bytes "
			  "as they are)",
			  d->path);
		return -EINVAL;
	}
	return 0;
}

/* Is the file at path the file a (by device and inode)? */
static bool same_file(const struct stat *a, const char *path)
{
	struct stat b;

	if (stat(path, &b) < 0)
		return false;
	if (S_ISBLK(a->st_mode) || S_ISBLK(b.st_mode)) /* device nodes: the same device */
		return S_ISBLK(a->st_mode) && S_ISBLK(b.st_mode) && a->st_rdev == b.st_rdev;
	return a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

int disk_policy_check_sharing(struct store *st, struct sup *sup, const struct vm_def *nd, char *err,
			      size_t errlen)
{
	struct vm_def *defs = NULL;
	size_t n = 0;
	int r = store_vm_list(st, &defs, &n);

	for (size_t v = 0; !r && v < n; v++) {
		struct sup_status s;

		if (!strcmp(defs[v].uuid, nd->uuid))
			continue;
		sup_status(sup, defs[v].uuid, &s);
		if (s.pid <= 0)
			continue; /* no worker: nothing has its files open */
		/* Its virtio-blk disks, SCSI LUN disks and DVD media, against theirs: an ISO
		 * image read-only on both sides is fine to share, not one the other writes. */
		for (unsigned i = 0; !r && i < nd->ndisks + nd->scsi.nluns; i++) {
			const struct vm_disk *d = nth_disk(nd, i, true);
			struct stat a;

			if (!d || stat(d->path, &a) < 0)
				continue;
			for (unsigned j = 0; !r && j < defs[v].ndisks + defs[v].scsi.nluns; j++) {
				const struct vm_disk *o = nth_disk(&defs[v], j, true);

				if (!o || !same_file(&a, o->path) || (d->readonly && o->readonly))
					continue;
				error_set(err, errlen,
					  "disk %s is open%s in running VM '%s': two VMs cannot "
					  "share a disk that either of them writes",
					  d->path, o->readonly ? "" : " for writing", defs[v].name);
				r = -EBUSY;
			}
		}
	}
	store_vm_list_free(defs, n);
	return r;
}

/* Pin the format of d, a disk of nd: kept as attached before (old), else as given or from
 * its name, checked against the file (never probed into a format). */
static int pin_format(struct vm_disk *d, const struct vm_def *old, char *err, size_t errlen)
{
	const struct vm_disk *was = attached(old, d->path);
	bool given = d->format != VM_DISK_AUTO;
	enum vm_disk_format f = d->format;
	int r;

	if (was && (!given || f == was->format)) {
		d->format = was->format;
		return 0;
	}
	if (!given)
		f = disk_format_from_name(d->path) == DISK_FORMAT_VHDX ? VM_DISK_VHDX : VM_DISK_RAW;
	r = check_new(d, f, given, err, errlen);
	if (!r)
		d->format = f;
	return r;
}

/* Pin the format of every disk of nd, virtio-blk and SCSI LUN alike (disk_policy.h). A DVD
 * medium is an ISO image, read-only raw by nature: always raw. */
static int pin_formats(struct vm_def *nd, const struct vm_def *old, char *err, size_t errlen)
{
	for (unsigned i = 0; i < nd->ndisks + nd->scsi.nluns; i++) {
		struct vm_lun *l = i >= nd->ndisks ? &nd->scsi.luns[i - nd->ndisks] : NULL;
		int r;

		if (l && l->type == VM_LUN_DVD) {
			l->disk.format = VM_DISK_RAW;
			continue;
		}
		if (l && !l->disk.path)
			continue;
		r = pin_format(l ? &l->disk : &nd->disks[i], old, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

/* A file of a chain through its pool: regular files only, and opening it never waits or
 * follows a last symlink (a FIFO or a device a disk's locator names is refused, never read).
 * O_NONBLOCK is dropped again once the file is known to be regular. */
static int open_level(struct store *st, const char *what, const char *path, char *err,
		      size_t errlen)
{
	int fd = pools_open(st, what, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW, false, err, errlen);
	struct stat s;

	if (fd < 0)
		return fd;
	if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode) || fcntl(fd, F_SETFL, 0) < 0) {
		close(fd);
		error_set(err, errlen, "%s %s is not a regular file", what, path);
		return -EINVAL;
	}
	return fd;
}

/* The path the locator of the disk open on fd (named path) gives for its parent, as the
 * file system resolves it, into real: 1, 0 for a disk without a parent, or -EINVAL with err.
 * Only the locator is read (DISK_OPEN_NOPARENT): no parent is opened here. */
static int level_parent(int fd, const char *path, const char *top, char *real, char *err,
			size_t errlen)
{
	char cand[PATH_MAX], names[2 * PATH_MAX + 8] = "";
	struct disk *d = NULL;
	struct disk_err derr;
	int dfd = dup(fd), r;

	if (dfd < 0)
		return -errno;
	r = disk_open_fd_as(dfd, path, DISK_FORMAT_VHDX,
			    DISK_OPEN_RDONLY | DISK_OPEN_NOLOCK | DISK_OPEN_NOPARENT, &d, &derr);
	if (r) {
		if (derr.msg[0]) /* the library's line names the file */
			error_set(err, errlen, "%s", derr.msg);
		else
			error_set(err, errlen, "disk %s: %s", path, strerror(-r));
		return -EINVAL;
	}
	r = -ENOENT;
	for (unsigned k = 0; k < 2 && r; k++) {
		int e = disk_parent_locator(d, k, cand, sizeof(cand));

		if (e == -ENODEV) {
			r = 0;
			break;
		}
		if (e)
			continue;
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s'%s'",
			 names[0] ? ", " : "", cand);
		/* The first the file system resolves ("../a/b.vhdx" is fine when it lands in a
		 * pool), as the library would choose; realpath opens nothing. */
		if (realpath(cand, real))
			r = 1;
	}
	disk_close(d);
	if (r < 0 && !strcmp(top, path))
		error_set(err, errlen, "disk %s: parent disk not found (its locator names %s)", top,
			  names[0] ? names : "no path usable here");
	else if (r < 0)
		error_set(err, errlen, "disk %s: %s: parent disk not found (its locator names %s)",
			  top, path, names[0] ? names : "no path usable here");
	return r < 0 ? -EINVAL : r;
}

/* disk_policy_check_chain, the chain kept open in *keep when keep is not NULL. */
static int check_chain(struct store *st, const char *what, const char *path, int *fds, unsigned max,
		       struct disk **keep, char *err, size_t errlen)
{
	int own[DISK_POLICY_MAX_DEPTH], dup_fds[DISK_POLICY_MAX_DEPTH];
	char(*names)[PATH_MAX] = calloc(DISK_POLICY_MAX_DEPTH + 1, PATH_MAX);
	struct disk *d = NULL;
	struct disk_err derr;
	int top, n = 0, r = 0, cur, t;

	if (!names)
		return -ENOMEM;
	top = open_level(st, what, path, err, errlen);
	if (top < 0) {
		free(names);
		return top;
	}
	snprintf(names[0], PATH_MAX, "%s", path);
	/* One level at a time: each file's locator read without its parent opened, the parent
	 * opened through its pool (never by the path alone), then its own locator. */
	for (cur = top;; cur = own[n - 1]) {
		char why[PATH_MAX + 256];
		int fd;

		r = level_parent(cur, names[n], path, names[n + 1], err, errlen);
		if (r <= 0)
			break;
		if (n == DISK_POLICY_MAX_DEPTH) {
			error_set(err, errlen, "disk %s has more than %d parents (a loop?)", path,
				  DISK_POLICY_MAX_DEPTH);
			r = -EINVAL;
			break;
		}
		fd = open_level(st, "parent", names[n + 1], why, sizeof(why));
		if (fd < 0) {
			error_set(err, errlen, "disk %s: its differencing chain leads to %s", path,
				  why);
			r = -EINVAL;
			break;
		}
		own[n++] = fd;
	}
	if (!r && fds && (unsigned)n > max) {
		error_set(err, errlen,
			  "disk %s: its differencing chain has %d parents, more than a VM's disks "
			  "may "
			  "have (%d in all, %u left for this one): merge some of its checkpoints",
			  path, n, VMDEF_CHAIN_FDS_MAX, max);
		r = -E2BIG;
	}
	/* The linkage of the whole chain, checked by the library on these same descriptors. */
	for (int i = 0; !r && i < n; i++) {
		dup_fds[i] = dup(own[i]);
		if (dup_fds[i] < 0) {
			r = -errno;
			while (i--)
				close(dup_fds[i]);
			error_set(err, errlen, "disk %s: %s", path, strerror(-r));
		}
	}
	if (!r) {
		t = dup(top);
		r = t < 0 ? -errno
			  : disk_open_chain_fd(t, path, DISK_FORMAT_VHDX,
					       DISK_OPEN_RDONLY | DISK_OPEN_NOLOCK, dup_fds,
					       (unsigned)n, &d, &derr);
		if (t < 0)
			for (int i = 0; i < n; i++)
				close(dup_fds[i]);
		if (r) {
			if (t >= 0 && derr.msg[0])
				error_set(err, errlen, "%s", derr.msg);
			else
				error_set(err, errlen, "disk %s: %s", path, strerror(-r));
			r = -EINVAL;
		}
		if (keep && !r)
			*keep = d;
		else
			disk_close(d);
	}
	close(top);
	free(names);
	for (int i = 0; i < n; i++) {
		if (!r && fds)
			fds[i] = own[i];
		else
			close(own[i]);
	}
	return r ? r : n;
}

int disk_policy_check_chain(struct store *st, const char *what, const char *path, int *fds,
			    unsigned max, char *err, size_t errlen)
{
	return check_chain(st, what, path, fds, max, NULL, err, errlen);
}

int disk_policy_open_chain(struct store *st, const char *what, const char *path, struct disk **out,
			   char *err, size_t errlen)
{
	*out = NULL;
	return check_chain(st, what, path, NULL, 0, out, err, errlen) < 0 ? -EINVAL : 0;
}

/* Is the disk d a VHDX (as pinned, or by its name when not yet)? */
static bool is_vhdx(const struct vm_disk *d)
{
	return d->format == VM_DISK_VHDX ||
	       (d->format == VM_DISK_AUTO && disk_format_from_name(d->path) == DISK_FORMAT_VHDX);
}

int disk_policy_chain_total(struct store *st, const struct vm_def *nd, char *err, size_t errlen)
{
	unsigned total = 0;

	for (unsigned i = 0; i < nd->ndisks + nd->scsi.nluns; i++) {
		const struct vm_disk *d = nth_disk(nd, i, false);
		int n;

		if (!d || !d->path || !is_vhdx(d))
			continue;
		n = disk_policy_check_chain(st, "disk", d->path, NULL, 0, err, errlen);
		if (n < 0)
			return -EINVAL;
		total += (unsigned)n;
	}
	if (total > VMDEF_CHAIN_FDS_MAX) {
		error_set(err, errlen,
			  "the VM's disks would have %u parents in all, more than the %d a VM's "
			  "disks may have: merge some checkpoints first (keel checkpoint delete "
			  "merges a checkpoint's disks into their children)",
			  total, VMDEF_CHAIN_FDS_MAX);
		return -E2BIG;
	}
	return (int)total;
}

int disk_policy_attach(struct store *st, struct sup *sup, struct vm_def *nd,
		       const struct vm_def *old, char *err, size_t errlen)
{
	int r = pools_check_def(st, nd, err, errlen);

	if (!r)
		r = disk_policy_check_sharing(st, sup, nd, err, errlen);
	if (!r)
		r = pin_formats(nd, old, err, errlen);
	for (unsigned i = 0; !r && i < nd->ndisks + nd->scsi.nluns; i++) {
		const struct vm_disk *d = nth_disk(nd, i, false);

		if (d && d->format == VM_DISK_VHDX)
			r = disk_policy_check_chain(st, "disk", d->path, NULL, 0, err, errlen) < 0
				    ? -EINVAL
				    : 0;
	}
	/* The parents of all disks and LUNs together: at most the worker's budget, so that a
	 * VM attach accepts also starts. */
	if (!r)
		r = disk_policy_chain_total(st, nd, err, errlen);
	return r == -E2BIG ? -EINVAL : r < 0 ? r : 0; /* a request keel refuses: 400 */
}
