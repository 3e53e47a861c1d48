/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which of a worker's two progress signals (vcpu_progress.h) the heartbeat believes, and how
 * long the guest has shown none. Pure: the heartbeat thread feeds it one round at a time.
 *
 * KVM's interrupt counters tell a guest spinning with interrupts off from a live one, but
 * they are blind to interrupts the CPU posts itself (Intel APICv, AMD AVIC: irq_injections
 * stays flat, halt_wakeup moves only when the guest halts), so a busy guest whose agent is
 * gone would read as hung. The counters are believed only once the injections have been seen
 * to grow across a round in which the agent answered (the guest demonstrably alive took the
 * ping's interrupt), and never again for that set of fds once they stayed flat across such a
 * round. The injections alone: an idle guest's halt wake-ups would earn trust under APICv,
 * which the same guest, busy later, would lose unseen.
 * Otherwise the vCPU threads' CPU time (schedstat) decides: it errs the safe way ("agent
 * gone" for a guest spinning with interrupts off, never "hung" for a live one).
 */
#ifndef KEEL_DAEMON_VCPU_JUDGE_H
#define KEEL_DAEMON_VCPU_JUDGE_H

#include <stdbool.h>

/* A signal's change since the previous round. */
enum vcpu_delta {
	VCPU_UNKNOWN = -1, /* not read this round */
	VCPU_FLAT = 0,
	VCPU_GREW = 1,
	VCPU_BASE = 2, /* the first reading (of a worker, of a set of fds): no change yet */
};

/* One heartbeat round: what each signal did since the previous one, and whether the agent
 * answered in between (the ping was sent after the previous sample, answered before this). */
struct vcpu_round {
	enum vcpu_delta stats;	  /* KVM's interrupt counters (injections and halt wake-ups) */
	enum vcpu_delta injected; /* ... the injections alone (irq_, nmi_injections) */
	enum vcpu_delta sched;	  /* the vCPU threads' CPU time */
	bool answered;
};

/* Per worker; zeroed (vcpu_judge_reset) for a new one. */
struct vcpu_judge {
	bool trusted; /* the counters grew across an answered round */
	bool blind;   /* ... or stayed flat across one: never believed for this set of fds */
	bool stats_known, sched_known;
	long long stats_moved_ms, sched_moved_ms; /* when each last grew (or was first read) */
};

void vcpu_judge_reset(struct vcpu_judge *j);
/* The worker handed over a new set of counter fds (a reset or a restore made new vCPUs):
 * what was learnt of the old set no longer holds. */
void vcpu_judge_new_stats(struct vcpu_judge *j);
void vcpu_judge_round(struct vcpu_judge *j, const struct vcpu_round *r, long long now_ms);
/* Whether the counters decide (else schedstat). */
bool vcpu_judge_by_stats(const struct vcpu_judge *j);
/* How long the deciding signal has not grown, into *still_ms; false when it was never read. */
bool vcpu_judge_still(const struct vcpu_judge *j, long long now_ms, long long *still_ms);

#endif
