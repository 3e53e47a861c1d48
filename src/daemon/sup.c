/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/sup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/biglock.h"
#include "daemon/ctl.h"
#include "daemon/events.h"
#include "daemon/vm_state.h"
#include "lib/error.h"
#include "lib/log.h"

#define SUP_CTL_TIMEOUT_MS   3000
#define SUP_PROBE_TIMEOUT_MS 250     /* the main loop's own questions to a worker */
#define SUP_SAVE_TIMEOUT_MS  600000  /* writing guest RAM: up to 10 minutes */
#define SUP_SAVED_DIR	     "saved" /* in the VM's directory: keel-vmm's save (state, memory) */
#define SUP_QUIT_TIMEOUT_MS  5000    /* quit, then SIGKILL */
#define SUP_LOG_ROTATE	     (4 << 20)
#define SUP_SOCK_MAX	     107 /* sizeof(sun_path) - 1 */

enum stop_kind { STOP_NONE, STOP_GRACEFUL, STOP_TURNOFF, STOP_KILL_START };

struct sup_vm {
	char uuid[VMDEF_UUID_LEN + 1];
	char name[VMDEF_NAME_MAX + 1];
	enum vm_state state;
	char reason[256];
	pid_t pid;	    /* 0 when no worker */
	int pidfd;	    /* -1 when no worker */
	uint64_t starttime; /* of pid, from /proc */
	bool is_child;	    /* started by this keeld: waitpid gives its exit status */
	bool was_running;
	enum stop_kind stopping;
	bool stop_force;
	bool off_after_timeout; /* a forced stop ran out of time and turned the VM off */
	unsigned stop_timeout_s;
	long long deadline_ms; /* for Starting and Stopping; 0 when none */
	bool saving;	       /* the worker saved the VM and was told to quit: it ends Saved */
	bool restoring;	       /* the worker was started with --restore */
	bool pause_when_ready; /* a checkpoint paused it: pause the restored worker again */
	uint64_t memory;       /* guest RAM of the running worker, for admission control */
	/* An operation in progress (sup_op_begin): the VM is its owner's until it ends; the
	 * main loop leaves the VM alone meanwhile. */
	const char *op;
	pthread_t op_owner;
	unsigned op_depth;
};

