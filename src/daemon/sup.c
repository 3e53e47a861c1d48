/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor: VM records, their states (vm_state.c's tables) and operations, the actions
 * on a running worker, a worker's end, and the main loop's part (sup.h). */
#include "daemon/sup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/agent_mon.h"
#include "daemon/biglock.h"
#include "daemon/ctl.h"
#include "daemon/pools.h"
#include "daemon/events.h"
#include "daemon/sup_internal.h"
#include "daemon/uid_claim.h"
#include "lib/clock.h"
#include "lib/error.h"
#include "lib/log.h"

bool sup_has_worker(const struct sup_vm *vm)
{
	return vm->pid > 0;
}

void sup_persist(struct sup *sup, struct sup_vm *vm)
{
	struct store_rt rt = {0};

	snprintf(rt.state, sizeof(rt.state), "%s", vm_state_name(vm->state));
	snprintf(rt.reason, sizeof(rt.reason), "%s", vm->reason);
	rt.pid = vm->pid;
	rt.starttime = vm->starttime;
	rt.was_running = vm->was_running;
	if (store_rt_set(sup->cfg.store, vm->uuid, &rt))
		log_err("VM %s: cannot record state %s in the store", vm->name, rt.state);
}

/* Set vm's phase (and the state it shows) by the table, without recording or publishing
 * it: for a record read from the store, and for a step on the way to another event. */
static int phase_quiet(struct sup_vm *vm, enum vm_event e)
{
	char err[256];
	enum vm_phase to;
	int ret = vm_transition(vm->phase, e, vm->name, &to, err, sizeof(err));

	if (ret) {
		log_err("VM %s: event '%s' refused in %s: %s", vm->name, vm_event_name(e),
			vm_phase_name(vm->phase), err);
		return ret;
	}
	vm->phase = to;
	vm->state = vm_phase_state(to);
	return 0;
}

/* The phase the store's record names (state_name, "Running"): what keeld knew last. */
static void load_phase(struct sup_vm *vm, const char *state_name)
{
	vm->phase = vm_phase_of_state(vm_state_from_name(state_name));
	vm->state = vm_phase_state(vm->phase);
}

int sup_event(struct sup *sup, struct sup_vm *vm, enum vm_event e, const char *fmt, ...)
{
	enum vm_phase was = vm->phase;
	char reason[sizeof(vm->reason)];
	va_list ap;
	int ret = phase_quiet(vm, e);

	if (ret)
		return ret;
	/* Through a copy: the new reason may be made from the old one. */
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	memcpy(vm->reason, reason, sizeof(vm->reason));
	log_debug("VM %s: %s: %s -> %s", vm->name, vm_event_name(e), vm_phase_name(was),
		  vm_phase_name(vm->phase));
	if (vm->reason[0])
		log_info("VM %s: %s: %s", vm->name, vm_state_name(vm->state), vm->reason);
	else
		log_info("VM %s: %s", vm->name, vm_state_name(vm->state));
	sup_persist(sup, vm);
	events_vm_state(vm->uuid, vm->name, vm_state_name(vm->state), vm->reason);
	if (vm->state == VM_RUNNING && vm_phase_state(was) != VM_RUNNING)
		agent_mon_kick(); /* its agent is reached again at once */
	return 0;
}

/* The in-memory record of a VM, made from the store's runtime record on first use. */
struct sup_vm *sup_get_vm(struct sup *sup, const char *uuid, const char *name)
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
	vm->jail_uid_lock = -1;
	snprintf(vm->uuid, sizeof(vm->uuid), "%s", uuid);
	snprintf(vm->name, sizeof(vm->name), "%s", name ? name : uuid);
	load_phase(vm, "Off");
	if (store_rt_get(sup->cfg.store, uuid, &rt) == 0) {
		load_phase(vm, rt.state);
		snprintf(vm->reason, sizeof(vm->reason), "%s", rt.reason);
		vm->was_running = rt.was_running;
		vm->pid = rt.pid;
		vm->starttime = rt.starttime;
	}
	/* A worker is only ever attached by sup_reattach_all or sup_start: until then a
	 * record that names one is Off. */
	if (vm_phase_has_worker(vm->phase)) {
		(void)!phase_quiet(vm, VM_EV_NO_WORKER);
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
	if (!sup->cfg.worker_uid_lock)
		sup->cfg.worker_uid_lock = UID_CLAIM_LOCK;
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
	vmcg_init(&sup->cg, NULL, NULL);
	if (sup->cg.available) {
		unsigned swept = vmcg_sweep(&sup->cg);

		log_info("per-VM cgroups under %s%s: memory.max is a VM's memory + 64 MiB + 1/128 "
			 "of it, pids.max %llu + 2 per vCPU; %u stale VM cgroup%s removed",
			 sup->cg.slice,
			 sup->cg.delegated ? " (keeld's cgroup, delegated by systemd)" : "",
			 (unsigned long long)VMDEF_WORKER_TASKS(0), swept, swept == 1 ? "" : "s");
	} else
		log_warn("per-VM cgroups are unavailable: %s; workers run without memory.max and "
			 "pids.max (admission control and RLIMIT_NPROC still apply)",
			 sup->cg.why);
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
void sup_wake(struct sup *sup)
{
	uint64_t one = 1;

	(void)!write(sup->wake_fd, &one, sizeof(one));
}

/* Take (or nest) an operation on vm for this thread; false when another thread holds one. */
static bool op_take(struct sup_vm *vm, const char *op)
{
	if (vm->op && !pthread_equal(vm->op_owner, pthread_self()))
		return false;
	if (!vm->op_depth++) {
		vm->op = op;
		vm->op_owner = pthread_self();
	}
	return true;
}

/* Let go of one hold; true when that was the last and the VM is free again. */
static bool op_drop(struct sup_vm *vm)
{
	if (!vm->op_depth || --vm->op_depth)
		return false;
	vm->op = NULL;
	return true;
}

int sup_op_begin(struct sup *sup, const char *uuid, const char *name, const char *op, char *err,
		 size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, uuid, name);

	if (!vm)
		return -ENOMEM;
	if (!op_take(vm, op)) {
		error_set(err, errlen, "VM '%s' is busy (%s): try again when that is done",
			  vm->name, vm->op);
		return -EBUSY;
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
		if (op_drop(vm))
			sup_wake(sup); /* the main loop watches the VM again */
		return;
	}
}

void sup_pin(struct sup *sup, const char *uuid, const char *what)
{
	for (size_t i = 0; i < sup->nvms; i++)
		if (!strcmp(sup->vms[i]->uuid, uuid))
			sup->vms[i]->pin = what;
}

const char *sup_pinned(struct sup *sup, const char *uuid)
{
	for (size_t i = 0; i < sup->nvms; i++)
		if (!strcmp(sup->vms[i]->uuid, uuid))
			return sup->vms[i]->pin;
	return NULL;
}

/* A wait on a worker, without keeld's lock (biglock.h): the caller holds an operation on the
 * VM (or is the main loop probing it), so the VM's record is not changed meanwhile. */
static int ctl_unlocked_fds(const char *sock, const char *cmd, const char *args, const int *pass,
			    size_t npass, int timeout_ms, json_object **ret, char *err,
			    size_t errlen)
{
	int r;

	keeld_unlock();
	r = ctl_execute_fds(sock, cmd, args, pass, npass, timeout_ms, ret, err, errlen);
	keeld_lock();
	return r;
}

static int ctl_unlocked(const char *sock, const char *cmd, const char *args, int timeout_ms,
			json_object **ret, char *err, size_t errlen)
{
	return ctl_unlocked_fds(sock, cmd, args, NULL, 0, timeout_ms, ret, err, errlen);
}

void sup_destroy(struct sup *sup)
{
	if (!sup)
		return;
	for (size_t i = 0; i < sup->nvms; i++) {
		if (sup->vms[i]->pidfd >= 0)
			close(sup->vms[i]->pidfd);
		sup_jail_release(sup->vms[i]);
		free(sup->vms[i]);
	}
	if (sup->wake_fd >= 0)
		close(sup->wake_fd);
	free(sup->vms);
	free(sup->vms_dir);
	free(sup);
}

void sup_drop_worker(struct sup_vm *vm)
{
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	vm->pidfd = -1;
	vm->pid = 0;
	vm->starttime = 0;
	vm->jail_uid = 0;
	sup_jail_release(vm);
	vm->is_child = false;
	vm->off_after_timeout = false;
	vm->start_killed = false;
	vm->deadline_ms = 0;
}

/*
 * The worker is gone: say why, from its status file, else its exit status (when it was
 * our child), else what we know. have_wstatus is false for a re-attached worker.
 */
static void sup_worker_ended(struct sup *sup, struct sup_vm *vm, bool have_wstatus, int wstatus,
			     bool keeld_was_away)
{
	char reason[32], detail[200], last[200], why[512];
	enum vm_phase was = vm->phase, next;
	bool after_timeout = vm->off_after_timeout, start_killed = vm->start_killed;
	/* What keeld asked of it, when this keeld asked (a record read back says less). */
	bool graceful =
		!keeld_was_away && (was == VM_PH_SHUTTING_DOWN || was == VM_PH_SHUTTING_DOWN_FORCE);
	bool quit_sent = !keeld_was_away && (was == VM_PH_TURNING_OFF || was == VM_PH_SAVED_ENDING);
	unsigned timeout = vm->stop_timeout_s;
	enum vm_event end;
	char saved[PATH_MAX];
	int status;

	/* A jailed worker's save is root's again before anything looks at it (also when the
	 * keeld that gave it the directory died during the save). */
	if (!sup_path(sup, vm->uuid, SUP_SAVED_DIR, saved, sizeof(saved)))
		sup_jail_take_dir(saved);
	sup_nvram_take_back(sup, vm);
	/* Its sockets: a jailed worker cannot remove them (their directory is not its). */
	sup_remove_sockets(sup, vm);
	/* keeld's copies of its vCPU statistics fds keep its VM, and the VM's kernel threads
	 * in the cgroup, alive: closed first. */
	agent_mon_worker_ended(vm->uuid, vm->pid);
	vmcg_remove(&sup->cg, vm->uuid);
	/* A Save-VM that completed counts even when the keeld that asked for it is gone (it
	 * ended while keeld was away): the VM was on its way to Saved. */
	if (sup_save_completed(sup, vm) &&
	    vm_transition(was, VM_EV_ATTACH_SAVED, vm->name, &next, NULL, 0) == 0 &&
	    phase_quiet(vm, VM_EV_ATTACH_SAVED) == 0)
		was = vm->phase;
	sup_save_intent_drop(sup, vm);
	sup_drop_worker(vm);
	vm->was_running = false;
	/* How it ended, and the words for it; the state follows from the table. */
	if (sup_read_status_file(sup, vm, reason, sizeof(reason), detail, sizeof(detail),
				 &status) == 0) {
		if (!strcmp(reason, "poweroff")) {
			end = VM_EV_END_POWEROFF;
			snprintf(why, sizeof(why), "%s",
				 graceful ? "shut down through the power button"
					  : "the guest powered off");
		} else if (!strcmp(reason, "quit")) {
			end = VM_EV_END_QUIT;
			if (after_timeout)
				snprintf(why, sizeof(why),
					 "turned off: the guest did not shut down within %u s",
					 timeout);
			else
				snprintf(why, sizeof(why), "turned off");
		} else if (!strcmp(reason, "reboot")) {
			end = VM_EV_END_REBOOT;
			snprintf(why, sizeof(why), "the guest rebooted");
		} else if (!strcmp(reason, "debug-exit")) {
			end = VM_EV_END_DEBUG_EXIT;
			snprintf(why, sizeof(why), "the guest exited with debug-exit status %d",
				 status);
		} else if (!strcmp(reason, "error")) {
			end = VM_EV_END_ERROR;
			snprintf(why, sizeof(why), "keel-vmm %s: %s",
				 vm_phase_state(was) == VM_STARTING ? "failed to start the VM"
								    : "failed",
				 detail);
		} else if (!strcmp(reason, "crash")) {
			end = VM_EV_END_CRASH;
			snprintf(why, sizeof(why), "%s", detail[0] ? detail : "the VM crashed");
		} else {
			end = VM_EV_END_UNKNOWN;
			snprintf(why, sizeof(why), "keel-vmm ended with status '%s' %s", reason,
				 detail);
		}
	} else if (quit_sent) {
		end = VM_EV_END_KILLED;
		snprintf(why, sizeof(why), "turned off (keel-vmm was killed: it did not quit)");
	} else if (start_killed) {
		end = VM_EV_END_KILLED_START;
		snprintf(why, sizeof(why),
			 "keel-vmm did not open its control socket within %u s and was killed",
			 sup->cfg.start_timeout_s);
	} else if (have_wstatus) {
		end = VM_EV_END_EXITED;
		sup_last_worker_line(sup, vm, last, sizeof(last));
		if (WIFSIGNALED(wstatus))
			snprintf(why, sizeof(why), "keel-vmm was killed by signal %d (%s)",
				 WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
		else
			snprintf(why, sizeof(why), "keel-vmm exited with status %d%s%s",
				 WEXITSTATUS(wstatus), last[0] ? ": " : "", last);
	} else if (keeld_was_away) {
		end = VM_EV_END_AWAY;
		/* Host restart or a worker killed while keeld was down: remember it was running. */
		vm->was_running = true;
		snprintf(why, sizeof(why),
			 "keel-vmm ended while keeld was not running, without a status file");
	} else {
		end = VM_EV_END_VANISHED;
		sup_last_worker_line(sup, vm, last, sizeof(last));
		snprintf(why, sizeof(why), "keel-vmm ended without a status file%s%s",
			 last[0] ? ": " : "", last);
	}
	if (vm_transition(was, end, vm->name, &next, NULL, 0) == 0 && next == VM_PH_SAVED) {
		if (was == VM_PH_SAVED_ENDING) {
			snprintf(why, sizeof(why), "saved"); /* the save completed first */
		} else {
			/* A restore that never got going: the saved state is still there, and
			 * the VM stays Saved saying why it did not start (keel vm
			 * discard-state makes the next start boot afresh). */
			char restore[sizeof(why)];

			snprintf(restore, sizeof(restore), "could not restore: %.490s", why);
			snprintf(why, sizeof(why), "%s", restore);
		}
	}
	if (sup_event(sup, vm, end, "%s", why))
		sup_persist(sup, vm); /* the table refused: the worker is gone all the same */
	if (vm->phase != VM_PH_SAVED)
		sup_remove_saved(sup, vm); /* a save given up: nothing will restore it */
	sup_vm_log(sup, vm, "worker ended: %s: %s", vm_state_name(vm->state), vm->reason);
}

/* Ask the worker for its state; returns 0 and sets *paused, or -errno with err. */
static int query_state_within(struct sup *sup, struct sup_vm *vm, int timeout_ms, bool *paused,
			      char *err, size_t errlen)
{
	char ctl[PATH_MAX];
	json_object *ret = NULL, *st;
	int rc;

	rc = sup_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl));
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

static void begin_turn_off(struct sup *sup, struct sup_vm *vm);

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
		vm = sup_get_vm(sup, defs[i].uuid, defs[i].name);
		if (!vm)
			continue;
		/* sup_get_vm took the VM for Off (no worker attached); the record itself says
		 * what it was (load_phase, below). */
		vm->pid = rt.pid;
		vm->memory = defs[i].memory;
		vm->starttime = rt.starttime;
		vm->was_running = rt.was_running;
		if (sup_proc_starttime(rt.pid, &st) == 0 && st == rt.starttime)
			vm->pidfd = sup_pidfd_open(rt.pid);
		load_phase(vm, rt.state);
		/* Its uid stays its own while it runs: no new worker may be given it. */
		vm->jail_uid = vm->pidfd >= 0 ? sup_jail_uid_of(rt.pid, vm->pidfd) : 0;
		sup_jail_hold(sup, vm);
		if (vm->pidfd < 0) {
			sup_worker_ended(sup, vm, false, 0, true);
			continue;
		}
		/* A Save-VM completed while keeld was away: end the worker, as the keeld that
		 * asked would have, and the VM becomes Saved. */
		if (sup_save_completed(sup, vm) &&
		    sup_event(sup, vm, VM_EV_ATTACH_SAVED, "saved; the worker is ending") == 0) {
			begin_turn_off(sup, vm);
			sup_vm_log(sup, vm,
				   "keeld re-attached to worker pid %d: its save completed",
				   (int)vm->pid);
			continue;
		}
		/* A Save-VM that had not completed when its keeld went away is given up: the
		 * worker may finish it, but the VM carries on (paused, as the save leaves it)
		 * and its end is never taken for a save; the files go with it. */
		sup_save_intent_drop(sup, vm);
		if (query_state(sup, vm, &paused, err, sizeof(err)) == 0) {
			(void)!sup_event(sup, vm,
					 paused ? VM_EV_ATTACH_PAUSED : VM_EV_ATTACH_RUNNING, "%s",
					 "");
		} else if (vm->state == VM_STARTING) {
			/* Still starting, as recorded: the start's deadline runs again. */
			vm->deadline_ms =
				clock_mono_ms() + (long long)sup->cfg.start_timeout_s * 1000;
			(void)!sup_event(sup, vm, VM_EV_ATTACH_SILENT, "%s", "");
		} else {
			(void)!sup_event(sup, vm, VM_EV_ATTACH_SILENT,
					 "control socket not answering: %s", err);
		}
		sup_vm_log(sup, vm, "keeld re-attached to worker pid %d: %s", (int)vm->pid,
			   vm_state_name(vm->state));
		if (defs[i].damaged[0])
			log_err("VM %s: damaged in the store (%s): its worker pid %d is "
				"supervised, "
				"but the VM cannot be started again until it is deleted or its "
				"store "
				"row mended",
				defs[i].name, defs[i].damaged, (int)vm->pid);
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
		struct sup_vm *vm = sup_get_vm(sup, defs[i].uuid, defs[i].name);
		char err[256];

		if (!vm || sup_has_worker(vm))
			continue;
		if (defs[i].damaged[0] && defs[i].start_action != VM_START_NOTHING) {
			log_err("VM %s: no automatic start: damaged in the store: %s", defs[i].name,
				defs[i].damaged);
			continue;
		}
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
	struct sup_vm *vm = sup_get_vm(sup, uuid, NULL);

	if (!vm)
		return;
	vm->was_running = true;
	sup_persist(sup, vm);
}

