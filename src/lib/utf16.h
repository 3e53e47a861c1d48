/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 <-> UTF-16LE conversion for on-disk strings (VHDX parent locators, creator). */
#ifndef KEEL_LIB_UTF16_H
#define KEEL_LIB_UTF16_H

#include <stddef.h>
#include <stdint.h>

/*
 * UTF-8 string to UTF-16LE bytes in out[cap]; *outlen gets the byte length (no NUL).
 * Returns 0, -EINVAL (malformed UTF-8) or -ENOSPC.
 */
int utf16_from_utf8(const char *s, uint8_t *out, size_t cap, size_t *outlen)
	__attribute__((warn_unused_result));
/*
 * UTF-16LE bytes (len even) to a NUL-terminated UTF-8 string in out[cap].
 * Returns 0, -EINVAL (odd length, unpaired surrogate or NUL) or -ENOSPC.
 */
int utf16_to_utf8(const uint8_t *in, size_t len, char *out, size_t cap)
	__attribute__((warn_unused_result));

#endif
