/* SPDX-License-Identifier: Apache-2.0 */
/* The jailed worker's side in keeld: its uid from the configured range, and the directories
 * it may write a save into (sup_internal.h, docs/security.md). */
#include "daemon/sup_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/error.h"
#include "lib/log.h"

int sup_jail_alloc(struct sup *sup, struct sup_vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < sup->cfg.worker_uids; i++) {
		uid_t uid = sup->cfg.worker_uid_first + i;
		bool taken = false;

		for (size_t j = 0; j < sup->nvms && !taken; j++)
			taken = sup->vms[j] != vm && sup_has_worker(sup->vms[j]) &&
				sup->vms[j]->jail_uid == uid;
		if (!taken) {
			vm->jail_uid = uid;
			return 0;
		}
	}
	error_set(err, errlen,
		  "cannot start VM '%s': all %u worker uids from %u (--worker-uids) are taken by "
		  "running VMs; give keeld a larger range",
		  vm->name, sup->cfg.worker_uids, (unsigned)sup->cfg.worker_uid_first);
	return -EAGAIN;
}

uid_t sup_jail_uid_of(pid_t pid)
{
	char path[64], buf[8192];
	unsigned long uid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (char *arg = buf; arg < buf + n; arg += strlen(arg) + 1)
		if (!strncmp(arg, "--jail-user=", 12))
			uid = strtoul(arg + 12, NULL, 10);
	return (uid_t)uid;
}

int sup_jail_give_dir(struct sup *sup, const struct sup_vm *vm, const char *dir)
{
	char top[PATH_MAX], part[PATH_MAX];
	size_t n;
	int fd, r = 0;

	if (!vm->jail_uid)
		return 0;
	if (sup_path(sup, vm->uuid, NULL, top, sizeof(top)))
		return -ENAMETOOLONG;
	n = strlen(top);
	if (strncmp(dir, top, n) || dir[n] != '/' || strlen(dir) >= sizeof(part))
		return -EACCES;
	/* Each directory between the VM's and dir: searchable by others (its ancestors keep
	 * everyone else out; the worker's root is the VM's directory). */
	strcpy(part, dir);
	for (char *slash = part + n + 1; (slash = strchr(slash, '/')); slash++) {
		struct stat st;

		*slash = '\0';
		if (lstat(part, &st))
			r = -errno;
		else if (!S_ISDIR(st.st_mode))
			r = -ENOTDIR;
		else if (chmod(part, (st.st_mode & 07777) | S_IXOTH))
			r = -errno;
		if (r)
			break;
		*slash = '/';
	}
	fd = r ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, vm->jail_uid, vm->jail_uid) || fchmod(fd, 0700))
		r = r ? r : -errno;
	if (fd >= 0)
		close(fd);
	if (r)
		log_warn("VM %s: cannot give %s to its worker: %s", vm->name, dir, strerror(-r));
	return r;
}

static bool saved_name(const char *name)
{
	return !strcmp(name, "state") || !strcmp(name, "memory");
}

#define REMOVE_DEPTH 32 /* directories below a worker's, followed at most */

/* Remove name in dfd, a directory with all it holds (never following a symlink). */
static int remove_at(int dfd, const char *name, unsigned depth)
{
	struct dirent *de;
	int sub, r = 0;
	DIR *d;

	if (!unlinkat(dfd, name, 0) || errno == ENOENT)
		return 0;
	if ((errno != EISDIR && errno != EPERM) || depth >= REMOVE_DEPTH)
		return -errno;
	sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return -errno;
	d = fdopendir(sub);
	if (!d) {
		close(sub);
		return -errno;
	}
	while ((de = readdir(d))) {
		int e;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		e = remove_at(dirfd(d), de->d_name, depth + 1);
		if (e && !r)
			r = e;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) && !r)
		r = -errno;
	return r;
}

int sup_remove_tree(const char *path)
{
	int r = remove_at(AT_FDCWD, path, 0);

	if (r)
		log_warn("cannot remove %s: %s", path, strerror(-r));
	return r;
}

void sup_jail_take_dir_keep(const char *dir, bool (*keep_name)(const char *name))
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), keep;
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (dfd < 0)
		return;
	if (fstat(dfd, &st) || (st.st_uid == 0 && st.st_gid == 0) || fchown(dfd, 0, 0) ||
	    fchmod(dfd, 0700)) {
		close(dfd); /* never given, or already taken back */
		return;
	}
	keep = dup(dfd);
	d = keep >= 0 ? fdopendir(keep) : NULL;
	if (!d) {
		if (keep >= 0)
			close(keep);
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		int fd, r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		fd = keep_name(de->d_name) ? openat(dfd, de->d_name,
						    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
					   : -1;
		/* One link only: a hard link the worker made must not make keeld chown another
		 * name of the same file. */
		if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    !fchown(fd, 0, 0) && !fchmod(fd, 0600)) {
			close(fd);
			continue;
		}
		if (fd >= 0)
			close(fd);
		/* Not a kept file: the worker's leftovers, or something it should not make. */
		r = remove_at(dfd, de->d_name, 0);
		if (r)
			log_warn("cannot remove %s/%s left by a worker: %s", dir, de->d_name,
				 strerror(-r));
	}
	closedir(d);
	close(dfd);
}

void sup_jail_take_dir(const char *dir)
{
	sup_jail_take_dir_keep(dir, saved_name);
}