struct sup {
	struct sup_config cfg;
	char *vms_dir;
	struct sup_vm **vms; /* each record stays where it is while others come and go */
	size_t nvms, cap;
	int wake_fd; /* eventfd: the main loop's poll set changed (sup_pollfds) */
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *sup_state_name(enum vm_state s)
{
	return vm_state_name(s);
}

static bool has_worker(const struct sup_vm *vm)
{
	return vm->pid > 0;
}

static int vm_path(const struct sup *sup, const char *uuid, const char *file, char *buf,
		   size_t size)
{
	int n = snprintf(buf, size, "%s/%s%s%s", sup->vms_dir, uuid, file ? "/" : "",
			 file ? file : "");

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int sup_log_path(struct sup *sup, const char *uuid, char *buf, size_t size)
{
	return vm_path(sup, uuid, "worker.log", buf, size);
}

/* Append one line from keeld to the VM's worker log, so the log tells the whole story. */
static void vm_log(struct sup *sup, const struct sup_vm *vm, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void vm_log(struct sup *sup, const struct sup_vm *vm, const char *fmt, ...)
{
	char path[PATH_MAX], line[1024], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	int fd, n;

	if (vm_path(sup, vm->uuid, "worker.log", path, sizeof(path)))
		return;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	n = snprintf(line, sizeof(line), "keeld: %s: ", stamp);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) != n)
		log_warn("cannot append to %s: %s", path, strerror(errno));
	close(fd);
}

static void persist(struct sup *sup, struct sup_vm *vm)
{
	struct store_rt rt = {0};

	snprintf(rt.state, sizeof(rt.state), "%s", sup_state_name(vm->state));
	snprintf(rt.reason, sizeof(rt.reason), "%s", vm->reason);
	rt.pid = vm->pid;
	rt.starttime = vm->starttime;
	rt.was_running = vm->was_running;
	if (store_rt_set(sup->cfg.store, vm->uuid, &rt))
		log_err("VM %s: cannot record state %s in the store", vm->name, rt.state);
}

static void set_state(struct sup *sup, struct sup_vm *vm, enum vm_state s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set_state(struct sup *sup, struct sup_vm *vm, enum vm_state s, const char *fmt, ...)
{
	va_list ap;

	vm->state = s;
	va_start(ap, fmt);
	vsnprintf(vm->reason, sizeof(vm->reason), fmt, ap);
	va_end(ap);
	if (vm->reason[0])
		log_info("VM %s: %s: %s", vm->name, sup_state_name(s), vm->reason);
	else
		log_info("VM %s: %s", vm->name, sup_state_name(s));
	persist(sup, vm);
	events_vm_state(vm->uuid, vm->name, sup_state_name(s), vm->reason);
}

/* The in-memory record of a VM, made from the store's runtime record on first use. */
static struct sup_vm *get_vm(struct sup *sup, const char *uuid, const char *name)
{
	struct store_rt rt;
	struct sup_vm *vm;

	for (size_t i = 0; i < sup->nvms; i++) {
		if (!strcmp(sup->vms[i]->uuid, uuid)) {
			if (name)
				snprintf(sup->vms[i]->name, sizeof(sup->vms[i]->name), "%s", name);
			return sup->vms[i];
		}
	}
	if (sup->nvms == sup->cap) {
		size_t cap = sup->cap ? sup->cap * 2 : 16;
		struct sup_vm **bigger = realloc(sup->vms, cap * sizeof(*bigger));
		if (!bigger)
			return NULL;
		sup->vms = bigger;
		sup->cap = cap;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	sup->vms[sup->nvms++] = vm;
	vm->pidfd = -1;
	snprintf(vm->uuid, sizeof(vm->uuid), "%s", uuid);
	snprintf(vm->name, sizeof(vm->name), "%s", name ? name : uuid);
	if (store_rt_get(sup->cfg.store, uuid, &rt) == 0) {
		vm->state = vm_state_from_name(rt.state);
		snprintf(vm->reason, sizeof(vm->reason), "%s", rt.reason);
		vm->was_running = rt.was_running;
		vm->pid = rt.pid;
		vm->starttime = rt.starttime;
	}
	/* A worker is only ever attached by sup_reattach_all or sup_start. */
	if (vm->pidfd < 0 && vm->state != VM_OFF && vm->state != VM_CRASHED &&
	    vm->state != VM_SAVED) {
		vm->state = VM_OFF;
		vm->pid = 0;
	}
	return vm;
}

int sup_create(const struct sup_config *cfg, struct sup **out)
{
	struct sup *sup = calloc(1, sizeof(*sup));

	if (!sup)
		return -ENOMEM;
	sup->cfg = *cfg;
	if (asprintf(&sup->vms_dir, "%s/vms", cfg->state_dir) < 0) {
		free(sup);
		return -ENOMEM;
	}
	if (mkdir(sup->vms_dir, 0750) < 0 && errno != EEXIST) {
		int ret = -errno;
		log_err("cannot create %s: %s", sup->vms_dir, strerror(errno));
		free(sup->vms_dir);
		free(sup);
		return ret;
	}
	if (cfg->have_group && chown(sup->vms_dir, (uid_t)-1, cfg->group) < 0)
		log_warn("cannot give %s to group %u: %s", sup->vms_dir, (unsigned)cfg->group,
			 strerror(errno));
	sup->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sup->wake_fd < 0) {
		int ret = -errno;
		free(sup->vms_dir);
		free(sup);
		return ret;
	}
	*out = sup;
	return 0;
}

/* Tell the main loop that its poll set changed (a worker started, an operation ended). */
static void sup_wake(struct sup *sup)
{
	uint64_t one = 1;

	(void)!write(sup->wake_fd, &one, sizeof(one));
}

int sup_op_begin(struct sup *sup, const char *uuid, const char *name, const char *op, char *err,
		 size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, uuid, name);

	if (!vm)
		return -ENOMEM;
	if (vm->op && !pthread_equal(vm->op_owner, pthread_self())) {
		error_set(err, errlen, "VM '%s' is busy (%s): try again when that is done",
			  vm->name, vm->op);
		return -EBUSY;
	}
	if (!vm->op_depth++) {
		vm->op = op;
		vm->op_owner = pthread_self();
	}
	return 0;
}

void sup_op_handover(struct sup *sup, const char *uuid, pthread_t owner, const char *op)
{
	for (size_t i = 0; i < sup->nvms; i++) {
		if (!strcmp(sup->vms[i]->uuid, uuid) && sup->vms[i]->op_depth) {
			sup->vms[i]->op_owner = owner;
			sup->vms[i]->op = op;
		}
	}
}

void sup_op_end(struct sup *sup, const char *uuid)
{
	for (size_t i = 0; i < sup->nvms; i++) {
		struct sup_vm *vm = sup->vms[i];

		if (strcmp(vm->uuid, uuid) || !vm->op_depth)
			continue;
		if (!--vm->op_depth) {
			vm->op = NULL;
			sup_wake(sup); /* the main loop watches the VM again */
		}
		return;
	}
}

/* A wait on a worker, without keeld's lock (biglock.h): the caller holds an operation on the
 * VM (or is the main loop probing it), so the VM's record is not changed meanwhile. */
static int ctl_unlocked(const char *sock, const char *cmd, const char *args, int timeout_ms,
			json_object **ret, char *err, size_t errlen)
{
	int r;

	keeld_unlock();
	r = args ? ctl_execute_args(sock, cmd, args, timeout_ms, ret, err, errlen)
		 : ctl_execute(sock, cmd, timeout_ms, ret, err, errlen);
	keeld_lock();
	return r;
}

void sup_destroy(struct sup *sup)
{
	if (!sup)
		return;
	for (size_t i = 0; i < sup->nvms; i++) {
		if (sup->vms[i]->pidfd >= 0)
			close(sup->vms[i]->pidfd);
		free(sup->vms[i]);
	}
	if (sup->wake_fd >= 0)
		close(sup->wake_fd);
	free(sup->vms);
	free(sup->vms_dir);
	free(sup);
}

static int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
static int proc_starttime(pid_t pid, uint64_t *out)
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

static void drop_worker(struct sup_vm *vm)
{
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	vm->pidfd = -1;
	vm->pid = 0;
	vm->starttime = 0;
	vm->is_child = false;
	vm->stopping = STOP_NONE;
	vm->off_after_timeout = false;
	vm->deadline_ms = 0;
}

/* The last non-empty line of the worker's log that keeld did not write: its error line. */
static void last_worker_line(struct sup *sup, const struct sup_vm *vm, char *out, size_t size)
{
	char path[PATH_MAX], buf[4096];
	off_t size_now;
	ssize_t n;
	int fd;

	out[0] = '\0';
	if (vm_path(sup, vm->uuid, "worker.log", path, sizeof(path)))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size_now = lseek(fd, 0, SEEK_END);
	if (size_now > 0 &&
	    lseek(fd, size_now > (off_t)sizeof(buf) - 1 ? size_now - (off_t)sizeof(buf) + 1 : 0,
		  SEEK_SET) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			char *line, *save = NULL, *last = NULL;
			buf[n] = '\0';
			for (line = strtok_r(buf, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				if (strncmp(line, "keeld: ", 7) && line[strspn(line, " \t\r")])
					last = line;
			if (last)
				snprintf(out, size, "%s", last);
		}
	}
	close(fd);
}

/* Read and remove the status file: 0 with reason (and detail) filled in, or -ENOENT. */
static int read_status_file(struct sup *sup, const struct sup_vm *vm, char *reason, size_t rsize,
			    char *detail, size_t dsize, int *status)
{
	char path[PATH_MAX];
	json_object *o, *v;

	reason[0] = detail[0] = '\0';
	*status = 0;
	if (vm_path(sup, vm->uuid, "status.json", path, sizeof(path)))
		return -ENAMETOOLONG;
	o = json_object_from_file(path);
	if (!o)
		return -ENOENT;
	if (json_object_object_get_ex(o, "reason", &v))
		snprintf(reason, rsize, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "detail", &v))
		snprintf(detail, dsize, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "status", &v))
		*status = json_object_get_int(v);
	json_object_put(o);
	return reason[0] ? 0 : -EBADMSG;
}

/*
 * The worker is gone: say why, from its status file, else its exit status (when it was
 * our child), else what we know. have_wstatus is false for a re-attached worker.
 */
