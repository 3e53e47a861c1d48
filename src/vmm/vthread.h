/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel-vmm's own threads (vCPUs, virtio device threads, block I/O workers): pthreads on
 * stacks keel maps itself and marks MADV_NOHUGEPAGE. With transparent huge pages "always"
 * (Debian's kernels), glibc's default stack (8 MiB of anonymous memory) gets a 2 MiB huge
 * page as soon as the thread touches a 2 MiB-aligned range that its mapping covers whole,
 * which happens as soon as the stack's mapping merges with a neighbouring anonymous one:
 * 2 MiB resident for a few KiB of stack, in the VMM's own memory (bench/firmware saw it).
 * Marked, the stack neither gets huge pages nor merges. Guest RAM keeps its huge pages
 * (mem.c asks for them). The stack is 8 MiB of address space, as glibc's, with a guard
 * below it; only what the thread touches is resident.
 */
#ifndef KEEL_VMM_VTHREAD_H
#define KEEL_VMM_VTHREAD_H

#include <pthread.h>
#include <stddef.h>

struct vthread {
	pthread_t id;
	void *map; /* the stack's mapping, guard included; NULL when not running */
	size_t map_size;
};

/* Start fn(arg) on a new thread with every signal blocked (it unblocks what it handles: the
 * vCPU kick, SIGSYS; the main loop takes SIGTERM, SIGINT and SIGHUP). Returns 0 or -errno. */
int vthread_start(struct vthread *t, void *(*fn)(void *), void *arg)
	__attribute__((warn_unused_result));
/* Wait for the thread to end and free its stack. */
void vthread_join(struct vthread *t);

#endif
