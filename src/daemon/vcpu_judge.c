/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vcpu_judge.h"

#include <string.h>

void vcpu_judge_reset(struct vcpu_judge *j)
{
	memset(j, 0, sizeof(*j));
}

void vcpu_judge_new_stats(struct vcpu_judge *j)
{
	j->trusted = j->blind = j->stats_known = false;
}

/* One signal's delta into its known / moved pair. */
static void judge_signal(enum vcpu_delta d, bool *known, long long *moved_ms, long long now_ms)
{
	if (d == VCPU_UNKNOWN)
		return;
	if (!*known || d != VCPU_FLAT)
		*moved_ms = now_ms;
	*known = true;
}

void vcpu_judge_round(struct vcpu_judge *j, const struct vcpu_round *r, long long now_ms)
{
	/* An answer teaches only about counters read before and after it (a delta, not a
	 * base). */
	if (r->answered && j->stats_known && r->injected == VCPU_GREW)
		j->trusted = true;
	if (r->answered && j->stats_known && r->injected == VCPU_FLAT)
		j->blind = true;
	judge_signal(r->stats, &j->stats_known, &j->stats_moved_ms, now_ms);
	judge_signal(r->sched, &j->sched_known, &j->sched_moved_ms, now_ms);
}

bool vcpu_judge_by_stats(const struct vcpu_judge *j)
{
	return j->trusted && !j->blind && j->stats_known;
}

bool vcpu_judge_still(const struct vcpu_judge *j, long long now_ms, long long *still_ms)
{
	bool stats = vcpu_judge_by_stats(j);

	if (!(stats ? j->stats_known : j->sched_known))
		return false;
	*still_ms = now_ms - (stats ? j->stats_moved_ms : j->sched_moved_ms);
	return true;
}
