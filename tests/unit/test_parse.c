/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/parse.h"

static void test_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("512", 0, &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(parse_size("512", 1 << 20, &v), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(parse_size("4K", 0, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("512M", 0, &v), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(parse_size("2g", 0, &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(parse_size("1TiB", 0, &v), 0);
	assert_int_equal(v, 1ull << 40);
	assert_int_equal(parse_size("3MB", 0, &v), 0);
	assert_int_equal(v, 3ull << 20);
	assert_int_equal(parse_size("100B", 1 << 20, &v), 0);
	assert_int_equal(v, 100);
}

static void test_bad_sizes(void **state)
{
	uint64_t v = 7;

	assert_int_equal(parse_size("", 0, &v), -EINVAL);
	assert_int_equal(parse_size("M", 0, &v), -EINVAL);
	assert_int_equal(parse_size("-1", 0, &v), -EINVAL);
	assert_int_equal(parse_size("12Q", 0, &v), -EINVAL);
	assert_int_equal(parse_size("12MX", 0, &v), -EINVAL);
	assert_int_equal(parse_size(" 12", 0, &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999", 0, &v), -ERANGE);
	assert_int_equal(parse_size("17179869184G", 0, &v), -ERANGE);
	assert_int_equal(v, 7);
}

static void test_uint(void **state)
{
	uint64_t v;

	assert_int_equal(parse_uint("4", 1, 255, &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(parse_uint("0", 1, 255, &v), -ERANGE);
	assert_int_equal(parse_uint("256", 1, 255, &v), -ERANGE);
	assert_int_equal(parse_uint("4x", 1, 255, &v), -EINVAL);
	assert_int_equal(parse_uint("", 1, 255, &v), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_uint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