static void worker_ended(struct sup *sup, struct sup_vm *vm, bool have_wstatus, int wstatus,
			 bool keeld_was_away)
{
	char reason[32], detail[200], last[200], why[sizeof(vm->reason)];
	enum vm_state was = vm->state, now;
	enum stop_kind stopping = vm->stopping;
	bool after_timeout = vm->off_after_timeout;
	unsigned timeout = vm->stop_timeout_s;
	bool saving = vm->saving, restoring = vm->restoring;
	enum vm_end end;
	int status;

	vm->saving = vm->restoring = false;
	drop_worker(vm);
	vm->was_running = false;
	/* How it ended, and the words for it; the state follows from the table. */
	if (read_status_file(sup, vm, reason, sizeof(reason), detail, sizeof(detail), &status) ==
	    0) {
		if (!strcmp(reason, "poweroff")) {
			end = VM_END_POWEROFF;
			snprintf(why, sizeof(why), "%s",
				 stopping == STOP_GRACEFUL ? "shut down through the power button"
							   : "the guest powered off");
		} else if (!strcmp(reason, "quit")) {
			end = VM_END_QUIT;
			if (after_timeout)
				snprintf(why, sizeof(why),
					 "turned off: the guest did not shut down within %u s",
					 timeout);
			else
				snprintf(why, sizeof(why), "turned off");
		} else if (!strcmp(reason, "reboot")) {
			end = VM_END_REBOOT;
			snprintf(why, sizeof(why), "the guest rebooted");
		} else if (!strcmp(reason, "debug-exit")) {
			end = VM_END_DEBUG_EXIT;
			snprintf(why, sizeof(why), "the guest exited with debug-exit status %d",
				 status);
		} else if (!strcmp(reason, "error")) {
			end = VM_END_ERROR;
			snprintf(why, sizeof(why), "keel-vmm %s: %s",
				 was == VM_STARTING ? "failed to start the VM" : "failed", detail);
		} else if (!strcmp(reason, "crash")) {
			end = VM_END_CRASH;
			snprintf(why, sizeof(why), "%s", detail[0] ? detail : "the VM crashed");
		} else {
			end = VM_END_UNKNOWN;
			snprintf(why, sizeof(why), "keel-vmm ended with status '%s' %s", reason,
				 detail);
		}
	} else if (stopping == STOP_TURNOFF) {
		end = VM_END_KILLED;
		snprintf(why, sizeof(why), "turned off (keel-vmm was killed: it did not quit)");
	} else if (stopping == STOP_KILL_START) {
		end = VM_END_KILLED_START;
		snprintf(why, sizeof(why),
			 "keel-vmm did not open its control socket within %u s and was killed",
			 sup->cfg.start_timeout_s);
	} else if (have_wstatus) {
		end = VM_END_EXITED;
		last_worker_line(sup, vm, last, sizeof(last));
		if (WIFSIGNALED(wstatus))
			snprintf(why, sizeof(why), "keel-vmm was killed by signal %d (%s)",
				 WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
		else
			snprintf(why, sizeof(why), "keel-vmm exited with status %d%s%s",
				 WEXITSTATUS(wstatus), last[0] ? ": " : "", last);
	} else if (keeld_was_away) {
		end = VM_END_AWAY;
		/* Host restart or a worker killed while keeld was down: remember it was running. */
		vm->was_running = true;
		snprintf(why, sizeof(why),
			 "keel-vmm ended while keeld was not running, without a status file");
	} else {
		end = VM_END_VANISHED;
		last_worker_line(sup, vm, last, sizeof(last));
		snprintf(why, sizeof(why), "keel-vmm ended without a status file%s%s",
			 last[0] ? ": " : "", last);
	}
	now = vm_state_after_end(was, saving, restoring, end);
	if (now == VM_SAVED && saving && vm_state_after_end(was, false, false, end) == VM_OFF)
		set_state(sup, vm, now, "saved"); /* the save completed first */
	else if (now == VM_SAVED && restoring && was == VM_STARTING)
		/* The saved state is still there: keep the VM Saved and say why it did not start
		 * (keel vm discard-state makes the next start boot afresh). */
		set_state(sup, vm, now, "could not restore: %s", why);
	else
		set_state(sup, vm, now, "%s", why);
	vm_log(sup, vm, "worker ended: %s: %s", sup_state_name(vm->state), vm->reason);
}

/* Remove the VM's saved state files (and their directory). */
static void remove_saved(struct sup *sup, const struct sup_vm *vm)
{
	static const char *const files[] = {SUP_SAVED_DIR "/state", SUP_SAVED_DIR "/memory",
					    SUP_SAVED_DIR "/state.tmp",
					    SUP_SAVED_DIR "/memory.tmp"};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (!vm_path(sup, vm->uuid, files[i], path, sizeof(path)))
			unlink(path);
	if (!vm_path(sup, vm->uuid, SUP_SAVED_DIR, path, sizeof(path)) && rmdir(path) < 0 &&
	    errno != ENOENT)
		log_warn("VM %s: cannot remove %s: %s", vm->name, path, strerror(errno));
}

static void make_sock_group_accessible(struct sup *sup, struct sup_vm *vm)
{
	char path[PATH_MAX];

	if (vm_path(sup, vm->uuid, "serial.sock", path, sizeof(path)))
		return;
	if (sup->cfg.have_group && chown(path, (uid_t)-1, sup->cfg.group) < 0 && errno != ENOENT)
		log_warn("VM %s: cannot give %s to the keel group: %s", vm->name, path,
			 strerror(errno));
	if (chmod(path, 0660) < 0 && errno != ENOENT)
		log_warn("VM %s: cannot chmod %s: %s", vm->name, path, strerror(errno));
}

/* Ask the worker for its state; returns 0 and sets *paused, or -errno with err. */
static int query_state_within(struct sup *sup, struct sup_vm *vm, int timeout_ms, bool *paused,
			      char *err, size_t errlen)
{
	char ctl[PATH_MAX];
	json_object *ret = NULL, *st;
	int rc;

	rc = vm_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl));
	if (rc)
		return rc;
	rc = ctl_unlocked(ctl, "status", NULL, timeout_ms, &ret, err, errlen);
	if (rc)
		return rc;
	*paused = json_object_object_get_ex(ret, "state", &st) &&
		  !strcmp(json_object_get_string(st), "paused");
	json_object_put(ret);
	return 0;
}

