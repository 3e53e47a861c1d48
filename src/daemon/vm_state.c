/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vm_state.h"

#include <errno.h>
#include <string.h>

#include "lib/error.h"

static const char *const state_names[VM_STATE_COUNT] = {
	[VM_OFF] = "Off",	  [VM_STARTING] = "Starting", [VM_RUNNING] = "Running",
	[VM_PAUSED] = "Paused",	  [VM_STOPPING] = "Stopping", [VM_SAVED] = "Saved",
	[VM_CRASHED] = "Crashed",
};

/* clang-format off */
static const struct {
	enum vm_state state; /* what the phase shows as */
	const char *name;    /* for logs */
} phases[VM_PH_COUNT] = {
	[VM_PH_OFF] =                 {VM_OFF,      "Off"},
	[VM_PH_STARTING] =            {VM_STARTING, "Starting"},
	[VM_PH_RESTORING] =           {VM_STARTING, "Starting (restoring)"},
	[VM_PH_RESTORING_PAUSED] =    {VM_STARTING, "Starting (restoring, then paused)"},
	[VM_PH_RUNNING] =             {VM_RUNNING,  "Running"},
	[VM_PH_PAUSED] =              {VM_PAUSED,   "Paused"},
	[VM_PH_SHUTTING_DOWN] =       {VM_STOPPING, "Stopping (power button)"},
	[VM_PH_SHUTTING_DOWN_FORCE] = {VM_STOPPING, "Stopping (power button, then turn-off)"},
	[VM_PH_TURNING_OFF] =         {VM_STOPPING, "Stopping (turning off)"},
	[VM_PH_SAVED_ENDING] =        {VM_STOPPING, "Stopping (saved, ending)"},
	[VM_PH_SAVED] =               {VM_SAVED,    "Saved"},
	[VM_PH_CRASHED] =             {VM_CRASHED,  "Crashed"},
};
/* clang-format on */

/* The phase each event leads to from each phase, plus one (0: refused). */
#define __	    0
#define OFF	    (VM_PH_OFF + 1)
#define STA	    (VM_PH_STARTING + 1)
#define RES	    (VM_PH_RESTORING + 1)
#define RSP	    (VM_PH_RESTORING_PAUSED + 1)
#define RUN	    (VM_PH_RUNNING + 1)
#define PAU	    (VM_PH_PAUSED + 1)
#define SHD	    (VM_PH_SHUTTING_DOWN + 1)
#define SHF	    (VM_PH_SHUTTING_DOWN_FORCE + 1)
#define TOF	    (VM_PH_TURNING_OFF + 1)
#define SVE	    (VM_PH_SAVED_ENDING + 1)
#define SAV	    (VM_PH_SAVED + 1)
#define CRA	    (VM_PH_CRASHED + 1)
#define PAUSED_HINT " (a paused guest cannot see the power button; resume it or use turn-off)"
#define END_VERB    "take the end of the worker of"

struct vm_event_def {
	const char *name; /* for logs */
	const char *verb; /* for a refusal: "cannot VERB VM 'x': it is STATE" */
	const char *hint; /* appended to the refusal, or "" */
	int hint_in;	  /* the phase whose refusal gets the hint, plus one; 0: every phase */
	unsigned char to[VM_PH_COUNT];
};