void sup_status(struct sup *sup, const char *uuid, struct sup_status *out)
{
	struct sup_vm *vm = sup_get_vm(sup, uuid, NULL);

	memset(out, 0, sizeof(*out));
	if (!vm)
		return;
	out->state = vm->state;
	snprintf(out->reason, sizeof(out->reason), "%s", vm->reason);
	out->pid = vm->pid;
	if (sup_has_worker(vm) &&
	    sup_path(sup, uuid, "serial.sock", out->console, sizeof(out->console)))
		out->console[0] = '\0';
}

size_t sup_running_vms(struct sup *sup, char (*uuids)[VMDEF_UUID_LEN + 1], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < sup->nvms && n < max; i++)
		if (sup->vms[i]->state == VM_RUNNING && sup_has_worker(sup->vms[i]))
			snprintf(uuids[n++], VMDEF_UUID_LEN + 1, "%s", sup->vms[i]->uuid);
	return n;
}

/* Send a control command to a VM's worker. */
static int vm_ctl(struct sup *sup, struct sup_vm *vm, const char *cmd, char *err, size_t errlen)
{
	char ctl[PATH_MAX];
	int ret;

	ret = sup_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl));
	if (ret)
		return ret;
	ret = ctl_unlocked(ctl, cmd, NULL,
			   strcmp(cmd, "pause") ? SUP_CTL_TIMEOUT_MS : SUP_PAUSE_TIMEOUT_MS, NULL,
			   err, errlen);
	if (ret == -EREMOTEIO) {
		char why[200];
		snprintf(why, sizeof(why), "%s", err);
		error_set(err, errlen, "VM '%s': keel-vmm refused %s: %s", vm->name, cmd, why);
		return -EBUSY;
	}
	return ret;
}

