/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's insides, shared by its files and by nothing else: sup.c (the VM records,
 * their states and operations, the actions, the main loop's part), sup_spawn.c (starting a
 * worker: admission, its description file, fork and exec, pidfds) and sup_files.c (a VM's
 * directory: paths, the worker log, the status file, saved-state files). All with keeld's
 * lock held (biglock.h).
 */
#ifndef KEEL_DAEMON_SUP_INTERNAL_H
#define KEEL_DAEMON_SUP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "daemon/sup.h"
#include "daemon/vm_cgroup.h"
#include "daemon/vm_state.h"

#define SUP_CTL_TIMEOUT_MS   3000
#define SUP_PROBE_TIMEOUT_MS 250 /* the main loop's own questions to a worker */
/* A pause: keel-vmm waits up to 5 s for its devices to finish the requests they hold
 * (VIRTIO_IDLE_WAIT_MS) and then says which did not; keeld waits for that answer. */
#define SUP_PAUSE_TIMEOUT_MS 10000
#define SUP_SAVE_TIMEOUT_MS  600000   /* writing guest RAM: up to 10 minutes */
#define SUP_SAVED_DIR	     "saved"  /* in the VM's directory: keel-vmm's save (state, memory) */
#define SUP_SAVING	     "saving" /* in the VM's directory: a Save-VM was asked for */
#define SUP_QUIT_TIMEOUT_MS  5000     /* quit, then SIGKILL */
#define SUP_LOG_ROTATE	     (4 << 20)
#define SUP_SOCK_MAX	     107 /* sizeof(sun_path) - 1 */

struct sup_vm {
	char uuid[VMDEF_UUID_LEN + 1];
	char name[VMDEF_NAME_MAX + 1];
	enum vm_phase phase; /* changed only by sup_event, through vm_state.c's table */
	enum vm_state state; /* vm_phase_state(phase), set with it */
	char reason[256];
	pid_t pid;	    /* 0 when no worker */
	int pidfd;	    /* -1 when no worker */
	uint64_t starttime; /* of pid, from /proc */
	bool is_child;	    /* started by this keeld: waitpid gives its exit status */
	bool was_running;
	/* What keeld did, for the words of the worker's end (not its state). */
	bool off_after_timeout; /* a forced stop ran out of time and turned the VM off */
	bool start_killed;	/* killed: it did not become ready in time */
	unsigned stop_timeout_s;
	long long deadline_ms; /* for Starting and Stopping; 0 when none */
	uint64_t memory;       /* guest RAM of the running worker, for admission control */
	uid_t jail_uid;	       /* the running worker's own uid and gid (sup_jail.c), or 0 */
	int jail_uid_lock;     /* what holds jail_uid claimed (uid_claim.h), or -1 */
	/* An operation in progress (sup_op_begin): the VM is its owner's until it ends; the
	 * main loop leaves the VM alone meanwhile. */
	const char *op;
	pthread_t op_owner;
	unsigned op_depth;
	/* A checkpoint pinned by a job that let the VM go meanwhile (a backup's copy): what
	 * holds it, or NULL. */
	const char *pin;
};

struct sup {
	struct sup_config cfg;
	char *vms_dir;
	struct sup_vm **vms; /* each record stays where it is while others come and go */
	size_t nvms, cap;
	int wake_fd;	/* eventfd: the main loop's poll set changed (sup_pollfds) */
	struct vmcg cg; /* the workers' cgroups (vm_cgroup.h) */
};

/* sup.c */
bool sup_has_worker(const struct sup_vm *vm);
void sup_persist(struct sup *sup, struct sup_vm *vm);
/*
 * Event e happens to vm: its phase becomes the one vm_state.c's table says, its state reason
 * the formatted text (which may be made from the old reason), and the change is logged,
 * recorded in the store and published as an event. An event the table refuses changes
 * nothing: it is logged with the table's reason and -EBUSY returned (callers check first
 * with sup_need_state where a refusal can happen).
 */
