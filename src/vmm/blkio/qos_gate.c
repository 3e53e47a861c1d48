/* SPDX-License-Identifier: Apache-2.0 */
/* Storage QoS's waiting room (qos_gate.h). */
#include "vmm/blkio/qos_gate.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"

static struct log_ratelimit gate_rl = LOG_RATELIMIT_INIT(5000, 5);

/* Fire in ns (at least 1); sooner: unless the timer fires before that already (another
 * bucket's request waits for it). */
static void arm(struct qos_gate *g, uint64_t ns, bool sooner)
{
	struct itimerspec its = {
		.it_value = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)}};
	uint64_t at = clock_mono_ns() + ns;

	if (sooner && g->deadline_ns && g->deadline_ns <= at)
		return;
	if (timerfd_settime(g->timer_fd, 0, &its, NULL)) {
		log_warn_ratelimited(&gate_rl, "storage QoS timer: %s", strerror(errno));
		return;
	}
	g->deadline_ns = at;
}

int qos_gate_init(struct qos_gate *g, const struct qos_gate_ops *ops, void *opaque, unsigned nfifo,
		  unsigned nbucket, const uint8_t *bucket_of, const struct blk_qos_limits *lim)
{
	uint64_t now = clock_mono_ns();

	memset(g, 0, sizeof(*g));
	g->timer_fd = -1;
	if (!nfifo || nfifo > QOS_GATE_FIFOS || !nbucket || nbucket > QOS_GATE_FIFOS)
		return -EINVAL;
	for (unsigned f = 0; f < nfifo; f++)
		if (bucket_of[f] >= nbucket)
			return -EINVAL;
	g->ops = ops;
	g->opaque = opaque;
	g->nfifo = nfifo;
	g->nbucket = nbucket;
	memcpy(g->bucket_of, bucket_of, nfifo);
	for (unsigned b = 0; b < nbucket; b++)
		blk_qos_init(&g->bucket[b], &lim[b], now);
	g->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	return g->timer_fd < 0 ? -errno : 0;
}

void qos_gate_fini(struct qos_gate *g)
{
	if (g->timer_fd >= 0)
		close(g->timer_fd);
	g->timer_fd = -1;
}

bool qos_gate_admit(struct qos_gate *g, unsigned fifo, uint16_t id, uint64_t bytes)
{
	unsigned b;
	struct blk_qos *q;
	uint64_t wait, now = clock_mono_ns();

	if (fifo >= g->nfifo) { /* not reached: the devices' FIFOs are their queues or LUNs */
		log_warn_ratelimited(&gate_rl, "storage QoS: no FIFO %u (of %u)", fifo, g->nfifo);
		return false;
	}
	b = g->bucket_of[fifo];
	q = &g->bucket[b];

	/* The windows that ended before this request came had what was outstanding without
	 * it. */
	blk_qos_tick(q, g->ops->outstanding(g->opaque, b) - 1, now);
	if (!blk_qos_limited(q) || g->n[fifo] >= QOS_GATE_DEPTH) {
		/* A full FIFO is not reached either (a device has at most QOS_GATE_DEPTH slots):
		 * the request starts, counted, rather than overwrite a waiting one. */
		if (blk_qos_limited(q))
			log_warn_ratelimited(&gate_rl, "storage QoS: FIFO %u full", fifo);
		blk_qos_force(q, bytes, now); /* counted all the same */
		return false;
	}
	/* Behind the requests of its bucket already waiting (the release takes turns). */
	wait = g->waiting[b] ? 0 : blk_qos_take(q, bytes, now);
	if (!g->waiting[b] && !wait)
		return false;
	blk_qos_throttled(q);
	g->fifo[fifo][(g->head[fifo] + g->n[fifo]) % QOS_GATE_DEPTH] = id;
	g->n[fifo]++;
	g->waiting[b]++;
	g->total++;
	if (wait) /* the first of its bucket to wait */
		arm(g, wait, true);
	return true;
}

