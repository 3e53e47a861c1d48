/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/disk_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/pools.h"
#include "disk/disk.h"
#include "lib/error.h"

/* The disk old had at path, or NULL. */
static const struct vm_disk *attached(const struct vm_def *old, const char *path)
{
	for (unsigned i = 0; old && i < old->ndisks; i++)
		if (!strcmp(old->disks[i].path, path))
			return &old->disks[i];
	return NULL;
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

/* No disk of nd is a file another VM with a worker has, where either of them writes it. */
static int check_sharing(struct store *st, struct sup *sup, const struct vm_def *nd, char *err,
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
		for (unsigned i = 0; !r && i < nd->ndisks; i++) {
			struct stat a;

			if (stat(nd->disks[i].path, &a) < 0)
				continue;
			for (unsigned j = 0; !r && j < defs[v].ndisks; j++) {
				if (!same_file(&a, defs[v].disks[j].path) ||
				    (nd->disks[i].readonly && defs[v].disks[j].readonly))
					continue;
				error_set(err, errlen,
					  "disk %s is open%s in running VM '%s': two VMs cannot "
					  "share a disk that either of them writes",
					  nd->disks[i].path,
					  defs[v].disks[j].readonly ? "" : " for writing",
					  defs[v].name);
				r = -EBUSY;
			}
		}
	}
	store_vm_list_free(defs, n);
	return r;
}

/* Pin the format of every disk of nd (disk_policy.h). */
static int pin_formats(struct vm_def *nd, const struct vm_def *old, char *err, size_t errlen)
{
	for (unsigned i = 0; i < nd->ndisks; i++) {
		struct vm_disk *d = &nd->disks[i];
		const struct vm_disk *was = attached(old, d->path);
		bool given = d->format != VM_DISK_AUTO;
		enum vm_disk_format f = d->format;
		int r;

		if (was && (!given || f == was->format)) {
			d->format = was->format;
			continue;
		}
		if (!given)
			f = disk_format_from_name(d->path) == DISK_FORMAT_VHDX ? VM_DISK_VHDX
									       : VM_DISK_RAW;
		r = check_new(d, f, given, err, errlen);
		if (r)
			return r;
		d->format = f;
	}
	return 0;
}

int disk_policy_check_chain(struct store *st, const char *what, const char *path, char *err,
			    size_t errlen)
{
	char(*parents)[DISK_PATH_MAX] = calloc(DISK_POLICY_MAX_DEPTH, DISK_PATH_MAX);
	struct disk *d = NULL;
	struct disk_err derr;
	int fd, n, r = 0;

	if (!parents)
		return -ENOMEM;
	fd = pools_open(st, what, path, O_RDONLY, false, err, errlen);
	if (fd < 0) {
		free(parents);
		return fd;
	}
	n = disk_open_fd_as(fd, path, DISK_FORMAT_VHDX, DISK_OPEN_RDONLY | DISK_OPEN_NOLOCK, &d,
			    &derr);
	if (n) {
		if (derr.msg[0]) /* the library's line names the file */
			error_set(err, errlen, "%s", derr.msg);
		else
			error_set(err, errlen, "disk %s: %s", path, strerror(-n));
		free(parents);
		return -EINVAL;
	}
	n = disk_parents(d, parents, DISK_POLICY_MAX_DEPTH);
	disk_close(d);
	if (n < 0) {
		error_set(err, errlen, "disk %s has more than %d parents", path,
			  DISK_POLICY_MAX_DEPTH);
		r = -EINVAL;
	}
	for (int i = 0; !r && i < n; i++) {
		char why[PATH_MAX + 256], real[PATH_MAX];

		/* A locator's path as the file system resolves it ("../a/b.vhdx" is fine when
		 * it lands in a pool); then through the pool's own rules. */
		if (!realpath(parents[i], real)) {
			error_set(err, errlen, "disk %s: its parent %s: %s", path, parents[i],
				  strerror(errno));
			r = -EINVAL;
			break;
		}
		fd = pools_open(st, "parent", real, O_RDONLY, false, why, sizeof(why));
		if (fd < 0) {
			error_set(err, errlen, "disk %s: its differencing chain leads to %s", path,
				  why);
			r = -EINVAL;
		} else {
			close(fd);
		}
	}
	free(parents);
	return r;
}

int disk_policy_attach(struct store *st, struct sup *sup, struct vm_def *nd,
		       const struct vm_def *old, char *err, size_t errlen)
{
	int r = pools_check_def(st, nd, err, errlen);

	if (!r)
		r = check_sharing(st, sup, nd, err, errlen);
	if (!r)
		r = pin_formats(nd, old, err, errlen);
	for (unsigned i = 0; !r && i < nd->ndisks; i++)
		if (nd->disks[i].format == VM_DISK_VHDX)
			r = disk_policy_check_chain(st, "disk", nd->disks[i].path, err, errlen);
	return r;
}
