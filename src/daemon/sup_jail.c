/* SPDX-License-Identifier: Apache-2.0 */
/* The jailed worker's side in keeld: its uid from the configured range, and the directories
 * it may write a save into (sup_internal.h, docs/security.md). */
#include "daemon/sup_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/error.h"
#include "daemon/uid_claim.h"
#include "lib/log.h"

struct uid_ask {
	const struct sup *sup;
	const struct sup_vm *vm; /* the VM the uid is for */
};

/* Whether another VM's worker of this keeld has uid (uid_claim's taken). */
static bool uid_taken(uid_t uid, void *arg)
{
	const struct uid_ask *a = arg;

	for (size_t j = 0; j < a->sup->nvms; j++)
		if (a->sup->vms[j] != a->vm && sup_has_worker(a->sup->vms[j]) &&
		    a->sup->vms[j]->jail_uid == uid)
			return true;
	return false;
}

int sup_jail_alloc(struct sup *sup, struct sup_vm *vm, char *err, size_t errlen)
{
	unsigned n = sup->cfg.worker_uids;
	const char *step = "";
	uid_t uid = 0;
	int r;
	struct uid_ask ask = {sup, vm};

	sup_jail_release(vm);
	/* Any process's uid or gid, not only this keeld's workers' (the kernel's word), nor one
	 * another process claimed and whose worker has not taken it yet (the lab's launcher, a
	 * second keeld): uid_claim.h. */
	r = uid_claim(sup->cfg.worker_uid_lock, "/proc", sup->cfg.worker_uid_first, n, uid_taken,
		      &ask, &uid, &vm->jail_uid_lock, &step);
	if (r == -EAGAIN) {
		error_set(err, errlen,
			  "cannot start VM '%s': all %u worker uids from %u (--worker-uids) are "
			  "taken by running VMs or by other processes running as them; give keeld "
			  "a larger range",
			  vm->name, n, (unsigned)sup->cfg.worker_uid_first);
		return r;
	}
	if (r == -EBUSY && !strcmp(step, "flock")) {
		error_set(err, errlen,
			  "cannot start VM '%s': cannot claim a worker uid: %s is held by another "
			  "process for over %d s (/proc/locks names it; a stopped lab launcher?)",
			  vm->name, sup->cfg.worker_uid_lock, UID_CLAIM_WAIT_MS / 1000);
		return r;
	}
	if (r && !strcmp(step, "scan /proc")) {
		error_set(err, errlen,
			  "cannot start VM '%s': cannot read /proc to check which worker uids "
			  "processes run as: %s",
			  vm->name, strerror(-r));
		return r;
	}
	if (r) {
		error_set(err, errlen,
			  "cannot start VM '%s': cannot claim a worker uid in %s (%s): %s",
			  vm->name, sup->cfg.worker_uid_lock, step, strerror(-r));
		return r;
	}
	vm->jail_uid = uid;
	return 0;
}

void sup_jail_release(struct sup_vm *vm)
{
	if (vm->jail_uid_lock >= 0)
		close(vm->jail_uid_lock);
	vm->jail_uid_lock = -1;
}

void sup_jail_hold(struct sup *sup, struct sup_vm *vm)
{
	int r;

	sup_jail_release(vm);
	if (!vm->jail_uid)
		return;
	r = uid_claim_hold(sup->cfg.worker_uid_lock, vm->jail_uid, &vm->jail_uid_lock);
	if (r)
		log_warn("VM %s: cannot hold its worker's uid %u in %s: %s", vm->name,
			 (unsigned)vm->jail_uid, sup->cfg.worker_uid_lock, strerror(-r));
}

/* The real uid of pid, from /proc/PID/status (the kernel's word), or 0. */
static uid_t proc_uid(pid_t pid)
{
	char path[64], line[256];
	unsigned long uid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %lu", &uid) == 1)
			break;
	fclose(f);
	return (uid_t)uid;
}

/* Whether the process behind pidfd has ended (its pidfd reads as ready). */
static bool pidfd_ended(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	return poll(&p, 1, 0) != 0;
}

