/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lab-jail --root DIR --pid-file FILE -- KEEL-VMM [OPTION]...: run keel-vmm jailed as keeld
 * runs a worker (docs/security.md, docs/lab.md), for the lab's scenarios that start keel-vmm
 * themselves (tests/lab/host/api.sh, vm_start). The command line is parsed by keel-vmm's own
 * parser (config_parse), and what keeld would open for the worker is opened here and passed
 * as `--fd NAME=N`, through keeld's own spawn code (src/daemon/worker_exec.c):
 *
 *   - the VM's description as a document, DIR/config.json (--fd config, in place of the
 *     options that describe the VM: config_run_words keeps the others);
 *   - a uid and gid of keeld's range (--worker-uids' default) that no process has and that no
 *     keeld or other launcher claimed (uid_claim, as keeld's sup_jail_alloc), claimed for
 *     the run, so that no other start picks it while this worker has not taken it yet;
 *   - DIR (made here, root's, 0751) as the jail root, and DIR/save given to the uid for the
 *     control socket's "save" (what keeld does per save, sup_jail_give_dir);
 *   - /dev/kvm, each --net tap's queues, one per queue pair (tap_open_queues: attached, its
 *     header set, brought up) and a /dev/vhost-net per pair unless vhost=off
 *     (worker_files_vhost, as keeld), the kernel,
 *     initrd, firmware image, disks and SCSI LUNs' files, the NVRAM file's directory (the
 *     directory and the store given to the uid, as sup_nvram_open does), the UEFI variable
 *     store's template;
 *   - the sockets it serves (control, serial, console, vsock: bound here, not listening,
 *     unix_bind_for), its status file (--status-file becomes --fd status) and a saved state
 *     (--restore DIR becomes --fd state and --fd memory);
 *   - a cgroup of its own (vm_cgroup.c, when the lab host has cgroups v2), the worker
 *     cloned into it as PID 1 of a PID namespace of its own.
 *
 * The worker's pid goes to FILE; lab-jail waits for it and exits with its status (128 + N
 * when signal N ended it); SIGTERM, SIGINT or SIGHUP to lab-jail kill the worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/vmdef.h"
#include "daemon/uid_claim.h"
#include "daemon/vm_cgroup.h"
#include "daemon/worker_exec.h"
#include "lib/tap.h"
#include "lib/unix_socket.h"
#include "vmm/config.h"

/* keeld's default --worker-uids (docs/security.md). */
#define UID_FIRST 3221225472u
#define UID_COUNT 65536u
#define MAX_ARGS  (64 + 2 * WORKER_FILES)
/* keeld's allowance over guest RAM for a worker's cgroup (src/daemon/sup.h). */
#define ALLOWANCE(mem) ((uint64_t)(64u << 20) + (uint64_t)(mem) / 128)

static char err[1024];
static volatile sig_atomic_t worker; /* its pid, once started: what forward kills */

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("lab-jail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(125);
}

/* A signal to lab-jail ends the worker: as PID 1 of its namespace it takes from outside only
 * the signals it has a handler for, and keel-vmm reads SIGTERM through a signalfd. */
static void forward(int sig)
{
	(void)sig;
	if (worker > 0)
		kill(worker, SIGKILL);
}

/* A uid no process has and no other launcher or keeld claimed (uid_claim.h), claimed for
 * this process's life: its descriptor stays open while lab-jail waits for the worker. */
static uid_t pick_uid(void)
{
	const char *step = "";
	uid_t uid = 0;
	int fd, r = uid_claim(UID_CLAIM_LOCK, "/proc", UID_FIRST, UID_COUNT, NULL, NULL, &uid, &fd,
			      &step);

	if (r == -EAGAIN)
		die("all %u worker uids from %u are in use", UID_COUNT, UID_FIRST);
	if (r == -EBUSY && !strcmp(step, "flock"))
		die("cannot claim a worker uid: %s is held by another process for over %d s",
		    UID_CLAIM_LOCK, UID_CLAIM_WAIT_MS / 1000);
	if (r)
		die("cannot claim a worker uid in %s (%s): %s", UID_CLAIM_LOCK, step, strerror(-r));
	return uid;
}

static void add(struct worker_files *wf, const char *name, const char *path, int fd)
{
	if (fd < 0)
		die("cannot open %s (%s) for the worker: %s", path, name, strerror(errno));
	if (worker_files_add(wf, name, path, fd, err, sizeof(err)))
		die("%s", err);
}

static void add_file(struct worker_files *wf, const char *name, const char *path, int flags)
{
	add(wf, name, path, open(path, flags | O_NOCTTY | O_CLOEXEC, 0640));
}

/* Give path (a directory or file) to uid, as keeld gives a worker what it may write. */
static void give(const char *path, uid_t uid, mode_t mode)
{
	if (chown(path, uid, uid) < 0 || chmod(path, mode) < 0)
		die("cannot give %s to uid %u: %s", path, (unsigned)uid, strerror(errno));
}