int sup_dvd(struct sup *sup, const struct vm_def *def, unsigned drive, const char *path, char *err,
	    size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	json_object *a = json_object_new_object();
	char ctl[PATH_MAX], why[300];
	int fd = -1, ret = -ENOMEM;

	if (!vm || !a)
		goto out;
	/* The image through the pools, as at start: the file checked is the file used. */
	if (path) {
		fd = pools_open(sup->cfg.store, "DVD image", path, O_RDONLY, true, err, errlen);
		if (fd < 0) {
			ret = fd;
			goto out;
		}
	}
	json_object_object_add(a, "drive", json_object_new_int((int)drive));
	json_object_object_add(a, "path", path ? json_object_new_string(path) : NULL);
	json_object_object_add(a, "fd", json_object_new_boolean(path != NULL));
	ret = sup_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl));
	if (!ret)
		ret = ctl_unlocked_fds(ctl, "dvd", json_object_to_json_string(a), &fd, fd >= 0,
				       SUP_PAUSE_TIMEOUT_MS, NULL, err, errlen);
	if (ret == -EREMOTEIO) {
		snprintf(why, sizeof(why), "%s", err);
		error_set(err, errlen, "VM '%s': %s", vm->name, why);
		ret = -EINVAL;
	}
	if (!ret)
		sup_vm_log(sup, vm, "DVD drive %u: %s", drive, path ? path : "ejected");
