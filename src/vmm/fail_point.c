/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/fail_point.h"

#if defined(KEEL_TEST_HOOKS)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int (*fail_point_hook)(const char *point);

static char env_point[64];
static unsigned env_hits; /* hits of env_point still to let through */

/* The point KEEL_VMM_FAIL_POINT names fails once, at its hit given after '@' (1 without):
 * main thread, where every point is. */
static int env_hook(const char *point)
{
	if (!env_point[0] || strcmp(point, env_point) || --env_hits)
		return 0;
	env_point[0] = 0;
	return -EIO;
}

void fail_point_from_env(void)
{
	const char *p = getenv("KEEL_VMM_FAIL_POINT");
	const char *at = p ? strchr(p, '@') : NULL;
	size_t len = at ? (size_t)(at - p) : p ? strlen(p) : 0;

	if (!len || len >= sizeof(env_point))
		return;
	memcpy(env_point, p, len);
	env_point[len] = 0;
	env_hits = at ? (unsigned)strtoul(at + 1, NULL, 10) : 1;
	if (env_hits)
		fail_point_hook = env_hook;
}
#endif
