/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/pools.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon/file_mode.h"
#include "lib/clock.h"
#include "lib/error.h"
#include "lib/iso.h"
#include "lib/log.h"

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > STORE_POOL_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

/* Why a directory of status s is not one only root can change ("not owned by root",
 * "writable by users other than root"), or NULL when it is: root's and not writable by
 * others, or, where sticky_ok, sticky (as /tmp: others cannot move root's entries). */
static const char *not_root_only(const struct stat *s, bool sticky_ok)
{
	if (s->st_uid != 0)
		return "not owned by root";
	if ((s->st_mode & 022) && !(sticky_ok && (s->st_mode & S_ISVTX)))
		return "writable by users other than root";
	return NULL;
}

/* Only root can change dir or any directory above it: each is root's and not writable by
 * others; a directory above may be sticky (as /tmp: others cannot move root's entries), the
 * pool's own may not (others could put files and symlinks in it). Else why says which. */
static bool only_root_changes(const char *dir, char *why, size_t len)
{
	char part[PATH_MAX];
	bool own = true;

	snprintf(part, sizeof(part), "%s", dir);
	for (;; own = false) {
		struct stat s;
		const char *bad;
		char *slash;

		if (stat(part[0] ? part : "/", &s) < 0) {
			snprintf(why, len, "%s: %s", part[0] ? part : "/", strerror(errno));
			return false;
		}
		bad = not_root_only(&s, !own);
		if (bad) {
			snprintf(why, len, "%s is %s", part[0] ? part : "/", bad);
			return false;
		}
		if (!part[0])
			return true;
		slash = strrchr(part, '/');
		*slash = '\0';
	}
}

static void free_list(struct store_pool *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_pool_free(&list[i]);
	free(list);
}

/* The directory of path into dir (canonical); false when it cannot be resolved. */
static bool dir_of(const char *path, char *dir)
{
	char tmp[PATH_MAX], *slash;

	snprintf(tmp, sizeof(tmp), "%s", path);
	slash = strrchr(tmp, '/');
	if (!slash)
		return false;
	*slash = '\0';
	return realpath(tmp[0] ? tmp : "/", dir) != NULL;
}

/* Whether path is in any pool (by its path, whether or not it may be opened there). */
static bool in_some_pool(struct store *st, const char *path)
{
	struct store_pool *list = NULL;
	size_t n = 0;
	bool in = false;

	if (store_pool_list(st, &list, &n))
		return true; /* unknown: make no pool */
	for (size_t i = 0; i < n && !in; i++)
		in = pools_holds(&list[i], path);
	free_list(list, n);
	return in;
}

/* A store from before pools (upgraded from schema 1 or 2): each directory an existing VM
 * takes a file from becomes a pool ("migrated-N"), when only root can change it, and each
 * block device it uses a block pool ("migrated-block-N"), so that VMs that ran keep running
 * (docs/keeld.md, "Upgrading"). A directory that fails the rule is logged: its VMs do not
 * start until an administrator gives their files a pool. */
