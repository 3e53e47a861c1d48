/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's life cycle in keeld, as tables (docs/keeld.md, "States"): which actions each state
 * allows (vm_rules), and which state a VM is in after its worker ends, given how it ended and
 * what keeld had asked of it (vm_state_after_end). Pure: no processes, no store; sup.c
 * carries the transitions out and tests/unit/test_daemon_state.c checks every one.
 */
#ifndef KEEL_DAEMON_VM_STATE_H
#define KEEL_DAEMON_VM_STATE_H

#include <stdbool.h>
#include <stddef.h>

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

/* What a client (or a checkpoint) asks of a VM. */
enum vm_action {
	VM_ACT_START,	 /* boot, or restore a Saved VM */
	VM_ACT_STOP,	 /* the power button */
	VM_ACT_TURN_OFF, /* cut the power */
	VM_ACT_PAUSE,
	VM_ACT_RESUME,
	VM_ACT_RESTART,	       /* hard reset */
	VM_ACT_SAVE,	       /* Save-VM: the worker saves and ends */
	VM_ACT_DISCARD_STATE,  /* drop a Saved VM's saved state */
	VM_ACT_CHANGE_SAVED,   /* replace the saved state (applying a checkpoint) */
	VM_ACT_CHECKPOINT_RUN, /* save a running VM for a checkpoint, then restore it */
	VM_ACT_RESTORE,	       /* start a worker from the saved state */
	VM_ACT_DELETE,
	VM_ACT_COUNT
};

/* How a worker ended, as keeld learns it (its status file, else what else it knows). */
enum vm_end {
	VM_END_POWEROFF,     /* the guest powered off */
	VM_END_QUIT,	     /* told to quit (turn-off) */
	VM_END_REBOOT,	     /* the guest rebooted (--no-reboot) */
	VM_END_DEBUG_EXIT,   /* the test device */
	VM_END_ERROR,	     /* keel-vmm failed (status file "error") */
	VM_END_CRASH,	     /* the VM crashed (triple fault, internal error) */
	VM_END_UNKNOWN,	     /* a status keeld does not know */
	VM_END_KILLED,	     /* keeld killed it: it did not quit when turned off */
	VM_END_KILLED_START, /* keeld killed it: it did not become ready in time */
	VM_END_EXITED,	     /* no status file: exited or killed by a signal (keeld's child) */
	VM_END_AWAY,	     /* no status file, and it ended while keeld was not running */
	VM_END_VANISHED,     /* no status file, nothing else known */
	VM_END_COUNT
};

struct vm_rule {
	const char *verb; /* for the message: "cannot VERB VM 'x': it is STATE" */
	unsigned from;	  /* the states that allow it, a mask of 1u << state */
	const char *hint; /* appended to the refusal ("; turn it off first"), or "" */
	unsigned hint_in; /* the states whose refusal gets the hint; 0: all */
};

const char *vm_state_name(enum vm_state s);
/* The state named name ("Running"), or VM_OFF for an unknown one. */
enum vm_state vm_state_from_name(const char *name);
const struct vm_rule *vm_rule(enum vm_action a);
/* 0 when state allows action; else -EBUSY and a message in err naming the VM. */
int vm_state_check(enum vm_state state, enum vm_action a, const char *vm_name, char *err,
		   size_t errlen) __attribute__((warn_unused_result));

/*
 * The state after the worker ended: was is the state it had, saving that it had saved the
 * VM and been told to quit (Save-VM, a checkpoint), restoring that it was started to carry
 * on from a saved state (which is still there if it never got going).
 */
enum vm_state vm_state_after_end(enum vm_state was, bool saving, bool restoring, enum vm_end end);

#endif
