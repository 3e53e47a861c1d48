/* SPDX-License-Identifier: Apache-2.0 */
/* Starting a worker: admission control, the description file, fork and exec in a session of
 * its own, and the pidfd that watches it (sup_internal.h). */
#include "daemon/sup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/disk_policy.h"
#include "daemon/file_mode.h"
#include "daemon/switch.h"
#include "daemon/pools.h"
#include "daemon/worker_exec.h"
#include "lib/clock.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/tap.h"
#include "lib/unix_socket.h"

int sup_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sup_pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
int sup_proc_starttime(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may contain spaces and parentheses */
	if (!p)
		return -EIO;
	p++;
	/* After ')' come fields 3, 4, ...: skip 19 of them to reach field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	*out = strtoull(p + 1, NULL, 10);
	return 0;
}

static int add_arg(char **argv, int *argc, int max, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int add_arg(char **argv, int *argc, int max, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*argc >= max - 1)
		return -E2BIG;
	va_start(ap, fmt);
	n = vasprintf(&argv[*argc], fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	(*argc)++;
	argv[*argc] = NULL;
	return 0;
}

/*
 * The files the description names, opened by keeld (which checked them) and handed to the
 * worker as descriptors 3, 4, ... with `--fd NAME=N` (worker_exec.h): the worker opens none
 * of them by name, so the file checked is the file used (docs/keeld.md).
 */
#define WORKER_ARGV (32 + WORKER_FILES)

/* Keep fd (taken over) as the worker's NAME. */
static int worker_fd(struct worker_files *wf, const char *name, const char *path, int fd, char *err,
		     size_t errlen)
{
	return worker_files_add(wf, name, path, fd, err, errlen);
}

/* Opened through the storage pools (pools.h): the file that passes the policy is the file
 * the worker gets. */
static int worker_file(struct sup *sup, struct worker_files *wf, const char *name, const char *what,
		       const char *path, int flags, bool allow_blk, char *err, size_t errlen)
{
	int fd = pools_open(sup->cfg.store, what, path, flags, allow_blk, err, errlen);

	return fd < 0 ? fd : worker_fd(wf, name, path, fd, err, errlen);
}

/* A VHDX's parents, resolved and checked by keeld (every one in a pool), passed as NAME.pJ,
 * nearest first: the worker opens no parent by path, and its disk library checks that each
 * is the one its child's linkage names. */
static int worker_chain(struct sup *sup, struct worker_files *wf, const char *name,
			const char *path, char *err, size_t errlen)
{
	int fds[VMDEF_CHAIN_FDS_MAX], r = 0, n;

	n = disk_policy_check_chain(sup->cfg.store, "disk", path, fds,
				    VMDEF_CHAIN_FDS_MAX - wf->nparents, err, errlen);
	if (n < 0)
		return n;
	for (int j = 0; j < n; j++) {
		char pname[16];

		snprintf(pname, sizeof(pname), "%s.p%d", name, j);
		if (!r)
			r = worker_fd(wf, pname, path, fds[j], err, errlen);
		else
			close(fds[j]);
	}
	wf->nparents += (unsigned)n;
	return r;
}

/* /dev/kvm and the taps: the jailed worker can open neither (no /dev in its root, an empty
 * network namespace). */
static int worker_devices(struct sup *sup, const struct vm_def *def, struct worker_files *wf,
			  char *err, size_t errlen)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), r;

	if (fd < 0) {
		/* The VM cannot start here: a start failure (500 StartFailed), not the 404 an
		 * ENOENT would give, which says "no such VM". */
		error_set(err, errlen, "cannot open /dev/kvm: %s%s", strerror(errno),
			  errno == ENOENT ? " (this host has no KVM)" : "");
		return -ENOEXEC;
	}
	r = worker_fd(wf, "kvm", "/dev/kvm", fd, err, errlen);
	for (unsigned i = 0; !r && i < def->nnics; i++) {
		unsigned nq = vmdef_nic_queues(def, i), j;
		char name[32], ifname[IFNAMSIZ];
		int fds[VMDEF_NET_QUEUES_MAX];

		/* One queue of the tap per virtio-net queue pair (a multi-queue tap for more
		 * than one): net.I, then net.I.q1 ... */
		r = tap_open_queues(def->nics[i].tap, nq, fds, ifname, err, errlen);
		if (r)
			return r == -ENOENT ? -ENOEXEC : r; /* no /dev/net/tun: a start failure */
		if (def->nics[i].sw[0])
			r = switches_port_attach(sup->cfg.store, &def->nics[i], ifname, err,
						 errlen);
		for (j = 0; j < nq; j++) {
			worker_pair_name(name, sizeof(name), "net", i, j);
			if (r)
				close(fds[j]);
			else
				r = worker_fd(wf, name, def->nics[i].tap, fds[j], err, errlen);
		}
		if (!r)
			r = worker_files_vhost(def, i, wf, err, errlen);
	}
	return r;
}

