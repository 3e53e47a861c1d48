/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A unit test's scratch tree (a fake cgroupfs, a fake /proc): top, a new directory under
 * /tmp for each test (tmp_top_setup), removed with all in it afterwards (tmp_top_teardown).
 * Include after cmocka.h.
 */
#ifndef KEEL_TESTS_UNIT_TMP_TOP_H
#define KEEL_TESTS_UNIT_TMP_TOP_H

#include <stdio.h>
#include <stdlib.h>

static char top[64];

static int tmp_top_setup(void **state)
{
	snprintf(top, sizeof(top), "/tmp/keel-unit-XXXXXX");
	assert_non_null(mkdtemp(top));
	return 0;
}

static int tmp_top_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	assert_int_equal(system(cmd), 0);
	return 0;
}

#endif
