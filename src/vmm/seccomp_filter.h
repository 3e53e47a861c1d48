/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The jailed worker's seccomp filters (docs/security.md): allow-lists, one per thread class,
 * each the union of tables of rules (seccomp_rules.c), everything else traps. The trap's handler
 * writes "worker killed by its seccomp filter (syscall NAME)" to the log and, as the crash reason,
 * to the status file, and ends the worker.
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

/* The thread classes: each gets its own filter (docs/security.md). */
enum seccomp_class {
	SECCOMP_MAIN,	    /* the event loop: control, consoles, save and restore, reset */
	SECCOMP_VCPU,	    /* a vCPU thread */
	SECCOMP_DISK,	    /* virtio-blk's and virtio-scsi's I/O threads */
	SECCOMP_BLOCK_POOL, /* the block backend's thread pool (blkio/pool.c) */
	SECCOMP_NET,	    /* virtio-net's I/O thread */
	SECCOMP_VSOCK,	    /* virtio-vsock's I/O thread */
	SECCOMP_CONSOLE,    /* virtio-console's I/O thread */
	SECCOMP_RNG,	    /* virtio-rng's I/O thread */
	SECCOMP_NCLASSES,
};

#define SECCOMP_MAX_TABLES 10

/* One class's allow-list: the union of its tables. */
struct seccomp_class_list {
	const char *name;
	const struct seccomp_table *tables[SECCOMP_MAX_TABLES];
	unsigned ntables;
};

/* The classes' lists (seccomp_rules.c), and what the sanitizers' runtimes call (sanitizer
 * builds add it to every filter). */
extern const struct seccomp_class_list seccomp_classes[SECCOMP_NCLASSES];
extern const struct seccomp_table seccomp_sanitizer;

/* The status file the trap's handler writes (opened before the jail), or -1. */
void seccomp_set_status_fd(int fd);

/*
 * The jail's filters, from the main thread: first, on every thread at once (TSYNC), the
 * union of every class's list but the vCPUs' (which stays within the main loop's); then each
 * registered device thread stacks its own class's filter (it is interrupted to do so, and
 * this waits until it has); then the main thread stacks the main loop's. Also installs the
 * SIGSYS handler.
 */
int seccomp_install_process(char *err, size_t errlen) __attribute__((warn_unused_result));

/* The calling vCPU thread's own, stricter filter, stacked on the main loop's. */
int seccomp_install_vcpu(void) __attribute__((warn_unused_result));

/*
 * A device thread of class c begins (call it first thing in the thread): it is registered,
 * so that the jail gives it its class's filter. Device threads must exist before the jail:
 * one that begins after it fails with -EPERM (it would run under the main loop's filter and
 * its own at once). Fails too (negative errno) on a class that is not a device thread's; the
 * caller must not go on.
 */
int seccomp_thread_begin(enum seccomp_class c) __attribute__((warn_unused_result));

/*
 * The creator of a device thread calls seccomp_thread_expect right before pthread_create
 * (and seccomp_thread_unexpect when that fails): the jail then waits for the thread to have
 * begun before it arms, so a thread created just before the jail is not refused for having
 * been scheduled late.
 */
void seccomp_thread_expect(void);
void seccomp_thread_unexpect(void);

/* The calling device thread ends (call it before it returns). */
void seccomp_thread_end(void);

#if defined(KEEL_TEST_HOOKS)
/* Test builds only (the seccomp probe, dev/seccomp_probe.h): make a device thread call
 * mkdirat, which the main loop may and no device thread may; its class's name goes in *cls.
 * Returns 0 once asked (and the call returned, or 5 s passed), -ENOENT without one. */
int seccomp_test_forbidden_thread(const char **cls);
#endif

#endif
