/* SPDX-License-Identifier: Apache-2.0 */
/* lib helpers the disk formats rely on: CRC-32C, GUIDs, UTF-16. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/crc32c.h"
#include "lib/utf16.h"
#include "lib/uuid.h"

static void test_crc32c(void **state)
{
	uint8_t zeros[32] = {0}, buf[100];

	/* Check values from RFC 3720 (iSCSI), appendix B.4. */
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283);
	assert_int_equal(crc32c(0, zeros, 32), 0x8A9136AA);
	memset(zeros, 0xff, 32);
	assert_int_equal(crc32c(0, zeros, 32), 0x62A8AB43);
	/* Incremental equals one pass, at every split point. */
	for (int i = 0; i < 100; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	for (size_t k = 0; k <= 100; k++)
		assert_int_equal(crc32c(crc32c(0, buf, k), buf + k, 100 - k), crc32c(0, buf, 100));
}

static void test_uuid(void **state)
{
	struct uuid u, v;
	char s[UUID_STR_LEN];

	/* The BAT region GUID: text order differs from the on-disk (mixed-endian) order. */
	assert_int_equal(uuid_parse("{2DC27766-F623-4200-9D64-115E9BFD4A08}", &u), 0);
	assert_int_equal(u.b[0], 0x66);
	assert_int_equal(u.b[3], 0x2D);
	assert_int_equal(u.b[4], 0x23);
	assert_int_equal(u.b[6], 0x00);
	assert_int_equal(u.b[7], 0x42);
	assert_int_equal(u.b[8], 0x9D);
	assert_int_equal(u.b[15], 0x08);
	uuid_format(&u, true, s);
	assert_string_equal(s, "{2DC27766-F623-4200-9D64-115E9BFD4A08}");
	assert_int_equal(uuid_parse("2dc27766-f623-4200-9d64-115e9bfd4a08", &v), 0);
	assert_true(uuid_equal(&u, &v));
	assert_int_equal(uuid_parse("{2DC27766-F623-4200-9D64-115E9BFD4A0}", &v), -EINVAL);
	assert_int_equal(uuid_parse("2DC27766xF623-4200-9D64-115E9BFD4A08", &v), -EINVAL);
	assert_int_equal(uuid_generate(&u), 0);
	assert_int_equal(uuid_generate(&v), 0);
	assert_false(uuid_equal(&u, &v));
	assert_false(uuid_is_zero(&u));
	assert_int_equal(u.b[7] >> 4, 4);
}

static void test_utf16(void **state)
{
	uint8_t buf[64];
	char back[64];
	size_t n;

	assert_int_equal(utf16_from_utf8("a\\é€😀", buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 2 * 6); /* 4 BMP units + a surrogate pair */
	assert_int_equal(buf[0], 'a');
	assert_int_equal(buf[1], 0);
	assert_int_equal(utf16_to_utf8(buf, n, back, sizeof(back)), 0);
	assert_string_equal(back, "a\\é€😀");
	assert_int_equal(utf16_from_utf8("abc", buf, 4, &n), -ENOSPC);
	assert_int_equal(utf16_from_utf8("\xff", buf, sizeof(buf), &n), -EINVAL);
	/* An unpaired high surrogate and an odd length are refused. */
	assert_int_equal(utf16_to_utf8((const uint8_t *)"\x3d\xd8"
							"a\0",
				       4, back, 64),
			 -EINVAL);
	assert_int_equal(utf16_to_utf8((const uint8_t *)"a\0b", 3, back, 64), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_utf16),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