/*
 * The sockets the worker serves in its VM's directory, made here (its uid may not create a
 * file there): bound, given their owner and mode, and passed without listening, so that a
 * connect is refused (as to a missing file) until the worker listens, early in its set-up
 * (keel-vmm's vm_create), and answered once it is built (keeld's start probe). On a failed
 * start sup_start removes them. The control socket is keeld's
 * only (0600); the consoles and virtio-vsock's host side are the administrators' too (0660,
 * the keel group: `keel console`, docs/security.md). The worker connects to no path of the
 * host's: a guest's connect to host port P goes to vsock.sock_P inside its root, which is
 * the VM's directory.
 */
static int worker_sockets(struct sup *sup, const struct vm_def *def, struct worker_files *wf,
			  char *err, size_t errlen)
{
	const struct {
		const char *name, *file;
		bool present;
		mode_t mode;
	} socks[WORKER_SOCKETS] = {
		{"control", "control.sock", true, 0600},
		{"serial", "serial.sock", true, 0660},
		{"console", "hvc0.sock", def->console.present, 0660},
		{"vsock", "vsock.sock", def->vsock.present, 0660},
	};
	int r = 0;

	for (size_t i = 0; !r && i < WORKER_SOCKETS; i++) {
		char path[PATH_MAX];
		gid_t gid =
			socks[i].mode == 0600 || !sup->cfg.have_group ? (gid_t)-1 : sup->cfg.group;
		int fd;

		if (!socks[i].present)
			continue;
		if (sup_path(sup, def->uuid, socks[i].file, path, sizeof(path)))
			return -ENAMETOOLONG; /* sup_start checked the paths */
		fd = unix_bind_for(path, socks[i].mode, gid);
		if (fd < 0) {
			error_set(err, errlen, "cannot make the %s socket %s: %s", socks[i].name,
				  path,
				  fd == -EEXIST ? "a file that is not a socket is in the way"
						: strerror(-fd));
			return fd;
		}
		r = worker_fd(wf, socks[i].name, path, fd, err, errlen);
	}
	return r;
}

/* Open PATH with FLAGS (0640 when created) as the worker's NAME. */
static int worker_path(struct worker_files *wf, const char *name, const char *path, int flags,
		       char *err, size_t errlen)
{
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC, 0640);

	if (fd < 0) {
		int e = errno;

		error_set(err, errlen, "cannot open %s for the worker: %s", path, strerror(e));
		return -e;
	}
	return worker_fd(wf, name, path, fd, err, errlen);
}

/*
 * The files of the worker's own that it would otherwise open by host path, as root, before
 * its jail: its description (config.json, written just now), its status file (which it
 * writes in place through the descriptor: its uid may not create a file in its directory,
 * docs/security.md), a Saved VM's state and memory, and the UEFI variable store's template
 * (a host file outside every pool; when the host has none, the worker reports it missing
 * as before).
 */
static int worker_own_files(const struct sup *sup, const struct sup_vm *vm,
			    const struct vm_def *def, const char *config, const char *status,
			    struct worker_files *wf, char *err, size_t errlen)
{
	int r = worker_path(wf, "config", config, O_RDONLY, err, errlen);

