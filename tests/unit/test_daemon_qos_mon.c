/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's minimum-IOPS watch (src/daemon/qos_mon.c): a look finds the disk below its minimum
 * when any whole second since the last look was a shortfall, not only when the worker's last
 * second was one (a disk short every other second read as fine whenever the looks, 2 s apart,
 * fell on a good second); a new worker's count starting again from 0 is no shortfall.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/qos_mon.h"

static void test_judge(void **state)
{
	(void)state;
	/* The last second short. */
	assert_true(qos_mon_judge(true, 4, 4));
	assert_true(qos_mon_judge(true, 4, 5));
	/* The last second fine, but one since the last look short. */
	assert_true(qos_mon_judge(false, 4, 5));
	assert_true(qos_mon_judge(false, 0, 1));
	/* Every second since fine. */
	assert_false(qos_mon_judge(false, 4, 4));
	assert_false(qos_mon_judge(false, 0, 0));
	/* A new worker (its count from 0): short only if it counted some. */
	assert_false(qos_mon_judge(false, 7, 0));
	assert_true(qos_mon_judge(false, 7, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_judge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
