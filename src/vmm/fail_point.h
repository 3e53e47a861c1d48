/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Named failure points on set-up paths that cannot otherwise be made to fail on demand (a
 * thread that does not start, an epoll_ctl or timerfd_create refused): in test builds
 * (KEEL_TEST_HOOKS) a unit test sets fail_point_hook, which is called at each point with its
 * name and returns 0 (carry on) or the -errno the point then fails with. Release builds
 * compile every point to 0.
 */
#ifndef KEEL_VMM_FAIL_POINT_H
#define KEEL_VMM_FAIL_POINT_H

#if defined(KEEL_TEST_HOOKS)
extern int (*fail_point_hook)(const char *point);
static inline int fail_point(const char *point)
{
	return fail_point_hook ? fail_point_hook(point) : 0;
}
#else
static inline int fail_point(const char *point)
{
	(void)point;
	return 0;
}
#endif

#endif
