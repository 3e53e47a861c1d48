/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting a jailed keel-vmm (docs/security.md): the files it is handed, placed at
 * descriptors 3, 4, ... and named on its command line (`--fd NAME=N`), and the process itself,
 * PID 1 of a PID namespace of its own, born in its cgroup (clone3 with CLONE_INTO_CGROUP, or
 * clone held before exec until it is in it). The one way a worker is started: keeld's
 * supervisor (sup_spawn.c) and the lab's launcher (tests/lab/jailrun.c) both use it.
 */
#ifndef KEEL_DAEMON_WORKER_EXEC_H
#define KEEL_DAEMON_WORKER_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/vmdef.h"

#define WORKER_FD_FIRST 3
#define WORKER_FD_BASE	256 /* above WORKER_FD_FIRST + WORKER_FILES (the assertion below) */
#define WORKER_SOCKETS	4 /* control, serial, console, vsock */
#define WORKER_OWN	5 /* config, status, state, memory, vars */
#define WORKER_FILES                                                                               \
	(5 + WORKER_SOCKETS + WORKER_OWN + VMDEF_MAX_DISKS +                                       \
	 2 * VMDEF_MAX_NICS * VMDEF_NET_QUEUES_MAX + VMDEF_MAX_LUNS + VMDEF_CHAIN_FDS_MAX)

/* The files are placed at WORKER_FD_FIRST.. from copies held at WORKER_FD_BASE and above:
 * the two ranges must not meet, or a dup2 would replace a file not yet placed. */
_Static_assert(WORKER_FD_FIRST + WORKER_FILES <= WORKER_FD_BASE,
	       "the worker's files would be placed over the copies they are placed from");

struct worker_files {
	int fd[WORKER_FILES];
	char name[WORKER_FILES]
		 [16]; /* kernel|firmware, nvram, initrd, kvm, control, disk.I, disk.I.pJ ... */
	unsigned n;
	unsigned nparents; /* of them, differencing chains' parents */
};

/* Keep fd (taken over, closed on failure) as the worker's NAME; path names it in err. */
int worker_files_add(struct worker_files *wf, const char *name, const char *path, int fd, char *err,
		     size_t errlen) __attribute__((warn_unused_result));
void worker_files_close(struct worker_files *wf);
/* The worker's name for adapter i's queue pair j's file of kind opt ("net", "vhost"):
 * opt.I for pair 0, opt.I.qJ for the others (keel-vmm's --fd). */
void worker_pair_name(char *name, size_t len, const char *opt, unsigned i, unsigned j);
/* An adapter's kernel data path as its vhost setting (nets[].vhost, docs/virtio.md) says: n
 * /dev/vhost-net (one per queue pair) opened into fds, all or none. Returns n; 0 for vhost=off,
 * and for auto when they cannot be opened (logged for VM vm, with why: its worker uses the
 * user-space path); -ENODEV with err for on when they cannot be opened (saying why and what to
 * do). adapter names it in both ("network adapter 1 (tap k...)"). A start's
 * (worker_files_vhost) and a hot-added adapter's (vm_nethotplug.c). */
int worker_vhost_open(const char *vm, const char *adapter, enum vm_vhost mode, unsigned n, int *fds,
		      char *err, size_t errlen) __attribute__((warn_unused_result));
/* Adapter i's kernel data path (nets[].vhost, docs/virtio.md): one /dev/vhost-net per queue
 * pair added as vhost.I, vhost.I.q1 ... unless the adapter opts out; without them (logged)
 * the worker uses its user-space path, and with vhost=on that is -ENOEXEC with err. keeld
 * and the lab's launcher. */
int worker_files_vhost(const struct vm_def *def, unsigned i, struct worker_files *wf, char *err,
		       size_t errlen) __attribute__((warn_unused_result));
/* "--fd=NAME=N" for each file, appended to argv (NULL-ended, max slots): 0 or -E2BIG/-ENOMEM.
 * The strings are malloc'd. */
int worker_files_argv(const struct worker_files *wf, char **argv, int *argc, int max)
	__attribute__((warn_unused_result));

struct worker_exec {
	const char *vmm; /* keel-vmm's path */
	char **argv;
	int in;		  /* its standard input, or -1 for /dev/null */
	int out;	  /* its standard output and error */
	bool setsid;	  /* in a session of its own (keeld's: it survives keeld) */
	int cgfd;	  /* its cgroup's directory, or -1 */
	bool no_clone3;	  /* as if clone3 were missing (the tests' way to the fallback) */
	/* As if close_range(CLOSE_RANGE_CLOEXEC) failed (the tests' way to its fallback):
	 * EINVAL as on 5.9 and 5.10, ENOSYS as before 5.9 (no close_range at all); 0: no. */
	int close_range_errno;
	bool fell_back;	  /* set: clone3 failed and clone was used */
	int clone3_errno; /* then, why clone3 failed */
	const struct worker_files *wf;
};

/*
 * In a child between fork and exec (async-signal-safe): close every descriptor from first up
 * but keep (-1: none), with close_range without flags (5.9) or, before it, one close per
 * number below RLIMIT_NOFILE. close_range_errno ENOSYS stands for a kernel before 5.9 (the
 * tests'). For a child whose close_range(CLOSE_RANGE_CLOEXEC) failed (before 5.11): the
 * worker's, keeld's dnsmasq (switch_dhcp.c).
 */
void worker_close_from(int first, int keep, int close_range_errno);

/*
 * Start the worker and return its pid once it has exec'd keel-vmm; -errno with err (the
 * clone: "clone3 into its cgroup: ..."; -ENOEXEC: the exec failed, "cannot run keel-vmm ...").
 * in and out must be above WORKER_FD_FIRST + WORKER_FILES (worker_fd_above) or below 3.
 */
pid_t worker_exec_start(struct worker_exec *we, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Move *fd above every number the worker's files are placed at: 0 or -errno. */
int worker_fd_above(int *fd) __attribute__((warn_unused_result));

#endif