static int query_state(struct sup *sup, struct sup_vm *vm, bool *paused, char *err, size_t errlen)
{
	return query_state_within(sup, vm, SUP_CTL_TIMEOUT_MS, paused, err, errlen);
}

void sup_reattach_all(struct sup *sup)
{
	struct vm_def *defs = NULL;
	size_t n = 0;

	if (store_vm_list(sup->cfg.store, &defs, &n)) {
		log_err("cannot list VMs in the store to re-attach their workers");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_rt rt;
		struct sup_vm *vm;
		uint64_t st = 0;
		char err[256];
		bool paused;

		if (store_rt_get(sup->cfg.store, defs[i].uuid, &rt) || rt.pid <= 0)
			continue;
		vm = get_vm(sup, defs[i].uuid, defs[i].name);
		if (!vm)
			continue;
		/* get_vm turned the active state into Off; look at the record itself. */
		vm->pid = rt.pid;
		vm->memory = defs[i].memory;
		vm->starttime = rt.starttime;
		vm->was_running = rt.was_running;
		if (proc_starttime(rt.pid, &st) == 0 && st == rt.starttime)
			vm->pidfd = sys_pidfd_open(rt.pid);
		if (vm->pidfd < 0) {
			vm->state = vm_state_from_name(rt.state);
			worker_ended(sup, vm, false, 0, true);
			continue;
		}
		if (query_state(sup, vm, &paused, err, sizeof(err)) == 0) {
			set_state(sup, vm, paused ? VM_PAUSED : VM_RUNNING, "%s", "");
			make_sock_group_accessible(sup, vm);
		} else if (!strcmp(rt.state, "Starting")) {
			vm->deadline_ms = mono_ms() + (long long)sup->cfg.start_timeout_s * 1000;
			set_state(sup, vm, VM_STARTING, "%s", "");
		} else {
			set_state(sup, vm, VM_RUNNING, "control socket not answering: %s", err);
		}
		vm_log(sup, vm, "keeld re-attached to worker pid %d: %s", (int)vm->pid,
		       sup_state_name(vm->state));
	}
	store_vm_list_free(defs, n);
}