out:
	if (fd >= 0)
		close(fd);
	json_object_put(a);
	return ret;
}

/* One request to the running VM's worker about its adapters (hot plug and links:
 * docs/networking.md) or its disks (storage QoS). An error reads "VM 'NAME': [WHAT: ]WHY".
 * Nothing of the VM's record is read after the wait: a read (GET .../disks/N) holds no
 * operation on the VM, which may be turned off and deleted meanwhile. */
static int sup_nic_request(struct sup *sup, const struct vm_def *def, const char *cmd,
			   json_object *a, const int *fds, size_t nfds, json_object **reply,
			   const char *what, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	char ctl[PATH_MAX], why[300];
	int ret = -ENOMEM;

	if (!vm || !a)
		return ret;
	ret = sup_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl));
	if (!ret)
		ret = ctl_unlocked_fds(ctl, cmd, json_object_to_json_string(a), fds, nfds,
				       SUP_PAUSE_TIMEOUT_MS, reply, err, errlen);
	if (ret) {
		snprintf(why, sizeof(why), "%s", err[0] ? err : strerror(-ret));
		error_set(err, errlen, "VM '%s': %s%s%s", def->name, what ? what : "",
			  what ? ": " : "", why);
		ret = ret == -EREMOTEIO ? -EINVAL : ret;
	}
	return ret;
}

int sup_link(struct sup *sup, const struct vm_def *def, unsigned nic, bool up, char *err,
	     size_t errlen)
{
	json_object *a = json_object_new_object();
	char what[80];
	int ret;

	/* By MAC where it has one: the worker's index moves once an adapter before this one is
	 * hot-removed, which may still be under way (docs/networking.md, "Hot plug"). */
	if (a && nic < def->nnics && def->nics[nic].mac[0])
		json_object_object_add(a, "mac", json_object_new_string(def->nics[nic].mac));
	else if (a)
		json_object_object_add(a, "nic", json_object_new_int((int)nic));
	if (a)
		json_object_object_add(a, "up", json_object_new_boolean(up));
	snprintf(what, sizeof(what), "cannot take adapter %u's link %s", nic, up ? "up" : "down");
	ret = sup_nic_request(sup, def, "link", a, NULL, 0, NULL, what, err, errlen);
	json_object_put(a);
	return ret;
}

int sup_disk_qos(struct sup *sup, const struct vm_def *def, struct vm_disk_id disk,
		 const struct vm_disk *set, json_object **reply, char *err, size_t errlen)
{
	json_object *a = json_object_new_object();
	char what[64], name[16];
	int ret;

	if (a)
		vmdef_disk_id_json(disk, a);
	if (a && set) {
		json_object_object_add(a, "max_iops",
				       json_object_new_int64((int64_t)set->max_iops));
		json_object_object_add(a, "max_bandwidth",
				       json_object_new_int64((int64_t)set->max_bw));
		json_object_object_add(a, "min_iops",
				       json_object_new_int64((int64_t)set->min_iops));
	}
	vmdef_disk_id_name(disk, name, sizeof(name));
	snprintf(what, sizeof(what), "disk %s's storage QoS", name);
	ret = sup_nic_request(sup, def, "disk-qos", a, NULL, 0, reply, what, err, errlen);
	json_object_put(a);
	return ret;
}

