/* SPDX-License-Identifier: Apache-2.0 */
/* lib/log.c: a message is one line, whatever it quotes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/log.h"

/* What log_msg wrote to stderr for one message. */
static void logged(char *out, size_t size, const char *quoted)
{
	int fds[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	fflush(stderr);
	dup2(fds[1], STDERR_FILENO);
	log_info("guest said '%s'", quoted);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, size - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
}

/* A newline, a carriage return, an escape and DEL in a quoted text cannot start a line of
 * their own (a forged "keeld: info: audit: ..." line) nor move the terminal's cursor. */
static void test_control_characters(void **state)
{
	char out[256];

	(void)state;
	log_init("keeld", LOG_INFO);
	logged(out, sizeof(out), "x\nkeeld: info: audit: root\r\x1b[2J\x7f\tend");
	assert_string_equal(out, "keeld: info: guest said 'x?keeld: info: audit: root??[2J??end'\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_characters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