void sup_autostart(struct sup *sup)
{
	struct vm_def *defs = NULL;
	size_t n = 0;

	if (store_vm_list(sup->cfg.store, &defs, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		struct sup_vm *vm = get_vm(sup, defs[i].uuid, defs[i].name);
		char err[256];

		if (!vm || has_worker(vm))
			continue;
		if (defs[i].start_action == VM_START_ALWAYS ||
		    (defs[i].start_action == VM_START_IF_RUNNING && vm->was_running)) {
			log_info("VM %s: automatic start (%s)", defs[i].name,
				 vmdef_start_action_name(defs[i].start_action));
			if (sup_start(sup, &defs[i], err, sizeof(err)))
				log_err("VM %s: automatic start failed: %s", defs[i].name, err);
		}
	}
	store_vm_list_free(defs, n);
}

void sup_set_was_running(struct sup *sup, const char *uuid)
{
	struct sup_vm *vm = get_vm(sup, uuid, NULL);

	if (!vm)
		return;
	vm->was_running = true;
	persist(sup, vm);
}

void sup_status(struct sup *sup, const char *uuid, struct sup_status *out)
{
	struct sup_vm *vm = get_vm(sup, uuid, NULL);

	memset(out, 0, sizeof(*out));
	if (!vm)
		return;
	out->state = vm->state;
	snprintf(out->reason, sizeof(out->reason), "%s", vm->reason);
	out->pid = vm->pid;
	if (has_worker(vm) && vm_path(sup, uuid, "serial.sock", out->console, sizeof(out->console)))
		out->console[0] = '\0';
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

static void rotate_log(const char *path)
{
	struct stat st;
	char old[PATH_MAX];

	if (stat(path, &st) == 0 && st.st_size > SUP_LOG_ROTATE &&
	    snprintf(old, sizeof(old), "%s.1", path) < (int)sizeof(old))
		(void)!rename(path, old);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void __attribute__((noreturn))
exec_worker(const char *vmm, char **argv, int logfd, int errpipe)
{
	sigset_t none;
	int devnull, e;

	setsid(); /* its own session: survives keeld, gets no terminal signals */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	devnull = open("/dev/null", O_RDONLY);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
		goto fail;
	syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	execv(vmm, argv);
fail:
	e = errno;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

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
	uint64_t total = host_memory(sup), taken = 0, need = def->memory + SUP_VMM_ALLOWANCE;
	unsigned running = 0;

	if (!total)
		return 0; /* no /proc/meminfo: nothing to check against */
	for (size_t i = 0; i < sup->nvms; i++) {
		if (!has_worker(sup->vms[i]) || !strcmp(sup->vms[i]->uuid, def->uuid))
			continue;
		taken += sup->vms[i]->memory + SUP_VMM_ALLOWANCE;
		running++;
	}
	if (taken + sup->cfg.host_reserve + need <= total)
		return 0;
	error_set(err, errlen,
		  "cannot start VM '%s': it needs %" PRIu64 " MiB (%" PRIu64
		  " MiB of memory and %llu MiB for its worker), and of this host's %" PRIu64
		  " MiB, %" PRIu64 " MiB are kept for the host (--host-reserve) and %" PRIu64
		  " MiB are taken by %u running VM%s: %" PRIu64 " MiB are missing",
		  def->name, need >> 20, def->memory >> 20, SUP_VMM_ALLOWANCE >> 20, total >> 20,
		  sup->cfg.host_reserve >> 20, taken >> 20, running, running == 1 ? "" : "s",
		  (taken + sup->cfg.host_reserve + need - total + (1 << 20) - 1) >> 20);
	return -EDQUOT;
}

int sup_start(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	char dir[PATH_MAX], ctl[PATH_MAX], serial[PATH_MAX], status[PATH_MAX], log[PATH_MAX];
	char config[PATH_MAX], hvc[PATH_MAX];
	char *argv[64] = {NULL};
	int argc = 0, logfd = -1, pipefd[2] = {-1, -1}, e = 0, ret = 0;
	pid_t pid;

	if (!vm)
		return -ENOMEM;
	if (has_worker(vm)) {
		error_set(err, errlen, "VM '%s' is already %s", def->name,
			  sup_state_name(vm->state));
		return -EBUSY;
	}
	if (vm_path(sup, def->uuid, NULL, dir, sizeof(dir)) ||
	    vm_path(sup, def->uuid, "control.sock", ctl, sizeof(ctl)) ||
	    vm_path(sup, def->uuid, "serial.sock", serial, sizeof(serial)) ||
	    vm_path(sup, def->uuid, "status.json", status, sizeof(status)) ||
	    vm_path(sup, def->uuid, "worker.log", log, sizeof(log)) ||
	    vm_path(sup, def->uuid, "config.json", config, sizeof(config)) ||
	    vm_path(sup, def->uuid, "hvc0.sock", hvc, sizeof(hvc)) || strlen(hvc) > SUP_SOCK_MAX ||
	    strlen(ctl) > SUP_SOCK_MAX || strlen(serial) > SUP_SOCK_MAX) {
		error_set(
			err, errlen,
			"the state directory %s is too long for the VM's socket paths (at most %d "
			"bytes); use a shorter --state-dir",
			sup->cfg.state_dir, SUP_SOCK_MAX);
		return -ENAMETOOLONG;
	}
	ret = admit(sup, def, err, errlen);
	if (ret)
		return ret;
	if (access(sup->cfg.vmm_path, X_OK) < 0) {
		ret = -ENOEXEC;
		error_set(err, errlen, "cannot start VM '%s': keel-vmm %s: %s", def->name,
			  sup->cfg.vmm_path, strerror(errno));
		set_state(sup, vm, VM_OFF, "%s", err);
		return ret;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		ret = -errno;
		error_set(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return ret;
	}
	if (sup->cfg.have_group && chown(dir, (uid_t)-1, sup->cfg.group) < 0)
		log_warn("cannot give %s to the keel group: %s", dir, strerror(errno));
	unlink(ctl);
	unlink(serial);
	unlink(status);
	unlink(hvc);
	rotate_log(log);
	/* The worker gets the description whole, as a document: no path or string travels
	 * through an option splitter (docs/vm-config.md). */
	ret = vmdef_save_file(def, config, err, errlen);
	if (ret)
		return ret;

	if (add_arg(argv, &argc, 64, "%s", sup->cfg.vmm_path) ||
	    add_arg(argv, &argc, 64, "--config=%s", config) ||
	    add_arg(argv, &argc, 64, "--serial=unix:%s", serial) ||
	    (def->console.present && add_arg(argv, &argc, 64, "--console=unix:%s", hvc)) ||
	    add_arg(argv, &argc, 64, "--control=%s", ctl) ||
	    add_arg(argv, &argc, 64, "--status-file=%s", status)) {
		ret = -ENOMEM;
		error_set(err, errlen, "cannot build keel-vmm's command line: out of memory");
		goto out;
	}
	/* A Saved VM carries on from its saved state (docs/state.md). */
	vm->restoring = vm->state == VM_SAVED;
	if (vm->restoring) {
		char saved[PATH_MAX];

		if (vm_path(sup, def->uuid, SUP_SAVED_DIR, saved, sizeof(saved)) ||
		    add_arg(argv, &argc, 64, "--restore=%s", saved)) {
			ret = -ENOMEM;
			goto out;
		}
	}
	logfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (logfd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		ret = -errno;
		error_set(err, errlen, "cannot start VM '%s': %s: %s", def->name,
			  logfd < 0 ? log : "pipe", strerror(errno));
		goto out;
	}
	{
		/* One line with the whole command, for the log. */
		char cmd[2048];
		size_t len = 0;
		for (int i = 0; i < argc && len < sizeof(cmd); i++)
			len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%s%s", i ? " " : "",
						argv[i]);
		vm_log(sup, vm, "starting: %s", cmd);
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		error_set(err, errlen, "cannot start VM '%s': fork: %s", def->name,
			  strerror(errno));
		goto out;
	}
	if (pid == 0)
		exec_worker(sup->cfg.vmm_path, argv, logfd, pipefd[1]);
	close(pipefd[1]);
	pipefd[1] = -1;
	/* Blocks until exec (pipe closed) or its failure (errno written). */
	if (read(pipefd[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
		waitpid(pid, NULL, 0);
		ret = -ENOEXEC;
		error_set(err, errlen, "cannot run keel-vmm %s: %s", sup->cfg.vmm_path,
			  strerror(e));
		set_state(sup, vm, VM_OFF, "%s", err);
		goto out;
	}
	vm->pid = pid;
	vm->memory = def->memory;
	vm->is_child = true;
	vm->pidfd = sys_pidfd_open(pid);
	if (vm->pidfd < 0 || proc_starttime(pid, &vm->starttime)) {
		ret = -errno;
		error_set(err, errlen, "cannot watch keel-vmm pid %d: %s", (int)pid,
			  strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		drop_worker(vm);
		set_state(sup, vm, VM_OFF, "%s", err);
		goto out;
	}
	vm->was_running = true;
	vm->stopping = STOP_NONE;
	vm->deadline_ms = mono_ms() + (long long)sup->cfg.start_timeout_s * 1000;
	set_state(sup, vm, VM_STARTING, "%s", "");
out:
	if (logfd >= 0)
		close(logfd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return ret;
}

/* Send a control command to a VM's worker. */
static int vm_ctl(struct sup *sup, struct sup_vm *vm, const char *cmd, char *err, size_t errlen)
{
	char ctl[PATH_MAX];
	int ret;

	ret = vm_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl));
	if (ret)
		return ret;
	ret = ctl_unlocked(ctl, cmd, NULL, SUP_CTL_TIMEOUT_MS, NULL, err, errlen);
	if (ret == -EREMOTEIO) {
		char why[200];
		snprintf(why, sizeof(why), "%s", err);
		error_set(err, errlen, "VM '%s': keel-vmm refused %s: %s", vm->name, cmd, why);
		return -EBUSY;
	}
	return ret;
}

/* The state table's verdict on action for this VM (vm_state.c). */
static int need_state(struct sup_vm *vm, enum vm_action a, char *err, size_t errlen)
{
	return vm_state_check(vm->state, a, vm->name, err, errlen);
}

int sup_stop(struct sup *sup, const struct vm_def *def, bool force, unsigned timeout_s, char *err,
	     size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	if (vm->state == VM_STOPPING && vm->stopping == STOP_GRACEFUL && force) {
		vm->stop_force = true; /* a second `stop --force` upgrades the first */
		return 0;
	}
	ret = need_state(vm, VM_ACT_STOP, err, errlen);
	if (ret)
		return ret;
	ret = vm_ctl(sup, vm, "powerdown", err, errlen);
	if (ret)
		return ret;
	vm->stopping = STOP_GRACEFUL;
	vm->off_after_timeout = false;
	vm->stop_force = force;
	vm->stop_timeout_s = timeout_s;
	vm->deadline_ms = mono_ms() + (long long)timeout_s * 1000;
	vm_log(sup, vm, "stop: pressed the power button, waiting %u s%s", timeout_s,
	       force ? ", then turning off" : "");
	set_state(sup, vm, VM_STOPPING, "waiting up to %u s for the guest to shut down", timeout_s);
	return 0;
}

/* quit through the control socket, or SIGKILL if the worker does not listen. */
static void begin_turn_off_within(struct sup *sup, struct sup_vm *vm, int timeout_ms)
{
	char ctl[PATH_MAX], err[256];

	if (vm_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl)) ||
	    ctl_unlocked(ctl, "quit", NULL, timeout_ms, NULL, err, sizeof(err)) != 0) {
		log_warn("VM %s: %s; killing keel-vmm pid %d", vm->name, err, (int)vm->pid);
		if (sys_pidfd_kill(vm->pidfd, SIGKILL) < 0)
			log_err("VM %s: cannot kill pid %d: %s", vm->name, (int)vm->pid,
				strerror(errno));
	}
	vm->stopping = STOP_TURNOFF;
	vm->stop_force = false;
	vm->deadline_ms = mono_ms() + SUP_QUIT_TIMEOUT_MS;
}

static void begin_turn_off(struct sup *sup, struct sup_vm *vm)
{
	begin_turn_off_within(sup, vm, SUP_CTL_TIMEOUT_MS);
}

int sup_turn_off(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_TURN_OFF, err, errlen);
	if (ret)
		return ret;
	vm->stopping = STOP_TURNOFF;
	vm_log(sup, vm, "turn-off requested");
	begin_turn_off(sup, vm);
	set_state(sup, vm, VM_STOPPING, "turning off");
	return 0;
}

int sup_pause(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_PAUSE, err, errlen);
	if (!ret)
		ret = vm_ctl(sup, vm, "pause", err, errlen);
	if (!ret) {
		vm_log(sup, vm, "paused");
		set_state(sup, vm, VM_PAUSED, "%s", "");
	}
	return ret;
}

int sup_resume(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_RESUME, err, errlen);
	if (!ret)
		ret = vm_ctl(sup, vm, "resume", err, errlen);
	if (!ret) {
		vm_log(sup, vm, "resumed");
		set_state(sup, vm, VM_RUNNING, "%s", "");
	}
	return ret;
}

