/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's check of the worker uids processes run as (src/daemon/uid_scan.c) against a /proc
 * made of plain files: every id field of Uid: and Gid: counts, ids outside the range and
 * entries that are not processes do not, a thread that runs as other ids than its process's
 * first one counts, and a process gone while it is read is skipped.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* A process whose first thread is root but another thread runs as a worker uid (a set*id
 * system call acts on the calling thread only): that uid is in use. */
static void test_thread(void **state)
{
	unsigned char used[1] = {0};
	char path[PATH_MAX];
	FILE *f;

	proc("40", "0\t0\t0\t0", "0\t0\t0\t0");
	snprintf(path, sizeof(path), "%s/40/task", top);
	assert_int_equal(mkdir(path, 0755), 0);
	strcat(path, "/41");
	assert_int_equal(mkdir(path, 0755), 0);
	strcat(path, "/status");
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "Name:\tx\nUid:\t0\t1004\t0\t1004\nGid:\t0\t0\t0\t0\n");
	fclose(f);
	assert_int_equal(uid_scan(top, 1000, 8, used), 1);
	assert_int_equal(used[0], 1u << 4);
}

/* A thread that runs as uid (its effective uid) while the test scans. */
struct other {
	uid_t uid;
	pthread_barrier_t set, scanned;
};

static void *as_other_uid(void *arg)
{
	struct other *o = arg;

	/* This thread only: glibc's setresuid would change every thread. */
	if (syscall(SYS_setresuid, -1, o->uid, -1))
		o->uid = (uid_t)-1;
	pthread_barrier_wait(&o->set);
	pthread_barrier_wait(&o->scanned);
	if (syscall(SYS_setresuid, -1, 0, -1))
		abort();
	return NULL;
}

/* The same on this host's /proc with a real thread (root only: it changes its euid). */
static void test_this_host_thread(void **state)
{
	struct other t = {.uid = 4000000123u};
	unsigned char used[1] = {0};
	pthread_t th;

	if (geteuid() != 0 && !getenv("KEEL_TEST_NO_SKIP"))
		skip();
	assert_int_equal(geteuid(), 0);
	pthread_barrier_init(&t.set, NULL, 2);
	pthread_barrier_init(&t.scanned, NULL, 2);
	assert_int_equal(pthread_create(&th, NULL, as_other_uid, &t), 0);
	pthread_barrier_wait(&t.set);
	assert_int_equal(t.uid, 4000000123u);
	assert_true(uid_scan("/proc", 4000000123u, 1, used) >= 1);
	pthread_barrier_wait(&t.scanned);
	pthread_join(th, NULL);
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
		cmocka_unit_test_setup_teardown(test_thread, tmp_top_setup, tmp_top_teardown),
		cmocka_unit_test(test_this_host_thread),
		cmocka_unit_test(test_no_proc),
		cmocka_unit_test(test_this_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
