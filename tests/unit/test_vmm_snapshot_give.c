/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The saved state's files keeld passes a worker (restore with "fd":true, --fd state/memory:
 * src/vmm/snapshot.c snapshot_give): refused, both descriptors closed, when the directory's
 * file names do not fit or when either is not a regular file (a FIFO would block the
 * worker's main loop); taken when they are.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/jail_prep.h"
#include "vmm/snapshot.h"

/* How many descriptors this process has open. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A regular file's descriptor, read-only. */
static int regular(void)
{
	char path[] = "/tmp/keel-snapgive-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static void test_long_dir(void **state)
{
	char dir[4096], err[256] = "";
	int before = open_fds();

	(void)state;
	memset(dir, 'a', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 6] = '\0'; /* a path, but not with "/state.json" after it */
	assert_int_equal(snapshot_give(dir, regular(), regular(), err, sizeof(err)), -ENAMETOOLONG);
	assert_non_null(strstr(err, "too long"));
	assert_int_equal(open_fds(), before);
}

static void test_not_regular(void **state)
{
	char err[256] = "";
	int p[2], before = open_fds();

	(void)state;
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	assert_int_equal(snapshot_give("/saved", p[0], regular(), err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the saved state file passed is not a regular file");
	assert_int_equal(open_fds(), before);
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	assert_int_equal(snapshot_give("/saved", regular(), p[0], err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the saved memory file passed is not a regular file");
	assert_int_equal(open_fds(), before);
}

static void test_taken(void **state)
{
	char err[256] = "";
	int before = open_fds();

	(void)state;
	assert_int_equal(snapshot_give("/saved", regular(), regular(), err, sizeof(err)), 0);
	assert_int_equal(open_fds(), before + 2); /* held for jail_open */
	jail_prep_close();
	assert_int_equal(open_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_dir),
		cmocka_unit_test(test_not_regular),
		cmocka_unit_test(test_taken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
