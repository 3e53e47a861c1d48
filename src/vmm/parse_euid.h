/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test builds only (-Dtest_hooks=true): the effective uid as which the worker parsed each
 * kind of file it was handed, so that the e2e test `jail` can check that a jailed worker
 * parses none as root (docs/security.md). Elsewhere the notes compile to nothing.
 */
#ifndef KEEL_VMM_PARSE_EUID_H
#define KEEL_VMM_PARSE_EUID_H

enum parse_kind { PARSE_DISK, PARSE_STATE, PARSE_NVRAM, PARSE_KINDS };

#if defined(KEEL_TEST_HOOKS)
/* The parser of KIND is about to run: note the effective uid (the lowest seen is kept). */
void parse_euid_note(enum parse_kind kind);

/* The lowest effective uid KIND was parsed as, or -1 if it never was. */
long parse_euid_lowest(enum parse_kind kind);
#else
static inline void parse_euid_note(enum parse_kind kind)
{
	(void)kind;
}
#endif

#endif
