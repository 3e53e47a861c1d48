/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/host.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/agent_stop.h"
#include "daemon/biglock.h"
#include "lib/clock.h"
#include "lib/error.h"
#include "lib/log.h"

/* A host shutdown that has run (keeld's lock): keeld exits once its report was read. */
static struct {
	bool began, done, reported;
	int result; /* host_shutdown's return */
	struct sup *sup;
	long long done_ms;
} finished;

/* What happened to one VM, for the report and the log. */
struct host_vm {
	const struct vm_def *def;
	const char *action;
	char outcome[512];
	bool handled;
};

static bool running(struct sup *sup, const char *uuid)
{
	struct sup_status st;

	sup_status(sup, uuid, &st);
	return st.pid > 0;
}

/* Start VM h's stop action; false when it cannot begin yet (the VM is busy with another
 * operation, or starting): it is tried again. shut-down goes through keel-agent when it
 * answers, else the power button (agent_stop.c). saves: whether this pass runs the saves
 * (which take long) or everything else (which only begins here). */
static bool begin_action(struct store *store, struct sup *sup, struct host_vm *h,
			 unsigned timeout_s, bool saves)
{
	const struct vm_def *def = h->def;
	struct sup_status st;
	char err[400] = "";
	bool save;
	int r;

	sup_status(sup, def->uuid, &st);
	if (st.state == VM_STARTING)
		return false; /* once it runs, its action applies (a restore stays Saved) */
	/* A VM damaged in the store is shut down instead of saved: its saved state would go
	 * with a description that lacks what could not be read. */
	save = def->stop_action == VM_STOP_SAVE && !def->damaged[0] &&
	       (st.state == VM_RUNNING || st.state == VM_PAUSED);
	if (save != saves)
		return true; /* the other pass's */
	if (sup_op_begin(sup, def->uuid, def->name, "host shutdown", err, sizeof(err)))
		return false;
	h->handled = true;
	if (save) {
		h->action = "save";
		r = sup_save(sup, def, err, sizeof(err));
	} else if ((def->stop_action == VM_STOP_SHUT_DOWN ||
		    (def->stop_action == VM_STOP_SAVE && def->damaged[0])) &&
		   (st.state == VM_RUNNING || st.state == VM_PAUSED)) {
		h->action = "shut-down";
		r = st.state == VM_PAUSED ? sup_resume(sup, def, err, sizeof(err)) : 0;
		if (!r)
			r = agent_stop(store, sup, def, true, timeout_s, NULL, 0, err, sizeof(err));
	} else if (st.state == VM_STOPPING) {
		/* A stop under way (a user's, or a turn-off): it runs on, and a graceful one
		 * that does not finish is turned off with the others that are left. */
		h->action = "stopping";
		r = 0;
	} else {
		h->action = "turn-off";
		r = sup_turn_off(sup, def, err, sizeof(err));
	}
	if (r) {
		/* The action could not begin (the save failed, ...): turn the VM off instead. */
		char why[300];

		snprintf(why, sizeof(why), "%.299s", err);
		log_warn("host shutdown: VM %s: %s failed (%s): turning it off", def->name,
			 h->action, why);
		snprintf(h->outcome, sizeof(h->outcome), "%s failed (%s); turned off", h->action,
			 why);
		if (sup_turn_off(sup, def, err, sizeof(err)))
			log_err("host shutdown: VM %s: cannot turn it off: %s", def->name, err);
	}
	sup_op_end(sup, def->uuid);
	return true;
}