/* How a keel-vmm from before "vhost_fd" (keel 0.1.0 until December 2026) ends its refusal of
 * a nic-add with a key it does not know; today's lists "vhost" and "vhost_fd" after it. */
#define SUP_NIC_ADD_OLD_USAGE "optionally \"mac\":MAC, \"slot\":N (1 to 31) and \"fd\":BOOL"
/* ... and one from before "queues" (multi-queue hot plug, December 2026), whose line ends
 * with "vhost_fd" (cut short after it: its reply held 159 characters); today's lists "queues"
 * after it. */
#define SUP_NIC_ADD_OLD_USAGE_Q "\"on\" and \"vhost_fd\""

/* nic-add's descriptors for n pairs into fds: the tap's queues, then the vhost-nets. */
static size_t nic_add_fds(int *fds, const int *taps, const int *vhosts, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		fds[k] = taps[k];
		if (vhosts)
			fds[n + k] = vhosts[k];
	}
	return vhosts ? 2 * n : n;
}

int sup_nic_add(struct sup *sup, const struct vm_def *def, const struct vm_nic *nic,
		const int *taps, const int *vhosts, unsigned *pairs, unsigned *slot, char *err,
		size_t errlen)
{
	json_object *a = json_object_new_object(), *reply = NULL, *s;
	int fds[2 * VMDEF_NET_QUEUES_MAX];
	unsigned n = *pairs;
	int ret;

	json_object_object_add(a, "tap", json_object_new_string(nic->tap));
	json_object_object_add(a, "mac", json_object_new_string(nic->mac));
	if (nic->pci_slot)
		json_object_object_add(a, "slot", json_object_new_int(nic->pci_slot));
	json_object_object_add(a, "fd", json_object_new_boolean(true));
	/* "vhost" left out for auto, the worker's default. */
	if (nic->vhost != VM_VHOST_AUTO)
		json_object_object_add(a, "vhost",
				       json_object_new_string(vmdef_vhost_name(nic->vhost)));
	if (vhosts)
		json_object_object_add(a, "vhost_fd", json_object_new_boolean(true));
	/* "queues" left out for one pair, the worker's default. */
	if (n > 1)
		json_object_object_add(a, "queues", json_object_new_int((int)n));
	ret = sup_nic_request(sup, def, "nic-add", a, fds, nic_add_fds(fds, taps, vhosts, n),
			      &reply, NULL, err, errlen);
	/* A worker started before keeld was upgraded may predate multi-queue hot plug: it
	 * refuses "queues" with its usage line of then (ending at "vhost_fd", or at "fd" before
	 * that). An adapter of default queues gets one pair there, as it did then, said so; one
	 * that asks for more is refused, saying what to do. */
	if (ret && n > 1 &&
	    (strstr(err, SUP_NIC_ADD_OLD_USAGE_Q) || strstr(err, SUP_NIC_ADD_OLD_USAGE))) {
		if (nic->queues) {
			error_set(err, errlen,
				  "VM '%s': its worker predates hot-added adapters with more than "
				  "one queue pair: add adapter %s with queues=1, or restart the VM "
				  "first",
				  def->name, nic->mac);
		} else {
			log_info("VM %s: its worker predates multi-queue hot plug: adapter %s with "
				 "one queue pair (queues=1 in its description)",
				 def->name, nic->mac);
			json_object_object_del(a, "queues");
			err[0] = '\0';
			n = 1;
			ret = sup_nic_request(sup, def, "nic-add", a, fds,
					      nic_add_fds(fds, taps, vhosts, n), &reply, NULL, err,
					      errlen);
		}
	}
	/* A worker started before keeld was upgraded (VMs keep running through an upgrade,
	 * docs/keeld.md) may predate hot-added adapters on vhost-net: it refuses the request's
	 * "vhost_fd" with its usage line of then, which ends at "fd". With vhost auto the adapter
	 * goes on the user-space path there, as it did before, said so; with on, the refusal
	 * stands. */
	if (ret && vhosts && nic->vhost == VM_VHOST_AUTO && strstr(err, SUP_NIC_ADD_OLD_USAGE)) {
		log_info("VM %s: its worker predates vhost-net for hot-added adapters: adapter %s "
			 "on the user-space data path (a restart of the VM gives it the kernel's)",
			 def->name, nic->mac);
		json_object_object_del(a, "vhost_fd");
		err[0] = '\0';
		ret = sup_nic_request(sup, def, "nic-add", a, fds, 1, &reply, NULL, err, errlen);
	}
	if (!ret && (!json_object_object_get_ex(reply, "slot", &s) ||
		     !json_object_is_type(s, json_type_int) || json_object_get_int(s) < 1 ||
		     json_object_get_int(s) > 31)) {
		error_set(err, errlen, "VM '%s': the worker's nic-add reply has no slot",
			  def->name);
		ret = -EIO;
	}
	if (!ret) {
		*slot = (unsigned)json_object_get_int(s);
		*pairs = n;
	}
	json_object_put(reply);
	json_object_put(a);
	return ret;
}

int sup_nic_remove(struct sup *sup, const struct vm_def *def, const char *mac, bool force,
		   char *err, size_t errlen)
{
	json_object *a = json_object_new_object();
	int ret;

	json_object_object_add(a, "mac", json_object_new_string(mac));
	if (force)
		json_object_object_add(a, "force", json_object_new_boolean(true));
	ret = sup_nic_request(sup, def, "nic-remove", a, NULL, 0, NULL, NULL, err, errlen);
	json_object_put(a);
	return ret;
}