/* The NVRAM file's directory, given to the worker with the store (sup_nvram_open). */
static void add_nvram(struct worker_files *wf, const char *nvram, uid_t uid)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", nvram);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		die("--nvram %s: give the store in a directory of its own", nvram);
	*slash = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		die("cannot create %s: %s", dir, strerror(errno));
	give(dir, uid, 0700);
	if (access(nvram, F_OK) == 0)
		give(nvram, uid, 0600);
	add(wf, "nvram", dir, open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

static void add_sockets(struct worker_files *wf, const struct vm_config *cfg)
{
	static const char *const names[CONFIG_NSOCKS] = {"control", "serial", "console", "vsock"};

	for (int s = 0; s < CONFIG_NSOCKS; s++) {
		int fd;
		const char *path = config_socket(cfg, (enum config_sock)s, &fd);

		if (!path)
			continue;
		fd = unix_bind_for(path, s == CONFIG_SOCK_CONTROL ? 0600 : 0660, (gid_t)-1);
		if (fd < 0)
			die("cannot make the %s socket %s: %s", names[s], path, strerror(-fd));
		add(wf, names[s], path, fd);
	}
}

static void open_files(struct worker_files *wf, const struct vm_config *cfg, uid_t uid)
{
	const struct vm_def *def = &cfg->def;
	char name[16], ifname[IFNAMSIZ];

	if (def->kernel)
		add_file(wf, "kernel", def->kernel, O_RDONLY);
	if (def->firmware != VM_FIRMWARE_NONE)
		add_file(wf, "firmware", vmdef_firmware_file(def), O_RDONLY);
	if (def->nvram)
		add_nvram(wf, def->nvram, uid);
	if (def->initrd)
		add_file(wf, "initrd", def->initrd, O_RDONLY);
	for (unsigned i = 0; i < def->ndisks; i++) {
		snprintf(name, sizeof(name), "disk.%u", i);
		add_file(wf, name, def->disks[i].path, def->disks[i].readonly ? O_RDONLY : O_RDWR);
	}
	for (unsigned i = 0; i < def->scsi.nluns; i++) {
		const struct vm_lun *l = &def->scsi.luns[i];

		if (!l->disk.path)
			continue;
		snprintf(name, sizeof(name), "lun.%u", i);
		add_file(wf, name, l->disk.path, l->disk.readonly ? O_RDONLY : O_RDWR);
	}
	add_file(wf, "kvm", "/dev/kvm", O_RDWR);
	for (unsigned i = 0; i < def->nnics; i++) {
		unsigned nq = vmdef_nic_queues(def, i);
		int fds[VMDEF_NET_QUEUES_MAX];

		/* One queue of the tap per queue pair, as keeld: net.I, net.I.q1 ... */
		if (tap_open_queues(def->nics[i].tap, nq, fds, ifname, err, sizeof(err)))
			die("%s", err);
		for (unsigned j = 0; j < nq; j++) {
			worker_pair_name(name, sizeof(name), "net", i, j);
			add(wf, name, def->nics[i].tap, fds[j]);
		}
		if (worker_files_vhost(def, i, wf, err, sizeof(err)))
			die("%s", err);
	}
	add_sockets(wf, cfg);
	if (cfg->status_path)
		add_file(wf, "status", cfg->status_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW);
	if (cfg->restore_dir) {
		char st[PATH_MAX], mem[PATH_MAX];

		snprintf(st, sizeof(st), "%s/state", cfg->restore_dir);
		snprintf(mem, sizeof(mem), "%s/memory", cfg->restore_dir);
		add_file(wf, "state", st, O_RDONLY | O_NOFOLLOW);
		add_file(wf, "memory", mem, O_RDONLY | O_NOFOLLOW);
	}
	if ((def->nvram || def->firmware == VM_FIRMWARE_UEFI) &&
	    access(VMDEF_OVMF_VARS_FILE, R_OK) == 0)
		add_file(wf, "vars", VMDEF_OVMF_VARS_FILE, O_RDONLY);
}

/* The VM's description, written to DIR/config.json (root's) and passed open (--fd config):
 * the worker reads it whole and keeps no descriptor of it. */
static void add_config(struct worker_files *wf, const struct vm_config *cfg, const char *root)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/config.json", root);
	if (vmdef_save_file(&cfg->def, path, err, sizeof(err)))
		die("%s", err);
	add_file(wf, "config", path, O_RDONLY | O_NOFOLLOW);
}

/* Whether argv[i] is an option that the passed files replace (--status-file, --restore):
 * how many words it takes (1 or 2), else 0. */
