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
	assert_string_equal(out,
			    "keeld: info: guest said 'x?keeld: info: audit: root??[2J??end'\n");
}

/* log_text_safe with lines (a VM's log as keel prints it): newline and tab stay, every other
 * control character becomes '?' byte for byte, C1 in UTF-8 and a 0xc2 that ends the piece
 * (its C1 byte may start the next one) too; NUL is a character like the others. */
static void test_text_safe_lines(void **state)
{
	char s[] = "a\tb\n\x1b[2J\x07\r\x00\x7f\xc2\x9b"
		   "6n\xc2\xa0\xc3\xa9\n\xc2";
	char one[] = "x\ny\tz";

	(void)state;
	log_text_safe(s, sizeof(s) - 1, true);
	assert_memory_equal(s, "a\tb\n?[2J??????6n\xc2\xa0\xc3\xa9\n?", sizeof(s) - 1);
	log_text_safe(one, strlen(one), false);
	assert_string_equal(one, "x?y?z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_text_safe_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