int sup_nic_removing(struct sup *sup, const struct vm_def *def, const char *mac, bool *removing,
		     char *err, size_t errlen)
{
	json_object *a = json_object_new_object(), *reply = NULL, *nics = NULL;
	int ret;

	*removing = false;
	ret = sup_nic_request(sup, def, "nic-list", a, NULL, 0, &reply, NULL, err, errlen);
	if (!ret && json_object_object_get_ex(reply, "nics", &nics) &&
	    json_object_is_type(nics, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(nics); i++) {
			json_object *n = json_object_array_get_idx(nics, i), *m, *r;

			if (json_object_object_get_ex(n, "mac", &m) &&
			    json_object_object_get_ex(n, "removing", &r) &&
			    json_object_is_type(m, json_type_string) &&
			    !strcasecmp(json_object_get_string(m), mac) &&
			    json_object_get_boolean(r))
				*removing = true;
		}
	}
	json_object_put(reply);
	json_object_put(a);
	return ret;
}

int sup_need_state(struct sup_vm *vm, enum vm_event e, char *err, size_t errlen)
{
	enum vm_phase to;

	return vm_transition(vm->phase, e, vm->name, &to, err, errlen);
}

int sup_stop(struct sup *sup, const struct vm_def *def, bool force, unsigned timeout_s, char *err,
	     size_t errlen)
{
	return sup_stop_how(sup, def, force, timeout_s, NULL, NULL, NULL, err, errlen);
}

int sup_stop_how(struct sup *sup, const struct vm_def *def, bool force, unsigned timeout_s,
		 int (*press)(void *arg, char *err, size_t errlen), void *arg, const char *method,
		 char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, force ? VM_EV_STOP_FORCE : VM_EV_STOP, err, errlen);
	if (ret)
		return ret;
	if (vm->state == VM_STOPPING) {
		/* A second `stop --force` upgrades the first: same button, same deadline. */
		sup_vm_log(sup, vm, "stop --force: turning off at the deadline");
		return sup_event(sup, vm, VM_EV_STOP_FORCE, "%s", vm->reason);
	}
	if (press) {
		/* The VM is the caller's operation: it cannot change while press waits. */
		ret = press(arg, err, errlen);
		if (ret)
			return -EAGAIN;
	} else {
		ret = vm_ctl(sup, vm, "powerdown", err, errlen);
		if (ret)
			return ret;
	}
	vm->off_after_timeout = false;
	vm->stop_timeout_s = timeout_s;
	vm->deadline_ms = clock_mono_ms() + (long long)timeout_s * 1000;
	if (press)
		sup_vm_log(sup, vm, "stop: keel-agent shuts the guest down (%s), waiting %u s%s",
			   method ? method : "", timeout_s, force ? ", then turning off" : "");
	else
		sup_vm_log(sup, vm, "stop: pressed the power button, waiting %u s%s", timeout_s,
			   force ? ", then turning off" : "");
	return sup_event(sup, vm, force ? VM_EV_STOP_FORCE : VM_EV_STOP,
			 "waiting up to %u s for the guest to shut down%s", timeout_s,
			 press ? " (through keel-agent)" : "");
}

/* Tell the worker to quit. One that does not take it is killed at once, or (kill_late) when
 * the quit's deadline passes (tick_stopping), so that a worker busy for a moment still ends
 * cleanly. */
static void begin_turn_off_within(struct sup *sup, struct sup_vm *vm, int timeout_ms,
				  bool kill_late)
{
	char ctl[PATH_MAX], err[256];
	int r = sup_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl));

	if (r)
		snprintf(err, sizeof(err), "no control socket path: %s", strerror(-r));
	else
		r = ctl_unlocked(ctl, "quit", NULL, timeout_ms, NULL, err, sizeof(err));
	if (r && kill_late) {
		log_warn("VM %s: %s; keel-vmm pid %d is killed in %d ms unless it ends", vm->name,
			 err, (int)vm->pid, SUP_QUIT_TIMEOUT_MS);
	} else if (r) {
		log_warn("VM %s: %s; killing keel-vmm pid %d", vm->name, err, (int)vm->pid);
		if (sup_pidfd_kill(vm->pidfd, SIGKILL) < 0)
			log_err("VM %s: cannot kill pid %d: %s", vm->name, (int)vm->pid,
				strerror(errno));
	}
	vm->deadline_ms = clock_mono_ms() + SUP_QUIT_TIMEOUT_MS;
}

static void begin_turn_off(struct sup *sup, struct sup_vm *vm)
{
	begin_turn_off_within(sup, vm, SUP_CTL_TIMEOUT_MS, false);
}

int sup_turn_off(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_TURN_OFF, err, errlen);
	if (ret)
		return ret;
	sup_vm_log(sup, vm, "turn-off requested");
	begin_turn_off(sup, vm);
	return sup_event(sup, vm, VM_EV_TURN_OFF, "turning off");
}

int sup_pause(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_PAUSE, err, errlen);
	if (!ret)
		ret = vm_ctl(sup, vm, "pause", err, errlen);
	if (!ret) {
		sup_vm_log(sup, vm, "paused");
		ret = sup_event(sup, vm, VM_EV_PAUSE, "%s", "");
	}
	return ret;
}

int sup_resume(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_RESUME, err, errlen);
	if (!ret)
		ret = vm_ctl(sup, vm, "resume", err, errlen);
	if (!ret) {
		sup_vm_log(sup, vm, "resumed");
		ret = sup_event(sup, vm, VM_EV_RESUME, "%s", "");
	}
	return ret;
}

/* A save failed: keel-vmm pauses before saving, and a save that could not pause leaves the
 * VM as it was. Ask the worker which it is; a VM that was running and is paused now is
 * resumed (and left paused, saying so, when that fails too); one that was paused stays so. */
static void save_failed(struct sup *sup, struct sup_vm *vm, bool was_running)
{
	char why[256];
	bool paused;

	if (query_state(sup, vm, &paused, why, sizeof(why))) {
		log_warn("VM %s: after a failed save, keel-vmm does not say its state: %s",
			 vm->name, why);
		return;
	}
	if (!paused || !was_running) {
		/* The reason as it was. */
		(void)!sup_event(sup, vm, paused ? VM_EV_WORKER_PAUSED : VM_EV_WORKER_RUNNING, "%s",
				 vm->reason);
		return;
	}
	if (!vm_ctl(sup, vm, "resume", why, sizeof(why)))
		(void)!sup_event(sup, vm, VM_EV_WORKER_RUNNING, "%s", "");
	else
		(void)!sup_event(sup, vm, VM_EV_WORKER_PAUSED,
				 "save failed; resuming failed too: %s", why);
}

