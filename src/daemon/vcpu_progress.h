/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether a worker's guest still runs, seen from the host without asking the guest: the time
 * its vCPU threads (keel-vmm names them "vcpuN") spent on a CPU, from the kernel's
 * /proc/PID/task/TID/schedstat (nanoseconds). A live guest's vCPUs run at least at its timer
 * ticks and when a device wakes them; one that hangs with its vCPUs halted (or a worker that
 * is stopped) adds nothing. Used by the heartbeat to tell "agent gone" from "guest hung".
 */
#ifndef KEEL_DAEMON_VCPU_PROGRESS_H
#define KEEL_DAEMON_VCPU_PROGRESS_H

#include <stdint.h>
#include <sys/types.h>

/* The sum of the on-CPU times of pid's vCPU threads into *ns. 0, or -errno (-ENOENT: no
 * such process, or one without vCPU threads). procdir is "/proc" but for tests. */
int vcpu_run_ns(const char *procdir, pid_t pid, uint64_t *ns) __attribute__((warn_unused_result));

#endif