int sup_save_check(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);

	if (!vm)
		return -ENOMEM;
	return need_state(vm, VM_ACT_SAVE, err, errlen);
}

int sup_saved_file(struct sup *sup, const char *uuid, const char *name, char *buf, size_t size)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "%s/%s", SUP_SAVED_DIR, name);
	return vm_path(sup, uuid, rel, buf, size);
}

/* Save-VM: the worker saves (pausing the VM) into the VM's directory, then quits; the VM
 * becomes Saved when the worker has ended (worker_ended). */
int sup_save(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	char dir[PATH_MAX], ctl[PATH_MAX], why[400];
	json_object *args;
	bool was_running;
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_SAVE, err, errlen);
	if (ret)
		return ret;
	if (vm_path(sup, def->uuid, SUP_SAVED_DIR, dir, sizeof(dir)) ||
	    vm_path(sup, def->uuid, "control.sock", ctl, sizeof(ctl)))
		return -ENAMETOOLONG;
	was_running = vm->state == VM_RUNNING;
	args = json_object_new_object();
	json_object_object_add(args, "dir", json_object_new_string(dir));
	ret = ctl_unlocked(ctl, "save",
			   json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN),
			   SUP_SAVE_TIMEOUT_MS, NULL, why, sizeof(why));
	json_object_put(args);
	if (ret) {
		error_set(err, errlen, "cannot save VM '%s': %s", vm->name, why);
		/* keel-vmm pauses before saving: a VM that was running runs on. */
		if (was_running && !vm_ctl(sup, vm, "resume", why, sizeof(why)))
			set_state(sup, vm, VM_RUNNING, "%s", "");
		else if (was_running)
			set_state(sup, vm, VM_PAUSED, "save failed");
		return ret == -EREMOTEIO ? -EBUSY : ret;
	}
	vm_log(sup, vm, "saved to %s", dir);
	vm->saving = true;
	begin_turn_off(sup, vm);
	set_state(sup, vm, VM_STOPPING, "saved; the worker is ending");
	return 0;
}

int sup_discard_state(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_DISCARD_STATE, err, errlen);
	if (ret)
		return ret;
	remove_saved(sup, vm);
	vm_log(sup, vm, "saved state discarded");
	set_state(sup, vm, VM_OFF, "saved state discarded");
	return 0;
}

int sup_vm_dir(struct sup *sup, const char *uuid, char *buf, size_t size)
{
	return vm_path(sup, uuid, NULL, buf, size);
}

/* Link dir/name to the VM's saved directory (same file system: no copy). */
static int link_saved(struct sup *sup, const struct sup_vm *vm, const char *dir, const char *name,
		      char *err, size_t errlen)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (snprintf(from, sizeof(from), "%s/%s", dir, name) >= (int)sizeof(from) ||
	    vm_path(sup, vm->uuid, SUP_SAVED_DIR, to, sizeof(to)) ||
	    strlen(to) + strlen(name) + 2 > sizeof(to))
		return -ENAMETOOLONG;
	strcat(to, "/");
	strcat(to, name);
	if (link(from, to) < 0) {
		int ret = -errno;
		error_set(err, errlen, "cannot link %s to %s: %s", from, to, strerror(errno));
		return ret;
	}
	return 0;
}