uid_t sup_jail_uid_of(pid_t pid, int pidfd)
{
	char path[64], buf[8192];
	unsigned long uid = 0;
	ssize_t n;
	int fd;

	/* The command line first: a worker taken over could rewrite it, but only once it runs
	 * guest code, which is after it took its uid. So the uid the kernel reports wins, and
	 * the command line counts only while the worker is still root, i.e. read before. */
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		for (char *arg = buf; n > 0 && arg < buf + n; arg += strlen(arg) + 1)
			if (!strncmp(arg, "--jail-user=", 12))
				uid = strtoul(arg + 12, NULL, 10);
	}
	{
		uid_t now = proc_uid(pid);

		/* Read by number: if the worker ended since its pidfd was opened, the number
		 * may be another process's by now, and what was read is not the worker's. */
		if (pidfd_ended(pidfd)) {
			log_info("worker pid %d ended while keeld read its uid: not taken",
				 (int)pid);
			return 0;
		}
		return now ? now : (uid_t)uid;
	}
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

/* How deep keeld follows directories a worker made inside a directory it takes back. */
#define TAKE_DEPTH 16
/* How many entries one take-back removes at most: a worker still running could keep adding
 * to a directory of its own below (one it holds open) as fast as keeld removes; past this,
 * keeld stops, says so in the log, and leaves the rest root's and closed where it got to
 * (the VM's deletion removes it). */
#define TAKE_MAX_ENTRIES 10000

static unsigned take_left; /* of TAKE_MAX_ENTRIES, in the take-back under way */
static bool take_said;	   /* its stop logged */

static void clear_dir(int dfd, const char *top, unsigned depth,
		      bool (*keep_name)(const char *name));

/* Remove pfd's directory name and all in it. Each is made root's and closed to others before
 * it is read, so a worker still running cannot add to it meanwhile. */
static int remove_tree(int pfd, const char *name, const char *top, unsigned depth)
{
	int dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd >= 0 && depth < TAKE_DEPTH && !fchown(dfd, 0, 0) && !fchmod(dfd, 0700))
		clear_dir(dfd, top, depth + 1, NULL);
	else if (dfd >= 0)
		close(dfd);
	if (unlinkat(pfd, name, AT_REMOVEDIR)) {
		int e = -errno;

		log_warn("cannot remove %s/.../%s left by a worker: %s", top, name, strerror(-e));
		return e;
	}
	return 0;
}

/* Every entry of dfd (taken over) removed, but the regular files keep_name names (when not
 * NULL), which become root's (0600). */
static void clear_dir(int dfd, const char *top, unsigned depth, bool (*keep_name)(const char *name))
{
	int keep = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = keep >= 0 ? fdopendir(keep) : NULL;
	struct dirent *de;
	struct stat st;

	if (!d) {
		if (keep >= 0)
			close(keep);
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		int fd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!take_left) {
			if (take_said)
				break;
			take_said = true;
			log_warn(
				"%s: stopped after removing %u entries a worker left (the most one "
				"take-back removes); the rest stays, root's",
				top, TAKE_MAX_ENTRIES);
			break;
		}
		take_left--;
		fd = keep_name && keep_name(de->d_name)
			     ? openat(dfd, de->d_name,
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
		if (!unlinkat(dfd, de->d_name, 0))
			continue;
		if (errno == EISDIR)
			(void)remove_tree(dfd, de->d_name, top, depth);
		else
			log_warn("cannot remove %s/%s left by a worker: %s", top, de->d_name,
				 strerror(errno));
	}
	closedir(d);
	close(dfd);
}

int sup_remove_tree(const char *path)
{
	if (!unlink(path) || errno == ENOENT)
		return 0;
	if (errno != EISDIR) {
		int e = -errno;

		log_warn("cannot remove %s: %s", path, strerror(-e));
		return e;
	}
	take_left = TAKE_MAX_ENTRIES;
	take_said = false;
	return remove_tree(AT_FDCWD, path, path, 0);
}

void sup_jail_take_dir_keep(const char *dir, bool (*keep_name)(const char *name))
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (dfd < 0)
		return;
	/* root:root is a directory never given or already taken back. Taking it is two steps:
	 * root's and closed (the worker keeps its group as the mark "not yet cleared", so a keeld
	 * that dies here leaves it to the next), cleared, then root's group too. */
	if (fstat(dfd, &st) || (st.st_uid == 0 && st.st_gid == 0) || fchown(dfd, 0, (gid_t)-1) ||
	    fchmod(dfd, 0700)) {
		close(dfd);
		return;
	}
	take_left = TAKE_MAX_ENTRIES;
	take_said = false;
	clear_dir(fcntl(dfd, F_DUPFD_CLOEXEC, 0), dir, 0, keep_name);
	if (fchown(dfd, 0, 0))
		log_warn("cannot give %s back to root: %s", dir, strerror(errno));
	close(dfd);
}

void sup_jail_take_dir(const char *dir)
{
	sup_jail_take_dir_keep(dir, saved_name);
}
