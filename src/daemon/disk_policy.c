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
#include "disk/vhdx.h"
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

/* A disk attached now, as format f (given, or from its name): the file open on fd (its pool's
 * descriptor, only read here) must agree. */
static int check_new(const struct vm_disk *d, int fd, enum vm_disk_format f, bool given, char *err,
		     size_t errlen)
{
	enum disk_format found;
	struct disk *h = NULL;
	struct disk_err why;
	int r, t;

	if (f == VM_DISK_VHDX) {
		t = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		r = t < 0 ? -errno
			  : disk_open_fd_as(t, d->path, DISK_FORMAT_VHDX,
					    DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT |
						    DISK_OPEN_NOLOCK,
					    &h, &why);
		disk_close(h);
		if (r)
			error_set(err, errlen, "disk %s %s VHDX, but it does not open as one: %s",
				  d->path, given ? "is given as" : "is named as",
				  t < 0 ? strerror(-r) : disk_why(&why, r));
		return r ? -EINVAL : 0;
	}
	if (given)
		return 0; /* raw, as the administrator said: whatever the file begins with */
	r = disk_probe_fd(fd, d->path, &found, &why);
	if (r) {
		error_set(err, errlen, "%s", disk_why(&why, r));
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

/* Are a and b the same file (device and inode)? */
static bool same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Is the file at path the file a (by device and inode)? */
static bool same_file(const struct stat *a, const char *path)
{
	struct stat b;

	if (stat(path, &b) < 0)
		return false;
	if (S_ISBLK(a->st_mode) || S_ISBLK(b.st_mode)) /* device nodes: the same device */
		return S_ISBLK(a->st_mode) && S_ISBLK(b.st_mode) && a->st_rdev == b.st_rdev;
	return same_inode(a, &b);
}

/* disk_policy_check_sharing, of nd's DVD media only when media_only. */
static int check_sharing(struct store *st, struct sup *sup, const struct vm_def *nd,
			 bool media_only, char *err, size_t errlen)
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

			/* nth_disk without dvd: a disk, not a DVD medium */
			if (!d || (media_only && nth_disk(nd, i, false)) || stat(d->path, &a) < 0)
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

int disk_policy_pin_fd(struct vm_disk *d, int fd, const struct vm_def *old, char *err,
		       size_t errlen)
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
	r = check_new(d, fd, f, given, err, errlen);
	if (!r)
		d->format = f;
	return r;
}

/* The disk at slot of nd (disks[], then the SCSI LUNs'). */
static struct vm_disk *slot_disk(struct vm_def *nd, int slot)
{
	return (unsigned)slot < nd->ndisks ? &nd->disks[slot]
					   : &nd->scsi.luns[(unsigned)slot - nd->ndisks].disk;
}

/* A file of a chain through its pool: regular files only, and opening it never waits or
 * follows a last symlink (a FIFO or a device a disk's locator names is refused, never read).
 * O_NONBLOCK is dropped again once the file is known to be regular. */
static int open_level(struct store *st, const char *what, const char *path, int flags, char *err,
		      size_t errlen)
{
	int fd = pools_open(st, what, path, flags | O_NONBLOCK | O_NOFOLLOW, false, err, errlen);
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

/* Whether the absolute path cand, with "." and ".." taken by its text and repeated '/'
 * dropped, is real (a canonical path, as realpath gives): it is unless a symlink is on it. */
static bool lexical_is(const char *cand, const char *real)
{
	char out[PATH_MAX];
	size_t n = 0;

	if (cand[0] != '/')
		return false;
	for (const char *c = cand; *c;) {
		const char *e;
		size_t len;

		while (*c == '/')
			c++;
		e = strchrnul(c, '/');
		len = (size_t)(e - c);
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			while (n > 0 && out[n - 1] != '/')
				n--;
			n = n > 0 ? n - 1 : 0;
		} else if (len && !(len == 1 && c[0] == '.')) {
			if (n + 1 + len >= sizeof(out))
				return false;
			out[n++] = '/';
			memcpy(out + n, c, len);
			n += len;
		}
		c = e;
	}
	if (!n)
		out[n++] = '/';
	out[n] = '\0';
	return !strcmp(out, real);
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
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0), r;

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
		 * pool), as the library would choose; realpath opens nothing. It must resolve
		 * as its text reads: through no symlink, as the pools open files. */
		if (realpath(cand, real)) {
			r = 1;
			if (!lexical_is(cand, real)) {
				disk_close(d);
				error_set(err, errlen,
					  "disk %s: its parent %s is a symlink or reached through "
					  "one "
					  "inside its pool: keel opens a pool's files by their own "
					  "path",
					  path, cand);
				return -EINVAL;
			}
		}
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

