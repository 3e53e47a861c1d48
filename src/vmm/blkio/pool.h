/* SPDX-License-Identifier: Apache-2.0 */
/* The block backend's thread pool (blkio.h): blocking work, and all I/O where io_uring is
 * refused. Completions go to their queue's list and eventfd. Internal to src/vmm/blkio. */
#ifndef KEEL_VMM_BLKIO_POOL_H
#define KEEL_VMM_BLKIO_POOL_H

#include <pthread.h>
#include <stdbool.h>

#include "vmm/blkio/blkio.h"
#include "vmm/vthread.h"

#define BLKIO_POOL_MAX 4

struct blkio_pool {
	/* lock protects everything below; work: a job or stop; done: a completion. */
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct blkio_req *head, *tail; /* jobs not started */
	struct blkio_req *done_head[BLKIO_MAX_QUEUES], *done_tail[BLKIO_MAX_QUEUES];
	const int *efd; /* per queue: written once per completion */
	bool stopping;
	struct vthread threads[BLKIO_POOL_MAX];
	unsigned nthreads;
};

/* Start nthreads (at least one must start). */
int blkio_pool_start(struct blkio_pool *p, unsigned nthreads, const int *efd)
	__attribute__((warn_unused_result));
void blkio_pool_stop(struct blkio_pool *p);
void blkio_pool_submit(struct blkio_pool *p, struct blkio_req *r);
/* Take q's completions (at most max); with wait, block until there is one. */
unsigned blkio_pool_reap(struct blkio_pool *p, unsigned q, struct blkio_req **out, unsigned max,
			 bool wait);

#endif