static void adopt(struct store *st)
{
	struct vm_def *defs = NULL;
	size_t n = 0;
	unsigned next = 1;

	if (store_vm_list(st, &defs, &n))
		return;
	for (size_t v = 0; v < n; v++) {
		struct vmdef_file vf[VMDEF_FILES_MAX];
		unsigned nf = vmdef_files(&defs[v], vf);

		for (unsigned f = 0; f < nf; f++) {
			const char *file = vf[f].path;
			struct store_pool p = {.created = (int64_t)time(NULL)};
			char err[PATH_MAX + 128], why[PATH_MAX + 64];
			struct stat s;
			int fd;

			if (!file)
				continue;
			fd = pools_open(st, "file", file, O_RDONLY, true, err, sizeof(err));
			if (fd >= 0) {
				close(fd);
				continue; /* already in a pool */
			}
			if (in_some_pool(st, file)) {
				/* In a pool but refused there (a symlink, a loose directory): a
				 * second pool for its directory would only hide why. */
				log_warn("upgrade: VM %s: %s", defs[v].name, err);
				continue;
			}
			if (stat(file, &s) == 0 && S_ISBLK(s.st_mode)) {
				char *dev = strdup(file);

				snprintf(p.name, sizeof(p.name), "migrated-block-%u", next++);
				p.block = true;
				p.devices = dev ? &dev : NULL;
				p.ndevices = dev ? 1 : 0;
				if (dev && store_pool_insert(st, &p, err, sizeof(err)))
					log_warn("upgrade: no pool for %s: %s", file, err);
				free(dev);
				continue;
			}
			if (!dir_of(file, p.path) || !only_root_changes(p.path, why, sizeof(why))) {
				log_warn("upgrade: VM %s: %s is in no storage pool, and its "
					 "directory "
					 "cannot be one (%s): give it a pool before it starts",
					 defs[v].name, file, dir_of(file, p.path) ? why : "gone");
				continue;
			}
			snprintf(p.name, sizeof(p.name), "migrated-%u", next++);
			if (store_pool_insert(st, &p, err, sizeof(err)))
				log_warn("upgrade: no pool for %s: %s", p.path, err);
			else
				log_info("upgrade: storage pool '%s' for %s (VM %s)", p.name,
					 p.path, defs[v].name);
		}
	}
	store_vm_list_free(defs, n);
}

int pools_init(struct store *st, const char *state_dir, char *err, size_t errlen)
{
	struct store_pool p = {.created = (int64_t)time(NULL)}, *list = NULL;
	char dir[PATH_MAX];
	size_t n = 0;
	int r;

	r = store_pool_list(st, &list, &n);
	if (r) {
		error_set(err, errlen, "cannot read the storage pools from the store");
		return r;
	}
	if (store_upgraded_from(st))
		adopt(st);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(list[i].name, POOL_DEFAULT)) {
			free_list(list, n);
			return 0;
		}
	}
	free_list(list, n);
	snprintf(dir, sizeof(dir), "%s/pools", state_dir);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		goto fail;
	snprintf(dir, sizeof(dir), "%s/pools/%s", state_dir, POOL_DEFAULT);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		goto fail;
	if (!realpath(dir, p.path))
		goto fail;
	snprintf(p.name, sizeof(p.name), "%s", POOL_DEFAULT);
	return store_pool_insert(st, &p, err, errlen);
fail:
	r = -errno;
	error_set(err, errlen, "cannot create the default storage pool %s: %s", dir,
		  strerror(errno));
	return r;
}

static int add_devices(struct store_pool *p, json_object *arr, char *err, size_t errlen)
{
	size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
	struct stat s;

	if (n == 0 || n > STORE_POOL_DEVICES_MAX) {
		error_set(err, errlen, "a block pool needs 'devices': 1 to %d block device paths",
			  STORE_POOL_DEVICES_MAX);
		return -EINVAL;
	}
	p->devices = calloc(n, sizeof(*p->devices));
	if (!p->devices)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(arr, i);
		const char *d =
			json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

		if (!d || d[0] != '/' || strlen(d) >= PATH_MAX) {
			error_set(err, errlen, "devices[%zu] must be an absolute path", i);
			return -EINVAL;
		}
		if (stat(d, &s) < 0) {
			error_set(err, errlen, "devices[%zu] %s: %s", i, d, strerror(errno));
			return -EINVAL;
		}
		if (!S_ISBLK(s.st_mode)) {
			error_set(err, errlen, "devices[%zu] %s is not a block device", i, d);
			return -EINVAL;
		}
		p->devices[i] = strdup(d);
		if (!p->devices[i])
			return -ENOMEM;
		p->ndevices++;
	}
	return 0;
}

