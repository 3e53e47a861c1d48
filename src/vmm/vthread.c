/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/vthread.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#define VTHREAD_STACK (8u << 20)
#define VTHREAD_GUARD (64u << 10)

int vthread_start(struct vthread *t, void *(*fn)(void *), void *arg)
{
	size_t size = VTHREAD_STACK + VTHREAD_GUARD;
	pthread_attr_t attr;
	sigset_t all, old;
	uint8_t *map;
	int r;

	map = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	/* The advice first: the stack must never be backed by a huge page, not even once. */
	if (madvise(map, size, MADV_NOHUGEPAGE) || mprotect(map, VTHREAD_GUARD, PROT_NONE)) {
		r = -errno;
		munmap(map, size);
		return r;
	}
	r = pthread_attr_init(&attr);
	r = r ?: pthread_attr_setstack(&attr, map + VTHREAD_GUARD, VTHREAD_STACK);
	/* Every signal blocked from the first instruction: SIGTERM, SIGINT and SIGHUP are the main
	 * loop's (its signalfd), and a thread that did not block them would take one and end the
	 * process without the orderly shutdown (the last NVRAM save, the status file). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = r ?: pthread_create(&t->id, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r) {
		munmap(map, size);
		return -r;
	}
	t->map = map;
	t->map_size = size;
	return 0;
}

void vthread_join(struct vthread *t)
{
	if (!t->map)
		return;
	pthread_join(t->id, NULL);
	munmap(t->map, t->map_size);
	t->map = NULL;
}
