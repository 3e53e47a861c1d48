/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether a worker's guest still runs, seen from the host without asking the guest. Used by
 * the heartbeat to tell "agent gone" from "guest hung"; two sources:
 *  - KVM's statistics of its vCPUs (kvm_stats.h): the interrupts they accepted. A live guest
 *    takes its timer ticks and device interrupts; one spinning with interrupts off, halted for
 *    good, or in a stopped worker takes none. The worker opens the stats fds when it makes
 *    its vCPUs and hands keeld copies over its control socket ("vcpu-stats").
 *  - Where those are not to be had (kernels before 5.14, a worker that does not answer): the
 *    time its vCPU threads (keel-vmm names them "vcpuN") spent on a CPU, from
 *    /proc/PID/task/TID/schedstat (nanoseconds). This one takes a guest spinning with
 *    interrupts off for a live one.
 */
#ifndef KEEL_DAEMON_VCPU_PROGRESS_H
#define KEEL_DAEMON_VCPU_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/kvm_stats.h"

#define VCPU_STATS_MAX 256

/* A worker's vCPU statistics fds, as one heartbeat thread holds them. */
struct vcpu_stats {
	size_t n;
	int fd[VCPU_STATS_MAX];
	struct kvm_stats_map map[VCPU_STATS_MAX];
};

/* The sum of the on-CPU times of pid's vCPU threads into *ns. 0, or -errno (-ENOENT: no
 * such process, or one without vCPU threads). procdir is "/proc" but for tests. */
int vcpu_run_ns(const char *procdir, pid_t pid, uint64_t *ns) __attribute__((warn_unused_result));

/* Ask the worker at ctl_path for its vCPUs' statistics fds (timeout_ms for each request)
 * and map each: 0 with every vCPU's; -ENOTSUP when the worker has none (an older kernel) or
 * they lack the counters; another -errno (the worker did not answer...) with err saying why.
 * s is empty on failure. */
int vcpu_stats_get(const char *ctl_path, struct vcpu_stats *s, int timeout_ms, char *err,
		   size_t errlen) __attribute__((warn_unused_result));
/* The interrupts all of them accepted so far, into *sum, and of those the ones KVM injected
 * into *injected (kvm_stats_sum): 0 or -errno. */
int vcpu_stats_sum(const struct vcpu_stats *s, uint64_t *sum, uint64_t *injected)
	__attribute__((warn_unused_result));
void vcpu_stats_close(struct vcpu_stats *s);
/* Whether a and b are copies of the same files (kcmp): a worker asked again hands over the
 * same ones until a reset or a restore makes new vCPUs. false when kcmp cannot tell. */
bool vcpu_stats_same(const struct vcpu_stats *a, const struct vcpu_stats *b);

#endif
