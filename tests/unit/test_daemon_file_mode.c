/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The permission rule for the files a worker receives (src/daemon/file_mode.c): writable by
 * every user is refused for every file, readable by every user only for a file the VM
 * writes; the message names the file, its mode and the chmod that fixes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/file_mode.h"

static void test_rule(void **state)
{
	static const struct {
		mode_t mode;
		bool writes, ok;
	} cases[] = {
		{0600, true, true},   {0640, true, true},   {0660, true, true},
		{0644, true, false},  {0604, true, false},  {0602, true, false},
		{0644, false, true},  {0444, false, true},  {0755, false, true},
		{0666, false, false}, {0602, false, false}, {0777, false, false},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = file_mode_check(S_IFREG | cases[i].mode, cases[i].writes, "disk",
					"/p/d.img", err, sizeof(err));

		if (cases[i].ok)
			assert_int_equal(r, 0);
		else
			assert_int_equal(r, -EINVAL);
	}
}

static void test_messages(void **state)
{
	char err[512];

	assert_int_equal(
		file_mode_check(S_IFREG | 0666, false, "DVD image", "/p/x.iso", err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "DVD image /p/x.iso is writable by every user (mode 0666)"));
	assert_non_null(strstr(err, "'chmod o-w /p/x.iso'"));
	assert_int_equal(
		file_mode_check(S_IFREG | 0644, true, "disk", "/p/d.img", err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "disk /p/d.img is readable by every user (mode 0644)"));
	assert_non_null(strstr(err, "'chmod o-r /p/d.img', or attach it read-only"));
	/* Only a disk can be attached read-only: the hint is not offered for others. */
	assert_int_equal(
		file_mode_check(S_IFBLK | 0604, true, "NVRAM file", "/v/n.fd", err, sizeof(err)),
		-EINVAL);
	assert_null(strstr(err, "read-only"));
}

/* The mode is the open file's (fstat), not what the path names later. */
static void test_fd(void **state)
{
	char path[] = "/tmp/keel-unit-mode-XXXXXX", err[512];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	assert_int_equal(file_mode_check_fd(fd, false, "kernel", path, err, sizeof(err)), 0);
	assert_int_equal(file_mode_check_fd(fd, true, "disk", path, err, sizeof(err)), -EINVAL);
	assert_int_equal(fchmod(fd, 0600), 0);
	assert_int_equal(file_mode_check_fd(fd, true, "disk", path, err, sizeof(err)), 0);
	unlink(path);
	close(fd);
	assert_int_equal(file_mode_check_fd(fd, true, "disk", path, err, sizeof(err)), -EBADF);
	assert_non_null(strstr(err, "cannot read its mode"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
