/* SPDX-License-Identifier: Apache-2.0 */
/* Registering the device threads and giving each its class's filter (seccomp_threads.h). */
#include "vmm/seccomp_threads.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"

/* The signal that has a device thread load its filter (vCPU threads keep it blocked; their
 * kick is SIGRTMIN + 1). */
#define SIG_CONFINE (SIGRTMIN + 2)
/* Device threads at once: one per virtio device and the block pools'. More than a jailed
 * worker may have tasks (RLIMIT_NPROC, VMDEF_WORKER_TASKS) for any VM keeld accepts. */
#define SLOTS 1024
/* How long the jail waits for every device thread to take its filter. */
#define CONFINE_WAIT_MS 10000

enum { SLOT_FREE, SLOT_BEGUN, SLOT_CONFINED, SLOT_FAILED };

struct slot {
	atomic_int state;
	int error; /* SLOT_FAILED: the errno */
	enum seccomp_class cls;
	pid_t tid;	/* the kernel's: tgkill fails on a thread that is gone (a forked child's) */
	bool signalled; /* the jail asked it (under lock) */
#if defined(KEEL_TEST_HOOKS)
	atomic_int test; /* 1: make the forbidden call; 2: it returned */
#endif
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Signalled when a thread that was expected begins (or is no longer expected). */
static pthread_cond_t begun = PTHREAD_COND_INITIALIZER;
static unsigned expected; /* created, not begun yet (seccomp_thread_expect) */
static struct slot slots[SLOTS];
static bool armed;    /* the filters are in: a device thread that begins now is refused */
static bool overflow; /* a device thread found no slot: the jail cannot confine it */
static struct sock_fprog progs[SECCOMP_NCLASSES];
static __thread struct slot *self;

static bool device_class(unsigned c)
{
	return c != SECCOMP_MAIN && c != SECCOMP_VCPU;
}

/* Async-signal-safe: one system call. */
static void confine(struct slot *s)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[s->cls])) {
		s->error = errno;
		atomic_store(&s->state, SLOT_FAILED);
	} else {
		atomic_store(&s->state, SLOT_CONFINED);
	}
}

static void confine_handler(int sig)
{
	struct slot *s = self;
	int saved = errno;

	(void)sig;
	if (s && atomic_load(&s->state) == SLOT_BEGUN)
		confine(s);
#if defined(KEEL_TEST_HOOKS)
	if (s && atomic_load(&s->test) == 1) {
		/* A bad descriptor: unconfined, the call fails and creates nothing. */
		(void)syscall(SYS_mkdirat, -1, "keel-seccomp-probe", 0700);
		atomic_store(&s->test, 2);
	}
#endif
	errno = saved;
}

static int kick(const struct slot *s)
{
	return (int)syscall(SYS_tgkill, getpid(), s->tid, SIG_CONFINE);
}

int seccomp_threads_prepare(const char **bad)
{
	struct sigaction sa = {.sa_handler = confine_handler, .sa_flags = SA_RESTART};

	for (unsigned c = 0; c < SECCOMP_NCLASSES; c++) {
		int e;

		if (!device_class(c) || progs[c].filter)
			continue;
		e = seccomp_compile(c, &progs[c], bad);
		if (e)
			return e;
	}
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_CONFINE, &sa, NULL)) {
		*bad = "the device threads' signal handler";
		return -errno;
	}
	return 0;
}

int seccomp_thread_begin(enum seccomp_class c)
{
	struct slot *s = NULL;
	sigset_t set;

	if (!device_class(c))
		return -EINVAL;
	/* A blocked SIGSYS kills without its handler (which names the call for keeld). */
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	sigaddset(&set, SIG_CONFINE);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
#if defined(KEEL_TEST_HOOKS)
	/* Test builds: a block pool thread that the scheduler runs late (run-guest.py's
	 * late-threads case; the pool's threads are the ones nothing waits for before the jail,
	 * where the virtio I/O threads answer the devices' pause first). */
	const char *late = getenv("KEEL_VMM_TEST_LATE_POOL_MS");

	if (late && *late && c == SECCOMP_BLOCK_POOL)
		nanosleep(&(struct timespec){.tv_sec = atoi(late) / 1000,
					     .tv_nsec = (atoi(late) % 1000) * 1000000L},
			  NULL);
#endif
	pthread_mutex_lock(&lock);
	if (expected) {
		expected--;
		pthread_cond_broadcast(&begun);
	}
	/* After the jail a new thread would carry the main loop's filter under its class's:
	 * only what both allow, which is not what the device needs (the disk calls, sockets). */
	if (armed) {
		pthread_mutex_unlock(&lock);
		/* A hot-added network adapter's I/O thread (hotplug.c): the main loop's filter,
		 * which it inherited, allows everything its class does (seccomp_rules.c), so its
		 * own filter on top leaves it exactly its class's, as a vCPU thread's does. */
		if (c == SECCOMP_NET) {
			if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[c])) {
				log_err("a hot-added %s thread cannot install its filter: %s",
					seccomp_classes[c].name, strerror(errno));
				return -errno;
			}
			return 0;
		}
		log_err("a %s thread began after the jail: device threads must exist before it "
			"(they get their filters there)",
			seccomp_classes[c].name);
		return -EPERM;
	}
	for (unsigned i = 0; !s && i < SLOTS; i++)
		if (atomic_load(&slots[i].state) == SLOT_FREE)
			s = &slots[i];
	if (s) {
		s->cls = c;
		s->tid = (pid_t)syscall(SYS_gettid);
		s->signalled = false;
		s->error = 0;
#if defined(KEEL_TEST_HOOKS)
		atomic_store(&s->test, 0);
#endif
		self = s;
		atomic_store(&s->state, SLOT_BEGUN);
	} else {
		/* An unjailed worker needs no slot; the jail refuses to start. */
		overflow = true;
	}
	pthread_mutex_unlock(&lock);
	return 0;
}