/* clang-format off */
static const struct vm_event_def table[VM_EV_COUNT] = {
	/*	  OFF  STA  RES  RSP  RUN  PAU  SHD  SHF  TOF  SVE  SAV  CRA */
	[VM_EV_START] = {"start", "start", "", 0,
		 {STA, __,  __,  __,  __,  __,  __,  __,  __,  __,  RES, STA}},
	[VM_EV_RESTORE] = {"restore", "restore", "", 0,
		 {__,  __,  __,  __,  __,  __,  __,  __,  __,  __,  RES, __}},
	[VM_EV_STOP] = {"stop", "stop", PAUSED_HINT, PAU,
		 {__,  __,  __,  __,  SHD, __,  __,  __,  __,  __,  __,  __}},
	[VM_EV_STOP_FORCE] = {"stop --force", "stop", PAUSED_HINT, PAU,
		 {__,  __,  __,  __,  SHF, __,  SHF, SHF, __,  __,  __,  __}},
	[VM_EV_TURN_OFF] = {"turn-off", "turn off", "", 0,
		 {__,  TOF, TOF, TOF, TOF, TOF, TOF, TOF, TOF, SVE, __,  __}},
	[VM_EV_PAUSE] = {"pause", "pause", "", 0,
		 {__,  __,  __,  __,  PAU, __,  __,  __,  __,  __,  __,  __}},
	[VM_EV_RESUME] = {"resume", "resume", "", 0,
		 {__,  __,  __,  __,  __,  RUN, __,  __,  __,  __,  __,  __}},
	[VM_EV_RESTART] = {"restart", "restart", "", 0,
		 {__,  __,  __,  __,  RUN, PAU, __,  __,  __,  __,  __,  __}},
	[VM_EV_SAVE] = {"save", "save", "", 0,
		 {__,  __,  __,  __,  SVE, SVE, __,  __,  __,  __,  __,  __}},
	[VM_EV_CHECKPOINT_RUN] = {"checkpoint", "checkpoint", "", 0,
		 {__,  __,  __,  __,  SVE, SVE, __,  __,  __,  __,  __,  __}},
	[VM_EV_DISCARD_STATE] = {"discard-state", "discard the saved state of", "", 0,
		 {__,  __,  __,  __,  __,  __,  __,  __,  __,  __,  OFF, __}},
	[VM_EV_APPLY_SAVED] = {"apply a saved state", "change the saved state of", "", 0,
		 {SAV, __,  __,  __,  __,  __,  __,  __,  __,  __,  SAV, SAV}},
	[VM_EV_DROP_SAVED] = {"drop the saved state", "change the saved state of", "", 0,
		 {OFF, __,  __,  __,  __,  __,  __,  __,  __,  __,  OFF, OFF}},
	[VM_EV_DELETE] = {"delete", "delete", "; turn it off first", 0,
		 {OFF, __,  __,  __,  __,  __,  __,  __,  __,  __,  SAV, CRA}},
	[VM_EV_PAUSE_WHEN_READY] = {"pause when ready", "pause once restored", "", 0,
		 {__,  __,  RSP, RSP, __,  __,  __,  __,  __,  __,  __,  __}},
	[VM_EV_START_FAILED] = {"start failed", "take a failed start of", "", 0,
		 {OFF, __,  __,  __,  __,  __,  __,  __,  __,  __,  SAV, OFF}},
	[VM_EV_READY] = {"ready", "take the readiness of", "", 0,
		 {__,  RUN, RUN, RUN, __,  __,  __,  __,  __,  __,  __,  __}},
	[VM_EV_READY_PAUSED] = {"ready, paused", "take the readiness of", "", 0,
		 {__,  PAU, PAU, PAU, __,  __,  __,  __,  __,  __,  __,  __}},
	[VM_EV_WORKER_RUNNING] = {"worker runs", "take the worker's state of", "", 0,
		 {__,  __,  __,  __,  RUN, RUN, __,  __,  __,  __,  __,  __}},
	[VM_EV_WORKER_PAUSED] = {"worker paused", "take the worker's state of", "", 0,
		 {__,  __,  __,  __,  PAU, PAU, __,  __,  __,  __,  __,  __}},
	[VM_EV_STOP_DEADLINE] = {"stop deadline", "end the stop of", "", 0,
		 {__,  __,  __,  __,  __,  __,  RUN, TOF, __,  __,  __,  __}},
	[VM_EV_NO_WORKER] = {"no worker", "forget the worker of", "", 0,
		 {OFF, OFF, OFF, OFF, OFF, OFF, OFF, OFF, OFF, OFF, SAV, CRA}},
	[VM_EV_ATTACH_RUNNING] = {"re-attached, running", "re-attach", "", 0,
		 {RUN, RUN, RUN, RUN, RUN, RUN, RUN, RUN, RUN, RUN, RUN, RUN}},
	[VM_EV_ATTACH_PAUSED] = {"re-attached, paused", "re-attach", "", 0,
		 {PAU, PAU, PAU, PAU, PAU, PAU, PAU, PAU, PAU, PAU, PAU, PAU}},
	[VM_EV_ATTACH_SILENT] = {"re-attached, not answering", "re-attach", "", 0,
		 {RUN, STA, RES, RSP, RUN, RUN, RUN, RUN, RUN, RUN, RUN, RUN}},
	[VM_EV_ATTACH_SAVED] = {"re-attached, saved", "finish the save of", "", 0,
		 {__,  __,  __,  __,  SVE, SVE, SVE, SVE, SVE, SVE, __,  __}},
	[VM_EV_END_POWEROFF] = {"ended: powered off", END_VERB, "", 0,
		 {__,  OFF, SAV, SAV, OFF, OFF, OFF, OFF, OFF, SAV, __,  __}},
	[VM_EV_END_QUIT] = {"ended: quit", END_VERB, "", 0,
		 {__,  OFF, SAV, SAV, OFF, OFF, OFF, OFF, OFF, SAV, __,  __}},
	[VM_EV_END_REBOOT] = {"ended: reboot", END_VERB, "", 0,
		 {__,  OFF, SAV, SAV, OFF, OFF, OFF, OFF, OFF, SAV, __,  __}},
	[VM_EV_END_DEBUG_EXIT] = {"ended: debug-exit", END_VERB, "", 0,
		 {__,  OFF, SAV, SAV, OFF, OFF, OFF, OFF, OFF, SAV, __,  __}},
	[VM_EV_END_ERROR] = {"ended: error", END_VERB, "", 0,
		 {__,  OFF, SAV, SAV, CRA, CRA, CRA, CRA, CRA, CRA, __,  __}},
	[VM_EV_END_CRASH] = {"ended: crash", END_VERB, "", 0,
		 {__,  CRA, SAV, SAV, CRA, CRA, CRA, CRA, CRA, CRA, __,  __}},
	[VM_EV_END_UNKNOWN] = {"ended: unknown status", END_VERB, "", 0,
		 {__,  CRA, SAV, SAV, CRA, CRA, CRA, CRA, CRA, CRA, __,  __}},
	[VM_EV_END_KILLED] = {"ended: killed after quit", END_VERB, "", 0,
		 {__,  OFF, SAV, SAV, OFF, OFF, OFF, OFF, OFF, SAV, __,  __}},
	[VM_EV_END_KILLED_START] = {"ended: killed while starting", END_VERB, "", 0,
		 {__,  OFF, SAV, SAV, OFF, OFF, OFF, OFF, OFF, SAV, __,  __}},
	[VM_EV_END_EXITED] = {"ended: exited", END_VERB, "", 0,
		 {__,  OFF, SAV, SAV, CRA, CRA, CRA, CRA, CRA, CRA, __,  __}},
	[VM_EV_END_AWAY] = {"ended while keeld was away", END_VERB, "", 0,
		 {__,  CRA, SAV, SAV, CRA, CRA, CRA, CRA, CRA, CRA, __,  __}},
	[VM_EV_END_VANISHED] = {"ended: vanished", END_VERB, "", 0,
		 {__,  CRA, SAV, SAV, CRA, CRA, CRA, CRA, CRA, CRA, __,  __}},
};
/* clang-format on */

