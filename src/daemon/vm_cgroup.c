/* SPDX-License-Identifier: Apache-2.0 */
/* Per-VM cgroups v2 through cgroupfs (vm_cgroup.h, docs/security.md). */
#include "daemon/vm_cgroup.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/error.h"
#include "lib/log.h"

/* The mount point of the first cgroup2 file system in /proc/self/mountinfo. */
static int find_cgroup2(char *out, size_t size)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (r == -ENOENT && fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], *sep = strstr(line, " - ");
		unsigned n = 0;

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE OPTIONS */
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) ||
		    sscanf(line, "%*s %*s %*s %*s %4095s%n", mnt, &n) != 1 || !n)
			continue;
		/* Octal escapes (a space in the path): not a mount keeld will use. */
		if (strchr(mnt, '\\') || strlen(mnt) >= size)
			continue;
		snprintf(out, size, "%s", mnt);
		r = 0;
	}
	fclose(f);
	return r;
}

/* keeld's own cgroup, as /proc/self/cgroup's cgroup v2 line ("0::PATH") names it. */
static int self_cgroup(char *out, size_t size)
{
	char line[PATH_MAX + 8];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (r == -ENOENT && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		r = strlen(line + 3) < size ? 0 : -ENAMETOOLONG;
		if (!r)
			snprintf(out, size, "%s", line + 3);
	}
	fclose(f);
	return r;
}

/* Whether systemd delegated the cgroup dir: it marks a delegated unit's cgroup with the
 * extended attribute trusted.delegate = "1" (only root can set a trusted.* attribute). */
static bool is_delegated(const char *dir)
{
	char v[8];
	ssize_t n = getxattr(dir, "trusted.delegate", v, sizeof(v) - 1);

	if (n <= 0)
		return false;
	v[n] = '\0';
	return !strcmp(v, "1");
}

/*
 * The delegated unit cgroup keeld runs under (MOUNT + self): self's parent when self is the
 * leaf "keeld" (DelegateSubgroup=keeld) and the parent is delegated. -ENOENT: keeld's cgroup
 * is not under a delegation (the root never is); -EBUSY: keeld runs in a delegated cgroup
 * itself, not in its leaf (a systemd without DelegateSubgroup=), which it must not take
 * (vmcg_init says why).
 */
static int find_delegated(const char *mount, const char *self, char *unit, size_t size)
{
	char *slash;

	if (self[0] != '/' || !self[1] ||
	    (size_t)snprintf(unit, size, "%s%s", mount, self) >= size - 64)
		return -ENOENT;
	slash = strrchr(unit, '/');
	if (!strcmp(slash + 1, VMCG_DELEGATED_LEAF) && slash != unit + strlen(mount)) {
		*slash = '\0';
		if (is_delegated(unit))
			return 0;
		*slash = '/';
	}
	return is_delegated(unit) ? -EBUSY : -ENOENT;
}

static int write_file(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX + 64];
	size_t len = strlen(text);
	int fd, r = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	close(fd);
	return r;
}

/* Whether the cgroup dir has tasks, in it or below (cgroup.events "populated 1"); an
 * unreadable one counts as populated. */
static bool populated(const char *dir)
{
	char path[PATH_MAX + 64], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return true;
	buf[n] = '\0';
	return !strstr(buf, "populated 0");
}