int host_shutdown(struct store *store, struct sup *sup, unsigned timeout_s, json_object **report,
		  char *err, size_t errlen)
{
	static bool in_progress;
	struct vm_def *defs = NULL;
	struct host_vm *hv;
	size_t n = 0, left;
	long long last_begin;
	bool forced = false;

	if (in_progress) {
		error_set(err, errlen, "a host shutdown is already under way");
		return -EBUSY;
	}
	if (store_vm_list(store, &defs, &n)) {
		error_set(err, errlen, "cannot read the VMs from the store");
		return -EIO;
	}
	hv = calloc(n ? n : 1, sizeof(*hv));
	if (!hv) {
		store_vm_list_free(defs, n);
		return -ENOMEM;
	}
	log_info("host shutdown: applying the automatic stop actions (graceful shutdowns get %u s)",
		 timeout_s);
	for (size_t i = 0; i < n; i++)
		hv[i].def = &defs[i];
	in_progress = true;
	finished.began = true;
	/* Graceful shutdowns and turn-offs begin first and run on, supervised by the main loop
	 * (each graceful one turned off at its own deadline); then the saves run here, one
	 * after another (each lets go of keeld's lock while it writes). The time limits count
	 * from the last action that began. */
	last_begin = clock_mono_ms();
	for (;;) {
		left = 0;
		for (int pass = 0; pass < 2; pass++) {
			for (size_t i = 0; i < n; i++) {
				if (hv[i].handled || !running(sup, defs[i].uuid))
					continue;
				if (!begin_action(store, sup, &hv[i], timeout_s, pass == 1))
					continue;
				if (hv[i].handled)
					last_begin = clock_mono_ms();
			}
		}
		for (size_t i = 0; i < n; i++)
			left += running(sup, defs[i].uuid);
		if (!left)
			break;
		if (clock_mono_ms() > last_begin + (long long)timeout_s * 1000 + 10000 && !forced) {
			/* The graceful stops turn VMs off at their own deadline; anything still
			 * here (a worker that does not quit) is turned off now. */
			forced = true;
			for (size_t i = 0; i < n; i++) {
				char why[256];

				if (running(sup, defs[i].uuid) &&
				    !sup_op_begin(sup, defs[i].uuid, defs[i].name, "host shutdown",
						  why, sizeof(why))) {
					(void)!sup_turn_off(sup, &defs[i], why, sizeof(why));
					sup_op_end(sup, defs[i].uuid);
				}
			}
		}
		if (clock_mono_ms() > last_begin + (long long)timeout_s * 1000 + 30000) {
			error_set(err, errlen,
				  "%zu VMs still run %u s after the host shutdown began: see "
				  "keel vm list",
				  left, timeout_s + 30);
			break;
		}
		keeld_unlock();
		usleep(100 * 1000);
		keeld_lock();
	}
	*report = json_object_new_array();
	for (size_t i = 0; i < n && *report; i++) {
		struct sup_status st;
		json_object *o;

		if (!hv[i].handled)
			continue;
		/* After its worker ended (which clears it): a `start-if-running` VM starts
		 * again with keeld. */
		sup_set_was_running(sup, defs[i].uuid);
		sup_status(sup, defs[i].uuid, &st);
		o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(defs[i].name));
		json_object_object_add(o, "action", json_object_new_string(hv[i].action));
		json_object_object_add(o, "state", json_object_new_string(vm_state_name(st.state)));
		json_object_object_add(
			o, "reason",
			json_object_new_string(hv[i].outcome[0] ? hv[i].outcome : st.reason));
		json_object_array_add(*report, o);
		log_info("host shutdown: VM %s: %s: %s (%s)", defs[i].name, hv[i].action,
			 vm_state_name(st.state), st.reason);
	}
	free(hv);
	store_vm_list_free(defs, n);
	in_progress = false;
	finished.done = true;
	finished.result = left ? -ETIMEDOUT : *report ? 0 : -ENOMEM;
	finished.done_ms = clock_mono_ms();
	finished.sup = sup;
	sup_wake(sup); /* the main loop's sleep gets shorter now (host_exit_wait_ms) */
	return finished.result;
}

bool host_shutting_down(void)
{
	return finished.began;
}

void host_shutdown_reported(void)
{
	keeld_lock();
	finished.reported = finished.done;
	if (finished.sup)
		sup_wake(finished.sup);
	keeld_unlock();
}

bool host_exit_due(int *status)
{
	if (!finished.done || (!finished.reported &&
			       clock_mono_ms() < finished.done_ms + HOST_EXIT_LINGER_S * 1000LL))
		return false;
	*status = finished.result ? 1 : 0;
	return true;
}

int host_exit_wait_ms(void)
{
	long long left = finished.done_ms + HOST_EXIT_LINGER_S * 1000LL - clock_mono_ms();

	/* The report's delivery wakes the main loop (sup_wake); the linger's end does not. */
	if (!finished.done)
		return -1;
	return left < 0 ? 0 : left > 1000 ? 1000 : (int)left;
}