int pools_create(struct store *st, json_object *req, char *err, size_t errlen)
{
	struct store_pool p = {.created = (int64_t)time(NULL)};
	json_object *name = NULL, *type = NULL, *path = NULL, *devices = NULL;
	char why[PATH_MAX + 64];
	struct stat s;
	int r = -EINVAL;

	if (!json_object_is_type(req, json_type_object)) {
		error_set(err, errlen, "the request body must be a JSON object");
		return -EINVAL;
	}
	json_object_object_foreach(req, key, val)
	{
		if (!strcmp(key, "name"))
			name = val;
		else if (!strcmp(key, "type"))
			type = val;
		else if (!strcmp(key, "path"))
			path = val;
		else if (!strcmp(key, "devices"))
			devices = val;
		else {
			error_set(err, errlen, "unknown field '%s' for a pool", key);
			return -EINVAL;
		}
	}
	if (!json_object_is_type(name, json_type_string) ||
	    !name_ok(json_object_get_string(name))) {
		error_set(err, errlen,
			  "a pool needs a 'name': 1 to %d letters, digits, '.', '_' or '-', not "
			  "starting with '.' or '-'",
			  STORE_POOL_NAME_MAX);
		return -EINVAL;
	}
	snprintf(p.name, sizeof(p.name), "%s", json_object_get_string(name));
	if (type && (!json_object_is_type(type, json_type_string) ||
		     (strcmp(json_object_get_string(type), "dir") &&
		      strcmp(json_object_get_string(type), "block")))) {
		error_set(err, errlen, "field 'type' must be dir or block");
		return -EINVAL;
	}
	p.block = type && !strcmp(json_object_get_string(type), "block");
	if (p.block) {
		if (path) {
			error_set(err, errlen,
				  "a block pool names devices ('devices'), not a 'path'");
			return -EINVAL;
		}
		r = add_devices(&p, devices, err, errlen);
	} else if (devices) {
		error_set(err, errlen, "a directory pool has a 'path', not 'devices'");
	} else if (!json_object_is_type(path, json_type_string) ||
		   json_object_get_string(path)[0] != '/') {
		error_set(err, errlen, "a directory pool needs a 'path': an absolute path");
	} else if (!realpath(json_object_get_string(path), p.path) || stat(p.path, &s) < 0) {
		error_set(err, errlen, "pool path %s: %s", json_object_get_string(path),
			  strerror(errno));
	} else if (!S_ISDIR(s.st_mode)) {
		error_set(err, errlen, "pool path %s is not a directory",
			  json_object_get_string(path));
	} else if (!strcmp(p.path, "/")) {
		error_set(err, errlen, "a pool cannot be the whole file system (/)");
	} else if (!only_root_changes(p.path, why, sizeof(why))) {
		/* Else its owner could swap the directory for another and reach any file. */
		error_set(err, errlen, "pool path %s: %s: a pool needs a path only root can change",
			  json_object_get_string(path), why);
	} else {
		r = 0;
	}
	if (!r)
		r = store_pool_insert(st, &p, err, errlen);
	store_pool_free(&p);
	return r;
}

static json_object *pool_json(const struct store_pool *p)
{
	json_object *o = json_object_new_object(), *d;
	char created[CLOCK_UTC_LEN];

	if (!o)
		return NULL;
	clock_utc_text((time_t)p->created, created);
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "type", json_object_new_string(p->block ? "block" : "dir"));
	if (p->block) {
		d = json_object_new_array();
		for (unsigned i = 0; d && i < p->ndevices; i++)
			json_object_array_add(d, json_object_new_string(p->devices[i]));
		json_object_object_add(o, "devices", d);
	} else {
		json_object_object_add(o, "path", json_object_new_string(p->path));
	}
	json_object_object_add(o, "created", json_object_new_string(created));
	return o;
}

json_object *pools_json(struct store *st)
{
	struct store_pool *list = NULL;
	json_object *arr;
	size_t n = 0;

	if (store_pool_list(st, &list, &n))
		return NULL;
	arr = json_object_new_array();
	for (size_t i = 0; arr && i < n; i++)
		json_object_array_add(arr, pool_json(&list[i]));
	free_list(list, n);
	return arr;
}

json_object *pools_one_json(struct store *st, const char *name)
{
	struct store_pool *list = NULL;
	json_object *o = NULL;
	size_t n = 0;

	if (store_pool_list(st, &list, &n))
		return NULL;
	for (size_t i = 0; i < n && !o; i++)
		if (!strcmp(list[i].name, name))
			o = pool_json(&list[i]);
	free_list(list, n);
	return o;
}

