/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Worker supervision: keeld starts one keel-vmm per running VM (in its own session, so it
 * outlives keeld), watches it through a pidfd, drives it through its control socket, and
 * reads its status file when it ends to say why. Everything a restarted keeld needs to take
 * a worker back (pid, start time, last state) is kept in the store; the worker's sockets,
 * status file and log live in STATE_DIR/vms/UUID/.
 *
 * Called with keeld's lock held (biglock.h), from the main loop (which polls the fds from
 * sup_pollfds() without the lock and then calls sup_events() and sup_tick()), from API
 * requests and from jobs. Waits on a worker let go of the lock (sup_op_begin).
 */
#ifndef KEEL_DAEMON_SUP_H
#define KEEL_DAEMON_SUP_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/store.h"
#include "config/vmdef.h"
#include "config/vmdef_device.h"
#include "daemon/vm_state.h"

struct sup_config {
	const char *state_dir; /* the VM directories go in STATE_DIR/vms */
	const char *vmm_path;  /* the keel-vmm binary */
	struct store *store;
	gid_t group; /* group given access to the console sockets, when have_group */
	bool have_group;
	unsigned start_timeout_s; /* worker start to control socket ready */
	/* Admission control: memory kept for the host itself, and (0: /proc/meminfo) the
	 * host's memory; a start that would not fit beside the running VMs is refused. */
	uint64_t host_reserve;
	uint64_t host_memory;
	/* The workers' own uids and gids (the same number): first and how many, one per running
	 * VM (--worker-uids, docs/keeld.md). */
	uid_t worker_uid_first;
	unsigned worker_uids;
	/* The host's lock file for claiming them (uid_claim.h): UID_CLAIM_LOCK when NULL. */
	const char *worker_uid_lock;
};

/* What keeld counts per running worker beyond its guest RAM of mem bytes (docs/keeld.md):
 * 64 MiB for device buffers, the VMM's own heap and threads, and mem/128 for the page tables
 * that grow with the guest (about mem/512 each for the host's and KVM's with 4K pages, with
 * room to spare). Admission control and the worker's memory.max use the same. */
#define SUP_VMM_ALLOWANCE(mem) ((uint64_t)(64u << 20) + (uint64_t)(mem) / 128)

struct sup;

/* What the API shows about a VM's runtime. */
struct sup_status {
	enum vm_state state;
	char reason[256];
	pid_t pid;
	char console[128]; /* serial socket path while a worker runs, else "" */
};

int sup_create(const struct sup_config *cfg, struct sup **out) __attribute__((warn_unused_result));

/*
 * An operation on one VM (an API request that changes it, a job): while it runs, the VM is
 * its owner's (the thread that began it; it may nest) and keeld's lock may be let go while it
 * waits on the worker. Another thread's sup_op_begin on the VM fails with -EBUSY and a
 * message naming the operation in progress; the main loop leaves the VM alone until
 * sup_op_end. name is the VM's name for messages; op (what is in progress, for messages)
 * must stay valid until sup_op_end.
 */
int sup_op_begin(struct sup *sup, const char *uuid, const char *name, const char *op, char *err,
		 size_t errlen) __attribute__((warn_unused_result));
void sup_op_end(struct sup *sup, const char *uuid);
/* Give the VM's operation to another thread (a job's), which ends its hold with sup_op_end;
 * op replaces what the VM shows as in progress. */
void sup_op_handover(struct sup *sup, const char *uuid, pthread_t owner, const char *op);
/*
 * Pin the VM's checkpoints (what: the job that does, for messages; static) or unpin them
 * (NULL): a job that lets the VM's operation go while it reads a checkpoint's files (a
 * backup's copy) keeps requests that would change or remove them away (api.c refuses
 * checkpoint changes, another backup, and changing or deleting the VM). sup_pinned: what
 * pins them, or NULL.
 */
void sup_pin(struct sup *sup, const char *uuid, const char *what);
const char *sup_pinned(struct sup *sup, const char *uuid);
/* Forget everything; running workers keep running. */
void sup_destroy(struct sup *sup);

/* At keeld start: take back every worker recorded in the store, then apply each VM's
 * automatic start action. Problems are logged and shown in each VM's state reason. */
