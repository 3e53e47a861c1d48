/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld taking a save directory back from a jailed worker (src/daemon/sup_jail.c,
 * docs/security.md): the save's two files stay, root's and 0600; anything else the worker
 * left, directories it made included, goes; a take that a dead keeld left half done (the
 * directory root's but still the worker's group) is finished; a directory never given is left
 * alone. Needs root (the files change owner).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "daemon/sup_internal.h"

#define WORKER 3221225999u

static char top[64];

static const char *at(const char *name)
{
	static char path[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", top, name);
	return path[i];
}

static void file(const char *name)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(fchown(fd, WORKER, WORKER), 0);
	close(fd);
}

static void dir(const char *name)
{
	assert_int_equal(mkdir(at(name), 0755), 0);
	assert_int_equal(chown(at(name), WORKER, WORKER), 0);
}

/* What a worker leaves: its save, a link out, a tree of its own. */
static void worker_leftovers(void)
{
	file("state");
	file("memory");
	assert_int_equal(symlink("/etc/passwd", at("link")), 0);
	dir("junk");
	dir("junk/deeper");
	file("junk/deeper/x");
	file("junk/y");
}

static void assert_taken(void)
{
	struct stat st;

	assert_int_equal(lstat(top, &st), 0);
	assert_true(st.st_uid == 0 && st.st_gid == 0 && (st.st_mode & 07777) == 0700);
	for (const char *const *n = (const char *const[]){"state", "memory", NULL}; *n; n++) {
		assert_int_equal(lstat(at(*n), &st), 0);
		assert_true(S_ISREG(st.st_mode) && st.st_uid == 0 && st.st_gid == 0 &&
			    (st.st_mode & 07777) == 0600);
	}
	assert_int_equal(lstat(at("link"), &st), -1);
	assert_int_equal(lstat(at("junk"), &st), -1);
}

static int setup(void **state)
{
	snprintf(top, sizeof(top), "/tmp/keel-take-XXXXXX");
	return mkdtemp(top) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_given(void **state)
{
	worker_leftovers();
	assert_int_equal(chown(top, WORKER, WORKER), 0);
	sup_jail_take_dir(top);
	assert_taken();
	sup_jail_take_dir(top); /* again: nothing changes */
	assert_taken();
}

/* A keeld that died in the middle of a take: root's, the worker's group, not cleared. */
static void test_half_taken(void **state)
{
	worker_leftovers();
	assert_int_equal(chown(top, 0, WORKER), 0);
	sup_jail_take_dir(top);
	assert_taken();
}

/* Never given (root:root): keeld's own, left alone. */
static void test_never_given(void **state)
{
	struct stat st;

	dir("keelds");
	assert_int_equal(chown(top, 0, 0), 0);
	sup_jail_take_dir(top);
	assert_int_equal(lstat(at("keelds"), &st), 0);
}

/* A worker that left (or keeps making) more than one take-back removes: it stops at the bound
 * (TAKE_MAX_ENTRIES, 10000), the directory root's and closed all the same; the next take of a
 * directory given again goes on. */
static void test_bounded(void **state)
{
	unsigned left = 0;
	struct stat st;
	char name[32];
	DIR *d;

	dir("many");
	for (unsigned i = 0; i < 10100; i++) {
		snprintf(name, sizeof(name), "many/f%u", i);
		file(name);
	}
	assert_int_equal(chown(top, WORKER, WORKER), 0);
	sup_jail_take_dir(top);
	assert_int_equal(lstat(top, &st), 0);
	assert_true(st.st_uid == 0 && st.st_gid == 0 && (st.st_mode & 07777) == 0700);
	d = opendir(at("many"));
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));)
		left += de->d_name[0] == 'f';
	closedir(d);
	assert_true(left >= 100 && left < 10100);
	assert_int_equal(chown(top, WORKER, WORKER), 0);
	sup_jail_take_dir(top);
	assert_int_equal(lstat(at("many"), &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_given, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_given, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
	};

	if (geteuid() != 0) {
		printf("SKIP: needs root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