int pools_get(struct store *st, const char *name, struct store_pool *out, char *err, size_t errlen)
{
	struct store_pool *list = NULL;
	size_t n = 0;
	int r = store_pool_list(st, &list, &n);

	if (r)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(list[i].name, name)) {
			*out = list[i];
			list[i] = (struct store_pool){0}; /* moved out */
			r = 0;
		}
	}
	free_list(list, n);
	if (r)
		error_set(err, errlen, "no storage pool named '%.80s'", name);
	return r;
}

/* Is path inside dir (component-wise)? *rel: what follows dir's "/". */
static bool beneath(const char *dir, const char *path, const char **rel)
{
	size_t n = strlen(dir);

	if (strncmp(path, dir, n) || path[n] != '/' || !path[n + 1])
		return false;
	*rel = path + n + 1;
	return true;
}

static bool has_dotdot(const char *rel)
{
	for (const char *p = rel; p; p = strchr(p, '/') ? strchr(p, '/') + 1 : NULL)
		if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || !p[2]))
			return true;
	return false;
}

/* The directory holding rel's last component (set in *last), reached from the pool's dfd
 * one component at a time without a symlink: each directory on the way must be root's and
 * not writable by others unless sticky, or whoever may write it could delete or rename a
 * VM's file and put their own in its place. -EACCES with err when one is not; another
 * -errno (err unset) when the walk fails. */
static int walk_to_parent(int dfd, const char *what, const char *path, const char *rel,
			  const char **last, char *err, size_t errlen)
{
	struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					  RESOLVE_NO_MAGICLINKS};
	int cur = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	const char *at = rel, *slash;

	if (cur < 0)
		return -errno;
	while ((slash = strchr(at, '/'))) {
		char name[NAME_MAX + 1];
		size_t len = (size_t)(slash - at);
		const char *bad;
		struct stat s;
		int next;

		if (len > NAME_MAX) {
			close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(name, at, len);
		name[len] = '\0';
		at = slash + 1;
		if (!len)
			continue;
		next = (int)syscall(SYS_openat2, cur, name, &how, sizeof(how));
		close(cur);
		if (next < 0)
			return -errno;
		cur = next;
		if (fstat(cur, &s) < 0) {
			int e = -errno;

			close(cur);
			return e;
		}
		bad = not_root_only(&s, true);
		if (bad) {
			close(cur);
			error_set(
				err, errlen,
				"%s %s: directory %.*s inside its pool is %s: users could replace "
				"the files in it (chown root, chmod go-w or +t)",
				what, path, (int)(slash - rel), rel, bad);
			return -EACCES;
		}
	}
	*last = at;
	return cur;
}

/* rel beneath the directory pool p, never leaving it and through no symlink (one inside
 * the pool, put there by whoever may write a directory of it, could lead to another VM's
 * file); the file must be regular. Opened O_NONBLOCK, so a FIFO put there since the check
 * by path cannot block keeld; the flag goes once the file is known to be regular. */
