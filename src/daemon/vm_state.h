/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's life cycle in keeld as one table (docs/keeld.md, "States"): for every event that can
 * happen to a VM (a client's action, what keeld learns from its worker, how the worker
 * ended) and every phase the VM can be in, the phase it leads to, or a refusal with the
 * reason. Pure: no processes, no store; sup.c carries the transitions out
 * (sup_event) and tests/unit/test_daemon_state.c checks every entry.
 *
 * Phases are finer than the states the API shows: what keeld used to keep in flags beside
 * the state (a restore, a pause when ready, a forced stop, a save ending its worker) is a
 * phase of its own, and each phase shows as one of the seven states.
 */
#ifndef KEEL_DAEMON_VM_STATE_H
#define KEEL_DAEMON_VM_STATE_H

#include <stdbool.h>
#include <stddef.h>

/* The states the API shows and the store records. */
enum vm_state {
	VM_OFF,
	VM_STARTING,
	VM_RUNNING,
	VM_PAUSED,
	VM_STOPPING,
	VM_SAVED,
	VM_CRASHED,
	VM_STATE_COUNT
};

/* keeld's phases of a VM; each shows as the state in its comment. */
enum vm_phase {
	VM_PH_OFF,		   /* Off */
	VM_PH_STARTING,		   /* Starting: a worker boots the VM */
	VM_PH_RESTORING,	   /* Starting: a worker carries on from the saved state */
	VM_PH_RESTORING_PAUSED,	   /* Starting: the same, paused again once ready (checkpoint) */
	VM_PH_RUNNING,		   /* Running */
	VM_PH_PAUSED,		   /* Paused */
	VM_PH_SHUTTING_DOWN,	   /* Stopping: power button; back to Running at the deadline */
	VM_PH_SHUTTING_DOWN_FORCE, /* Stopping: power button; turned off at the deadline */
	VM_PH_TURNING_OFF,	   /* Stopping: told to quit; killed at the deadline */
	VM_PH_SAVED_ENDING,	   /* Stopping: saved and told to quit; ends Saved */
	VM_PH_SAVED,		   /* Saved */
	VM_PH_CRASHED,		   /* Crashed */
	VM_PH_COUNT
};

enum vm_event {
	/* What a client (or a checkpoint, or the host's shutdown) asks of a VM. keeld checks
	 * the event before acting and applies it once the worker did its part. */
	VM_EV_START,	      /* boot, or restore a Saved VM: a worker was started */
	VM_EV_RESTORE,	      /* start a Saved VM from its saved state */
	VM_EV_STOP,	      /* the power button was pressed */
	VM_EV_STOP_FORCE,     /* the same, turned off at the deadline (upgrades a stop) */
	VM_EV_TURN_OFF,	      /* the worker was told to quit */
	VM_EV_PAUSE,	      /* the worker paused */
	VM_EV_RESUME,	      /* the worker resumed */
	VM_EV_RESTART,	      /* a hard reset: the VM stays as it is */
	VM_EV_SAVE,	      /* Save-VM: the worker saved the VM and was told to quit */
	VM_EV_CHECKPOINT_RUN, /* the same, for a checkpoint of a running VM */
	VM_EV_DISCARD_STATE,  /* the saved state was removed */
	VM_EV_APPLY_SAVED,    /* the saved state was replaced (applying a checkpoint) */
	VM_EV_DROP_SAVED,     /* the saved state was dropped (applying a checkpoint) */
	VM_EV_DELETE,	      /* the definition goes */
	/* What keeld learns or does on its own. */
	VM_EV_PAUSE_WHEN_READY, /* a checkpoint's restore: pause it again once it runs */
	VM_EV_START_FAILED,	/* no worker came up (exec or watch failed) */
	VM_EV_READY,		/* the starting worker answered, running */
	VM_EV_READY_PAUSED,	/* the starting worker answered, paused */
	VM_EV_WORKER_RUNNING,	/* the worker says it runs (after a reset, a failed save) */
	VM_EV_WORKER_PAUSED,	/* the worker says it is paused */
	VM_EV_STOP_DEADLINE,	/* the guest did not shut down in time */
	VM_EV_NO_WORKER,	/* a record read from the store, no worker attached */
	VM_EV_ATTACH_RUNNING,	/* keeld found the recorded worker, running */
	VM_EV_ATTACH_PAUSED,	/* keeld found the recorded worker, paused */
	VM_EV_ATTACH_SILENT,	/* keeld found the recorded worker, not answering */
	VM_EV_ATTACH_SAVED,	/* keeld found a worker whose save completed while it was away
				 * (recorded Running or Paused, or Stopping after the save) */
	/* How a worker ended, as keeld learns it (its status file, else what else it knows). */
	VM_EV_END_POWEROFF,	/* the guest powered off */
	VM_EV_END_QUIT,		/* told to quit (turn-off) */
	VM_EV_END_REBOOT,	/* the guest rebooted (--no-reboot) */
	VM_EV_END_DEBUG_EXIT,	/* the test device */
	VM_EV_END_ERROR,	/* keel-vmm failed (status file "error") */
	VM_EV_END_CRASH,	/* the VM crashed (triple fault, internal error) */
	VM_EV_END_UNKNOWN,	/* a status keeld does not know */
	VM_EV_END_KILLED,	/* keeld killed it: it did not quit when told to */
	VM_EV_END_KILLED_START, /* keeld killed it: it did not become ready in time */
	VM_EV_END_EXITED,	/* no status file: exited or killed by a signal (keeld's child) */
	VM_EV_END_AWAY,		/* no status file, and it ended while keeld was not running */
	VM_EV_END_VANISHED,	/* no status file, nothing else known */
	VM_EV_COUNT
};

const char *vm_state_name(enum vm_state s);
/* The state named name ("Running"), or VM_OFF for an unknown one. */
enum vm_state vm_state_from_name(const char *name);
/* The state a phase shows as. */
enum vm_state vm_phase_state(enum vm_phase p);
/* For logs: the state and what the phase adds ("Stopping (saved, ending)"). */
const char *vm_phase_name(enum vm_phase p);
/* The phase a state read from the store stands for: the first that shows as it. */
enum vm_phase vm_phase_of_state(enum vm_state s);
/* Whether a worker runs in the phase (it may be ending). */
bool vm_phase_has_worker(enum vm_phase p);
const char *vm_event_name(enum vm_event e);

/*
 * The table's verdict on event e in phase from: 0 and the phase it leads to in *to, or
 * -EBUSY and a message in err naming the VM ("cannot delete VM 'web1': it is Running; turn
 * it off first"). err may be NULL.
 */
int vm_transition(enum vm_phase from, enum vm_event e, const char *vm_name, enum vm_phase *to,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
