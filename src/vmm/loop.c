/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_MAX_WATCHES 64

struct loop_watch {
	int fd;
	loop_fn cb;
	void *opaque;
};

/* Touched by the loop thread only. */
struct loop {
	int epfd;
	bool stop;
	struct loop_watch watches[LOOP_MAX_WATCHES];
};

int loop_create(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));
	unsigned i;

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int e = -errno;

		free(l);
		return e;
	}
	for (i = 0; i < LOOP_MAX_WATCHES; i++)
		l->watches[i].fd = -1;
	*out = l;
	return 0;
}

void loop_destroy(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fn cb, void *opaque)
{
	struct epoll_event ev = {.events = events};
	unsigned i;

	for (i = 0; i < LOOP_MAX_WATCHES && l->watches[i].fd >= 0; i++)
		;
	if (i == LOOP_MAX_WATCHES)
		return -ENOSPC;
	ev.data.ptr = &l->watches[i];
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	l->watches[i] = (struct loop_watch){fd, cb, opaque};
	return 0;
}

static struct loop_watch *loop_find(struct loop *l, int fd)
{
	unsigned i;

	for (i = 0; i < LOOP_MAX_WATCHES; i++)
		if (l->watches[i].fd == fd)
			return &l->watches[i];
	return NULL;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	struct loop_watch *w = loop_find(l, fd);
	struct epoll_event ev = {.events = events, .data.ptr = w};

	if (!w)
		return -ENOENT;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
}

void loop_del(struct loop *l, int fd)
{
	struct loop_watch *w = loop_find(l, fd);

	if (!w)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* A deleted watch may still be in the current batch of events: mark it dead. */
	w->fd = -1;
	w->cb = NULL;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[16];

	l->stop = false;
	while (!l->stop) {
		int n = epoll_wait(l->epfd, evs, 16, -1), i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = 0; i < n && !l->stop; i++) {
			struct loop_watch *w = evs[i].data.ptr;

			if (w->cb)
				w->cb(w->opaque, evs[i].events);
		}
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