int sup_save_check(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);

	if (!vm)
		return -ENOMEM;
	return sup_need_state(vm, VM_EV_SAVE, err, errlen);
}

/* Save-VM: the worker saves (pausing the VM) into the VM's directory, then quits; the VM
 * becomes Saved when the worker has ended (sup_worker_ended). */
/* Ask the worker to save the VM into dir, which it may write only meanwhile (sup_jail.c). */
static int save_into(struct sup *sup, struct sup_vm *vm, const char *ctl, const char *dir,
		     char *why, size_t whylen)
{
	int ret = sup_jail_give_dir(sup, vm, dir);

	if (!ret) {
		json_object *args = json_object_new_object();

		json_object_object_add(args, "dir", json_object_new_string(dir));
		ret = ctl_unlocked(ctl, "save",
				   json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN),
				   SUP_SAVE_TIMEOUT_MS, NULL, why, whylen);
		json_object_put(args);
	} else {
		snprintf(why, whylen, "cannot give %.200s to the worker: %s", dir, strerror(-ret));
	}
	sup_jail_take_dir(dir);
	return ret;
}

int sup_save(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	char dir[PATH_MAX], ctl[PATH_MAX], why[400];
	bool was_running;
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_SAVE, err, errlen);
	if (ret)
		return ret;
	if (sup_path(sup, def->uuid, SUP_SAVED_DIR, dir, sizeof(dir)) ||
	    sup_path(sup, def->uuid, "control.sock", ctl, sizeof(ctl)))
		return -ENAMETOOLONG;
	was_running = vm->state == VM_RUNNING;
	/* A running VM has no saved state: anything in the directory is stale, and the state
	 * file must appear only when this save completes (sup_save_completed). */
	sup_remove_saved(sup, vm);
	ret = sup_save_intent(sup, vm);
	if (ret) {
		error_set(err, errlen, "cannot save VM '%s': cannot record the save in %s: %s",
			  vm->name, SUP_SAVING, strerror(-ret));
		return ret;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		sup_save_intent_drop(sup, vm);
		error_set(err, errlen, "cannot save VM '%s': cannot create %s: %s", vm->name, dir,
			  strerror(errno));
		return ret;
	}
	ret = save_into(sup, vm, ctl, dir, why, sizeof(why));
	if (ret) {
		sup_save_intent_drop(sup, vm);
		error_set(err, errlen, "cannot save VM '%s': %s", vm->name, why);
		save_failed(sup, vm, was_running);
		return ret == -EREMOTEIO ? -EBUSY : ret;
	}
	sup_vm_log(sup, vm, "saved to %s", dir);
	begin_turn_off(sup, vm);
	(void)!sup_event(sup, vm, VM_EV_SAVE, "saved; the worker is ending");
	return 0;
}

int sup_discard_state(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_DISCARD_STATE, err, errlen);
	if (ret)
		return ret;
	sup_remove_saved(sup, vm);
	sup_vm_log(sup, vm, "saved state discarded");
	return sup_event(sup, vm, VM_EV_DISCARD_STATE, "saved state discarded");
}

/* Wait (blocking keeld, at most timeout_ms, then SIGKILL) for the worker to end. */
static void wait_worker_end(struct sup *sup, struct sup_vm *vm, int timeout_ms)
{
	struct pollfd p = {.fd = vm->pidfd, .events = POLLIN};
	int wstatus = 0, r;
	bool have = false;

	if (!sup_has_worker(vm))
		return;
	keeld_unlock(); /* the caller's operation holds the VM: its pidfd stays open */
	r = poll(&p, 1, timeout_ms);
	keeld_lock();
	if (r <= 0) {
		log_warn("VM %s: keel-vmm pid %d did not quit within %d ms: killing it", vm->name,
			 (int)vm->pid, timeout_ms);
		(void)!sup_pidfd_kill(vm->pidfd, SIGKILL);
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
	sup_worker_ended(sup, vm, have, wstatus, false);
}

int sup_save_stop(struct sup *sup, const struct vm_def *def, const char *dir, bool *was_paused,
		  char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	char ctl[PATH_MAX], why[400];
	bool was_running;
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_CHECKPOINT_RUN, err, errlen);
	if (ret)
		return ret;
	if (sup_path(sup, def->uuid, "control.sock", ctl, sizeof(ctl)))
		return -ENAMETOOLONG;
	was_running = vm->state == VM_RUNNING;
	*was_paused = !was_running;
	ret = save_into(sup, vm, ctl, dir, why, sizeof(why));
	if (ret) {
		error_set(err, errlen, "cannot save VM '%s': %s", vm->name, why);
		save_failed(sup, vm, was_running);
		return ret == -EREMOTEIO ? -EBUSY : ret;
	}
	sup_vm_log(sup, vm, "saved to %s for a checkpoint; the worker ends and a new one restores",
		   dir);
	begin_turn_off(sup, vm);
	(void)!sup_event(sup, vm, VM_EV_CHECKPOINT_RUN, "saved; the worker is ending");
	wait_worker_end(sup, vm, SUP_QUIT_TIMEOUT_MS);
	if (vm->state != VM_SAVED) {
		error_set(err, errlen, "VM '%s' did not end Saved after its save: %s (%s)",
			  vm->name, vm_state_name(vm->state), vm->reason);
		return -EIO;
	}
	return 0;
}

int sup_turn_off_wait(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	int ret;

	if (!vm)
		return -ENOMEM;
	if (!sup_has_worker(vm))
		return 0;
	ret = sup_turn_off(sup, def, err, errlen);
	if (ret)
		return ret;
	wait_worker_end(sup, vm, SUP_QUIT_TIMEOUT_MS);
	return 0;
}

int sup_restart(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	bool paused = false;
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_RESTART, err, errlen);
	if (!ret)
		ret = vm_ctl(sup, vm, "reset", err, errlen);
	if (ret)
		return ret;
	sup_vm_log(sup, vm, "restarted (hard reset)");
	if (query_state(sup, vm, &paused, err, errlen) == 0)
		(void)!sup_event(sup, vm, paused ? VM_EV_WORKER_PAUSED : VM_EV_WORKER_RUNNING,
				 "restarted");
	return 0;
}