/* Where check_chain puts what it found besides the count. */
struct chain_out {
	int *fds;				     /* the parents' descriptors, or NULL */
	unsigned max;				     /* room in fds */
	struct disk **keep;			     /* the chain opened on them, or NULL */
	int (*visit)(void *ctx, const char *parent); /* each parent's path, or NULL */
	void *ctx;
};

/* disk_policy_check_chain from top, the descriptor its pool opened for path (the caller's:
 * duplicated, never closed here), with what out asks for. */
static int chain_at(struct store *st, const char *path, int top, const struct chain_out *out,
		    char *err, size_t errlen)
{
	int own[DISK_POLICY_MAX_DEPTH], dup_fds[DISK_POLICY_MAX_DEPTH];
	char(*names)[PATH_MAX] = calloc(DISK_POLICY_MAX_DEPTH + 1, PATH_MAX);
	struct disk *d = NULL;
	struct disk_err derr;
	struct stat s;
	int n = 0, r = 0, cur, t;

	if (!names)
		return -ENOMEM;
	if (fstat(top, &s) < 0 || !S_ISREG(s.st_mode)) {
		error_set(err, errlen, "disk %s is not a regular file", path);
		free(names);
		return -EINVAL;
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
		if (out->visit && out->visit(out->ctx, names[n + 1])) {
			r = -ECANCELED;
			break;
		}
		if (n == DISK_POLICY_MAX_DEPTH) {
			error_set(err, errlen, "disk %s has more than %d parents (a loop?)", path,
				  DISK_POLICY_MAX_DEPTH);
			r = -EINVAL;
			break;
		}
		fd = open_level(st, "parent", names[n + 1], O_RDONLY, why, sizeof(why));
		if (fd < 0) {
			error_set(err, errlen, "disk %s: its differencing chain leads to %s", path,
				  why);
			r = -EINVAL;
			break;
		}
		own[n++] = fd;
	}
	if (!r && out->fds && (unsigned)n > out->max) {
		error_set(err, errlen,
			  "disk %s: its differencing chain has %d parents, more than a VM's disks "
			  "may "
			  "have (%d in all, %u left for this one): merge some of its checkpoints",
			  path, n, VMDEF_CHAIN_FDS_MAX, out->max);
		r = -E2BIG;
	}
	/* The linkage of the whole chain, checked by the library on these same descriptors. */
	for (int i = 0; !r && i < n; i++) {
		dup_fds[i] = fcntl(own[i], F_DUPFD_CLOEXEC, 0);
		if (dup_fds[i] < 0) {
			r = -errno;
			while (i--)
				close(dup_fds[i]);
			error_set(err, errlen, "disk %s: %s", path, strerror(-r));
		}
	}
	if (!r) {
		t = fcntl(top, F_DUPFD_CLOEXEC, 0);
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
		if (out->keep && !r)
			*out->keep = d;
		else
			disk_close(d);
	}
	free(names);
	for (int i = 0; i < n; i++) {
		if (!r && out->fds)
			out->fds[i] = own[i];
		else
			close(own[i]);
	}
	return r ? r : n;
}

/* chain_at on the file at path, opened through its pool here. */
static int check_chain(struct store *st, const char *what, const char *path,
		       const struct chain_out *out, char *err, size_t errlen)
{
	int top = open_level(st, what, path, O_RDONLY, err, errlen), r;

	if (top < 0)
		return top;
	r = chain_at(st, path, top, out, err, errlen);
	close(top);
	return r;
}

int disk_policy_check_chain(struct store *st, const char *what, const char *path, int *fds,
			    unsigned max, char *err, size_t errlen)
{
	struct chain_out out = {.fds = fds, .max = max};

	return check_chain(st, what, path, &out, err, errlen);
}

int disk_policy_chain_each(struct store *st, const char *path,
			   int (*visit)(void *ctx, const char *parent), void *ctx)
{
	struct chain_out out = {.visit = visit, .ctx = ctx};
	char err[8];

	return check_chain(st, "disk", path, &out, err, sizeof(err)) == -ECANCELED ? 1 : 0;
}

