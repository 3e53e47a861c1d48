/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GUIDs in Microsoft's on-disk layout (data1 u32 LE, data2 and data3 u16 LE, then 8 bytes),
 * kept as 16 raw bytes exactly as they sit in a file.
 */
#ifndef KEEL_LIB_UUID_H
#define KEEL_LIB_UUID_H

#include <stdbool.h>
#include <stdint.h>

struct uuid {
	uint8_t b[16];
};

/* Length of "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" plus braces and NUL. */
#define UUID_STR_LEN 39

/* A random (version 4) GUID from getrandom(2). Returns 0 or -errno. */
int uuid_generate(struct uuid *u) __attribute__((warn_unused_result));
bool uuid_is_zero(const struct uuid *u);
bool uuid_equal(const struct uuid *a, const struct uuid *b);
/* Formats as "{xxxxxxxx-...}" (braces if `braces`), upper case, into out[UUID_STR_LEN]. */
void uuid_format(const struct uuid *u, bool braces, char out[UUID_STR_LEN]);
/* Parses with or without braces, any case. Returns 0 or -EINVAL. */
int uuid_parse(const char *s, struct uuid *u) __attribute__((warn_unused_result));

#endif
