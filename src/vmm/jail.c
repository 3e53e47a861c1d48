/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's jail (jail.h, docs/security.md). Firecracker's jailer is the anchor: what it
 * does from outside before exec, keel-vmm does to itself, because keeld hands it descriptors
 * and it has state to build (the VM) before it gives up the right to build it. */
#include "vmm/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vmm/seccomp_filter.h"

/* The root inside which the jailed worker sees its files, as the host names it. */
static const char *jail_root_dir;
static bool jailed;
static bool confined; /* jail_early ran: from here on a failure may leave it half-jailed */

bool jail_active(void)
{
	return jailed;
}

#if defined(__SANITIZE_ADDRESS__)
/*
 * LeakSanitizer's check at exit stops the other threads with ptrace from a helper it
 * clones: a jailed worker has neither the capability nor the system calls for that (the
 * seccomp filter would end it). So a jailed worker skips the leak check; an unjailed one
 * (the guest tests run keel-vmm by hand) still gets it. LeakSanitizer calls this hook.
 */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return confined;
}
#endif

static int capset_all(uint32_t effective, uint32_t permitted, uint32_t inheritable)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		data[i].effective &= effective;
		data[i].permitted &= permitted;
		data[i].inheritable &= inheritable;
	}
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

static int capget_any(bool *any)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	*any = false;
	for (int i = 0; i < 2; i++)
		*any |= data[i].effective || data[i].permitted || data[i].inheritable;
	return 0;
}

int jail_early(const struct vm_config *cfg, char *err, size_t errlen)
{
	const char *step;
	int cap;

	if (!cfg->jail)
		return 0;
	confined = true;
	for (unsigned i = 0; i < cfg->def.nnics; i++) {
		if (cfg->net_fds[i][0] < 0) {
			snprintf(err, errlen,
				 "--jail-user: network card %u's tap must be passed (--fd "
				 "net.%u=N): "
				 "the jailed worker's network namespace is empty",
				 i, i);
			return -EINVAL;
		}
	}
	/* Disks are parsed (VHDX headers, log, metadata) only inside the jail, where their
	 * paths are out of reach: keeld opens them and passes them. */
	for (unsigned i = 0; i < cfg->def.ndisks; i++) {
		if (cfg->disk_fds[i] < 0) {
			snprintf(err, errlen,
				 "--jail-user: disk %u must be passed (--fd disk.%u=N): the jailed "
				 "worker opens no disk by path",
				 i, i);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < cfg->def.scsi.nluns; i++) {
		if (cfg->def.scsi.luns[i].disk.path && cfg->lun_fds[i] < 0) {
			snprintf(err, errlen,
				 "--jail-user: SCSI LUN %u must be passed (--fd lun.%u=N): the "
				 "jailed worker opens no disk by path",
				 i, i);
			return -EINVAL;
		}
	}
	/* glibc reads the time zone (/etc/localtime) on its first time conversion, gmtime_r
	 * included (the RTC, log stamps): once, here, while the host's files are in reach. */
	tzset();
	step = "PR_SET_NO_NEW_PRIVS";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		goto fail;
	/* Every capability out of the bounding set, up to the last this kernel knows. */
	step = "PR_CAPBSET_DROP";
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
			goto fail;
	step = "PR_CAP_AMBIENT_CLEAR_ALL";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0))
		goto fail;
	step = "capset (inheritable)";
	if (capset_all(~0u, ~0u, 0))
		goto fail;
	step = "unshare (mount, IPC, UTS and network namespaces)";
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET))
		goto fail;
	/* Nothing this worker mounts reaches the host, and nothing the host mounts reaches it. */
	step = "making every mount private";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		goto fail;
	step = "sethostname";
	if (sethostname("keel-vmm", 8))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot set up the worker's jail: %s: %s", step, strerror(errno));
	return -errno;
}