	if (!r)
		r = worker_path(wf, "status", status, O_WRONLY | O_CREAT | O_TRUNC, err, errlen);
	if (!r && vm->state == VM_SAVED) {
		char st[PATH_MAX], mem[PATH_MAX];

		if (sup_path(sup, def->uuid, SUP_SAVED_DIR "/state", st, sizeof(st)) ||
		    sup_path(sup, def->uuid, SUP_SAVED_DIR "/memory", mem, sizeof(mem)))
			return -ENAMETOOLONG;
		r = worker_path(wf, "state", st, O_RDONLY, err, errlen);
		if (!r)
			r = worker_path(wf, "memory", mem, O_RDONLY, err, errlen);
	}
	if (!r && (def->nvram || def->firmware == VM_FIRMWARE_UEFI)) {
		int fd = open(VMDEF_OVMF_VARS_FILE, O_RDONLY | O_CLOEXEC);

		if (fd >= 0)
			r = file_mode_check_fd(fd, false, "UEFI variable store template",
					       VMDEF_OVMF_VARS_FILE, err, errlen);
		if (fd >= 0 && r)
			close(fd);
		else if (fd >= 0)
			r = worker_fd(wf, "vars", VMDEF_OVMF_VARS_FILE, fd, err, errlen);
	}
	return r;
}

static int worker_files_open(struct sup *sup, const struct sup_vm *vm, const struct vm_def *def,
			     struct worker_files *wf, char *err, size_t errlen)
{
	int r, fd;

	wf->n = 0;
	wf->nparents = 0;
	if (def->kernel) {
		r = worker_file(sup, wf, "kernel", "kernel", def->kernel, O_RDONLY, false, err,
				errlen);
	} else {
		/* Firmware: its image, and Generation 2's variable store (sup_firmware.c). */
		fd = sup_firmware_open(sup, def, err, errlen);
		r = fd < 0 ? fd
			   : worker_fd(wf, "firmware", vmdef_firmware_file(def), fd, err, errlen);
		if (!r && def->nvram) {
			fd = sup_nvram_open(sup, vm, def, err, errlen);
			r = fd < 0 ? fd : worker_fd(wf, "nvram", def->nvram, fd, err, errlen);
		}
	}
	if (!r && def->initrd)
		r = worker_file(sup, wf, "initrd", "initrd", def->initrd, O_RDONLY, false, err,
				errlen);
	for (unsigned i = 0; !r && i < def->ndisks; i++) {
		char name[16];

		snprintf(name, sizeof(name), "disk.%u", i);
		r = worker_file(sup, wf, name, "disk", def->disks[i].path,
				def->disks[i].readonly ? O_RDONLY : O_RDWR, true, err, errlen);
		if (!r && def->disks[i].format == VM_DISK_VHDX)
			r = worker_chain(sup, wf, name, def->disks[i].path, err, errlen);
	}
	/* The SCSI LUNs' disks and DVD images (an empty drive has none). */
	for (unsigned i = 0; !r && i < def->scsi.nluns; i++) {
		const struct vm_lun *l = &def->scsi.luns[i];
		char name[16];

		if (!l->disk.path)
			continue;
		snprintf(name, sizeof(name), "lun.%u", i);
		r = worker_file(sup, wf, name, l->type == VM_LUN_DVD ? "DVD image" : "disk",
				l->disk.path, l->disk.readonly ? O_RDONLY : O_RDWR, true, err,
				errlen);
		if (!r && l->type == VM_LUN_DISK && l->disk.format == VM_DISK_VHDX)
			r = worker_chain(sup, wf, name, l->disk.path, err, errlen);
	}
	if (!r)
		r = worker_devices(sup, def, wf, err, errlen);
	if (!r)
		r = worker_sockets(sup, def, wf, err, errlen);
	if (r)
		worker_files_close(wf);
	return r;
}

