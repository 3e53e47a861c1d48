/* SPDX-License-Identifier: Apache-2.0 */
/* Storage QoS buckets (vmm/blkio/qos.h) on the test's own clock: the limits hold over any
 * interval (at most one second's burst plus the rate times the interval), the wait they
 * return is exact, new limits apply at once, 0 is no limit, and a second with requests
 * outstanding and fewer I/Os than the minimum is counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vmm/blkio/qos.h"

#define MS 1000000ull
#define S  1000000000ull

static void test_cost(void **unused)
{
	(void)unused;
	assert_int_equal(blk_qos_cost(0), 1);
	assert_int_equal(blk_qos_cost(512), 1);
	assert_int_equal(blk_qos_cost(8192), 1);
	assert_int_equal(blk_qos_cost(8193), 2);
	assert_int_equal(blk_qos_cost(1 << 20), 128);
}

static void test_unlimited(void **unused)
{
	struct blk_qos q;
	struct blk_qos_limits l = {0};

	(void)unused;
	blk_qos_init(&q, &l, 0);
	assert_false(blk_qos_limited(&q));
	for (int i = 0; i < 100000; i++)
		assert_int_equal(blk_qos_take(&q, 1 << 20, 5), 0);
	assert_int_equal(q.st.requests, 100000);
	assert_int_equal(q.st.throttled, 0);
}

/* A guest that asks all the time, on a clock stepped by step_ns: what it got by each step
 * never exceeds the burst plus the rate times the time since the start. */
static void hammer(uint64_t iops, uint64_t bw, uint64_t bytes, uint64_t step_ns, uint64_t span)
{
	struct blk_qos_limits l = {.max_iops = iops, .max_bw = bw};
	struct blk_qos q;
	uint64_t now = 1000 * S, last = 0; /* any start */

	blk_qos_init(&q, &l, now);
	for (uint64_t t = 0; t <= span; last = t, t += step_ns) {
		while (blk_qos_take(&q, bytes, now + t) == 0)
			;
		if (iops)
			assert_true(q.st.ios <= iops + iops * t / S);
		if (bw)
			assert_true(q.st.bytes <= bw + bw * t / S);
	}
	/* And it got the tighter limit, less one request at most. */
	assert_true((iops && q.st.ios + blk_qos_cost(bytes) > iops + iops * last / S) ||
		    (bw && q.st.bytes + bytes > bw + bw * last / S));
}

static void test_iops_limit(void **unused)
{
	(void)unused;
	hammer(100, 0, 4096, 1 * MS, 10 * S);
	hammer(100, 0, 4096, 333 * MS, 10 * S);
	hammer(1000, 0, 65536, 7 * MS, 5 * S); /* 8 I/Os a request */
	hammer(1, 0, 512, 100 * MS, 20 * S);
}

static void test_bw_limit(void **unused)
{
	(void)unused;
	hammer(0, 1 << 20, 4096, 1 * MS, 10 * S);
	hammer(0, 50 << 20, 1 << 20, 13 * MS, 3 * S);
	hammer(500, 1 << 20, 4096, 3 * MS, 10 * S); /* both: the tighter one holds */
}

static void test_wait_exact(void **unused)
{
	struct blk_qos_limits l = {.max_iops = 10};
	struct blk_qos q;
	uint64_t w;

	(void)unused;
	blk_qos_init(&q, &l, 0);
	for (int i = 0; i < 10; i++) /* the burst: one second of it */
		assert_int_equal(blk_qos_take(&q, 4096, 0), 0);
	w = blk_qos_take(&q, 4096, 0);
	assert_int_equal(w, 100 * MS); /* one I/O every 100 ms */
	assert_int_equal(blk_qos_take(&q, 4096, w - 1), 1);
	assert_int_equal(blk_qos_take(&q, 4096, w), 0);
	assert_int_equal(q.st.requests, 11);
}

/* A request larger than the burst starts once the bucket is full, and pays for it. */
static void test_larger_than_burst(void **unused)
{
	struct blk_qos_limits l = {.max_bw = 4096};
	struct blk_qos q;

	(void)unused;
	blk_qos_init(&q, &l, 0);
	assert_int_equal(blk_qos_take(&q, 4096, 0), 0);
	assert_int_equal(blk_qos_take(&q, 16384, 0), S); /* until full again */
	assert_int_equal(blk_qos_take(&q, 16384, S), 0);
	/* In debt by 12 KiB: the next 4 KiB waits 4 seconds. */
	assert_int_equal(blk_qos_take(&q, 4096, S), 4 * S);
}

