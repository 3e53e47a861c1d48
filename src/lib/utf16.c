/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/utf16.h"

#include <errno.h>

#include "lib/le.h"

static int put16(uint8_t *out, size_t cap, size_t *n, uint32_t u)
{
	if (*n + 2 > cap)
		return -ENOSPC;
	le16_store(out + *n, (uint16_t)u);
	*n += 2;
	return 0;
}

int utf16_from_utf8(const char *s, uint8_t *out, size_t cap, size_t *outlen)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = 0;
	int r;

	while (*p) {
		uint32_t cp;
		int extra;

		if (*p < 0x80) {
			cp = *p;
			extra = 0;
		} else if ((*p & 0xe0) == 0xc0) {
			cp = *p & 0x1f;
			extra = 1;
		} else if ((*p & 0xf0) == 0xe0) {
			cp = *p & 0x0f;
			extra = 2;
		} else if ((*p & 0xf8) == 0xf0) {
			cp = *p & 0x07;
			extra = 3;
		} else {
			return -EINVAL;
		}
		p++;
		for (int i = 0; i < extra; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return -EINVAL;
			cp = cp << 6 | (*p & 0x3f);
		}
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -EINVAL;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			r = put16(out, cap, &n, 0xd800 | (cp >> 10));
			if (r == 0)
				r = put16(out, cap, &n, 0xdc00 | (cp & 0x3ff));
		} else {
			r = put16(out, cap, &n, cp);
		}
		if (r)
			return r;
	}
	*outlen = n;
	return 0;
}

int utf16_to_utf8(const uint8_t *in, size_t len, char *out, size_t cap)
{
	size_t n = 0;

	if (len % 2 || cap == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 2) {
		uint32_t cp = le16_load(in + i);

		if (cp >= 0xd800 && cp <= 0xdbff) {
			uint32_t lo;

			if (i + 4 > len)
				return -EINVAL;
			lo = le16_load(in + i + 2);
			if (lo < 0xdc00 || lo > 0xdfff)
				return -EINVAL;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		} else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
			return -EINVAL;
		}
		size_t need = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;

		if (n + need + 1 > cap)
			return -ENOSPC;
		if (need == 1) {
			out[n++] = (char)cp;
		} else if (need == 2) {
			out[n++] = (char)(0xc0 | cp >> 6);
			out[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (need == 3) {
			out[n++] = (char)(0xe0 | cp >> 12);
			out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[n++] = (char)(0xf0 | cp >> 18);
			out[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[n++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	out[n] = 0;
	return 0;
}