void seccomp_thread_expect(void)
{
	pthread_mutex_lock(&lock);
	expected++;
	pthread_mutex_unlock(&lock);
}

void seccomp_thread_unexpect(void)
{
	pthread_mutex_lock(&lock);
	if (expected) {
		expected--;
		pthread_cond_broadcast(&begun);
	}
	pthread_mutex_unlock(&lock);
}

void seccomp_thread_end(void)
{
	if (!self)
		return;
	pthread_mutex_lock(&lock);
	atomic_store(&self->state, SLOT_FREE);
	self = NULL;
	pthread_mutex_unlock(&lock);
}

int seccomp_threads_confine(char *err, size_t errlen)
{
	long long give_up = clock_mono_ms() + CONFINE_WAIT_MS;
	unsigned n = 0;

	pthread_mutex_lock(&lock);
	/* Threads created before the jail that have not run yet: they are device threads of
	 * this VM and must get their filters, not be refused as late. */
	while (expected) {
		struct timespec until;
		long long left = give_up - clock_mono_ms();

		if (left <= 0) {
			unsigned n_late = expected;

			pthread_mutex_unlock(&lock);
			snprintf(
				err, errlen,
				"cannot set up the worker's jail: %u device threads created before "
				"it did not begin within %d s",
				n_late, CONFINE_WAIT_MS / 1000);
			return -ETIMEDOUT;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&begun, &lock, &until);
	}
	armed = true;
	if (overflow) {
		pthread_mutex_unlock(&lock);
		snprintf(err, errlen,
			 "cannot set up the worker's jail: more than %d device threads, so some "
			 "would run without their seccomp filters",
			 SLOTS);
		return -ENOSPC;
	}
	for (unsigned i = 0; i < SLOTS; i++) {
		if (atomic_load(&slots[i].state) != SLOT_BEGUN)
			continue;
		if (kick(&slots[i]) == 0) {
			slots[i].signalled = true;
			n++;
		}
	}
	pthread_mutex_unlock(&lock);
	for (;;) {
		unsigned waiting = 0;

		pthread_mutex_lock(&lock);
		for (unsigned i = 0; i < SLOTS; i++) {
			struct slot *s = &slots[i];
			int st = atomic_load(&s->state);

			if (!s->signalled)
				continue;
			if (st == SLOT_FAILED) {
				snprintf(err, errlen,
					 "cannot set up the worker's jail: a %s thread's seccomp "
					 "filter: %s",
					 seccomp_classes[s->cls].name, strerror(s->error));
				pthread_mutex_unlock(&lock);
				return -s->error;
			}
			if (st == SLOT_BEGUN)
				waiting++;
			else
				s->signalled = false; /* confined, or ended */
		}
		pthread_mutex_unlock(&lock);
		if (!waiting)
			break;
		if (clock_mono_ms() >= give_up) {
			snprintf(err, errlen,
				 "cannot set up the worker's jail: %u of %u device threads did not "
				 "take their seccomp filters within %d s",
				 waiting, n, CONFINE_WAIT_MS / 1000);
			return -ETIMEDOUT;
		}
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	log_debug("jail: %u device threads took their own seccomp filters", n);
	return 0;
}

#if defined(KEEL_TEST_HOOKS)
int seccomp_test_forbidden_thread(const char **cls)
{
	long long give_up = clock_mono_ms() + 5000;
	struct slot *s = NULL;

	pthread_mutex_lock(&lock);
	for (unsigned i = 0; armed && !s && i < SLOTS; i++)
		if (atomic_load(&slots[i].state) == SLOT_CONFINED)
			s = &slots[i];
	if (s) {
		*cls = seccomp_classes[s->cls].name;
		atomic_store(&s->test, 1);
		(void)kick(s);
	}
	pthread_mutex_unlock(&lock);
	if (!s)
		return -ENOENT;
	/* The filter ends the worker; without one the call returns and this says so. */
	while (atomic_load(&s->test) != 2 && clock_mono_ms() < give_up)
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	return 0;
}
#endif