void qos_gate_release(struct qos_gate *g, bool force)
{
	bool blocked[QOS_GATE_FIFOS] = {false};
	uint64_t now = clock_mono_ns(), min_wait = 0;

	for (unsigned b = 0; b < g->nbucket; b++)
		blk_qos_tick(&g->bucket[b], g->ops->outstanding(g->opaque, b), now);
	while (g->total) {
		unsigned f = g->next % g->nfifo, k, b;
		struct blk_qos *q;
		uint16_t id;
		uint64_t bytes, wait;

		/* The next FIFO in turn with a request whose bucket may still give. */
		for (k = 0; k < g->nfifo && (!g->n[f] || blocked[g->bucket_of[f]]); k++)
			f = (f + 1) % g->nfifo;
		if (k == g->nfifo)
			break;
		b = g->bucket_of[f];
		q = &g->bucket[b];
		id = g->fifo[f][g->head[f]];
		bytes = g->ops->bytes(g->opaque, f, id);
		if (force || !blk_qos_limited(q)) {
			blk_qos_force(q, bytes, now);
		} else if ((wait = blk_qos_take(q, bytes, now)) != 0) {
			blocked[b] = true; /* its other FIFOs wait their turn behind this one */
			if (!min_wait || wait < min_wait)
				min_wait = wait;
			g->next = f;
			continue;
		}
		g->head[f] = (g->head[f] + 1) % QOS_GATE_DEPTH;
		g->n[f]--;
		g->waiting[b]--;
		g->total--;
		g->next = f + 1;
		g->ops->run(g->opaque, f, id);
	}
	if (g->total)
		arm(g, min_wait ? min_wait : 1, false);
}

void qos_gate_drop(struct qos_gate *g)
{
	for (unsigned f = 0; f < g->nfifo; f++) {
		for (; g->n[f]; g->n[f]--, g->head[f] = (g->head[f] + 1) % QOS_GATE_DEPTH)
			g->ops->drop(g->opaque, f, g->fifo[f][g->head[f]]);
		g->head[f] = 0;
	}
	memset(g->waiting, 0, sizeof(g->waiting));
	g->total = 0;
}

unsigned qos_gate_remove(struct qos_gate *g, unsigned fifo, bool (*pick)(void *arg, uint16_t id),
			 void *arg, uint16_t out[QOS_GATE_DEPTH])
{
	uint16_t keep[QOS_GATE_DEPTH];
	unsigned nkeep = 0, nout = 0;

	if (fifo >= g->nfifo)
		return 0;
	for (unsigned i = 0; i < g->n[fifo]; i++) {
		uint16_t id = g->fifo[fifo][(g->head[fifo] + i) % QOS_GATE_DEPTH];

		if (pick(arg, id))
			out[nout++] = id;
		else
			keep[nkeep++] = id;
	}
	memcpy(g->fifo[fifo], keep, nkeep * sizeof(keep[0]));
	g->head[fifo] = 0;
	g->n[fifo] = nkeep;
	g->waiting[g->bucket_of[fifo]] -= nout;
	g->total -= nout;
	return nout; /* the timer, if armed for one of them, finds the others or nothing */
}

bool qos_gate_timer(struct qos_gate *g, int fd)
{
	uint64_t n;

	if (fd != g->timer_fd)
		return false;
	g->deadline_ns = 0; /* fired: the release arms it again for what still waits */
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn_ratelimited(&gate_rl, "storage QoS timer read: %s", strerror(errno));
	qos_gate_release(g, false);
	return true;
}

void qos_gate_done(struct qos_gate *g, unsigned b)
{
	unsigned n = g->ops->outstanding(g->opaque, b);

	/* The windows that ended before this completion had its request outstanding. */
	blk_qos_tick(&g->bucket[b], n + 1, clock_mono_ns());
	if (!n)
		blk_qos_idle(&g->bucket[b]);
}

void qos_gate_query(struct qos_gate *g, unsigned b, const struct blk_qos_limits *set,
		    struct blk_qos_limits *lim, struct blk_qos_stats *st, unsigned *waiting)
{
	struct blk_qos *q = &g->bucket[b];

	/* The windows that ended by now are judged by the limits they had. */
	blk_qos_tick(q, g->ops->outstanding(g->opaque, b), clock_mono_ns());
	if (set) {
		blk_qos_set(q, set, clock_mono_ns());
		if (g->waiting[b])
			arm(g, 1, true); /* the I/O thread releases what the new limits allow */
	}
	*lim = q->lim;
	*st = q->st;
	*waiting = g->waiting[b];
}

void qos_gate_log(const char *what, const struct blk_qos_limits *lim, bool changed)
{
	if (!changed && !lim->max_iops && !lim->max_bw && !lim->min_iops)
		return;
	log_info("%s: QoS %smax-iops %llu, max-bandwidth %llu bytes/s, min-iops %llu%s", what,
		 changed ? "now " : "", (unsigned long long)lim->max_iops,
		 (unsigned long long)lim->max_bw, (unsigned long long)lim->min_iops,
		 changed ? "" : " (0: none)");
}
