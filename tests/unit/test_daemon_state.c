/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's VM state machine (src/daemon/vm_state.c), every entry: each event in each phase
 * leads to the phase written out here, or is refused with a message naming the VM and its
 * state. The expected values are the specification (docs/keeld.md, "States"), written in
 * another form than the table: a list of the allowed transitions per event (anything else
 * is a refusal), and for a worker's end the rule in words.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/vm_state.h"

#define OFF VM_PH_OFF
#define STA VM_PH_STARTING
#define RES VM_PH_RESTORING
#define RSP VM_PH_RESTORING_PAUSED
#define RUN VM_PH_RUNNING
#define PAU VM_PH_PAUSED
#define SHD VM_PH_SHUTTING_DOWN
#define SHF VM_PH_SHUTTING_DOWN_FORCE
#define TOF VM_PH_TURNING_OFF
#define SVE VM_PH_SAVED_ENDING
#define SAV VM_PH_SAVED
#define CRA VM_PH_CRASHED

struct move {
	enum vm_phase from, to;
};

/* The allowed transitions of each event that is not a worker's end. */
#define MOVES(...)                                                                                 \
	sizeof((struct move[]){__VA_ARGS__}) / sizeof(struct move),                                \
	{                                                                                          \
		__VA_ARGS__                                                                        \
	}
static const struct {
	enum vm_event e;
	size_t n;
	struct move m[VM_PH_COUNT];
} spec[] = {
	{VM_EV_START, MOVES({OFF, STA}, {CRA, STA}, {SAV, RES})},
	{VM_EV_RESTORE, MOVES({SAV, RES})},
	{VM_EV_STOP, MOVES({RUN, SHD})},
	{VM_EV_STOP_FORCE, MOVES({RUN, SHF}, {SHD, SHF}, {SHF, SHF})},
	{VM_EV_TURN_OFF, MOVES({STA, TOF}, {RES, TOF}, {RSP, TOF}, {RUN, TOF}, {PAU, TOF},
			       {SHD, TOF}, {SHF, TOF}, {TOF, TOF}, {SVE, SVE})},
	{VM_EV_PAUSE, MOVES({RUN, PAU})},
	{VM_EV_RESUME, MOVES({PAU, RUN})},
	{VM_EV_RESTART, MOVES({RUN, RUN}, {PAU, PAU})},
	{VM_EV_SAVE, MOVES({RUN, SVE}, {PAU, SVE})},
	{VM_EV_CHECKPOINT_RUN, MOVES({RUN, SVE}, {PAU, SVE})},
	{VM_EV_DISCARD_STATE, MOVES({SAV, OFF})},
	{VM_EV_APPLY_SAVED, MOVES({OFF, SAV}, {CRA, SAV}, {SAV, SAV})},
	{VM_EV_DROP_SAVED, MOVES({OFF, OFF}, {CRA, OFF}, {SAV, OFF})},
	{VM_EV_DELETE, MOVES({OFF, OFF}, {CRA, CRA}, {SAV, SAV})},
	{VM_EV_PAUSE_WHEN_READY, MOVES({RES, RSP}, {RSP, RSP})},
	{VM_EV_START_FAILED, MOVES({OFF, OFF}, {CRA, OFF}, {SAV, SAV})},
	{VM_EV_READY, MOVES({STA, RUN}, {RES, RUN}, {RSP, RUN})},
	{VM_EV_READY_PAUSED, MOVES({STA, PAU}, {RES, PAU}, {RSP, PAU})},
	{VM_EV_WORKER_RUNNING, MOVES({RUN, RUN}, {PAU, RUN})},
	{VM_EV_WORKER_PAUSED, MOVES({RUN, PAU}, {PAU, PAU})},
	{VM_EV_STOP_DEADLINE, MOVES({SHD, RUN}, {SHF, TOF})},
	{VM_EV_ATTACH_SAVED,
	 MOVES({RUN, SVE}, {PAU, SVE}, {SHD, SVE}, {SHF, SVE}, {TOF, SVE}, {SVE, SVE})},
};