static int open_beneath(const struct store_pool *p, const char *what, const char *path,
			const char *rel, int flags, char *err, size_t errlen)
{
	/* openat2 refuses O_PATH with any flag but O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW. */
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC |
						   ((flags & O_PATH) ? 0 : O_NOCTTY | O_NONBLOCK)),
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					  RESOLVE_NO_MAGICLINKS};
	/* The pool's directory itself: stored canonical, so no symlink on its path (one put
	 * there since would swap the pool for wherever it leads). */
	struct open_how dir_how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				   .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	int dfd = (int)syscall(SYS_openat2, AT_FDCWD, p->path, &dir_how, sizeof(dir_how)), fd, e;
	const char *last = rel, *bad;
	struct stat s;

	if (dfd < 0) {
		e = -errno;
		if (e == -ELOOP)
			error_set(err, errlen,
				  "%s %s: its pool '%s' (%s) has a symlink on its path: a pool's "
				  "directory is reached without one",
				  what, path, p->name, p->path);
		else
			error_set(err, errlen, "%s %s: its pool '%s' (%s): %s", what, path, p->name,
				  p->path, strerror(-e));
		return e == -ELOOP ? -EINVAL : e;
	}
	if (fstat(dfd, &s) < 0) {
		e = -errno;
		close(dfd);
		error_set(err, errlen, "%s %s: its pool '%s' (%s): %s", what, path, p->name,
			  p->path, strerror(-e));
		return e;
	}
	bad = not_root_only(&s, false);
	if (bad) {
		close(dfd);
		error_set(err, errlen,
			  "%s %s: its pool '%s' (%s) is %s: a pool's directory must be root's and "
			  "writable by root only (chmod go-w, chown root)",
			  what, path, p->name, p->path, bad);
		return -EINVAL;
	}
	fd = walk_to_parent(dfd, what, path, rel, &last, err, errlen);
	if (fd == -EACCES) {
		close(dfd);
		return -EINVAL;
	}
	if (fd >= 0) {
		int pfd = fd;

		fd = (int)syscall(SYS_openat2, pfd, last, &how, sizeof(how));
		e = fd < 0 ? -errno : 0;
		close(pfd);
	} else {
		e = fd;
	}
	if (e == -ELOOP) {
		/* A symlink on the way: say whether it leads out of the pool. */
		struct open_how beneath = {.flags = O_PATH | O_CLOEXEC,
					   .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
		int pfd = (int)syscall(SYS_openat2, dfd, rel, &beneath, sizeof(beneath));

		if (pfd >= 0) {
			close(pfd);
			close(dfd);
			error_set(err, errlen,
				  "%s %s is a symlink or reached through one inside its pool '%s' "
				  "(%s): keel opens a pool's files by their own path",
				  what, path, p->name, p->path);
			return -EINVAL;
		}
		e = -errno == -ELOOP ? e : -errno;
	}
	close(dfd);
	if (e == -EXDEV) {
		error_set(err, errlen, "%s %s leads out of its pool '%s' (%s) through a symlink",
			  what, path, p->name, p->path);
		return -EINVAL;
	}
	if (e) {
		error_set(err, errlen, "%s %s: %s", what, path, strerror(-e));
		return e == -ENOENT ? -EINVAL : e;
	}
	if (fstat(fd, &s) < 0 ||
	    !((flags & O_DIRECTORY) ? S_ISDIR(s.st_mode) : S_ISREG(s.st_mode))) {
		close(fd);
		error_set(err, errlen, "%s %s is not a %s", what, path,
			  (flags & O_DIRECTORY) ? "directory" : "regular file");
		return -EINVAL;
	}
	if ((flags & O_ACCMODE) != O_RDONLY && (s.st_uid != 0 || s.st_nlink > 1)) {
		close(fd);
		if (s.st_uid != 0)
			error_set(err, errlen,
				  "%s %s is owned by uid %u: a disk a VM writes must be root's",
				  what, path, (unsigned)s.st_uid);
		else
			error_set(err, errlen,
				  "%s %s has %lu hard links: a disk a VM writes must have one name",
				  what, path, (unsigned long)s.st_nlink);
		return -EINVAL;
	}
	if (!(flags & O_PATH) &&
	    fcntl(fd, F_SETFL, flags & (O_APPEND | O_DIRECT | O_NOATIME | O_NONBLOCK)) < 0) {
		e = -errno;
		close(fd);
		error_set(err, errlen, "%s %s: %s", what, path, strerror(-e));
		return e;
	}
	return fd;
}

