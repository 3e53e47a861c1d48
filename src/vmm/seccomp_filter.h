/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The jailed worker's seccomp filters (docs/security.md): allow-lists, one table per thread
 * class (seccomp_rules.c), everything else traps. The trap's handler writes "worker killed
 * by its seccomp filter (syscall NAME)" to the log and, as the crash reason, to the status
 * file, and ends the worker.
 */
#ifndef KEEL_VMM_SECCOMP_FILTER_H
#define KEEL_VMM_SECCOMP_FILTER_H

#include <stddef.h>
#include <stdint.h>

/* How a rule tests one argument of its system call. */
enum seccomp_match {
	SECCOMP_ANY,	   /* any arguments */
	SECCOMP_ARG_IN,	   /* argument arg (its low 32 bits) is one of values */
	SECCOMP_ARG_BITS,  /* argument arg has every bit of values[0] set */
	SECCOMP_ARG_CLEAR, /* argument arg has no bit of values[0] set */
};

struct seccomp_rule {
	int nr; /* SYS_... */
	enum seccomp_match match;
	unsigned arg;
	const uint64_t *values;
	unsigned nvalues;
	int errno_value; /* not 0: fail with this errno instead of allowing (clone3) */
};

/* One thread class's allow-list. */
struct seccomp_table {
	const char *name;
	const struct seccomp_rule *rules;
	size_t n;
};

/* The thread classes (seccomp_rules.c): what every thread may call, then what the main loop,
 * the I/O threads and the vCPU threads each add; and what the sanitizers' runtimes call. */
extern const struct seccomp_table seccomp_thread, seccomp_main, seccomp_io, seccomp_vcpu,
	seccomp_sanitizer;

/* The status file the trap's handler writes (opened before the jail), or -1. */
void seccomp_set_status_fd(int fd);

/*
 * The whole process's filter, on every thread at once (TSYNC): the main loop's and the I/O
 * threads' tables (the I/O threads exist already: devices start them as they are built).
 * Also installs the SIGSYS handler.
 */
int seccomp_install_process(char *err, size_t errlen) __attribute__((warn_unused_result));

/* The calling vCPU thread's own, stricter filter, stacked on the process's. */
int seccomp_install_vcpu(void) __attribute__((warn_unused_result));

#if defined(KEEL_TEST_HOOKS)
/* Test builds only: issue a system call no table allows (the e2e seccomp test). */
void seccomp_test_forbidden(void);
#endif

#endif