static bool is_end(enum vm_event e)
{
	return e >= VM_EV_END_POWEROFF && e <= VM_EV_END_VANISHED;
}

/*
 * A worker's end, in words: only a phase with a worker can see one. A guest power-off, a
 * reboot, a quit, a debug-exit or keeld killing it are Off; a keel-vmm error or an exit
 * without a status file are Off while it was Starting (it never ran) and Crashed after; a
 * crash, an unknown status, vanishing or ending while keeld was away are Crashed. A worker
 * that had saved the VM and ended as told (Off) leaves it Saved; a worker restoring a saved
 * state that never got going leaves it Saved, however it ended.
 */
static int end_spec(enum vm_phase from, enum vm_event e)
{
	bool clean = e == VM_EV_END_POWEROFF || e == VM_EV_END_QUIT || e == VM_EV_END_REBOOT ||
		     e == VM_EV_END_DEBUG_EXIT || e == VM_EV_END_KILLED ||
		     e == VM_EV_END_KILLED_START;
	bool failed_start = e == VM_EV_END_ERROR || e == VM_EV_END_EXITED;
	int base;

	if (!vm_phase_has_worker(from))
		return -1;
	if (from == RES || from == RSP)
		return SAV;
	base = clean || (failed_start && from == STA) ? OFF : CRA;
	if (from == SVE && base == OFF)
		return SAV;
	return base;
}

/*
 * Events that apply in every phase, in words: a record without a worker attached is Off
 * unless it is Saved or Crashed; a worker found again at keeld's start is what it says
 * (running or paused), and one that does not answer is Running, unless it was starting
 * (then it still is, as it was).
 */
static int everywhere_spec(enum vm_phase from, enum vm_event e)
{
	switch (e) {
	case VM_EV_NO_WORKER:
		return from == SAV || from == CRA ? (int)from : OFF;
	case VM_EV_ATTACH_RUNNING:
		return RUN;
	case VM_EV_ATTACH_PAUSED:
		return PAU;
	case VM_EV_ATTACH_SILENT:
		return from == STA || from == RES || from == RSP ? (int)from : RUN;
	default:
		return -2;
	}
}

static int expected(enum vm_event e, enum vm_phase from)
{
	if (is_end(e))
		return end_spec(from, e);
	if (everywhere_spec(from, e) != -2)
		return everywhere_spec(from, e);
	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
		if (spec[i].e != e)
			continue;
		for (size_t j = 0; j < spec[i].n; j++)
			if (spec[i].m[j].from == from)
				return (int)spec[i].m[j].to;
		return -1;
	}
	fail_msg("event %d (%s) has no specification", e, vm_event_name(e));
	return -1;
}

static void test_every_transition(void **state)
{
	size_t moves = 0, refusals = 0;
	char err[256];

	for (int e = 0; e < VM_EV_COUNT; e++) {
		for (int p = 0; p < VM_PH_COUNT; p++) {
			enum vm_phase to = VM_PH_COUNT;
			int want = expected((enum vm_event)e, (enum vm_phase)p);
			int r;

			err[0] = '\0';
			r = vm_transition((enum vm_phase)p, (enum vm_event)e, "t1", &to, err,
					  sizeof(err));
			if (want >= 0) {
				if (r != 0 || (int)to != want)
					fail_msg("%s in %s: %d, %s; expected %s", vm_event_name(e),
						 vm_phase_name(p), r, r ? err : vm_phase_name(to),
						 vm_phase_name(want));
				moves++;
				continue;
			}
			if (r != -EBUSY)
				fail_msg("%s in %s: %d (to %s), expected a refusal",
					 vm_event_name(e), vm_phase_name(p), r, vm_phase_name(to));
			/* A refusal says which VM and the state it is in. */
			if (!strstr(err, "cannot ") || !strstr(err, "VM 't1'") ||
			    !strstr(err, vm_state_name(vm_phase_state(p))))
				fail_msg("%s in %s: refusal says '%s'", vm_event_name(e),
					 vm_phase_name(p), err);
			refusals++;
		}
	}
	assert_int_equal(moves + refusals, (size_t)VM_EV_COUNT * VM_PH_COUNT);
	assert_true(moves > 0 && refusals > 0);
}