int pools_open(struct store *st, const char *what, const char *path, int flags, bool allow_blk,
	       char *err, size_t errlen)
{
	struct store_pool *list = NULL, *in = NULL;
	const char *rel = NULL;
	size_t n = 0;
	int r = store_pool_list(st, &list, &n);

	if (r) {
		error_set(err, errlen, "cannot read the storage pools from the store");
		return r;
	}
	for (size_t i = 0; i < n && !in; i++) {
		char real[PATH_MAX];

		/* As the pool was named, or as that resolves today (a symlink on the way). */
		if (!list[i].block && (beneath(list[i].path, path, &rel) ||
				       (realpath(list[i].path, real) && beneath(real, path, &rel))))
			in = &list[i];
		for (unsigned d = 0; list[i].block && d < list[i].ndevices && !in; d++)
			if (!strcmp(list[i].devices[d], path))
				in = &list[i];
	}
	if (!in) {
		error_set(err, errlen,
			  "%s %s is in no storage pool: put it in one, or create a pool for its "
			  "directory (keel pool create NAME --path DIR)",
			  what, path);
		r = -EINVAL;
	} else if (in->block && !allow_blk) {
		error_set(err, errlen, "%s %s is a block device: only disks may be", what, path);
		r = -EINVAL;
	} else if (in->block) {
		struct stat s;

		/* O_EXCL on a block device: refused while the host has it mounted or in use. */
		r = open(path, flags | O_CLOEXEC | O_NOCTTY |
				       ((flags & O_ACCMODE) == O_RDWR ? O_EXCL : 0));
		if (r < 0) {
			r = -errno;
			error_set(err, errlen, "%s %s: %s", what, path, strerror(errno));
		} else if (fstat(r, &s) < 0 || !S_ISBLK(s.st_mode)) {
			close(r);
			error_set(err, errlen, "%s %s is no longer a block device", what, path);
			r = -EINVAL;
		}
	} else if (has_dotdot(rel)) {
		error_set(err, errlen, "%s %s: '..' is not allowed in a path", what, path);
		r = -EINVAL;
	} else {
		r = open_beneath(in, what, path, rel, flags, err, errlen);
	}
	/* Another VM's worker must not reach it through its "other" bits (file_mode.h). */
	if (r >= 0 && !(flags & (O_PATH | O_DIRECTORY))) {
		int m = file_mode_check_fd(r, (flags & O_ACCMODE) != O_RDONLY, what, path, err,
					   errlen);

		if (m) {
			close(r);
			r = m;
		}
	}
	free_list(list, n);
	return r;
}

int pools_open_medium(struct store *st, const char *path, char *err, size_t errlen)
{
	int fd = pools_open(st, "DVD image", path, O_RDONLY, true, err, errlen);

	/* A medium is read on the fd the pool gave (a regular file or a pool's block device,
	 * O_NOCTTY, no symlink out of the pool), never by path. */
	if (fd >= 0 && iso_check(fd, path, err, errlen)) {
		close(fd);
		fd = -EINVAL;
	}
	return fd;
}

int pools_open_def(struct store *st, const struct vm_def *def, struct vmdef_file *files, int *fds,
		   char *err, size_t errlen)
{
	unsigned n = vmdef_files(def, files);
	int r = 0;

	for (unsigned i = 0; i < n; i++) {
		const struct vmdef_file *f = &files[i];

		if (r)
			fds[i] = -1;
		else if (f->dvd)
			fds[i] = pools_open_medium(st, f->path, err, errlen);
		else
			fds[i] = pools_open(st, f->what, f->path, f->rdonly ? O_RDONLY : O_RDWR,
					    f->slot >= 0, err, errlen);
		if (!r && fds[i] < 0)
			r = fds[i];
	}
	if (r)
		pools_close_def(fds, n);
	return r ? r : (int)n;
}

void pools_close_def(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Is path in the directory p names, as written or as either resolves today? */
static bool in_dir(const struct store_pool *p, const char *path)
{
	char real[PATH_MAX], file[PATH_MAX];
	const char *rel;
	bool pr = realpath(p->path, real) != NULL, fr = realpath(path, file) != NULL;

	return beneath(p->path, path, &rel) || (pr && beneath(real, path, &rel)) ||
	       (fr && beneath(p->path, file, &rel)) || (pr && fr && beneath(real, file, &rel));
}

bool pools_holds(const struct store_pool *p, const char *path)
{
	if (!path)
		return false;
	if (!p->block)
		return in_dir(p, path);
	for (unsigned d = 0; d < p->ndevices; d++)
		if (!strcmp(p->devices[d], path))
			return true;
	return false;
}