int sup_forget(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	static const char *const files[] = {"control.sock", "serial.sock", "status.json",
					    "worker.log", "worker.log.1"};
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	char path[PATH_MAX];
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, VM_EV_DELETE, err, errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (!sup_path(sup, def->uuid, files[i], path, sizeof(path)))
			unlink(path);
	sup_remove_saved(sup, vm);
	sup_nvram_remove(sup, def->uuid);
	vmcg_remove(&sup->cg, def->uuid); /* one a busy removal left */
	if (!sup_path(sup, def->uuid, NULL, path, sizeof(path)) && rmdir(path) < 0 &&
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
		sup_worker_ended(sup, vm, have, wstatus, false);
	}
}

int sup_timeout_ms(struct sup *sup)
{
	long long now = clock_mono_ms(), best = -1;

	for (size_t i = 0; i < sup->nvms; i++) {
		const struct sup_vm *vm = sup->vms[i];
		long long t;

		if (!sup_has_worker(vm) || vm->op)
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

	if (sup_path(sup, vm->uuid, "control.sock", ctl, sizeof(ctl)))
		return;
	/* Not ready when it does not answer at once: the next tick asks again, and the main
	 * loop is held up by a stopped worker for SUP_PROBE_TIMEOUT_MS at most. */
	ready = access(ctl, F_OK) == 0 &&
		query_state_within(sup, vm, SUP_PROBE_TIMEOUT_MS, &paused, err, sizeof(err)) == 0;
	if (!sup_has_worker(vm) || vm->state != VM_STARTING)
		return;
	if (ready) {
		enum vm_phase was = vm->phase;

		vm->deadline_ms = 0;
		sup_vm_log(sup, vm, "worker pid %d is ready", (int)vm->pid);
		if (was == VM_PH_RESTORING_PAUSED && !paused &&
		    !vm_ctl(sup, vm, "pause", err, sizeof(err)))
			paused = true;
		(void)!sup_event(sup, vm, paused ? VM_EV_READY_PAUSED : VM_EV_READY, "%s",
				 was == VM_PH_STARTING ? "" : "restored from its saved state");
		/* The worker has mapped the memory file: removing it is safe now. */
		if (was != VM_PH_STARTING)
			sup_remove_saved(sup, vm);
		return;
	}
	if (vm->deadline_ms && now >= vm->deadline_ms && !vm->start_killed) {
		log_warn("VM %s: keel-vmm did not become ready within %u s; killing it", vm->name,
			 sup->cfg.start_timeout_s);
		vm->start_killed = true;
		vm->deadline_ms = 0;
		(void)!sup_pidfd_kill(vm->pidfd, SIGKILL);
	}
}

int sup_wait_started(struct sup *sup, const struct vm_def *def, unsigned timeout_ms)
{
	const struct timespec step = {0, 10 * 1000000};
	long long deadline = clock_mono_ms() + timeout_ms;
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);

	if (!vm)
		return -ENOMEM;
	/* The main loop leaves a VM with an operation alone: its owner probes it instead. */
	while (sup_has_worker(vm) && vm->state == VM_STARTING) {
		long long now = clock_mono_ms();

		if (now >= deadline)
			return -ETIMEDOUT;
		probe_starting(sup, vm, now);
		if (vm->state != VM_STARTING)
			break;
		keeld_unlock();
		nanosleep(&step, NULL);
		keeld_lock();
	}
	return vm->state == VM_RUNNING || vm->state == VM_PAUSED ? 0 : -EIO;
}

/* Probing a starting worker lets go of keeld's lock (a stopped worker answers late): the VM
 * is the probe's meanwhile, as it would be an API operation's. */
static void tick_starting(struct sup *sup, struct sup_vm *vm, long long now)
{
	if (!op_take(vm, "starting")) /* the main loop skips VMs with an operation */
		return;
	probe_starting(sup, vm, now);
	op_drop(vm); /* no wake: this is the main loop */
}

static void tick_stopping(struct sup *sup, struct sup_vm *vm, long long now)
{
	if (!vm->deadline_ms || now < vm->deadline_ms)
		return;
	if (vm->phase == VM_PH_SHUTTING_DOWN_FORCE) {
		/* The quit lets go of keeld's lock: the VM is the main loop's meanwhile, and a
		 * worker that does not take it at once is killed at the next deadline. */
		if (!op_take(vm, "stopping"))
			return;
		sup_vm_log(sup, vm, "the guest did not shut down within %u s: turning it off",
			   vm->stop_timeout_s);
		vm->off_after_timeout = true;
		(void)!sup_event(sup, vm, VM_EV_STOP_DEADLINE,
				 "turning off: the guest did not shut down within %u s",
				 vm->stop_timeout_s);
		begin_turn_off_within(sup, vm, SUP_PROBE_TIMEOUT_MS, true);
		op_drop(vm); /* no wake: this is the main loop */
	} else if (vm->phase == VM_PH_SHUTTING_DOWN) {
		vm->deadline_ms = 0;
		sup_vm_log(sup, vm, "the guest did not shut down within %u s", vm->stop_timeout_s);
		(void)!sup_event(sup, vm, VM_EV_STOP_DEADLINE,
				 "the guest did not shut down within %u s of the power button; use "
				 "'keel vm stop --force' or 'keel vm turn-off'",
				 vm->stop_timeout_s);
	} else {
		/* quit was sent and the worker is still there: kill it. */
		sup_vm_log(sup, vm, "keel-vmm did not quit within %d ms: killing pid %d",
			   SUP_QUIT_TIMEOUT_MS, (int)vm->pid);
		vm->deadline_ms = 0;
		(void)!sup_pidfd_kill(vm->pidfd, SIGKILL);
	}
}

void sup_tick(struct sup *sup)
{
	long long now = clock_mono_ms();

	for (size_t i = 0; i < sup->nvms; i++) {
		struct sup_vm *vm = sup->vms[i];

		if (!sup_has_worker(vm) || vm->op)
			continue;
		if (vm->state == VM_STARTING)
			tick_starting(sup, vm, now);
		else if (vm->state == VM_STOPPING)
			tick_stopping(sup, vm, now);
	}
}