static int set_limits(const struct vm_config *cfg, char *err, size_t errlen)
{
	/* No core dumps (a core holds guest memory); descriptors: what is open now plus room
	 * for control and console clients; tasks of this uid (one per VM): its threads; locked
	 * memory: io_uring's rings. Each only lowers what keeld's limit was. */
	const struct {
		int res;
		const char *name;
		rlim_t max;
	} lim[] = {
		{RLIMIT_CORE, "RLIMIT_CORE", 0},
		{RLIMIT_NOFILE, "RLIMIT_NOFILE", 1024},
		{RLIMIT_NPROC, "RLIMIT_NPROC", VMDEF_WORKER_TASKS(cfg->def.cpus)},
		{RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK", 64 << 20},
	};

	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		struct rlimit r;

		if (getrlimit(lim[i].res, &r) == 0) {
			if (r.rlim_max > lim[i].max)
				r.rlim_max = lim[i].max;
			r.rlim_cur = r.rlim_max;
		}
		if (setrlimit(lim[i].res, &r)) {
			snprintf(err, errlen, "cannot set up the worker's jail: %s: %s",
				 lim[i].name, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/*
 * The NVRAM store's directory keeld passed (--fd nvram=N) was opened on the host's mount of
 * the VM's directory, not on the jail root's bind mount: ".." from it would climb past the
 * jail's root to the host's (openat(N, "../../..")). Once inside, it is replaced by the same
 * directory opened again through the jail's root (the same file: device and inode), where
 * ".." stops at the root.
 */
static int reroot_nvram_dir(const struct vm_config *cfg, const char *root, char *err, size_t errlen)
{
	char path[PATH_MAX], *slash;
	struct stat was, now;
	size_t n = strlen(root);
	int fd, r;

	if (cfg->nvram_dir_fd < 0)
		return 0;
	if (!cfg->def.nvram || strncmp(cfg->def.nvram, root, n) || cfg->def.nvram[n] != '/' ||
	    snprintf(path, sizeof(path), "%s", cfg->def.nvram + n) >= (int)sizeof(path)) {
		snprintf(err, errlen,
			 "--fd nvram: the NVRAM file %s is not inside the jail root %s (a jailed "
			 "worker keeps no directory of the host's open)",
			 cfg->def.nvram ? cfg->def.nvram : "(none)", root);
		return -EINVAL;
	}
	slash = strrchr(path, '/'); /* the store's directory: "/" for one in the root itself */
	if (slash == path)
		path[1] = '\0';
	else
		*slash = '\0';
	if (fstat(cfg->nvram_dir_fd, &was))
		goto fail;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &now) || now.st_dev != was.st_dev || now.st_ino != was.st_ino) {
		close(fd);
		snprintf(err, errlen,
			 "cannot set up the worker's jail: %s inside it is not the NVRAM directory "
			 "passed (--fd nvram=%d)",
			 path, cfg->nvram_dir_fd);
		return -EINVAL;
	}
	r = dup3(fd, cfg->nvram_dir_fd, O_CLOEXEC);
	close(fd);
	if (r < 0)
		goto fail;
	return 0;
fail:
	r = -errno;
	snprintf(err, errlen, "cannot set up the worker's jail: the NVRAM directory %s: %s", path,
		 strerror(errno));
	return r;
}

int jail_enter(const struct vm_config *cfg, char *err, size_t errlen)
{
	const char *root = cfg->jail_root, *step;
	gid_t gid = cfg->jail_gid;
	uid_t uid = cfg->jail_uid;
	bool caps = true;
	int r;

	if (!cfg->jail)
		return 0;
	/* The root must be a mount point for pivot_root: bind it onto itself, then take away
	 * what a file in it could give (set-id bits, devices, programs). */
	step = "bind-mounting the jail root";
	if (mount(root, root, NULL, MS_BIND, NULL))
		goto fail;
	step = "remounting the jail root nosuid, nodev, noexec";
	if (mount(NULL, root, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		goto fail;
	/* pivot_root(".", ".") stacks the old root over the new one; detaching it leaves the
	 * new root alone. Every thread whose root was the old one moves with it. */
	step = "chdir to the jail root";
	if (chdir(root))
		goto fail;
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		step = "detaching the host's root";
		if (umount2(".", MNT_DETACH))
			goto fail;
	} else if (errno == EINVAL) {
		/* The host's root is the initial ramfs (the nested lab's host), which cannot be
		 * pivoted: move the jail root over / and enter it, as switch_root does. The
		 * threads share the root (CLONE_FS), and none of them keeps CAP_SYS_CHROOT. */
		step = "moving the jail root over / (the host's root is the initial ramfs)";
		if (mount(".", "/", NULL, MS_MOVE, NULL))
			goto fail;
		step = "chroot";
		if (chroot("."))
			goto fail;
	} else {
		step = "pivot_root";
		goto fail;
	}
	step = "chdir /";
	if (chdir("/"))
		goto fail;
	r = reroot_nvram_dir(cfg, root, err, errlen);
	if (!r)
		r = set_limits(cfg, err, errlen);
	if (r)
		return r;
	/* glibc makes every thread of the process take the new ids; with all of its uids
	 * non-zero a thread loses its effective, permitted and ambient capabilities. */
	step = "setgroups";
	if (setgroups(0, NULL))
		goto fail;
	step = "setresgid";
	if (setresgid(gid, gid, gid))
		goto fail;
	step = "setresuid";
	if (setresuid(uid, uid, uid))
		goto fail;
	r = capget_any(&caps);
	if (r || caps || getuid() != uid || geteuid() != uid || getgid() != gid) {
		snprintf(err, errlen,
			 "cannot set up the worker's jail: still privileged after "
			 "setresuid");
		return -EPERM;
	}
	jail_root_dir = root;
	jailed = true;
	return 0;
fail:
	r = -errno;
	snprintf(err, errlen, "cannot set up the worker's jail in %s: %s: %s", root, step,
		 strerror(errno));
	return r;
}

int jail_lock(const struct vm_config *cfg, char *err, size_t errlen)
{
	return cfg->jail ? seccomp_install_process(err, errlen) : 0;
}

int jail_path(const char *host, char *out, size_t size)
{
	size_t n;

	if (!jailed) {
		if (snprintf(out, size, "%s", host) >= (int)size)
			return -ENAMETOOLONG;
		return 0;
	}
	/* A ".." inside cannot leave: the jail root is the root, whose parent is itself. */
	n = strlen(jail_root_dir);
	if (strncmp(host, jail_root_dir, n) || host[n] != '/')
		return -EACCES;
	if (snprintf(out, size, "%s", host + n) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}
