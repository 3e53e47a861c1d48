/* SPDX-License-Identifier: Apache-2.0 */
/* The block backend's thread pool: see pool.h. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/blkio/pool.h"
#include "vmm/seccomp_filter.h"

/* preadv/pwritev of the whole request, retrying short transfers and EINTR. A read that
 * meets the end of the file stops there (the caller sees fewer bytes). */
static int64_t pool_rw(struct blkio_req *r)
{
	struct iovec iov[64];
	uint64_t done = 0, off = r->off;
	unsigned i = 0, skip = 0;

	while (i < r->niov) {
		unsigned n = 0, k;
		ssize_t got;

		for (k = i; k < r->niov && n < 64; k++, n++)
			iov[n] = r->iov[k];
		iov[0].iov_base = (uint8_t *)iov[0].iov_base + skip;
		iov[0].iov_len -= skip;
		got = r->op == BLKIO_READ ? preadv(r->fd, iov, (int)n, (off_t)off)
					  : pwritev(r->fd, iov, (int)n, (off_t)off);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			return r->op == BLKIO_READ ? (int64_t)done : -EIO;
		done += (uint64_t)got;
		off += (uint64_t)got;
		/* Step past the buffers that are now full. */
		while (i < r->niov && (size_t)got >= r->iov[i].iov_len - skip) {
			got -= (ssize_t)(r->iov[i].iov_len - skip);
			skip = 0;
			i++;
		}
		skip += (unsigned)got;
	}
	return (int64_t)done;
}

static int64_t pool_run(struct blkio_req *r)
{
	switch (r->op) {
	case BLKIO_READ:
	case BLKIO_WRITE:
		return pool_rw(r);
	case BLKIO_FSYNC:
		return fdatasync(r->fd) ? -errno : 0;
	case BLKIO_CALL:
		return r->call(r->arg);
	}
	return -EINVAL;
}

static void *pool_thread(void *arg)
{
	struct blkio_pool *p = arg;
	uint64_t one = 1;

	pthread_setname_np(pthread_self(), "blkio-pool");
	if (seccomp_thread_begin(SECCOMP_BLOCK_POOL)) {
		log_err("blkio: cannot install the pool thread's seccomp filter: the worker ends");
		_exit(1);
	}
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct blkio_req *r;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->head)
			break;
		r = p->head;
		p->head = r->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		r->res = pool_run(r); /* no lock held */

		pthread_mutex_lock(&p->lock);
		r->next = NULL;
		if (p->done_tail[r->q])
			p->done_tail[r->q]->next = r;
		else
			p->done_head[r->q] = r;
		p->done_tail[r->q] = r;
		pthread_cond_broadcast(&p->done);
		if (write(p->efd[r->q], &one, sizeof(one)) < 0)
			log_debug("blkio: eventfd write: %s", strerror(errno));
	}
	pthread_mutex_unlock(&p->lock);
	seccomp_thread_end();
	return NULL;
}

int blkio_pool_start(struct blkio_pool *p, unsigned nthreads, const int *efd)
{
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->efd = efd;
	for (unsigned i = 0; i < nthreads && i < BLKIO_POOL_MAX; i++) {
		seccomp_thread_expect();
		if (vthread_start(&p->threads[i], pool_thread, p)) {
			seccomp_thread_unexpect();
			break;
		}
		p->nthreads++;
	}
	return p->nthreads ? 0 : -EAGAIN;
}

void blkio_pool_stop(struct blkio_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		vthread_join(&p->threads[i]);
	p->nthreads = 0;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
}

void blkio_pool_submit(struct blkio_pool *p, struct blkio_req *r)
{
	pthread_mutex_lock(&p->lock);
	r->next = NULL;
	if (p->tail)
		p->tail->next = r;
	else
		p->head = r;
	p->tail = r;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

unsigned blkio_pool_reap(struct blkio_pool *p, unsigned q, struct blkio_req **out, unsigned max,
			 bool wait)
{
	unsigned n = 0;

	pthread_mutex_lock(&p->lock);
	while (wait && !p->done_head[q])
		pthread_cond_wait(&p->done, &p->lock);
	while (n < max && p->done_head[q]) {
		out[n++] = p->done_head[q];
		p->done_head[q] = p->done_head[q]->next;
	}
	if (!p->done_head[q])
		p->done_tail[q] = NULL;
	pthread_mutex_unlock(&p->lock);
	return n;
}