int disk_policy_open_chain(struct store *st, const char *what, const char *path, struct disk **out,
			   char *err, size_t errlen)
{
	struct chain_out o = {.keep = out};

	*out = NULL;
	return check_chain(st, what, path, &o, err, errlen) < 0 ? -EINVAL : 0;
}

int disk_policy_check_sharing(struct store *st, struct sup *sup, const struct vm_def *nd, char *err,
			      size_t errlen)
{
	return check_sharing(st, sup, nd, false, err, errlen);
}

/* A DVD medium is an ISO image: read-only raw, always. */
static void media_raw(struct vm_def *nd)
{
	for (unsigned i = 0; i < nd->scsi.nluns; i++)
		if (nd->scsi.luns[i].type == VM_LUN_DVD)
			nd->scsi.luns[i].disk.format = VM_DISK_RAW;
}

/* Is the disk d a VHDX (as pinned, or by its name when not yet)? */
static bool is_vhdx(const struct vm_disk *d)
{
	return d->format == VM_DISK_VHDX ||
	       (d->format == VM_DISK_AUTO && disk_format_from_name(d->path) == DISK_FORMAT_VHDX);
}

/* total parents for a VM's disks: within the worker's budget (total), or -E2BIG with err. */
static int total_ok(unsigned total, char *err, size_t errlen)
{
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
	return total_ok(total, err, errlen);
}

int disk_policy_attach(struct store *st, struct sup *sup, struct vm_def *nd,
		       const struct vm_def *old, char *err, size_t errlen)
{
	struct vmdef_file files[VMDEF_FILES_MAX];
	enum vm_disk_format pinned[VMDEF_FILES_MAX];
	int fds[VMDEF_FILES_MAX], n, r;
	unsigned total = 0;

	/* Every file opened once, through its pool; what is decided about it below is read on
	 * that descriptor, never on a file opened by its path again. */
	n = pools_open_def(st, nd, files, fds, err, errlen);
	if (n < 0)
		return n;
	r = disk_policy_check_sharing(st, sup, nd, err, errlen);
	/* Each disk's format (a DVD medium is an ISO image: raw), kept aside until all agree. */
	for (int i = 0; !r && i < n; i++) {
		struct vm_disk *d = files[i].slot >= 0 ? slot_disk(nd, files[i].slot) : NULL;
		struct vm_disk copy;

		if (!d || files[i].dvd)
			continue;
		copy = *d;
		r = disk_policy_pin_fd(&copy, fds[i], old, err, errlen);
		pinned[i] = copy.format;
		if (!r && copy.format == VM_DISK_VHDX) {
			struct chain_out out = {0};
			int k = chain_at(st, d->path, fds[i], &out, err, errlen);

			r = k < 0 ? -EINVAL : 0;
			total += k < 0 ? 0 : (unsigned)k;
		}
	}
	pools_close_def(fds, (unsigned)n);
	/* The parents of all disks and LUNs together: at most the worker's budget, so that a
	 * VM attach accepts also starts. */
	if (!r)
		r = total_ok(total, err, errlen);
	if (r < 0)
		return r == -E2BIG ? -EINVAL : r; /* a request keel refuses: 400 */
	for (int i = 0; i < n; i++)
		if (files[i].slot >= 0 && !files[i].dvd)
			slot_disk(nd, files[i].slot)->format = pinned[i];
	media_raw(nd);
	return 0;
}

int disk_policy_attach_media(struct store *st, struct sup *sup, struct vm_def *nd, char *err,
			     size_t errlen)
{
	int r = 0;

	for (unsigned i = 0; !r && i < nd->scsi.nluns; i++) {
		const struct vm_lun *l = &nd->scsi.luns[i];
		int fd;

		if (l->type != VM_LUN_DVD || !l->disk.path)
			continue;
		fd = pools_open_medium(st, l->disk.path, err, errlen);
		if (fd < 0)
			r = fd;
		else
			close(fd);
	}
	if (!r)
		r = check_sharing(st, sup, nd, true, err, errlen);
	if (!r)
		media_raw(nd);
	return r;
}

int disk_policy_merge_open(struct store *st, const char *child, const char *parent,
			   struct disk_policy_merge *m, char *err, size_t errlen)
{
	int fds[DISK_POLICY_MAX_DEPTH], top, pfd = -1, n, r = 0;
	struct chain_out out = {.fds = fds, .max = DISK_POLICY_MAX_DEPTH};
	struct disk_err why;
	struct stat ps;

