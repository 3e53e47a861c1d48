/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/uuid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "lib/parse.h"

int uuid_generate(struct uuid *u)
{
	size_t got = 0;

	while (got < sizeof(u->b)) {
		ssize_t n = getrandom(u->b + got, sizeof(u->b) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	/* Version 4 in data3's top nibble (byte 7, data3 is little-endian), variant 10. */
	u->b[7] = (u->b[7] & 0x0f) | 0x40;
	u->b[8] = (u->b[8] & 0x3f) | 0x80;
	return 0;
}

bool uuid_is_zero(const struct uuid *u)
{
	for (size_t i = 0; i < sizeof(u->b); i++)
		if (u->b[i])
			return false;
	return true;
}

bool uuid_equal(const struct uuid *a, const struct uuid *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

void uuid_format(const struct uuid *u, bool braces, char out[UUID_STR_LEN])
{
	const uint8_t *b = u->b;

	snprintf(out, UUID_STR_LEN,
		 "%s%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X%s",
		 braces ? "{" : "", b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15], braces ? "}" : "");
}

int uuid_parse(const char *s, struct uuid *u)
{
	/* Byte order of the text digits: data1, data2, data3 reversed; the rest as is. */
	static const int pos[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	bool braces = s[0] == '{';
	size_t n = strlen(s);
	int k = 0;

	if (braces) {
		if (n != 38 || s[37] != '}')
			return -EINVAL;
		s++;
	} else if (n != 36) {
		return -EINVAL;
	}
	for (int i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		int hi = parse_hex_digit(s[i]), lo = parse_hex_digit(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		u->b[pos[k++]] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}
