/* SPDX-License-Identifier: Apache-2.0 */
/* Filling a caller's error buffer (char *err, size_t errlen), which may be NULL. */
#ifndef KEEL_LIB_ERROR_H
#define KEEL_LIB_ERROR_H

#include <stddef.h>

void error_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
