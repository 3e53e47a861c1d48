/* SPDX-License-Identifier: Apache-2.0 */
/* Per-VM cgroups v2 through cgroupfs (vm_cgroup.h, docs/security.md). */
#include "daemon/vm_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

void vmcg_init(struct vmcg *cg, const char *mount)
{
	char root[PATH_MAX], ctls[512];
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
	r = read_controllers(root, ctls, sizeof(ctls));
	if (r) {
		error_set(cg->why, sizeof(cg->why), "cannot read %s/cgroup.controllers: %s", root,
			  strerror(-r));
		return;
	}
	if (!has_controller(ctls, "memory") || !has_controller(ctls, "pids")) {
		bool mem = has_controller(ctls, "memory"), pids = has_controller(ctls, "pids");

		error_set(cg->why, sizeof(cg->why),
			  "the cgroup v2 hierarchy at %s has no %s controller%s (a cgroup v1 "
			  "hierarchy holds %s: boot with systemd.unified_cgroup_hierarchy=1)",
			  root,
			  !mem && !pids ? "memory or pids"
			  : !mem	? "memory"
					: "pids",
			  !mem && !pids ? "s" : "", !mem && !pids ? "them" : "it");
		return;
	}
	cg->cpu = has_controller(ctls, "cpu");
	if ((size_t)snprintf(cg->slice, sizeof(cg->slice), "%s/" VMCG_SLICE, root) >=
	    sizeof(cg->slice) - 64) {
		error_set(cg->why, sizeof(cg->why), "the cgroup v2 mount %s is too long", root);
		return;
	}
	if (enable(cg, root, cg->cpu))
		return;
	if (mkdir(cg->slice, 0755) < 0 && errno != EEXIST) {
		error_set(cg->why, sizeof(cg->why), "cannot create %s: %s", cg->slice,
			  strerror(errno));
		return;
	}
	if (enable(cg, cg->slice, cg->cpu))
		return;
	cg->available = true;
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
	/* An earlier worker's, when its removal found it busy: the limits are rewritten. */
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		error_set(err, errlen, "cannot create the VM's cgroup %s: %s", dir,
			  strerror(errno));
		return r;
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

void vmcg_remove(const struct vmcg *cg, const char *uuid)
{
	char dir[PATH_MAX];

	if (!cg->available || vmcg_path(cg, uuid, dir, sizeof(dir)))
		return;
	/* EBUSY: a task of the worker is still on its way out; the next start reuses it. */
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_debug("cannot remove cgroup %s yet: %s", dir, strerror(errno));
}
