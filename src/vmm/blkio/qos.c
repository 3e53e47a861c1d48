/* SPDX-License-Identifier: Apache-2.0 */
/* Storage QoS token buckets (qos.h). */
#include "vmm/blkio/qos.h"

#define NS_PER_S 1000000000ll

uint64_t blk_qos_cost(uint64_t bytes)
{
	uint64_t n = bytes / BLK_QOS_IO_BYTES + (bytes % BLK_QOS_IO_BYTES != 0);

	return n ? n : 1;
}

/* One second of the limit: the bucket's capacity in nano-units. */
static __int128 cap(uint64_t rate)
{
	return (__int128)rate * NS_PER_S;
}

static void refill(struct blk_qos *q, uint64_t now_ns)
{
	__int128 dt;

	if (now_ns <= q->last_ns)
		return;
	dt = now_ns - q->last_ns;
	q->last_ns = now_ns;
	q->iops_tok += dt * q->lim.max_iops;
	if (q->iops_tok > cap(q->lim.max_iops))
		q->iops_tok = cap(q->lim.max_iops);
	q->bw_tok += dt * q->lim.max_bw;
	if (q->bw_tok > cap(q->lim.max_bw))
		q->bw_tok = cap(q->lim.max_bw);
}

void blk_qos_set(struct blk_qos *q, const struct blk_qos_limits *lim, uint64_t now_ns)
{
	q->lim = *lim;
	q->iops_tok = cap(lim->max_iops);
	q->bw_tok = cap(lim->max_bw);
	q->last_ns = now_ns;
}

void blk_qos_init(struct blk_qos *q, const struct blk_qos_limits *lim, uint64_t now_ns)
{
	*q = (struct blk_qos){.win_start_ns = now_ns};
	blk_qos_set(q, lim, now_ns);
}

bool blk_qos_limited(const struct blk_qos *q)
{
	return q->lim.max_iops || q->lim.max_bw;
}

/* Nanoseconds until a bucket of rate holds need (or is full, for a need beyond it). */
static uint64_t wait_for(__int128 tok, uint64_t rate, __int128 need)
{
	__int128 d;

	if (!rate)
		return 0;
	if (need > cap(rate))
		need = cap(rate);
	if (tok >= need)
		return 0;
	d = (need - tok + rate - 1) / rate;
	/* Saturated (not reached: a forced charge's debt is capped). */
	return d > (__int128)UINT64_MAX ? UINT64_MAX : (uint64_t)d;
}

static void charge(struct blk_qos *q, uint64_t bytes)
{
	uint64_t ios = blk_qos_cost(bytes);

	if (q->lim.max_iops)
		q->iops_tok -= (__int128)ios * NS_PER_S;
	if (q->lim.max_bw)
		q->bw_tok -= (__int128)bytes * NS_PER_S;
	q->st.requests++;
	q->st.ios += ios;
	q->st.bytes += bytes;
	q->win_ios += ios;
}

uint64_t blk_qos_take(struct blk_qos *q, uint64_t bytes, uint64_t now_ns)
{
	uint64_t a, b;

	refill(q, now_ns);
	a = wait_for(q->iops_tok, q->lim.max_iops, (__int128)blk_qos_cost(bytes) * NS_PER_S);
	b = wait_for(q->bw_tok, q->lim.max_bw, (__int128)bytes * NS_PER_S);
	if (a || b)
		return a > b ? a : b;
	charge(q, bytes);
	return 0;
}

/* A forced charge leaves at most one burst plus this request of debt in a bucket: however
 * many requests a pause drains, the wait after it stays bounded (and in range). */
static void cap_debt(__int128 *tok, uint64_t rate, __int128 need)
{
	__int128 floor_ = -(cap(rate) + need);

	if (rate && *tok < floor_)
		*tok = floor_;
}

void blk_qos_force(struct blk_qos *q, uint64_t bytes, uint64_t now_ns)
{
	refill(q, now_ns);
	charge(q, bytes);
	cap_debt(&q->iops_tok, q->lim.max_iops, (__int128)blk_qos_cost(bytes) * NS_PER_S);
	cap_debt(&q->bw_tok, q->lim.max_bw, (__int128)bytes * NS_PER_S);
}

void blk_qos_throttled(struct blk_qos *q)
{
	q->st.throttled++;
}

void blk_qos_idle(struct blk_qos *q)
{
	q->win_idle = true;
}

void blk_qos_tick(struct blk_qos *q, unsigned outstanding, uint64_t now_ns)
{
	while (now_ns - q->win_start_ns >= BLK_QOS_WINDOW_NS) {
		bool busy = !q->win_idle;
		bool short_ = q->lim.min_iops && busy && q->win_ios < q->lim.min_iops;

		q->st.below_min_seconds += short_;
		q->st.below_min = short_;
		q->win_start_ns += BLK_QOS_WINDOW_NS;
		q->win_ios = 0;
		q->win_idle = !outstanding;
		/* Long idle: the seconds since had nothing outstanding, no shortfall. */
		if (!outstanding && now_ns - q->win_start_ns >= 2 * BLK_QOS_WINDOW_NS) {
			q->win_start_ns +=
				(now_ns - q->win_start_ns) / BLK_QOS_WINDOW_NS * BLK_QOS_WINDOW_NS -
				BLK_QOS_WINDOW_NS;
			q->win_idle = true;
		}
	}
}