int sup_set_saved(struct sup *sup, const struct vm_def *def, const char *from_dir,
		  const char *reason, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	char dir[PATH_MAX];
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_CHANGE_SAVED, err, errlen);
	if (ret)
		return ret;
	remove_saved(sup, vm);
	if (!from_dir) {
		set_state(sup, vm, VM_OFF, "%s", reason);
		return 0;
	}
	if (vm_path(sup, def->uuid, NULL, dir, sizeof(dir)) ||
	    (mkdir(dir, 0750) < 0 && errno != EEXIST) ||
	    vm_path(sup, def->uuid, SUP_SAVED_DIR, dir, sizeof(dir)) ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		error_set(err, errlen, "cannot create the saved-state directory of VM '%s'",
			  vm->name);
		return -EIO;
	}
	ret = link_saved(sup, vm, from_dir, "memory", err, errlen);
	if (!ret)
		ret = link_saved(sup, vm, from_dir, "state", err, errlen);
	if (ret) {
		remove_saved(sup, vm);
		set_state(sup, vm, VM_OFF, "%s", err);
		return ret;
	}
	set_state(sup, vm, VM_SAVED, "%s", reason);
	return 0;
}

/* Wait (blocking keeld, at most timeout_ms, then SIGKILL) for the worker to end. */
static void wait_worker_end(struct sup *sup, struct sup_vm *vm, int timeout_ms)
{
	struct pollfd p = {.fd = vm->pidfd, .events = POLLIN};
	int wstatus = 0, r;
	bool have = false;

	if (!has_worker(vm))
		return;
	keeld_unlock(); /* the caller's operation holds the VM: its pidfd stays open */
	r = poll(&p, 1, timeout_ms);
	keeld_lock();
	if (r <= 0) {
		log_warn("VM %s: keel-vmm pid %d did not quit within %d ms: killing it", vm->name,
			 (int)vm->pid, timeout_ms);
		(void)!sys_pidfd_kill(vm->pidfd, SIGKILL);
		keeld_unlock();
		r = poll(&p, 1, SUP_QUIT_TIMEOUT_MS);
		keeld_lock();
		if (r <= 0) {
			/* Not gone even after SIGKILL (stuck in the kernel): it stays attached,
			 * and the main loop takes its end when its pidfd says so. */
			log_err("VM %s: keel-vmm pid %d is still there %d ms after SIGKILL",
				vm->name, (int)vm->pid, SUP_QUIT_TIMEOUT_MS);
			return;
		}
	}
	/* The pidfd says the process ended: reaping it cannot block. */
	if (vm->is_child && waitpid(vm->pid, &wstatus, WNOHANG) == vm->pid)
		have = true;
	worker_ended(sup, vm, have, wstatus, false);
}

int sup_save_stop(struct sup *sup, const struct vm_def *def, const char *dir, bool *was_paused,
		  char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	char ctl[PATH_MAX], why[400];
	json_object *args;
	bool was_running;
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_CHECKPOINT_RUN, err, errlen);
	if (ret)
		return ret;
	if (vm_path(sup, def->uuid, "control.sock", ctl, sizeof(ctl)))
		return -ENAMETOOLONG;
	was_running = vm->state == VM_RUNNING;
	*was_paused = !was_running;
	args = json_object_new_object();
	json_object_object_add(args, "dir", json_object_new_string(dir));
	ret = ctl_unlocked(ctl, "save",
			   json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN),
			   SUP_SAVE_TIMEOUT_MS, NULL, why, sizeof(why));
	json_object_put(args);
	if (ret) {
		error_set(err, errlen, "cannot save VM '%s': %s", vm->name, why);
		if (was_running && !vm_ctl(sup, vm, "resume", why, sizeof(why)))
			set_state(sup, vm, VM_RUNNING, "%s", "");
		else if (was_running)
			set_state(sup, vm, VM_PAUSED, "save failed");
		return ret == -EREMOTEIO ? -EBUSY : ret;
	}
	vm_log(sup, vm, "saved to %s for a checkpoint; the worker ends and a new one restores",
	       dir);
	vm->saving = true;
	begin_turn_off(sup, vm);
	set_state(sup, vm, VM_STOPPING, "saved; the worker is ending");
	wait_worker_end(sup, vm, SUP_QUIT_TIMEOUT_MS);
	if (vm->state != VM_SAVED) {
		error_set(err, errlen, "VM '%s' did not end Saved after its save: %s (%s)",
			  vm->name, sup_state_name(vm->state), vm->reason);
		return -EIO;
	}
	return 0;
}

int sup_turn_off_wait(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	if (!has_worker(vm))
		return 0;
	ret = sup_turn_off(sup, def, err, errlen);
	if (ret)
		return ret;
	wait_worker_end(sup, vm, SUP_QUIT_TIMEOUT_MS);
	return 0;
}

int sup_start_restore(struct sup *sup, const struct vm_def *def, bool paused, char *err,
		      size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_RESTORE, err, errlen);
	if (ret)
		return ret;
	ret = sup_start(sup, def, err, errlen);
	if (!ret)
		vm->pause_when_ready = paused;
	return ret;
}

int sup_restart(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	bool paused = false;
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_RESTART, err, errlen);
	if (!ret)
		ret = vm_ctl(sup, vm, "reset", err, errlen);
	if (ret)
		return ret;
	vm_log(sup, vm, "restarted (hard reset)");
	if (query_state(sup, vm, &paused, err, errlen) == 0)
		set_state(sup, vm, paused ? VM_PAUSED : VM_RUNNING, "restarted");
	return 0;
}

