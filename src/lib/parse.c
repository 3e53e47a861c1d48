/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/parse.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

static int parse_digits(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*sp = s;
	*out = v;
	return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	r = parse_digits(&s, &v);
	if (r)
		return r;
	if (*s)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	uint64_t v, unit = default_unit ? default_unit : 1;
	int r;

	if (!s)
		return -EINVAL;
	r = parse_digits(&s, &v);
	if (r)
		return r;
	if (*s) {
		const char *p = strchr("KMGT", toupper((unsigned char)*s));

		if (p) {
			unit = 1ull << (10 * (p - "KMGT" + 1));
			s++;
			if (!strcasecmp(s, "iB") || !strcasecmp(s, "B"))
				s += strlen(s);
		} else if (!strcasecmp(s, "B")) {
			unit = 1;
			s++;
		}
		if (*s)
			return -EINVAL;
	}
	if (v > UINT64_MAX / unit)
		return -ERANGE;
	*out = v * unit;
	return 0;
}

int parse_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