static void test_refusal_words(void **state)
{
	enum vm_phase to;
	char err[256];

	/* The hint goes where it helps. */
	assert_int_equal(vm_transition(PAU, VM_EV_STOP, "t1", &to, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "cannot see the power button"));
	assert_int_equal(vm_transition(PAU, VM_EV_STOP_FORCE, "t1", &to, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "cannot see the power button"));
	assert_int_equal(vm_transition(OFF, VM_EV_STOP, "t1", &to, err, sizeof(err)), -EBUSY);
	assert_string_equal(err, "cannot stop VM 't1': it is Off");
	assert_int_equal(vm_transition(RUN, VM_EV_DELETE, "t1", &to, err, sizeof(err)), -EBUSY);
	assert_string_equal(err, "cannot delete VM 't1': it is Running; turn it off first");
	assert_int_equal(vm_transition(SVE, VM_EV_SAVE, "t1", &to, err, sizeof(err)), -EBUSY);
	assert_string_equal(err, "cannot save VM 't1': it is Stopping");
	assert_int_equal(vm_transition(SAV, VM_EV_SAVE, "t1", &to, err, sizeof(err)), -EBUSY);
	assert_string_equal(err, "cannot save VM 't1': it is Saved");
	assert_int_equal(vm_transition(RUN, VM_EV_DISCARD_STATE, "t1", &to, err, sizeof(err)),
			 -EBUSY);
	assert_string_equal(err, "cannot discard the saved state of VM 't1': it is Running");
	/* Out-of-range input is refused, not looked up. */
	assert_int_equal(vm_transition(VM_PH_COUNT, VM_EV_START, "t1", &to, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(vm_transition(OFF, VM_EV_COUNT, "t1", &to, NULL, 0), -EINVAL);
}

static void test_names(void **state)
{
	static const enum vm_state shows[VM_PH_COUNT] = {
		[OFF] = VM_OFF,	     [STA] = VM_STARTING, [RES] = VM_STARTING, [RSP] = VM_STARTING,
		[RUN] = VM_RUNNING,  [PAU] = VM_PAUSED,	  [SHD] = VM_STOPPING, [SHF] = VM_STOPPING,
		[TOF] = VM_STOPPING, [SVE] = VM_STOPPING, [SAV] = VM_SAVED,    [CRA] = VM_CRASHED,
	};

	for (int s = 0; s < VM_STATE_COUNT; s++) {
		enum vm_phase p = vm_phase_of_state((enum vm_state)s);

		assert_int_equal(vm_state_from_name(vm_state_name((enum vm_state)s)), s);
		/* A state read from the store stands for a phase that shows as it. */
		assert_int_equal(vm_phase_state(p), s);
	}
	for (int p = 0; p < VM_PH_COUNT; p++) {
		assert_int_equal(vm_phase_state((enum vm_phase)p), shows[p]);
		assert_int_equal(vm_phase_has_worker((enum vm_phase)p),
				 shows[p] != VM_OFF && shows[p] != VM_SAVED &&
					 shows[p] != VM_CRASHED);
		assert_string_not_equal(vm_phase_name((enum vm_phase)p), "?");
	}
	for (int e = 0; e < VM_EV_COUNT; e++)
		assert_string_not_equal(vm_event_name((enum vm_event)e), "?");
	assert_int_equal(vm_phase_of_state(VM_STOPPING), SHD);
	assert_int_equal(vm_phase_of_state(VM_STARTING), STA);
	assert_int_equal(vm_state_from_name("Bogus"), VM_OFF);
	assert_string_equal(vm_state_name(VM_STATE_COUNT), "?");
	assert_string_equal(vm_phase_name(VM_PH_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_transition),
		cmocka_unit_test(test_refusal_words),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