	memset(m, 0, sizeof(*m));
	top = open_level(st, "disk", child, O_RDONLY, err, errlen);
	if (top < 0)
		return -EINVAL;
	/* The child's chain through the pools, linkage checked, its parents kept open. */
	n = chain_at(st, child, top, &out, err, errlen);
	if (n == 0) {
		error_set(err, errlen, "cannot merge %s: it is not a differencing disk", child);
		n = -EINVAL;
	}
	if (n < 0) {
		close(top);
		return -EINVAL;
	}
	/* The parent written to is the file the chain check found, not what its path names
	 * now: opened for writing through its pool, then compared with that one. */
	pfd = open_level(st, "disk", parent, O_RDWR, err, errlen);
	if (pfd < 0)
		r = -EINVAL;
	else if (fstat(top, &m->st) < 0 || fstat(fds[0], &ps) < 0 || fstat(pfd, &m->pst) < 0)
		r = -errno;
	else if (!same_inode(&ps, &m->pst)) {
		error_set(err, errlen,
			  "disk %s is not a differencing child of %s (its parent is another file): "
			  "the checkpoint files were changed outside keel",
			  child, parent);
		r = -EIO;
	}
	close(fds[0]);
	if (r) {
		for (int i = 1; i < n; i++)
			close(fds[i]);
		if (pfd >= 0)
			close(pfd);
		close(top);
		return r;
	}
	/* The two handles, on those descriptors (taken over): the child alone, read; the parent
	 * writable, with its own parents as the check opened them. */
	r = disk_open_fd_as(top, child, DISK_FORMAT_VHDX, DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT,
			    &m->child, &why);
	if (r) {
		for (int i = 1; i < n; i++)
			close(fds[i]);
		close(pfd);
	} else {
		/* Exactly the parents passed (none too): no locator is followed by path. */
		r = disk_open_chain_fd(pfd, parent, DISK_FORMAT_VHDX, 0, fds + 1, (unsigned)n - 1,
				       &m->parent, &why);
	}
	if (r) {
		error_set(err, errlen, "cannot merge %s into %s: %s", child, parent,
			  disk_why(&why, r));
		disk_policy_merge_close(m);
		return r;
	}
	snprintf(m->path, sizeof(m->path), "%s", child);
	return 0;
}

int disk_policy_merge_run(struct disk_policy_merge *m, char *err, size_t errlen)
{
	struct disk_err why;
	struct stat now;
	int r = vhdx_merge_disks(m->child, m->parent, &why);

	if (r) {
		error_set(err, errlen, "%s", disk_why(&why, r));
		return r;
	}
	/* The child goes when its path still names the file merged (the pool's directory only
	 * root changes; anything else there is left alone). */
	if (lstat(m->path, &now) < 0 || !S_ISREG(now.st_mode) || !same_inode(&now, &m->st)) {
		error_set(err, errlen,
			  "merged %s into %s, but that path now names another file: it is left "
			  "as it is",
			  m->path, m->parent->path);
		return -EIO;
	}
	if (unlink(m->path) < 0) {
		r = -errno;
		error_set(err, errlen, "merged %s into %s but cannot remove it: %s", m->path,
			  m->parent->path, strerror(errno));
	}
	return r;
}

void disk_policy_merge_close(struct disk_policy_merge *m)
{
	disk_close(m->child);
	disk_close(m->parent);
	m->child = m->parent = NULL;
}

int disk_policy_relink(struct store *st, const char *child, const char *parent, char *err,
		       size_t errlen)
{
	struct disk *c = NULL, *p = NULL;
	struct disk_err why;
	int fd, r;

	/* The child alone (its old parent was merged away), opened writable through its pool;
	 * the new parent with its chain through theirs (disk_policy_open_chain), so that the
	 * locator written names a file the check saw, and no parent's locator is followed. */
	fd = open_level(st, "disk", child, O_RDWR, err, errlen);
	if (fd < 0)
		return -EINVAL;
	r = disk_open_fd_as(fd, child, DISK_FORMAT_VHDX, DISK_OPEN_NOPARENT, &c, &why);
	if (r) {
		error_set(err, errlen, "cannot relink %s: %s", child, disk_why(&why, r));
		return r;
	}
	r = disk_policy_open_chain(st, "parent", parent, &p, err, errlen);
	if (!r) {
		r = vhdx_relink_disk(c, p, parent, &why);
		if (r)
			error_set(err, errlen, "%s", disk_why(&why, r));
	}
	disk_close(p);
	disk_close(c);
	return r;
}