int sup_event(struct sup *sup, struct sup_vm *vm, enum vm_event e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The in-memory record of a VM, made from the store's runtime record on first use. */
struct sup_vm *sup_get_vm(struct sup *sup, const char *uuid, const char *name);
void sup_drop_worker(struct sup_vm *vm);
/* The table's verdict on event e for vm, without applying it: 0, or -EBUSY with err. */
int sup_need_state(struct sup_vm *vm, enum vm_event e, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* sup_spawn.c */
int sup_pidfd_open(pid_t pid);
int sup_pidfd_kill(int pidfd, int sig);
/* Field 22 of /proc/PID/stat: when the process started (ties a pid to one process). */
int sup_proc_starttime(pid_t pid, uint64_t *out) __attribute__((warn_unused_result));

/* sup_firmware.c: a firmware VM's files for its worker. The firmware image (Debian's, or
 * the VM's own through the pools): an fd or -errno with err. */
int sup_firmware_open(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Generation 2: the store's directory, the store created from the template when missing and
 * checked, both given to vm's jailed worker: an fd or -errno with err. */
int sup_nvram_open(struct sup *sup, const struct sup_vm *vm, const struct vm_def *def, char *err,
		   size_t errlen) __attribute__((warn_unused_result));
/* The worker ended: the store and its directory are root's again. */
void sup_nvram_take_back(struct sup *sup, const struct sup_vm *vm);

/* sup_files.c */
int sup_path(const struct sup *sup, const char *uuid, const char *file, char *buf, size_t size)
	__attribute__((warn_unused_result));
/* Append one line from keeld to the VM's worker log. */
void sup_vm_log(struct sup *sup, const struct sup_vm *vm, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sup_last_worker_line(struct sup *sup, const struct sup_vm *vm, char *out, size_t size);
int sup_read_status_file(struct sup *sup, const struct sup_vm *vm, char *reason, size_t rsize,
			 char *detail, size_t dsize, int *status);
void sup_remove_saved(struct sup *sup, const struct sup_vm *vm);
/*
 * Save-VM survives a keeld that dies during it: before asking the worker to save, keeld
 * records its intent (the file SUP_SAVING in the VM's directory, durable); whoever sees the
 * worker end, this keeld or the next, calls the VM Saved when that intent is there and the
 * save is complete (its state file, which keel-vmm renames into place last, exists).
 */
int sup_save_intent(struct sup *sup, const struct sup_vm *vm) __attribute__((warn_unused_result));
void sup_save_intent_drop(struct sup *sup, const struct sup_vm *vm);
bool sup_save_completed(struct sup *sup, const struct sup_vm *vm);
/* Remove an ended worker's sockets (control, consoles). */
void sup_remove_sockets(struct sup *sup, const struct sup_vm *vm);

/* sup_jail.c: the worker's uid and the files it may write (docs/security.md) */
/* A uid (and gid) of the range for vm's worker that no other running worker has and no
 * process on the host runs as (uid_scan.h). */
int sup_jail_alloc(struct sup *sup, struct sup_vm *vm, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Let vm's claimed uid go (its worker ended, or its start failed). */
void sup_jail_release(struct sup_vm *vm);
/* Claim the uid a re-attached worker runs as (vm->jail_uid, when not 0) for this keeld. */
void sup_jail_hold(struct sup *sup, struct sup_vm *vm);
/* The uid a running worker runs as (a re-attached worker): the kernel's word, or while it
 * has not taken it yet, its command line's; 0 when its pidfd (opened before) shows it ended
 * after all, since then pid may name another process (its end is handled as any other). */
uid_t sup_jail_uid_of(pid_t pid, int pidfd);
/* Let the jailed worker write its save into dir (inside its VM's directory): dir becomes
 * its own, and the directories between can be passed through. */
int sup_jail_give_dir(struct sup *sup, const struct sup_vm *vm, const char *dir)
	__attribute__((warn_unused_result));
/* Take dir back after a save: root's again, only regular files named state and memory stay
 * (root's, 0600); anything else the worker left there is removed. Idempotent. */
void sup_jail_take_dir(const char *dir);
/* The same with the names keep_name says yes to kept (regular files with one link only). */
void sup_jail_take_dir_keep(const char *dir, bool (*keep_name)(const char *name));
/* Remove path, and all it holds if a directory (symlinks not followed); logs a failure. */
int sup_remove_tree(const char *path);
void sup_rotate_log(const char *path);

#endif
