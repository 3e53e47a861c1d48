/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The heartbeat's choice between KVM's interrupt counters and schedstat (src/daemon/
 * vcpu_judge.c), round by round: counters believed only once they grew across an answered
 * ping, and never while they stand still across one (APICv, AVIC: a busy guest whose agent is
 * gone is not "hung"); a guest spinning with interrupts off told where the counters are sound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/vcpu_judge.h"

#define HUNG_MS 3000 /* as AGENT_MON_LOST_MS */

/* n rounds a second apart from *now; the injections as the whole of the counters, or not. */
static void rounds_inj(struct vcpu_judge *j, long long *now, unsigned n, enum vcpu_delta stats,
		       enum vcpu_delta injected, enum vcpu_delta sched, bool answered)
{
	struct vcpu_round r = {stats, injected, sched, answered};

	for (unsigned i = 0; i < n; i++) {
		*now += 1000;
		vcpu_judge_round(j, &r, *now);
	}
}

static void rounds(struct vcpu_judge *j, long long *now, unsigned n, enum vcpu_delta stats,
		   enum vcpu_delta sched, bool answered)
{
	rounds_inj(j, now, n, stats, stats, sched, answered);
}

static bool hung(const struct vcpu_judge *j, long long now)
{
	long long still;

	assert_true(vcpu_judge_still(j, now, &still));
	return still >= HUNG_MS;
}

/* Both signals read for the first time, the agent not yet heard. */
static void start(struct vcpu_judge *j, long long *now)
{
	vcpu_judge_reset(j);
	rounds(j, now, 1, VCPU_BASE, VCPU_BASE, false);
}

static void test_counters_sound(void **state)
{
	struct vcpu_judge j;
	long long now = 0;

	(void)state;
	start(&j, &now);
	assert_false(vcpu_judge_by_stats(&j)); /* nothing learnt yet: schedstat */
	rounds(&j, &now, 3, VCPU_GREW, VCPU_GREW, true);
	assert_true(vcpu_judge_by_stats(&j));
	/* The agent goes; the guest lives on (timer ticks counted). */
	rounds(&j, &now, 5, VCPU_GREW, VCPU_GREW, false);
	assert_false(hung(&j, now));
	/* It spins with interrupts off: its vCPU burns CPU, takes no interrupt. */
	rounds(&j, &now, 2, VCPU_FLAT, VCPU_GREW, false);
	assert_false(hung(&j, now));
	rounds(&j, &now, 1, VCPU_FLAT, VCPU_GREW, false);
	assert_true(vcpu_judge_by_stats(&j));
	assert_true(hung(&j, now));
}

static void test_posted_interrupts(void **state)
{
	struct vcpu_judge j;
	long long now = 0;

	(void)state;
	/* APICv: the counters stand still although the agent answers every ping. */
	start(&j, &now);
	rounds(&j, &now, 1, VCPU_FLAT, VCPU_GREW, true);
	assert_true(j.blind);
	assert_false(vcpu_judge_by_stats(&j));
	/* The agent goes; the guest is busy: alive by schedstat, never "hung". */
	rounds(&j, &now, 10, VCPU_FLAT, VCPU_GREW, false);
	assert_false(hung(&j, now));
	/* Halt wakeups made the counters grow across an answer once: still not believed. */
	rounds(&j, &now, 1, VCPU_GREW, VCPU_GREW, true);
	rounds(&j, &now, 10, VCPU_FLAT, VCPU_GREW, false);
	assert_false(vcpu_judge_by_stats(&j));
	assert_false(hung(&j, now));
	/* Idle at first (halt wakeups counted with each answer), then blind once an answer
	 * comes with the counters still: trust is withdrawn. */
	start(&j, &now);
	rounds(&j, &now, 3, VCPU_GREW, VCPU_GREW, true);
	assert_true(vcpu_judge_by_stats(&j));
	rounds(&j, &now, 1, VCPU_FLAT, VCPU_GREW, true);
	assert_false(vcpu_judge_by_stats(&j));
	rounds(&j, &now, 10, VCPU_FLAT, VCPU_GREW, false);
	assert_false(hung(&j, now));
	/* A guest that truly stopped still reads as hung through schedstat. */
	rounds(&j, &now, 3, VCPU_FLAT, VCPU_FLAT, false);
	assert_true(hung(&j, now));
}

static void test_posted_interrupts_idle(void **state)
{
	struct vcpu_judge j;
	long long now = 0;

	(void)state;
	/* APICv, the guest idle: its halt wake-ups grow with each answered ping, the injections
	 * do not. That earns no trust: busy later, with its agent gone, it is not "hung". */
	start(&j, &now);
	rounds_inj(&j, &now, 5, VCPU_GREW, VCPU_FLAT, VCPU_GREW, true);
	assert_false(vcpu_judge_by_stats(&j));
	rounds_inj(&j, &now, 10, VCPU_FLAT, VCPU_FLAT, VCPU_GREW, false);
	assert_false(hung(&j, now));
	/* Without posted interrupts the injections grow with the answers: the counters decide,
	 * halt wake-ups included (an idle guest with its agent gone is alive). */
	start(&j, &now);
	rounds_inj(&j, &now, 2, VCPU_GREW, VCPU_GREW, VCPU_GREW, true);
	assert_true(vcpu_judge_by_stats(&j));
	rounds_inj(&j, &now, 10, VCPU_GREW, VCPU_FLAT, VCPU_FLAT, false);
	assert_false(hung(&j, now));
}

static void test_no_answer_no_trust(void **state)
{
	struct vcpu_judge j;
	long long now = 0;

	(void)state;
	/* No agent ever: the counters grow, but nothing proved they see every interrupt. */
	start(&j, &now);
	rounds(&j, &now, 5, VCPU_GREW, VCPU_GREW, false);
	assert_false(vcpu_judge_by_stats(&j));
	rounds(&j, &now, 5, VCPU_FLAT, VCPU_GREW, false);
	assert_false(hung(&j, now));
	/* A first reading (a base) across an answer teaches nothing either way. */
	start(&j, &now);
	rounds(&j, &now, 1, VCPU_BASE, VCPU_GREW, true);
	assert_false(j.trusted);
	assert_false(j.blind);
	/* Nor does a round the counters were not read in. */
	rounds(&j, &now, 1, VCPU_UNKNOWN, VCPU_GREW, true);
	assert_false(j.trusted);
	assert_false(j.blind);
}

static void test_new_set_forgets(void **state)
{
	struct vcpu_judge j;
	long long now = 0;
	long long still;

	(void)state;
	start(&j, &now);
	rounds(&j, &now, 2, VCPU_GREW, VCPU_GREW, true);
	assert_true(vcpu_judge_by_stats(&j));
	/* A reset made new vCPUs: the new counters are not believed until they prove sound. */
	vcpu_judge_new_stats(&j);
	assert_false(vcpu_judge_by_stats(&j));
	rounds(&j, &now, 1, VCPU_BASE, VCPU_GREW, false);
	rounds(&j, &now, 1, VCPU_FLAT, VCPU_GREW, true);
	assert_true(j.blind);
	vcpu_judge_new_stats(&j); /* a restore after that: blindness belonged to the old set */
	assert_false(j.blind);
	/* Nothing read: no verdict. */
	vcpu_judge_reset(&j);
	assert_false(vcpu_judge_still(&j, now, &still));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_sound),
		cmocka_unit_test(test_posted_interrupts),
		cmocka_unit_test(test_posted_interrupts_idle),
		cmocka_unit_test(test_no_answer_no_trust),
		cmocka_unit_test(test_new_set_forgets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
