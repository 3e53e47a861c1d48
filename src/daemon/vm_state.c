/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vm_state.h"

#include <errno.h>
#include <string.h>

#include "lib/error.h"

#define S(x) (1u << (x))

static const char *const state_names[VM_STATE_COUNT] = {
	[VM_OFF] = "Off",	  [VM_STARTING] = "Starting", [VM_RUNNING] = "Running",
	[VM_PAUSED] = "Paused",	  [VM_STOPPING] = "Stopping", [VM_SAVED] = "Saved",
	[VM_CRASHED] = "Crashed",
};

/* Which states allow each action. A worker runs in Starting, Running, Paused, Stopping. */
static const struct vm_rule rules[VM_ACT_COUNT] = {
	[VM_ACT_START] = {"start", S(VM_OFF) | S(VM_SAVED) | S(VM_CRASHED), ""},
	[VM_ACT_STOP] = {"stop", S(VM_RUNNING),
			 " (a paused guest cannot see the power button; resume it or use turn-off)",
			 S(VM_PAUSED)},
	[VM_ACT_TURN_OFF] = {"turn off",
			     S(VM_STARTING) | S(VM_RUNNING) | S(VM_PAUSED) | S(VM_STOPPING), ""},
	[VM_ACT_PAUSE] = {"pause", S(VM_RUNNING), ""},
	[VM_ACT_RESUME] = {"resume", S(VM_PAUSED), ""},
	[VM_ACT_RESTART] = {"restart", S(VM_RUNNING) | S(VM_PAUSED), ""},
	[VM_ACT_SAVE] = {"save", S(VM_RUNNING) | S(VM_PAUSED), ""},
	[VM_ACT_DISCARD_STATE] = {"discard the saved state of", S(VM_SAVED), ""},
	[VM_ACT_CHANGE_SAVED] = {"change the saved state of",
				 S(VM_OFF) | S(VM_CRASHED) | S(VM_SAVED), ""},
	[VM_ACT_CHECKPOINT_RUN] = {"checkpoint", S(VM_RUNNING) | S(VM_PAUSED), ""},
	[VM_ACT_RESTORE] = {"restore", S(VM_SAVED), ""},
	[VM_ACT_DELETE] = {"delete", S(VM_OFF) | S(VM_CRASHED) | S(VM_SAVED),
			   "; turn it off first"},
};

/* The state each way of ending leads to, from a state other than Starting; from Starting a
 * failure is Off (the VM never ran), not Crashed. */
static const enum vm_state after_end[VM_END_COUNT] = {
	[VM_END_POWEROFF] = VM_OFF,    [VM_END_QUIT] = VM_OFF,	    [VM_END_REBOOT] = VM_OFF,
	[VM_END_DEBUG_EXIT] = VM_OFF,  [VM_END_ERROR] = VM_CRASHED, [VM_END_CRASH] = VM_CRASHED,
	[VM_END_UNKNOWN] = VM_CRASHED, [VM_END_KILLED] = VM_OFF,    [VM_END_KILLED_START] = VM_OFF,
	[VM_END_EXITED] = VM_CRASHED,  [VM_END_AWAY] = VM_CRASHED,  [VM_END_VANISHED] = VM_CRASHED,
};

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

const struct vm_rule *vm_rule(enum vm_action a)
{
	return &rules[a];
}

int vm_state_check(enum vm_state state, enum vm_action a, const char *vm_name, char *err,
		   size_t errlen)
{
	const struct vm_rule *r = &rules[a];

	if (r->from & S(state))
		return 0;
	error_set(err, errlen, "cannot %s VM '%s': it is %s%s", r->verb, vm_name,
		  vm_state_name(state), !r->hint_in || (r->hint_in & S(state)) ? r->hint : "");
	return -EBUSY;
}

enum vm_state vm_state_after_end(enum vm_state was, bool saving, bool restoring, enum vm_end end)
{
	enum vm_state s = after_end[end];

	if (was == VM_STARTING && (end == VM_END_ERROR || end == VM_END_EXITED))
		s = VM_OFF;
	if (saving && s == VM_OFF)
		s = VM_SAVED; /* the save completed first: ended as told, it is Saved */
	if (restoring && was == VM_STARTING)
		s = VM_SAVED; /* never got going: the saved state is still there */
	return s;
}
