/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's check of the worker uids processes run as (src/daemon/uid_scan.c) against a /proc
 * made of plain files: every id field of Uid: and Gid: counts, ids outside the range and
 * entries that are not processes do not, and a process gone while it is read is skipped.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tmp_top.h"

#include "daemon/uid_scan.h"

/* A process dir under top with a status file holding uids and gids (NULL: no status). */
static void proc(const char *pid, const char *uid, const char *gid)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, pid);
	assert_int_equal(mkdir(path, 0755), 0);
	if (!uid)
		return;
	strcat(path, "/status");
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "Name:\tx\nState:\tS (sleeping)\nUid:\t%s\nGid:\t%s\nGroups:\t1010\n", uid, gid);
	fclose(f);
}

static void test_scan(void **state)
{
	unsigned char used[2] = {0};

	proc("1", "0\t0\t0\t0", "0\t0\t0\t0");
	proc("22", "1003\t1003\t1003\t1003", "1003\t1003\t1003\t1003"); /* a worker */
	proc("23", "0\t1005\t0\t0", "0\t0\t0\t0");			/* effective only */
	proc("24", "0\t0\t0\t0", "0\t0\t0\t1007");			/* fs gid only */
	proc("25", "0\t0\t1009\t0", "0\t0\t0\t0");			/* saved only */
	proc("26", "999\t1016\t4294967295\t0", "999\t999\t999\t999");	/* outside */
	proc("27", NULL, NULL); /* ended while the directory was read */
	proc("self", "1001\t1001\t1001\t1001", "0\t0\t0\t0"); /* not a process's number */
	proc("0x3", "1002\t1002\t1002\t1002", "0\t0\t0\t0");
	/* Groups: (1010) is not the worker's gid: supplementary groups are not the check. */
	assert_int_equal(uid_scan(top, 1000, 16, used), 6);
	assert_int_equal(used[0], 1u << 3 | 1u << 5 | 1u << 7);
	assert_int_equal(used[1], 1u << 1);
	/* A range of one. */
	used[0] = 0;
	assert_int_equal(uid_scan(top, 1005, 1, used), 6);
	assert_int_equal(used[0], 1);
}

static void test_no_proc(void **state)
{
	unsigned char used[1] = {0};

	assert_int_equal(uid_scan("/nonexistent-proc", 1000, 8, used), -ENOENT);
}

/* This host's /proc: this test's own uid (root, 0) is in use. */
static void test_this_host(void **state)
{
	unsigned char used[1] = {0};

	assert_true(uid_scan("/proc", getuid(), 1, used) >= 1);
	assert_int_equal(used[0], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scan, tmp_top_setup, tmp_top_teardown),
		cmocka_unit_test(test_no_proc),
		cmocka_unit_test(test_this_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
