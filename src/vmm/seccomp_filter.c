/* SPDX-License-Identifier: Apache-2.0 */
/* Building and installing the seccomp filters from the tables (seccomp_filter.h), and the handler
 * of the trap a call outside them raises. */
#include "vmm/seccomp_filter.h"
#include "vmm/seccomp_threads.h"

#include <errno.h>
#include <malloc.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc's malloc gives threads new arenas up to this many, then shares them. Without a cap it
 * counts the CPUs (__get_nprocs: /sys, /proc, then sched_getaffinity) the first time a
 * thread needs a new one while more than 8 exist; set before the jail, it never does. 8 is
 * glibc's own threshold, so a worker with fewer allocating threads is unchanged. */
#define SECCOMP_ARENA_MAX 8

/* Names of the system calls by number, resolved before any filter is in place, so that the
 * SIGSYS handler (which may call nothing but write and friends) only indexes an array. */
#define SECCOMP_NAMES 512
static const char *syscall_names[SECCOMP_NAMES];
static int status_fd = -1;

void seccomp_set_status_fd(int fd)
{
	status_fd = fd;
}

static size_t put(char *buf, size_t at, size_t size, const char *s)
{
	while (*s && at < size)
		buf[at++] = *s++;
	return at;
}

static size_t put_uint(char *buf, size_t at, size_t size, unsigned v)
{
	char digits[12];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < (int)sizeof(digits));
	while (n && at < size)
		buf[at++] = digits[--n];
	return at;
}

/* Async-signal-safe: formats with put/put_uint, then write, ftruncate, pwrite, fsync, _exit,
 * which every table allows. The worker is PID 1 of its namespace, where a signal it sends
 * itself with the default action would be ignored: it exits instead, with the reason
 * written where keeld reads it. */
static void sigsys_handler(int sig, siginfo_t *si, void *uctx)
{
	unsigned nr = (unsigned)si->si_syscall;
	const char *name = nr < SECCOMP_NAMES && syscall_names[nr] ? syscall_names[nr] : NULL;
	char what[64], line[160], status[200];
	size_t w = 0, l = 0, s = 0;

	(void)sig;
	(void)uctx;
	if (name) {
		w = put(what, w, sizeof(what) - 1, name);
	} else {
		w = put(what, w, sizeof(what) - 1, "number ");
		w = put_uint(what, w, sizeof(what) - 1, nr);
	}
	what[w] = '\0';
	l = put(line, l, sizeof(line),
		"keel-vmm: error: worker killed by its seccomp filter "
		"(syscall ");
	l = put(line, l, sizeof(line), what);
	l = put(line, l, sizeof(line), ")\n");
	(void)!write(2, line, l);
	if (status_fd >= 0) {
		s = put(status, s, sizeof(status),
			"{\"reason\":\"crash\",\"detail\":\"worker "
			"killed by its seccomp filter (syscall ");
		s = put(status, s, sizeof(status), what);
		s = put(status, s, sizeof(status), ")\"}\n");
		if (!ftruncate(status_fd, 0) && pwrite(status_fd, status, s, 0) == (ssize_t)s)
			(void)fsync(status_fd);
	}
	_exit(1);
}

static int add_rule(scmp_filter_ctx ctx, const struct seccomp_rule *r)
{
	uint32_t action =
		r->errno_value ? SCMP_ACT_ERRNO((uint32_t)r->errno_value) : SCMP_ACT_ALLOW;
	int e = 0;

	switch (r->match) {
	case SECCOMP_ANY:
		return seccomp_rule_add(ctx, action, r->nr, 0);
	case SECCOMP_ARG_IN:
		for (unsigned i = 0; !e && i < r->nvalues; i++)
			e = seccomp_rule_add(
				ctx, action, r->nr, 1,
				SCMP_CMP(r->arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, r->values[i]));
		return e;
	case SECCOMP_ARG_BITS:
		return seccomp_rule_add(
			ctx, action, r->nr, 1,
			SCMP_CMP(r->arg, SCMP_CMP_MASKED_EQ, r->values[0], r->values[0]));
	case SECCOMP_ARG_CLEAR:
		return seccomp_rule_add(ctx, action, r->nr, 1,
					SCMP_CMP(r->arg, SCMP_CMP_MASKED_EQ, r->values[0], 0));
	}
	return -EINVAL;
}

static int add_table(scmp_filter_ctx ctx, const struct seccomp_table *t, const char **bad)
{
	for (size_t i = 0; i < t->n; i++) {
		int e = add_rule(ctx, &t->rules[i]);

		/* The same call in two tables of one filter: libseccomp keeps the first. */
		if (e && e != -EEXIST) {
			*bad = t->name;
			return e;
		}
	}
	return 0;
}