/* Set in keeld's environment (the tests only): start workers as if clone3 were missing. */
#define SUP_TEST_NO_CLONE3 "KEELD_TEST_NO_CLONE3"

/* The host's RAM: MemTotal from /proc/meminfo, or 0 when it cannot be read. */
static uint64_t host_memory(const struct sup *sup)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f;

	if (sup->cfg.host_memory)
		return sup->cfg.host_memory;
	f = fopen("/proc/meminfo", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return (uint64_t)kib << 10;
}

/*
 * Admission control (Hyper-V refuses to start a VM it cannot give its startup memory): the
 * running workers' RAM and allowances, the host reserve and this VM must fit in the host's
 * memory; else -EDQUOT with what is missing, instead of letting the OOM killer choose.
 */
static int admit(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	uint64_t total = host_memory(sup), taken = 0,
		 need = def->memory + SUP_VMM_ALLOWANCE(def->memory);
	unsigned running = 0;

	if (!total)
		return 0; /* no /proc/meminfo: nothing to check against */
	for (size_t i = 0; i < sup->nvms; i++) {
		if (!sup_has_worker(sup->vms[i]) || !strcmp(sup->vms[i]->uuid, def->uuid))
			continue;
		taken += sup->vms[i]->memory + SUP_VMM_ALLOWANCE(sup->vms[i]->memory);
		running++;
	}
	if (taken + sup->cfg.host_reserve + need <= total)
		return 0;
	error_set(err, errlen,
		  "cannot start VM '%s': it needs %" PRIu64 " MiB (%" PRIu64
		  " MiB of memory and %" PRIu64 " MiB for its worker), and of this host's %" PRIu64
		  " MiB, %" PRIu64 " MiB are kept for the host (--host-reserve) and %" PRIu64
		  " MiB are taken by %u running VM%s: %" PRIu64 " MiB are missing",
		  def->name, need >> 20, def->memory >> 20, SUP_VMM_ALLOWANCE(def->memory) >> 20,
		  total >> 20, sup->cfg.host_reserve >> 20, taken >> 20, running,
		  running == 1 ? "" : "s",
		  (taken + sup->cfg.host_reserve + need - total + (1 << 20) - 1) >> 20);
	return -EDQUOT;
}

