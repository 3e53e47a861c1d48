/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's VM state tables (src/daemon/vm_state.c), every entry: which actions each state
 * allows, and the state after a worker ends for every way of ending, from every state, with
 * and without a save or a restore in progress. The expected values are written out here as
 * the specification (docs/keeld.md, "States").
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/vm_state.h"

enum { OFF, STA, RUN, PAU, STO, SAV, CRA };

/* allowed[action][state]: 1 when the state allows the action. */
static const int allowed[VM_ACT_COUNT][VM_STATE_COUNT] = {
	/*                          Off Sta Run Pau Sto Sav Cra */
	[VM_ACT_START] = {1, 0, 0, 0, 0, 1, 1},
	[VM_ACT_STOP] = {0, 0, 1, 0, 0, 0, 0},
	[VM_ACT_TURN_OFF] = {0, 1, 1, 1, 1, 0, 0},
	[VM_ACT_PAUSE] = {0, 0, 1, 0, 0, 0, 0},
	[VM_ACT_RESUME] = {0, 0, 0, 1, 0, 0, 0},
	[VM_ACT_RESTART] = {0, 0, 1, 1, 0, 0, 0},
	[VM_ACT_SAVE] = {0, 0, 1, 1, 0, 0, 0},
	[VM_ACT_DISCARD_STATE] = {0, 0, 0, 0, 0, 1, 0},
	[VM_ACT_CHANGE_SAVED] = {1, 0, 0, 0, 0, 1, 1},
	[VM_ACT_CHECKPOINT_RUN] = {0, 0, 1, 1, 0, 0, 0},
	[VM_ACT_RESTORE] = {0, 0, 0, 0, 0, 1, 0},
	[VM_ACT_DELETE] = {1, 0, 0, 0, 0, 1, 1},
};

static void test_actions(void **state)
{
	char err[256];

	for (int a = 0; a < VM_ACT_COUNT; a++) {
		for (int s = 0; s < VM_STATE_COUNT; s++) {
			int r = vm_state_check((enum vm_state)s, (enum vm_action)a, "t1", err,
					       sizeof(err));

			if (allowed[a][s] ? r != 0 : r != -EBUSY)
				fail_msg("action %d (%s) in state %s: got %d", a, vm_rule(a)->verb,
					 vm_state_name((enum vm_state)s), r);
			if (!allowed[a][s] && (!strstr(err, "VM 't1'") ||
					       !strstr(err, vm_state_name((enum vm_state)s))))
				fail_msg("refusal says '%s'", err);
		}
	}
	/* The hint goes where it helps. */
	assert_int_equal(vm_state_check(VM_PAUSED, VM_ACT_STOP, "t1", err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "cannot see the power button"));
	assert_int_equal(vm_state_check(VM_OFF, VM_ACT_STOP, "t1", err, sizeof(err)), -EBUSY);
	assert_null(strstr(err, "power button"));
	assert_int_equal(vm_state_check(VM_RUNNING, VM_ACT_DELETE, "t1", err, sizeof(err)), -EBUSY);
	assert_string_equal(err, "cannot delete VM 't1': it is Running; turn it off first");
}

/* after[end][was]: the state after the worker ended, with no save or restore. */
static const int after[VM_END_COUNT][VM_STATE_COUNT] = {
	/*                          Off  Sta  Run  Pau  Sto  Sav  Cra */
	[VM_END_POWEROFF] = {OFF, OFF, OFF, OFF, OFF, OFF, OFF},
	[VM_END_QUIT] = {OFF, OFF, OFF, OFF, OFF, OFF, OFF},
	[VM_END_REBOOT] = {OFF, OFF, OFF, OFF, OFF, OFF, OFF},
	[VM_END_DEBUG_EXIT] = {OFF, OFF, OFF, OFF, OFF, OFF, OFF},
	[VM_END_ERROR] = {CRA, OFF, CRA, CRA, CRA, CRA, CRA},
	[VM_END_CRASH] = {CRA, CRA, CRA, CRA, CRA, CRA, CRA},
	[VM_END_UNKNOWN] = {CRA, CRA, CRA, CRA, CRA, CRA, CRA},
	[VM_END_KILLED] = {OFF, OFF, OFF, OFF, OFF, OFF, OFF},
	[VM_END_KILLED_START] = {OFF, OFF, OFF, OFF, OFF, OFF, OFF},
	[VM_END_EXITED] = {CRA, OFF, CRA, CRA, CRA, CRA, CRA},
	[VM_END_AWAY] = {CRA, CRA, CRA, CRA, CRA, CRA, CRA},
	[VM_END_VANISHED] = {CRA, CRA, CRA, CRA, CRA, CRA, CRA},
};

static void test_worker_end(void **state)
{
	for (int e = 0; e < VM_END_COUNT; e++) {
		for (int w = 0; w < VM_STATE_COUNT; w++) {
			enum vm_state plain = vm_state_after_end(w, false, false, e);
			enum vm_state saving = vm_state_after_end(w, true, false, e);
			enum vm_state restoring = vm_state_after_end(w, false, true, e);

			if ((int)plain != after[e][w])
				fail_msg("end %d from %s: %s, expected %s", e, vm_state_name(w),
					 vm_state_name(plain), vm_state_name(after[e][w]));
			/* A save that completed: ended as told (Off) means Saved; a crash stays
			 * a crash. */
			if ((int)saving != (after[e][w] == OFF ? SAV : after[e][w]))
				fail_msg("end %d from %s while saving: %s", e, vm_state_name(w),
					 vm_state_name(saving));
			/* A restore that never got going keeps the VM Saved, whatever ended it. */
			if ((int)restoring != (w == STA ? SAV : after[e][w]))
				fail_msg("end %d from %s while restoring: %s", e, vm_state_name(w),
					 vm_state_name(restoring));
		}
	}
}

static void test_names(void **state)
{
	for (int s = 0; s < VM_STATE_COUNT; s++)
		assert_int_equal(vm_state_from_name(vm_state_name((enum vm_state)s)), s);
	assert_int_equal(vm_state_from_name("Bogus"), VM_OFF);
	assert_string_equal(vm_state_name(VM_STATE_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_worker_end),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