/* A filter from n tables (and, in sanitizer builds, the sanitizers' table). */
static int build(const struct seccomp_table *const *tables, size_t n, scmp_filter_ctx *out,
		 const char **bad)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int e = ctx ? 0 : -ENOMEM;

	*bad = "seccomp_init";
	/* no_new_privs is set already (jail_early): libseccomp need not call prctl for it. */
	if (ctx && (e = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)))
		*bad = "NNP";
	/* A call from another architecture (int 0x80, x32) ends the whole worker, not the one
	 * thread libseccomp's default would kill (a vCPU thread gone with its locks held would
	 * leave a worker hung with no reason given). */
	if (!e && (e = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)))
		*bad = "BADARCH";
	for (size_t i = 0; !e && i < n; i++)
		e = add_table(ctx, tables[i], bad);
#if defined(__SANITIZE_ADDRESS__)
	if (!e)
		e = add_table(ctx, &seccomp_sanitizer, bad);
#endif
	if (e && ctx)
		seccomp_release(ctx);
	*out = e ? NULL : ctx;
	return e;
}

/* Load a filter for the calling thread; tsync: for every thread of the process. */
static int load(const struct seccomp_table *const *tables, size_t n, bool tsync, const char **bad)
{
	scmp_filter_ctx ctx;
	int e = build(tables, n, &ctx, bad);

	if (!e && tsync && (e = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)))
		*bad = "TSYNC";
	if (!e && (e = seccomp_load(ctx)))
		*bad = "seccomp_load";
	if (ctx)
		seccomp_release(ctx);
	return e;
}

static int load_class(enum seccomp_class c, const char **bad)
{
	return load(seccomp_classes[c].tables, seccomp_classes[c].ntables, false, bad);
}

int seccomp_compile(enum seccomp_class c, struct sock_fprog *prog, const char **bad)
{
	const struct seccomp_class_list *cls = &seccomp_classes[c];
	struct sock_filter *code = NULL;
	scmp_filter_ctx ctx;
	off_t size = 0;
	int fd = -1, e;

	e = build(cls->tables, cls->ntables, &ctx, bad);
	if (!e) {
		*bad = "memfd_create";
		fd = memfd_create("keel-seccomp", MFD_CLOEXEC);
		e = fd < 0 ? -errno : 0;
	}
	if (!e && (e = seccomp_export_bpf(ctx, fd)))
		*bad = "seccomp_export_bpf";
	if (!e) {
		*bad = "reading the exported filter";
		size = lseek(fd, 0, SEEK_END);
		code = size > 0 && size % sizeof(*code) == 0 ? malloc((size_t)size) : NULL;
		if (!code || pread(fd, code, (size_t)size, 0) != size)
			e = -EIO;
	}
	if (fd >= 0)
		close(fd);
	if (ctx)
		seccomp_release(ctx);
	if (e) {
		free(code);
		return e;
	}
	prog->filter = code;
	prog->len = (unsigned short)(size / (off_t)sizeof(*code));
	return 0;
}

int seccomp_install_process(char *err, size_t errlen)
{
	const struct seccomp_table *tables[SECCOMP_NCLASSES * SECCOMP_MAX_TABLES];
	struct sigaction sa = {.sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO};
	const char *bad;
	size_t n = 0;
	int e;

	for (int nr = 0; nr < SECCOMP_NAMES; nr++)
		syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	/* ASan's allocator has no arenas and ignores it (returns 0). */
	(void)mallopt(M_ARENA_MAX, SECCOMP_ARENA_MAX);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL)) {
		snprintf(err, errlen, "cannot set up the worker's jail: SIGSYS handler: %s",
			 strerror(errno));
		return -errno;
	}
	/* The device threads' filters, made while the calls that make them are allowed. */
	e = seccomp_threads_prepare(&bad);
	/* Every thread at once: the union of the classes' tables. The vCPU threads, started
	 * by the main loop later, stay within the main loop's. */
	for (unsigned c = 0; c < SECCOMP_NCLASSES; c++) {
		if (c == SECCOMP_VCPU)
			continue;
		for (unsigned t = 0; t < seccomp_classes[c].ntables; t++) {
			const struct seccomp_table *tab = seccomp_classes[c].tables[t];
			size_t i = 0;

			while (i < n && tables[i] != tab)
				i++;
			if (i == n)
				tables[n++] = tab;
		}
	}
	if (!e)
		e = load(tables, n, true, &bad);
	if (e) {
		snprintf(err, errlen, "cannot set up the worker's jail: seccomp filter (%s): %s",
			 bad, strerror(-e));
		return e;
	}
	e = seccomp_threads_confine(err, errlen);
	if (e)
		return e;
	e = load_class(SECCOMP_MAIN, &bad);
	if (e)
		snprintf(err, errlen,
			 "cannot set up the worker's jail: the main loop's seccomp filter (%s): %s",
			 bad, strerror(-e));
	return e;
}

int seccomp_install_vcpu(void)
{
	const char *bad;

	return load_class(SECCOMP_VCPU, &bad);
}