int sup_start(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	char dir[PATH_MAX], ctl[PATH_MAX], serial[PATH_MAX], status[PATH_MAX], log[PATH_MAX];
	char config[PATH_MAX], hvc[PATH_MAX], vsock[PATH_MAX];
	char *argv[WORKER_ARGV] = {NULL};
	char err2[PATH_MAX + 128];
	struct worker_files wf = {.n = 0};
	int argc = 0, logfd = -1, cgfd = -1, ret = 0;
	pid_t pid;

	if (!vm)
		return -ENOMEM;
	if (def->damaged[0]) {
		error_set(err, errlen, "VM '%s' is damaged in the store: %s", def->name,
			  def->damaged);
		return -EPROTO;
	}
	if (sup_has_worker(vm)) {
		error_set(err, errlen, "VM '%s' is already %s", def->name,
			  vm_state_name(vm->state));
		return -EBUSY;
	}
	if (sup_path(sup, def->uuid, NULL, dir, sizeof(dir)) ||
	    sup_path(sup, def->uuid, "control.sock", ctl, sizeof(ctl)) ||
	    sup_path(sup, def->uuid, "serial.sock", serial, sizeof(serial)) ||
	    sup_path(sup, def->uuid, "status.json", status, sizeof(status)) ||
	    sup_path(sup, def->uuid, "worker.log", log, sizeof(log)) ||
	    sup_path(sup, def->uuid, "config.json", config, sizeof(config)) ||
	    sup_path(sup, def->uuid, "hvc0.sock", hvc, sizeof(hvc)) || strlen(hvc) > SUP_SOCK_MAX ||
	    strlen(ctl) > SUP_SOCK_MAX || strlen(serial) > SUP_SOCK_MAX ||
	    sup_path(sup, def->uuid, "vsock.sock", vsock, sizeof(vsock)) ||
	    (def->vsock.present && strlen(vsock) > VMDEF_VSOCK_SOCKET_MAX)) {
		error_set(
			err, errlen,
			"the state directory %s is too long for the VM's socket paths (at most %d "
			"bytes); use a shorter --state-dir",
			sup->cfg.state_dir, SUP_SOCK_MAX);
		return -ENAMETOOLONG;
	}
	/* Two VMs that were off when given the same disk: refused here, before a worker,
	 * rather than by the worker's lock on the file (docs/security.md). */
	ret = disk_policy_check_sharing(sup->cfg.store, sup, def, err2, sizeof(err2));
	if (ret) {
		error_set(err, errlen, "cannot start VM '%s': %s", def->name, err2);
		return ret;
	}
	ret = admit(sup, def, err, errlen);
	if (ret)
		return ret;
	if (access(sup->cfg.vmm_path, X_OK) < 0) {
		ret = -ENOEXEC;
		error_set(err, errlen, "cannot start VM '%s': keel-vmm %s: %s", def->name,
			  sup->cfg.vmm_path, strerror(errno));
		(void)!sup_event(sup, vm, VM_EV_START_FAILED, "%s", err);
		return ret;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		ret = -errno;
		error_set(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return ret;
	}
	if (sup->cfg.have_group && chown(dir, (uid_t)-1, sup->cfg.group) < 0)
		log_warn("cannot give %s to the keel group: %s", dir, strerror(errno));
	/* The directory is the worker's root: it must be able to search it, and only that
	 * (what it may write, keeld gives it: sup_jail_give_dir). */
	if (chmod(dir, 0751) < 0) {
		ret = -errno;
		error_set(err, errlen, "cannot make %s the worker's root: %s", dir,
			  strerror(errno));
		return ret;
	}
	ret = sup_jail_alloc(sup, vm, err, errlen);
	if (ret)
		return ret;
	sup_remove_sockets(sup, vm); /* a dead worker's: keeld makes new ones (worker_sockets) */
	unlink(status);
	sup_rotate_log(log);
	/* The worker gets the description whole, as a document: no path or string travels
	 * through an option splitter (docs/vm-config.md). */
	ret = vmdef_save_file(def, config, err, errlen);
	if (ret)
		return ret;

	if (add_arg(argv, &argc, WORKER_ARGV, "%s", sup->cfg.vmm_path) ||
	    add_arg(argv, &argc, WORKER_ARGV, "--serial=unix:%s", serial) ||
	    (def->console.present && add_arg(argv, &argc, WORKER_ARGV, "--console=unix:%s", hvc)) ||
	    (def->vsock.present && add_arg(argv, &argc, WORKER_ARGV, "--vsock-socket=%s", vsock)) ||
	    add_arg(argv, &argc, WORKER_ARGV, "--control=%s", ctl) ||
	    add_arg(argv, &argc, WORKER_ARGV, "--jail-user=%u:%u", (unsigned)vm->jail_uid,
		    (unsigned)vm->jail_uid) ||
	    add_arg(argv, &argc, WORKER_ARGV, "--jail-root=%s", dir)) {
		ret = -ENOMEM;
		error_set(err, errlen, "cannot build keel-vmm's command line: out of memory");
		goto out;
	}
	ret = worker_files_open(sup, vm, def, &wf, err, errlen);
	if (!ret) {
		ret = worker_own_files(sup, vm, def, config, status, &wf, err, errlen);
		if (ret)
			worker_files_close(&wf);
	}
	if (ret) {
		char why[600];

		snprintf(why, sizeof(why), "cannot start VM '%s': %s", def->name, err);
		error_set(err, errlen, "%s", why);
		goto out;
	}
	if (worker_files_argv(&wf, argv, &argc, WORKER_ARGV)) {
		ret = -ENOMEM;
		error_set(err, errlen, "cannot build keel-vmm's command line: out of memory");
		goto out;
	}
	/* A Saved VM carries on from its saved state (docs/state.md): --fd state and memory,
	 * worker_own_files. */
	logfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (logfd < 0 || worker_fd_above(&logfd)) {
		ret = -errno;
		error_set(err, errlen, "cannot start VM '%s': %s: %s", def->name, log,
			  strerror(errno));
		goto out;
	}
	{
		/* One line with the whole command, for the log. */
		char cmd[2048];
		size_t len = 0;
		for (int i = 0; i < argc && len < sizeof(cmd); i++)
			len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%s%s", i ? " " : "",
						argv[i]);
		sup_vm_log(sup, vm, "starting: %s", cmd);
	}
	/* Its cgroup (vm_cgroup.h), when the host has them: the worker is born in it. */
	if (sup->cg.available) {
		cgfd = vmcg_create(&sup->cg, def->uuid,
				   def->memory + SUP_VMM_ALLOWANCE(def->memory),
				   VMDEF_WORKER_TASKS(def->cpus), err2, sizeof(err2));
		if (cgfd < 0) {
			ret = cgfd;
			error_set(err, errlen, "cannot start VM '%s': %s", def->name, err2);
			goto out;
		}
	}
	/* PID 1 of a PID namespace of its own, born in its cgroup (worker_exec.h). */
	{
		struct worker_exec we = {
			.vmm = sup->cfg.vmm_path,
			.argv = argv,
			.in = -1,
			.out = logfd,
			.setsid = true,
			.cgfd = cgfd,
			.no_clone3 = getenv(SUP_TEST_NO_CLONE3) != NULL,
			.wf = &wf,
		};

		pid = worker_exec_start(&we, err2, sizeof(err2));
		if (we.fell_back)
			sup_vm_log(sup, vm, "clone3 failed (%s): starting the worker with clone",
				   strerror(we.clone3_errno));
	}
	if (pid == -ENOEXEC) {
		ret = pid;
		error_set(err, errlen, "%s", err2);
		(void)!sup_event(sup, vm, VM_EV_START_FAILED, "%s", err);
		goto out;
	} else if (pid < 0) {
		ret = pid;
		error_set(err, errlen, "cannot start VM '%s': %s", def->name, err2);
		goto out;
	}
	vm->pid = pid;
	vm->memory = def->memory;
	vm->is_child = true;
	vm->pidfd = sup_pidfd_open(pid);
	if (vm->pidfd < 0 || sup_proc_starttime(pid, &vm->starttime)) {
		ret = -errno;
		error_set(err, errlen, "cannot watch keel-vmm pid %d: %s", (int)pid,
			  strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		sup_drop_worker(vm);
		(void)!sup_event(sup, vm, VM_EV_START_FAILED, "%s", err);
		goto out;
	}
	vm->was_running = true;
	vm->deadline_ms = clock_mono_ms() + (long long)sup->cfg.start_timeout_s * 1000;
	(void)!sup_event(sup, vm, VM_EV_START, "%s", "");
out:
	worker_files_close(&wf); /* the worker has its copies */
	/* A start that failed after the sockets were made (worker_sockets, or later: no
	 * worker serves them): none stays behind. Every path here comes after the removal
	 * above, so what is at those paths is this start's. */
	if (ret) {
		sup_remove_sockets(sup, vm);
		sup_jail_release(vm); /* no worker takes the uid */
	}
	if (cgfd >= 0) {
		close(cgfd);
		if (ret)
			vmcg_remove(&sup->cg, def->uuid);
	}
	/* A start that failed after the NVRAM directory was given to the worker's uid: root's
	 * again (no worker runs to take it back when it ends). */
	if (ret && def->nvram)
		sup_nvram_take_back(sup, vm);
	if (logfd >= 0)
		close(logfd);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return ret;
}

int sup_start_restore(struct sup *sup, const struct vm_def *def, bool paused, char *err,
		      size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_RESTORE, err, errlen);
	if (ret)
		return ret;
	ret = sup_start(sup, def, err, errlen);
	if (!ret && paused)
		ret = sup_event(sup, vm, VM_EV_PAUSE_WHEN_READY, "%s", vm->reason);
	return ret;
}