static int replaced(char **argv, int i)
{
	static const char *const opts[] = {"--status-file", "--restore"};

	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		size_t n = strlen(opts[k]);

		if (!strcmp(argv[i], opts[k]))
			return 2;
		if (!strncmp(argv[i], opts[k], n) && argv[i][n] == '=')
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *root = NULL, *pidfile = NULL;
	char *wargv[MAX_ARGS] = {NULL}, save[PATH_MAX], cgname[32];
	struct worker_files wf = {.n = 0};
	struct vm_config cfg;
	struct vmcg cg;
	int i, wargc = 0, cgfd = -1, status;
	sigset_t held;
	pid_t pid;
	uid_t uid;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(argv[i], "--pid-file") && i + 1 < argc)
			pidfile = argv[++i];
		else
			die("usage: lab-jail --root DIR --pid-file FILE -- KEEL-VMM [OPTION]...");
	}
	if (!root || !pidfile || i + 1 >= argc || root[0] != '/')
		die("usage: lab-jail --root DIR --pid-file FILE -- KEEL-VMM [OPTION]...");
	argv += i + 1;
	argc -= i + 1;
	/* keel-vmm's own parser: the files are the ones it would open. */
	if (config_parse(argc, argv, &cfg, err, sizeof(err)))
		die("keel-vmm's command line: %s", err);
	if (cfg.jail || cfg.kvm_fd >= 0 || cfg.kernel_fd >= 0)
		die("give keel-vmm's options without --jail-*/--fd: lab-jail adds them");
	uid = pick_uid();
	if ((mkdir(root, 0751) < 0 && errno != EEXIST) || chown(root, 0, 0) < 0 ||
	    chmod(root, 0751) < 0)
		die("cannot make the jail root %s: %s", root, strerror(errno));
	snprintf(save, sizeof(save), "%s/save", root);
	if (mkdir(save, 0700) < 0 && errno != EEXIST)
		die("cannot make %s: %s", save, strerror(errno));
	give(save, uid, 0700);
	open_files(&wf, &cfg, uid);

	/* The description as a document (--fd config, as keeld hands it over), then the words
	 * that say how the worker runs it, less what the passed files replace, then the jail's. */
	add_config(&wf, &cfg, root);
	wargv[wargc++] = argv[0];
	{
		char *run[MAX_ARGS];
		int n = config_run_words(argc, argv, run, MAX_ARGS - 8, err, sizeof(err));

		if (n < 0)
			die("keel-vmm's command line: %s", err);
		for (i = 0; i < n; i++) {
			int k = replaced(run, i);

			if (k) {
				i += k - 1;
				continue;
			}
			wargv[wargc++] = run[i];
		}
	}
	if (asprintf(&wargv[wargc++], "--jail-user=%u:%u", (unsigned)uid, (unsigned)uid) < 0 ||
	    asprintf(&wargv[wargc++], "--jail-root=%s", root) < 0 ||
	    worker_files_argv(&wf, wargv, &wargc, MAX_ARGS))
		die("out of memory");

	vmcg_init(&cg, NULL, NULL);
	snprintf(cgname, sizeof(cgname), "lab-%d", (int)getpid());
	if (cg.available) {
		cgfd = vmcg_create(&cg, cgname, cfg.def.memory + ALLOWANCE(cfg.def.memory),
				   VMDEF_WORKER_TASKS(cfg.def.cpus), err, sizeof(err));
		if (cgfd < 0)
			die("%s", err);
	} else {
		fprintf(stderr, "lab-jail: no cgroup for the worker: %s\n", cg.why);
	}
	/* Held until worker is set: one that came while the worker was starting would find no
	 * worker to end, and the worker would run on. */
	sigemptyset(&held);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGINT);
	sigaddset(&held, SIGHUP);
	sigprocmask(SIG_BLOCK, &held, NULL);
	signal(SIGTERM, forward);
	signal(SIGINT, forward);
	signal(SIGHUP, forward);
	{
		struct worker_exec we = {
			.vmm = argv[0],
			.argv = wargv,
			.in = 0,
			.out = 1,
			.cgfd = cgfd,
			.wf = &wf,
		};

		pid = worker_exec_start(&we, err, sizeof(err));
	}
	if (pid < 0) {
		if (cg.available)
			vmcg_remove(&cg, cgname);
		die("%s", err);
	}
	worker = pid;
	sigprocmask(SIG_UNBLOCK, &held, NULL);
	worker_files_close(&wf);
	if (cgfd >= 0)
		close(cgfd);
	{
		FILE *f = fopen(pidfile, "we");

		if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f)) {
			int e = errno;

			/* Nobody could find the worker to end it: it goes with lab-jail. */
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			if (cg.available)
				vmcg_remove(&cg, cgname);
			die("cannot write %s: %s", pidfile, strerror(e));
		}
	}
	fprintf(stderr, "lab-jail: keel-vmm pid %d jailed as uid %u in %s%s%s\n", (int)pid,
		(unsigned)uid, root, cg.available ? ", cgroup " : "", cg.available ? cgname : "");
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (cg.available)
		vmcg_remove(&cg, cgname);
	config_free(&cfg);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