const char *vm_state_name(enum vm_state s)
{
	return (unsigned)s < VM_STATE_COUNT ? state_names[s] : "?";
}

enum vm_state vm_state_from_name(const char *name)
{
	for (unsigned i = 0; i < VM_STATE_COUNT; i++)
		if (!strcmp(name, state_names[i]))
			return (enum vm_state)i;
	return VM_OFF;
}

enum vm_state vm_phase_state(enum vm_phase p)
{
	return (unsigned)p < VM_PH_COUNT ? phases[p].state : VM_OFF;
}

const char *vm_phase_name(enum vm_phase p)
{
	return (unsigned)p < VM_PH_COUNT ? phases[p].name : "?";
}

enum vm_phase vm_phase_of_state(enum vm_state s)
{
	/* The first phase that shows as it: a record says no more than the state. */
	for (unsigned p = 0; p < VM_PH_COUNT; p++)
		if (phases[p].state == s)
			return (enum vm_phase)p;
	return VM_PH_OFF;
}

bool vm_phase_has_worker(enum vm_phase p)
{
	enum vm_state s = vm_phase_state(p);

	/* A worker runs, or is ending, in exactly these. */
	return (unsigned)p < VM_PH_COUNT &&
	       (s == VM_STARTING || s == VM_RUNNING || s == VM_PAUSED || s == VM_STOPPING);
}

const char *vm_event_name(enum vm_event e)
{
	return (unsigned)e < VM_EV_COUNT ? table[e].name : "?";
}

int vm_transition(enum vm_phase from, enum vm_event e, const char *vm_name, enum vm_phase *to,
		  char *err, size_t errlen)
{
	const struct vm_event_def *d;

	if ((unsigned)from >= VM_PH_COUNT || (unsigned)e >= VM_EV_COUNT) {
		if (err)
			error_set(err, errlen, "VM '%s': no event %d in phase %d", vm_name, (int)e,
				  (int)from);
		return -EINVAL;
	}
	d = &table[e];
	if (d->to[from]) {
		*to = (enum vm_phase)(d->to[from] - 1);
		return 0;
	}
	if (err)
		error_set(err, errlen, "cannot %s VM '%s': it is %s%s", d->verb, vm_name,
			  state_names[phases[from].state],
			  !d->hint_in || d->hint_in == (int)from + 1 ? d->hint : "");
	return -EBUSY;
}