/* Whether the space-separated list in DIR/cgroup.controllers names ctl. */
static bool has_controller(const char *list, const char *ctl)
{
	size_t n = strlen(ctl);

	for (const char *p = list; (p = strstr(p, ctl)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

static int read_controllers(const char *dir, char *buf, size_t size)
{
	char path[PATH_MAX + 64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* memory and pids on for dir's children (required), cpu when the hierarchy has it. */
static int enable(struct vmcg *cg, const char *dir, bool cpu)
{
	int r = write_file(dir, "cgroup.subtree_control", "+memory +pids");

	if (r) {
		error_set(cg->why, sizeof(cg->why),
			  "cannot turn the memory and pids controllers on in "
			  "%s/cgroup.subtree_control: "
			  "%s",
			  dir, strerror(-r));
		return r;
	}
	if (cpu && write_file(dir, "cgroup.subtree_control", "+cpu"))
		cg->cpu = false;
	return 0;
}

/* Whether dir's cgroup.controllers has memory and pids; else cg->why says what is missing. */
static bool usable(struct vmcg *cg, const char *dir)
{
	char ctls[512];
	int r = read_controllers(dir, ctls, sizeof(ctls));
	bool mem, pids;

	if (r) {
		error_set(cg->why, sizeof(cg->why), "cannot read %s/cgroup.controllers: %s", dir,
			  strerror(-r));
		return false;
	}
	mem = has_controller(ctls, "memory");
	pids = has_controller(ctls, "pids");
	if (mem && pids)
		return true;
	error_set(cg->why, sizeof(cg->why),
		  "the cgroup v2 hierarchy at %s has no %s controller%s (a cgroup v1 "
		  "hierarchy holds %s: boot with systemd.unified_cgroup_hierarchy=1)",
		  dir,
		  !mem && !pids ? "memory or pids"
		  : !mem	? "memory"
				: "pids",
		  !mem && !pids ? "s" : "", !mem && !pids ? "them" : "it");
	return false;
}

/* The VMs' parent made (or found) and memory and pids turned on for its children. */
static void make_slice(struct vmcg *cg)
{
	if (mkdir(cg->slice, 0755) < 0 && errno != EEXIST) {
		error_set(cg->why, sizeof(cg->why), "cannot create %s: %s", cg->slice,
			  strerror(errno));
		return;
	}
	if (enable(cg, cg->slice, cg->cpu))
		return;
	cg->available = true;
}

/*
 * Under keeld's delegated unit cgroup (systemd owns everything above it; keeld runs in its
 * leaf UNIT/keeld): memory and pids on in UNIT for UNIT/vms, and in UNIT/vms for the VMs.
 */
static void init_delegated(struct vmcg *cg, const char *unit)
{
	cg->delegated = true;
	/* find_delegated left room for the name (64 bytes). */
	if ((size_t)snprintf(cg->slice, sizeof(cg->slice), "%s/" VMCG_DELEGATED_VMS, unit) >=
	    sizeof(cg->slice)) {
		error_set(cg->why, sizeof(cg->why), "keeld's cgroup %s is too long", unit);
		return;
	}
	if (!usable(cg, unit))
		return;
	if (enable(cg, unit, cg->cpu))
		return;
	make_slice(cg);
}

void vmcg_init(struct vmcg *cg, const char *mount, const char *self)
{
	char root[PATH_MAX], own[PATH_MAX], unit[PATH_MAX];
	int r;

	*cg = (struct vmcg){.available = false};
	if (mount)
		snprintf(root, sizeof(root), "%s", mount);
	else if (find_cgroup2(root, sizeof(root))) {
		error_set(
			cg->why, sizeof(cg->why),
			"no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
		return;
	}
	/* cpu stays off until keel sets cpu limits: turning it on costs every task under it and
	 * changes how the kernel shares the CPU with the host's other cgroups. */
	cg->cpu = false;
	if (self)
		snprintf(own, sizeof(own), "%s", self);
	else if (self_cgroup(own, sizeof(own)))
		own[0] = '\0';
	r = own[0] ? find_delegated(root, own, unit, sizeof(unit)) : -ENOENT;
	if (!r) {
		init_delegated(cg, unit);
		return;
	}
	/* Moving itself into a leaf would let keeld turn controllers on in UNIT, but then the
	 * kernel refuses systemd the next start of keeld in UNIT (no process in a cgroup with
	 * controllers on for its children), for as long as VMs run in UNIT/vms. */
	if (r == -EBUSY)
		log_warn("keeld runs in %s, a cgroup systemd delegated, and not in its leaf "
			 "'" VMCG_DELEGATED_LEAF "' (DelegateSubgroup=" VMCG_DELEGATED_LEAF
			 ", systemd 254 or later): the VMs' cgroups go under " VMCG_SLICE
			 ", as without systemd",
			 own);
	if (!usable(cg, root))
		return;
	if ((size_t)snprintf(cg->slice, sizeof(cg->slice), "%s/" VMCG_SLICE, root) >=
	    sizeof(cg->slice) - 64) {
		error_set(cg->why, sizeof(cg->why), "the cgroup v2 mount %s is too long", root);
		return;
	}
	if (enable(cg, root, cg->cpu))
		return;
	make_slice(cg);
}

int vmcg_path(const struct vmcg *cg, const char *uuid, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "%s/vm-%s", cg->slice, uuid) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int vmcg_create(const struct vmcg *cg, const char *uuid, uint64_t memory_max, uint64_t pids_max,
		char *err, size_t errlen)
{
	char dir[PATH_MAX], mem[32], pids[32];
	const char *file = NULL;
	int fd, r;

	if (!cg->available) {
		error_set(err, errlen, "per-VM cgroups are unavailable: %s", cg->why);
		return -EOPNOTSUPP;
	}
	r = vmcg_path(cg, uuid, dir, sizeof(dir));
	if (r) {
		error_set(err, errlen, "the cgroup path for VM %s is too long", uuid);
		return r;
	}
	/* An earlier worker's, when its removal found it busy: reused only when empty (its
	 * limits rewritten), never shared with tasks still in it. */
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		error_set(err, errlen, "cannot create the VM's cgroup %s: %s", dir,
			  strerror(errno));
		return r;
	}
	if (populated(dir)) {
		error_set(
			err, errlen,
			"the VM's cgroup %s still has tasks (an earlier worker's, still ending?): "
			"try again, or end them",
			dir);
		return -EBUSY;
	}
	snprintf(mem, sizeof(mem), "%" PRIu64, memory_max);
	snprintf(pids, sizeof(pids), "%" PRIu64, pids_max);
	r = write_file(dir, file = "memory.max", mem);
	if (!r)
		r = write_file(dir, file = "pids.max", pids);
	/* Out of memory, the kernel ends the whole worker, not one of its threads. */
	if (!r)
		r = write_file(dir, file = "memory.oom.group", "1");
	if (r) {
		error_set(err, errlen, "cannot set %s/%s: %s", dir, file, strerror(-r));
		vmcg_remove(cg, uuid);
		return r;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		error_set(err, errlen, "cannot open the VM's cgroup %s: %s", dir, strerror(errno));
		vmcg_remove(cg, uuid);
		return r;
	}
	return fd;
}

/* rmdir dir, retried briefly while the kernel still counts a task on its way out (EBUSY). */
static int remove_dir(const char *dir)
{
	for (int i = 0;; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || i == VMCG_RMDIR_TRIES)
			return -errno;
		usleep(10 * 1000);
	}
}

void vmcg_remove(const struct vmcg *cg, const char *uuid)
{
	char dir[PATH_MAX];
	int r;

	if (!cg->available || vmcg_path(cg, uuid, dir, sizeof(dir)))
		return;
	/* Still busy after the retries: the next start finds it empty and reuses it, or the next
	 * keeld start's sweep removes it. */
	r = remove_dir(dir);
	if (r)
		log_warn("cannot remove cgroup %s: %s", dir, strerror(-r));
}

unsigned vmcg_sweep(const struct vmcg *cg)
{
	unsigned n = 0;
	struct dirent *e;
	DIR *d;

	if (!cg->available || !(d = opendir(cg->slice)))
		return 0;
	while ((e = readdir(d))) {
		char dir[PATH_MAX + 300];

		if (strncmp(e->d_name, "vm-", 3) || e->d_type != DT_DIR)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", cg->slice, e->d_name);
		/* A running worker's (re-attached) has tasks: rmdir refuses it, and it stays. */
		if (!populated(dir) && rmdir(dir) == 0)
			n++;
	}
	closedir(d);
	return n;
}
