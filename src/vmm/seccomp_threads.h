/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device threads' own seccomp filters (seccomp_filter.h, docs/security.md): the threads
 * register as they begin; the jail, once the process's filter is on every thread, has each
 * stack its class's filter. A filter can only be installed by its own thread, and these
 * threads wait in epoll_wait or on a condition variable, so each is interrupted by a signal
 * whose handler loads its class's program, compiled before (loading one allocates nothing).
 * Internal to seccomp_filter.c.
 */
#ifndef KEEL_VMM_SECCOMP_THREADS_H
#define KEEL_VMM_SECCOMP_THREADS_H

#include <linux/filter.h>
#include <stddef.h>

#include "vmm/seccomp_filter.h"

/* Class c's filter as a program for seccomp(2) (seccomp_filter.c). */
int seccomp_compile(enum seccomp_class c, struct sock_fprog *prog, const char **bad)
	__attribute__((warn_unused_result));

/* Compile every device thread class's program; before any filter. */
int seccomp_threads_prepare(const char **bad) __attribute__((warn_unused_result));

/* After the process's filter: every registered device thread stacks its class's filter;
 * returns once all have (or with the class that could not, in err). */
int seccomp_threads_confine(char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