static void test_set_runtime(void **unused)
{
	struct blk_qos_limits l = {.max_iops = 5}, l2 = {.max_iops = 50}, none = {0};
	struct blk_qos q;
	int n = 0;

	(void)unused;
	blk_qos_init(&q, &l, 0);
	while (blk_qos_take(&q, 4096, 0) == 0)
		n++;
	assert_int_equal(n, 5);
	blk_qos_throttled(&q);
	blk_qos_set(&q, &l2, 10 * MS);
	n = 0;
	while (blk_qos_take(&q, 4096, 10 * MS) == 0)
		n++;
	assert_int_equal(n, 50);
	assert_int_equal(q.st.requests, 55); /* counters kept */
	assert_int_equal(q.st.throttled, 1);
	blk_qos_set(&q, &none, 10 * MS);
	assert_int_equal(blk_qos_take(&q, 4096, 10 * MS), 0);
	/* force charges whatever the bucket holds (a pause's drain), its debt capped at one
	 * burst plus one request: 5 + 1 I/Os owed, then 1 for the next, at 5 per second. */
	blk_qos_set(&q, &l, 10 * MS);
	for (int i = 0; i < 20; i++)
		blk_qos_force(&q, 4096, 10 * MS);
	assert_int_equal(q.st.requests, 76);
	assert_int_equal(blk_qos_take(&q, 4096, 10 * MS), 1 * S + 400 * MS);
}

static void test_min_iops(void **unused)
{
	struct blk_qos_limits l = {.min_iops = 10};
	struct blk_qos q;

	(void)unused;
	blk_qos_init(&q, &l, 0);
	/* Second 0: busy all along, 5 I/Os: a shortfall. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(blk_qos_take(&q, 4096, i * MS), 0);
	blk_qos_tick(&q, 3, S);
	assert_int_equal(q.st.below_min_seconds, 1);
	assert_true(q.st.below_min);
	/* Second 1: 10 I/Os, met. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(blk_qos_take(&q, 4096, S + i * MS), 0);
	blk_qos_tick(&q, 3, 2 * S);
	assert_int_equal(q.st.below_min_seconds, 1);
	assert_false(q.st.below_min);
	/* Second 2: 1 I/O but the disk went idle: the guest asked little, no shortfall. */
	assert_int_equal(blk_qos_take(&q, 4096, 2 * S), 0);
	blk_qos_idle(&q);
	blk_qos_tick(&q, 0, 3 * S);
	assert_int_equal(q.st.below_min_seconds, 1);
	/* Then outstanding, nothing served (a stuck backend): seconds 4 and 5 are shortfalls
	 * (second 3 began idle). */
	blk_qos_tick(&q, 1, 3 * S + 1);
	blk_qos_tick(&q, 1, 6 * S + 1);
	assert_int_equal(q.st.below_min_seconds, 3);
	assert_true(q.st.below_min);
	/* A day idle: no shortfall, and the windows catch up at once. */
	blk_qos_idle(&q);
	blk_qos_tick(&q, 0, 7 * S);
	blk_qos_tick(&q, 0, 86400 * S);
	assert_int_equal(q.st.below_min_seconds, 3);
	assert_false(q.st.below_min);
}

/* Pauses force every waiting request through: at 1 byte/s, 100000 forced 1 MiB requests
 * would owe 1e20 ns (beyond 64 bits). The debt stays one burst plus the last request, and
 * the wait of the next request is exact: that debt, then its own byte. */
static void test_force_debt_capped(void **unused)
{
	struct blk_qos_limits lim = {.max_bw = 1, .max_iops = 1};
	struct blk_qos q;

	(void)unused;
	blk_qos_init(&q, &lim, 0);
	for (unsigned i = 0; i < 100000; i++)
		blk_qos_force(&q, 1u << 20, 0);
	assert_int_equal(q.st.requests, 100000);
	/* bytes: 1 s of burst + 2^20 s owed, then 1 s for the byte; I/Os: 1 + 128 + 1 s */
	assert_int_equal(blk_qos_take(&q, 1, 0), (1ull + (1u << 20) + 1) * S);
	assert_int_equal(blk_qos_take(&q, 1, (1ull + (1u << 20) + 1) * S), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_iops_limit),
		cmocka_unit_test(test_bw_limit),
		cmocka_unit_test(test_wait_exact),
		cmocka_unit_test(test_larger_than_burst),
		cmocka_unit_test(test_set_runtime),
		cmocka_unit_test(test_min_iops),
		cmocka_unit_test(test_force_debt_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
