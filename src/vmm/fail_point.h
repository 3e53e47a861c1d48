/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Named failure points on set-up paths that cannot otherwise be made to fail on demand (a
 * thread that does not start, an epoll_ctl or timerfd_create refused): in test builds
 * (KEEL_TEST_HOOKS) a unit test sets fail_point_hook, which is called at each point with its
 * name and returns 0 (carry on) or the -errno the point then fails with; a test of the whole
 * keel-vmm sets KEEL_VMM_FAIL_POINT=NAME[@N] to fail point NAME once (-EIO), at its Nth hit
 * (the first without @N). Release builds
 * compile every point to 0 and ignore the variable. The points: virtio-thread-start
 * (virtio_dev_create), net-watch and net-timerfd (virtio_net_create_fd), hotplug-add (a hot
 * add's last step, hotplug.c), hotplug-pause (the pause before a removal's teardown: the
 * card stays, hotplug.c).
 */
#ifndef KEEL_VMM_FAIL_POINT_H
#define KEEL_VMM_FAIL_POINT_H

#if defined(KEEL_TEST_HOOKS)
extern int (*fail_point_hook)(const char *point);
static inline int fail_point(const char *point)
{
	return fail_point_hook ? fail_point_hook(point) : 0;
}
/* keel-vmm's start: KEEL_VMM_FAIL_POINT, if set, names the point to fail once. */
void fail_point_from_env(void);
#else
static inline int fail_point(const char *point)
{
	(void)point;
	return 0;
}
static inline void fail_point_from_env(void)
{
}
#endif

#endif
