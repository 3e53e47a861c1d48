/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing of user-given numbers: strict, whole-string, overflow-checked. */
#ifndef KEEL_LIB_PARSE_H
#define KEEL_LIB_PARSE_H

#include <stdint.h>

/*
 * A size in bytes: digits with an optional K, M, G or T suffix (powers of 1024; a
 * trailing "B" or "iB" is accepted, as in "512MiB"). No suffix means bytes, unless
 * default_unit is given (e.g. 1 << 20 to read "512" as MiB). Returns 0 or -EINVAL
 * (not a size) or -ERANGE (overflows 64 bits).
 */
int parse_size(const char *s, uint64_t default_unit, uint64_t *out)
	__attribute__((warn_unused_result));

/* The value of one hexadecimal digit (either case), or -1. */
int parse_hex_digit(char c);

/* A decimal unsigned integer in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
	__attribute__((warn_unused_result));

#endif