void sup_reattach_all(struct sup *sup);
void sup_autostart(struct sup *sup);

void sup_status(struct sup *sup, const char *uuid, struct sup_status *out);
/* The ids of the VMs that are Running (a worker runs their guest): at most max. */
size_t sup_running_vms(struct sup *sup, char (*uuids)[VMDEF_UUID_LEN + 1], size_t max);
/* Record that the VM was running when the host went down (its worker has ended since), so
 * that a `start-if-running` start action starts it with the next keeld. */
void sup_set_was_running(struct sup *sup, const char *uuid);

/*
 * Actions. Each returns 0 once the action is under way (the state shows its progress) or
 * -EBUSY when the VM's state does not allow it (sup_start: also when another running VM
 * has one of its disks and either writes it, disk_policy_check_sharing), -ENOEXEC when
 * keel-vmm cannot be run, or another -errno; err says why in words a user can act on.
 */
int sup_start(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The ACPI power button, then timeout_s; with force the VM is turned off after that. */
int sup_stop(struct sup *sup, const struct vm_def *def, bool force, unsigned timeout_s, char *err,
	     size_t errlen) __attribute__((warn_unused_result));
/* The same, with press(arg) in place of the power button (the integration services'
 * shutdown); press is called with keeld's lock held, once the state allows the stop, and
 * may let go of it. When press fails nothing changed and -EAGAIN is returned with err;
 * method (read after press) is logged with the stop. */
int sup_stop_how(struct sup *sup, const struct vm_def *def, bool force, unsigned timeout_s,
		 int (*press)(void *arg, char *err, size_t errlen), void *arg, const char *method,
		 char *err, size_t errlen) __attribute__((warn_unused_result));
int sup_turn_off(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Put the ISO image path (opened through the pools; NULL: eject) into the running VM's DVD
 * drive drive (its worker's "dvd"): the guest sees a media change. */
int sup_dvd(struct sup *sup, const struct vm_def *def, unsigned drive, const char *path, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/* Take the running VM's network adapter nic (its index in nets) link down or up (its
 * worker's "link"): the guest sees the carrier go and come back. */
int sup_link(struct sup *sup, const struct vm_def *def, unsigned nic, bool up, char *err,
	     size_t errlen) __attribute__((warn_unused_result));
/* The running VM's disk (a virtio-blk disk or a SCSI one) storage QoS (its worker's
 * "disk-qos"): the limits of set when not NULL, then *reply (when not NULL; the caller puts
 * it) the limits and the device's counters (docs/keel-vmm.md). */
int sup_disk_qos(struct sup *sup, const struct vm_def *def, struct vm_disk_id disk,
		 const struct vm_disk *set, struct json_object **reply, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Hot plug (docs/networking.md): add adapter nic to the running VM with *pairs queue pairs on
 * the tap's queues taps[0..*pairs) with their /dev/vhost-nets vhosts[0..*pairs) (NULL: none;
 * keeld's, copies passed to the worker in one request; the caller closes its own) at nic's
 * slot (0: the worker's choice), *slot the one it took and *pairs the pairs the card got (one
 * where a worker from before multi-queue hot plug took an adapter of default queues: the
 * caller records that); or ask the guest to let the adapter with MAC mac go (force: take it
 * away now). */
int sup_nic_add(struct sup *sup, const struct vm_def *def, const struct vm_nic *nic,
		const int *taps, const int *vhosts, unsigned *pairs, unsigned *slot, char *err,
		size_t errlen) __attribute__((warn_unused_result));
int sup_nic_remove(struct sup *sup, const struct vm_def *def, const char *mac, bool force,
		   char *err, size_t errlen) __attribute__((warn_unused_result));
/* *removing: the running VM's worker has an adapter with MAC mac whose removal the guest
 * has not finished (its "nic-list"). */
int sup_nic_removing(struct sup *sup, const struct vm_def *def, const char *mac, bool *removing,
		     char *err, size_t errlen) __attribute__((warn_unused_result));
int sup_pause(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int sup_resume(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Save-VM (docs/state.md): the worker saves the VM into the VM's directory and quits; the
 * state becomes Saved and the next start restores it. Running or Paused VMs only. */
int sup_save(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* sup_save's state check alone (-EBUSY with err), for a request that starts it as a job. */
int sup_save_check(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The path of file NAME in a VM's saved-state directory (what a save is writing). */
int sup_saved_file(struct sup *sup, const char *uuid, const char *name, char *buf, size_t size)
	__attribute__((warn_unused_result));
/* Remove a Saved VM's saved state: it becomes Off and the next start boots afresh. */
int sup_discard_state(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The VM's directory (STATE_DIR/vms/UUID). */
int sup_vm_dir(struct sup *sup, const char *uuid, char *buf, size_t size)
	__attribute__((warn_unused_result));
/*
 * For a VM without a worker (Off, Crashed or Saved): replace its saved state with hard links
 * to from_dir's state and memory files (state Saved), or drop it (from_dir NULL: state Off).
 * Used by checkpoint apply. reason becomes the state reason.
 */
int sup_set_saved(struct sup *sup, const struct vm_def *def, const char *from_dir,
		  const char *reason, char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * For a checkpoint of a running or paused VM: save it into dir, end its worker and wait
 * (keeld blocks for the save). The VM is then Saved, its state in dir (the caller links it
 * where start finds it with sup_set_saved). If the save fails the VM runs on as it was.
 */
int sup_save_stop(struct sup *sup, const struct vm_def *def, const char *dir, bool *was_paused,
		  char *err, size_t errlen) __attribute__((warn_unused_result));
/* Turn the VM off and wait for its worker to end (no-op without a worker). */
int sup_turn_off_wait(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Start a Saved VM from its saved state; with paused, pause it again once it is ready. */
int sup_start_restore(struct sup *sup, const struct vm_def *def, bool paused, char *err,
		      size_t errlen) __attribute__((warn_unused_result));
/* For the owner of an operation that started or restored the worker (the main loop leaves
 * such a VM alone): wait, keeld's lock let go between probes, until it is Running or Paused
 * (0), has failed (-EIO), or timeout_ms passed (-ETIMEDOUT). */
int sup_wait_started(struct sup *sup, const struct vm_def *def, unsigned timeout_ms)
	__attribute__((warn_unused_result));
/* A hard reset, like Restart-VM. */
int sup_restart(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Where keeld keeps a Generation 2 VM's UEFI variable store: STATE_DIR/vms/UUID/nvram/
 * OVMF_VARS.fd (sup_firmware.c). 0 or -ENAMETOOLONG. */
int sup_nvram_path(const struct sup *sup, const char *uuid, char *buf, size_t size)
	__attribute__((warn_unused_result));
/* The VM's store as it is now (a backup): the file the worker last renamed into place, whole,
 * read and checked (lib/uefi_store.c) into *data (malloc'd, *size bytes). 0; -ENOENT: the VM
 * has none yet (never started); -EINVAL: not a store; else -errno; err says which. */
int sup_nvram_read(struct sup *sup, const char *uuid, uint8_t **data, size_t *size, char *err,
		   size_t errlen) __attribute__((warn_unused_result));
/* The VM is deleted (or its import failed): its store goes, and the stores set aside. */
void sup_nvram_remove(struct sup *sup, const char *uuid);
/* A store (checked by the caller) put in place for a VM being registered (an import), made
 * crash-safely as the template's copy is; an existing store is replaced. 0 or -errno, err. */
int sup_nvram_install(struct sup *sup, const char *uuid, const uint8_t *data, size_t size,
		      char *err, size_t errlen) __attribute__((warn_unused_result));
/* Before a VM is deleted: refuses unless it is off, then removes its directory. */
int sup_forget(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Path of the VM's worker log (may not exist yet). */
int sup_log_path(struct sup *sup, const char *uuid, char *buf, size_t size)
	__attribute__((warn_unused_result));

/* Event loop glue. sup_wake: the main loop's poll returns and it looks again (its poll set
 * changed: a worker started, an operation ended; or something else it watches, such as the
 * end of a host shutdown). */
void sup_wake(struct sup *sup);
size_t sup_pollfds(struct sup *sup, struct pollfd *fds, size_t max);
void sup_events(struct sup *sup, const struct pollfd *fds, size_t n);
/* Milliseconds until sup_tick() has work, or -1. */
int sup_timeout_ms(struct sup *sup);
void sup_tick(struct sup *sup);

#endif