int sup_forget(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	static const char *const files[] = {"control.sock", "serial.sock", "status.json",
					    "worker.log", "worker.log.1"};
	struct sup_vm *vm = get_vm(sup, def->uuid, def->name);
	char path[PATH_MAX];
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = need_state(vm, VM_ACT_DELETE, err, errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (!vm_path(sup, def->uuid, files[i], path, sizeof(path)))
			unlink(path);
	remove_saved(sup, vm);
	if (!vm_path(sup, def->uuid, NULL, path, sizeof(path)) && rmdir(path) < 0 &&
	    errno != ENOENT)
		log_warn("VM %s: cannot remove %s: %s", def->name, path, strerror(errno));
	/* Drop the in-memory record; the store's runtime row goes with the VM's row. */
	for (size_t i = 0; i < sup->nvms; i++) {
		if (sup->vms[i] == vm) {
			sup->vms[i] = sup->vms[--sup->nvms];
			break;
		}
	}
	free(vm);
	return 0;
}

size_t sup_pollfds(struct sup *sup, struct pollfd *fds, size_t max)
{
	size_t n = 0;

	if (n < max)
		fds[n++] = (struct pollfd){.fd = sup->wake_fd, .events = POLLIN};
	for (size_t i = 0; i < sup->nvms && n < max; i++) {
		/* A VM with an operation in progress is the operation's to watch. */
		if (sup->vms[i]->pidfd < 0 || sup->vms[i]->op)
			continue;
		fds[n].fd = sup->vms[i]->pidfd;
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		n++;
	}
	return n;
}

static struct sup_vm *by_pidfd(struct sup *sup, int fd)
{
	for (size_t i = 0; i < sup->nvms; i++)
		if (sup->vms[i]->pidfd == fd && !sup->vms[i]->op)
			return sup->vms[i];
	return NULL;
}

void sup_events(struct sup *sup, const struct pollfd *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sup_vm *vm;
		int wstatus = 0;
		bool have = false;

		struct pollfd again;

		if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (fds[i].fd == sup->wake_fd) {
			uint64_t v;
			(void)!read(sup->wake_fd, &v, sizeof(v));
			continue;
		}
		/* The poll ran without the lock: the fd may have been closed and reused since.
		 * Act only on a VM's pidfd that says so now. */
		vm = by_pidfd(sup, fds[i].fd);
		again = (struct pollfd){.fd = fds[i].fd, .events = POLLIN};
		if (!vm || poll(&again, 1, 0) <= 0)
			continue;
		if (vm->is_child && waitpid(vm->pid, &wstatus, WNOHANG) == vm->pid)
			have = true;
		worker_ended(sup, vm, have, wstatus, false);
	}
}

int sup_timeout_ms(struct sup *sup)
{
	long long now = mono_ms(), best = -1;

	for (size_t i = 0; i < sup->nvms; i++) {
		const struct sup_vm *vm = sup->vms[i];
		long long t;

		if (!has_worker(vm) || vm->op)
			continue;
		if (vm->state == VM_STARTING)
			t = 10; /* poll for the control socket: cheap, and start latency counts */
		else if (vm->deadline_ms)
			t = vm->deadline_ms > now ? vm->deadline_ms - now : 0;
		else
			continue;
		if (best < 0 || t < best)
			best = t;
	}
	return best < 0 ? -1 : (int)(best > 1000 ? 1000 : best);
}

static void probe_starting(struct sup *sup, struct sup_vm *vm, long long now)
{
	char ctl[PATH_MAX], err[256];
	bool paused = false;

	int ready;

	if (vm_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl)))
		return;
	/* Not ready when it does not answer at once: the next tick asks again, and the main
	 * loop is held up by a stopped worker for SUP_PROBE_TIMEOUT_MS at most. */
	ready = access(ctl, F_OK) == 0 &&
		query_state_within(sup, vm, SUP_PROBE_TIMEOUT_MS, &paused, err, sizeof(err)) == 0;
	if (!has_worker(vm) || vm->state != VM_STARTING)
		return;
	if (ready) {
		vm->deadline_ms = 0;
		make_sock_group_accessible(sup, vm);
		vm_log(sup, vm, "worker pid %d is ready", (int)vm->pid);
		if (vm->pause_when_ready && !paused && !vm_ctl(sup, vm, "pause", err, sizeof(err)))
			paused = true;
		vm->pause_when_ready = false;
		set_state(sup, vm, paused ? VM_PAUSED : VM_RUNNING, "%s",
			  vm->restoring ? "restored from its saved state" : "");
		if (vm->restoring) {
			/* The worker has mapped the memory file: removing it is safe now. */
			remove_saved(sup, vm);
			vm->restoring = false;
		}
		return;
	}
	if (vm->deadline_ms && now >= vm->deadline_ms && vm->stopping != STOP_KILL_START) {
		log_warn("VM %s: keel-vmm did not become ready within %u s; killing it", vm->name,
			 sup->cfg.start_timeout_s);
		vm->stopping = STOP_KILL_START;
		vm->deadline_ms = 0;
		(void)!sys_pidfd_kill(vm->pidfd, SIGKILL);
	}
}

/* Probing a starting worker lets go of keeld's lock (a stopped worker answers late): the VM
 * is the probe's meanwhile, as it would be an API operation's. */
static void tick_starting(struct sup *sup, struct sup_vm *vm, long long now)
{
	vm->op = "starting";
	vm->op_owner = pthread_self();
	vm->op_depth = 1;
	probe_starting(sup, vm, now);
	vm->op = NULL;
	vm->op_depth = 0;
}

static void tick_stopping(struct sup *sup, struct sup_vm *vm, long long now)
{
	if (!vm->deadline_ms || now < vm->deadline_ms)
		return;
	if (vm->stopping == STOP_GRACEFUL && vm->stop_force) {
		vm_log(sup, vm, "the guest did not shut down within %u s: turning it off",
		       vm->stop_timeout_s);
		vm->off_after_timeout = true;
		/* The quit lets go of keeld's lock: the VM is the main loop's meanwhile, and a
		 * worker that does not take it at once is killed at the next deadline. */
		vm->op = "stopping";
		vm->op_owner = pthread_self();
		vm->op_depth = 1;
		begin_turn_off_within(sup, vm, SUP_PROBE_TIMEOUT_MS);
		vm->op = NULL;
		vm->op_depth = 0;
	} else if (vm->stopping == STOP_GRACEFUL) {
		vm->stopping = STOP_NONE;
		vm->deadline_ms = 0;
		vm_log(sup, vm, "the guest did not shut down within %u s", vm->stop_timeout_s);
		set_state(sup, vm, VM_RUNNING,
			  "the guest did not shut down within %u s of the power button; use "
			  "'keel vm stop --force' or 'keel vm turn-off'",
			  vm->stop_timeout_s);
	} else {
		/* quit was sent and the worker is still there: kill it. */
		vm_log(sup, vm, "keel-vmm did not quit within %d ms: killing pid %d",
		       SUP_QUIT_TIMEOUT_MS, (int)vm->pid);
		vm->stopping = STOP_TURNOFF;
		vm->deadline_ms = 0;
		(void)!sys_pidfd_kill(vm->pidfd, SIGKILL);
	}
}

void sup_tick(struct sup *sup)
{
	long long now = mono_ms();

	for (size_t i = 0; i < sup->nvms; i++) {
		struct sup_vm *vm = sup->vms[i];

		if (!has_worker(vm) || vm->op)
			continue;
		if (vm->state == VM_STARTING)
			tick_starting(sup, vm, now);
		else if (vm->state == VM_STOPPING)
			tick_stopping(sup, vm, now);
	}
}
