/* SPDX-License-Identifier: Apache-2.0 */
/* Test builds only: the effective uid each kind of handed file was parsed as (parse_euid.h). */
#include "vmm/parse_euid.h"

#include <stdatomic.h>
#include <unistd.h>

#if defined(KEEL_TEST_HOOKS)
static _Atomic long lowest[PARSE_KINDS] = {-1, -1, -1};

void parse_euid_note(enum parse_kind kind)
{
	long uid = (long)geteuid(), seen = atomic_load(&lowest[kind]);

	while ((seen < 0 || uid < seen) && !atomic_compare_exchange_weak(&lowest[kind], &seen, uid))
		;
}

long parse_euid_lowest(enum parse_kind kind)
{
	return atomic_load(&lowest[kind]);
}
#endif
