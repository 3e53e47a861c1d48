/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The jailed worker's seccomp filters (vmm/seccomp_filter.h) on real threads: each case forks
 * a child that installs them as the jail does (the process's filter on every thread, each
 * device thread's class filter, the main loop's, a vCPU thread's on top of the main loop's)
 * and then makes the calls the worker makes in that class. A call outside a filter ends the
 * child through the filter's SIGSYS handler (exit status 1, the call named on stderr).
 * These run in release builds too, where malloc is glibc's (the sanitizers replace it).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/blkio/blkio.h"
#include "vmm/dev/seccomp_probe.h"
#include "vmm/seccomp_filter.h"
#include "vmm/virtio/virtio.h"

/* linux/vhost.h brings the kernel's ring structures, whose names queue.h has for its own. */
#define vring_desc linux_vring_desc
#include <linux/vhost.h>
#undef vring_desc

/* More threads than glibc's 8 arenas before it counts CPUs (the reviewer's reproducer). */
#define NTHREADS 12
/* The child's exit statuses besides the filter's 1. */
#define CHILD_OK    0
#define CHILD_SETUP 2 /* could not set up the case */
#define CHILD_WRONG 3 /* a call returned what it should not */
#define CHILD_SKIP  4 /* the host cannot run the case (no io_uring) */

/* A case: what its threads do under their class's filter, and what the main loop does. */
struct jail_case {
	enum seccomp_class cls;	    /* the threads' class */
	unsigned nthreads;	    /* 0: the main loop only */
	int (*before)(void);	    /* in the child before the jail; CHILD_* */
	int (*thread_work)(long i); /* on each thread under its filter; CHILD_* */
	int (*main_work)(void);	    /* on the main loop after the threads' */
};

static const struct jail_case *cur;
static pthread_barrier_t registered, jailed;
static atomic_int verdict;

static void record(int r)
{
	int ok = CHILD_OK;

	if (r != CHILD_OK)
		atomic_compare_exchange_strong(&verdict, &ok, r);
}

static bool device(enum seccomp_class c)
{
	return c != SECCOMP_MAIN && c != SECCOMP_VCPU;
}

static void *case_thread(void *arg)
{
	long i = (long)arg;

	if (device(cur->cls)) {
		/* A device thread registers before the jail and is given its filter there. */
		if (seccomp_thread_begin(cur->cls))
			record(CHILD_SETUP);
		pthread_barrier_wait(&registered);
		pthread_barrier_wait(&jailed);
	} else if (seccomp_install_vcpu()) {
		/* A vCPU thread is started by the main loop and adds its own. */
		record(CHILD_SETUP);
		return NULL;
	}
	record(cur->thread_work(i));
	/* Keep the thread (and its arena) alive while the others take theirs. */
	usleep(100000);
	return NULL;
}

static int child(const struct jail_case *c)
{
	pthread_t t[NTHREADS];
	char err[256];
	int r;

	cur = c;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return CHILD_SETUP;
	if (c->before && (r = c->before()) != CHILD_OK)
		return r;
	pthread_barrier_init(&registered, NULL, c->nthreads + 1);
	pthread_barrier_init(&jailed, NULL, c->nthreads + 1);
	if (device(c->cls))
		for (long i = 0; i < (long)c->nthreads; i++)
			if (pthread_create(&t[i], NULL, case_thread, (void *)i))
				return CHILD_SETUP;
	if (device(c->cls))
		pthread_barrier_wait(&registered);
	if (seccomp_install_process(err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return CHILD_SETUP;
	}
	if (device(c->cls))
		pthread_barrier_wait(&jailed);
	else
		for (long i = 0; i < (long)c->nthreads; i++)
			if (pthread_create(&t[i], NULL, case_thread, (void *)i))
				return CHILD_SETUP;
	for (unsigned i = 0; i < c->nthreads; i++)
		pthread_join(t[i], NULL);
	if (c->main_work)
		record(c->main_work());
	return atomic_load(&verdict);
}

/* Run c in a child; its exit status. */
static int run(const struct jail_case *c)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child(c));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == CHILD_SKIP)
		skip();
	return WEXITSTATUS(status);
}

/* glibc's malloc: each thread's first allocation takes a new arena; past 8 of them glibc
 * would count the CPUs (openat of /sys and /proc, then sched_getaffinity). */
static int work_malloc(long i)
{
	char *volatile p = malloc(64 + (size_t)i);

	if (!p)
		return CHILD_WRONG;
	memset(p, 1, 64);
	free(p);
	return CHILD_OK;
}

/* The CPU count itself, the way glibc takes it in the jail (sched_getaffinity at the end). */
static int work_nprocs(long i)
{
	(void)i;
	return get_nprocs() >= 1 ? CHILD_OK : CHILD_WRONG;
}

static int main_nprocs(void)
{
	return work_nprocs(0);
}

static void test_malloc_many_threads(void **state)
{
	static const enum seccomp_class classes[] = {
		SECCOMP_VCPU,  SECCOMP_DISK,	SECCOMP_BLOCK_POOL, SECCOMP_NET,
		SECCOMP_VSOCK, SECCOMP_CONSOLE, SECCOMP_RNG};

	(void)state;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		struct jail_case c = {
			.cls = classes[i], .nthreads = NTHREADS, .thread_work = work_malloc};

		print_message("%s: %d threads allocate\n", seccomp_classes[classes[i]].name,
			      NTHREADS);
		assert_int_equal(run(&c), CHILD_OK);
	}
}

static void test_nprocs_every_class(void **state)
{
	(void)state;
	for (unsigned cls = 0; cls < SECCOMP_NCLASSES; cls++) {
		struct jail_case c = {.cls = cls, .nthreads = 1, .thread_work = work_nprocs};

		if (cls == SECCOMP_MAIN) {
			c.nthreads = 0;
			c.main_work = main_nprocs;
		}
		print_message("%s: get_nprocs\n", seccomp_classes[cls].name);
		assert_int_equal(run(&c), CHILD_OK);
	}
}

/* virtio-net's I/O thread mutes the tap in its own epoll set when the guest's receive
 * buffers run out (virtio/net.c, through virtio_dev_watch_mod), and unmutes it. */
static struct virtio_dev watch_dev = {.nthreads = 1};
static int watch_fd = -1;

static int watch_before(void)
{
	watch_dev.io[0].epfd = epoll_create1(EPOLL_CLOEXEC);
	watch_fd = eventfd(0, EFD_CLOEXEC);
	if (watch_dev.io[0].epfd < 0 || watch_fd < 0 ||
	    virtio_dev_watch(&watch_dev, watch_fd, EPOLLIN))
		return CHILD_SETUP;
	return CHILD_OK;
}

static int watch_work(long i)
{
	(void)i;
	if (virtio_dev_watch_mod(&watch_dev, watch_fd, 0) ||
	    virtio_dev_watch_mod(&watch_dev, watch_fd, EPOLLIN))
		return CHILD_WRONG;
	return CHILD_OK;
}

static void test_net_watch_mod(void **state)
{
	struct jail_case c = {.cls = SECCOMP_NET,
			      .nthreads = 1,
			      .before = watch_before,
			      .thread_work = watch_work};

	(void)state;
	assert_int_equal(run(&c), CHILD_OK);
}

/* A disk's requests in flight: a guest's reset on a vCPU thread drains them (blkio_reap
 * waits), the main loop's quiesce commits them; both enter the io_uring. */
static struct blkio *ring_io;
static int ring_file = -1;
static char ring_buf[NTHREADS + 1][512];

static int ring_before(void)
{
	char path[] = "/tmp/keel-seccomp-XXXXXX";
	const char *why;

	unsetenv("KEEL_BLKIO");
	if (blkio_create(1, 8, &ring_io, &why))
		return CHILD_SETUP;
	if (!blkio_uses_uring(ring_io))
		return CHILD_SKIP;
	ring_file = mkstemp(path);
	if (ring_file < 0)
		return CHILD_SETUP;
	unlink(path);
	return ftruncate(ring_file, 4096) ? CHILD_SETUP : CHILD_OK;
}

/* One read through the ring, committed and waited for on the calling thread. */
static int ring_read(unsigned slot)
{
	static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
	struct iovec iov = {ring_buf[slot], sizeof(ring_buf[slot])};
	struct blkio_req req = {.op = BLKIO_READ, .fd = ring_file, .iov = &iov, .niov = 1};
	struct blkio_req *done = NULL;
	unsigned n;

	/* A queue's calls come from one thread at a time (blkio.h). */
	pthread_mutex_lock(&one);
	blkio_submit(ring_io, 0, &req);
	blkio_commit(ring_io, 0);
	n = blkio_reap(ring_io, 0, &done, 1, true);
	pthread_mutex_unlock(&one);
	return n == 1 && done == &req && req.res == 512 ? CHILD_OK : CHILD_WRONG;
}

static int ring_vcpu(long i)
{
	return ring_read((unsigned)i);
}

static int ring_main(void)
{
	return ring_read(NTHREADS);
}

static void test_uring_main_and_vcpu(void **state)
{
	struct jail_case c = {.cls = SECCOMP_VCPU,
			      .nthreads = 2,
			      .before = ring_before,
			      .thread_work = ring_vcpu,
			      .main_work = ring_main};

	(void)state;
	assert_int_equal(run(&c), CHILD_OK);
}

/* How many seccomp filters the calling thread has (/proc's Seccomp_filters), or -errno when
 * its status cannot be read. */
static int filters_of_self(void)
{
	char buf[4096], *p;
	int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strstr(buf, "Seccomp_filters:");
	return p ? atoi(p + 16) : -ENOENT;
}

static int main_filters, late_efd = -1;

/* A device thread that begins after the jail is refused: it would run under the main
 * loop's filter and its class's at once. All but a virtio-net I/O thread (a hot-added
 * adapter's, hotplug.c): the main loop's filter allows all that class needs, so the thread
 * adds its class's on top, which leaves it exactly its class's: its eventfds and readv pass,
 * and it has one filter more than the main loop (or, outside sanitizer builds, where every
 * class may open files, its class's openat fails: EACCES, as at every device thread's end). */
static void *late_thread(void *arg)
{
	intptr_t r = seccomp_thread_begin((enum seccomp_class)(intptr_t)arg);
	uint64_t one = 1, got = 0;
	struct iovec iov = {&got, sizeof(got)};
	int f;

	if (r || (intptr_t)arg != SECCOMP_NET)
		return (void *)r;
	if (write(late_efd, &one, sizeof(one)) != sizeof(one) ||
	    readv(late_efd, &iov, 1) != sizeof(got) || got != 1)
		return (void *)(intptr_t)1;
	f = filters_of_self();
	if (f != -EACCES && f != main_filters + 1)
		return (void *)(intptr_t)2;
	return NULL;
}

static int late_main(void)
{
	pthread_t t;
	void *r;

	main_filters = filters_of_self();
	late_efd = eventfd(0, EFD_CLOEXEC);
	if (main_filters < 1 || late_efd < 0)
		return CHILD_SETUP;
	if (pthread_create(&t, NULL, late_thread, (void *)(intptr_t)SECCOMP_DISK) ||
	    pthread_join(t, &r))
		return CHILD_SETUP;
	if ((intptr_t)r != -EPERM)
		return CHILD_WRONG;
	if (pthread_create(&t, NULL, late_thread, (void *)(intptr_t)SECCOMP_NET) ||
	    pthread_join(t, &r))
		return CHILD_SETUP;
	return r == NULL ? CHILD_OK : CHILD_WRONG;
}

static void test_device_thread_after_jail(void **state)
{
	struct jail_case c = {.cls = SECCOMP_MAIN, .main_work = late_main};

	(void)state;
	assert_int_equal(run(&c), CHILD_OK);
}

/* A medium inserted through the control socket may be a block device: the main loop asks
 * its size (disk/raw.c). On a regular file the kernel answers ENOTTY; the filter lets the
 * call through. */
static int media_fd = -1;

static int media_before(void)
{
	char path[] = "/tmp/keel-seccomp-XXXXXX";

	media_fd = mkstemp(path);
	if (media_fd < 0)
		return CHILD_SETUP;
	unlink(path);
	return CHILD_OK;
}

static int media_main(void)
{
	uint64_t bytes;

	return ioctl(media_fd, BLKGETSIZE64, &bytes) < 0 && errno == ENOTTY ? CHILD_OK
									    : CHILD_WRONG;
}

static void test_main_block_size(void **state)
{
	struct jail_case c = {.cls = SECCOMP_MAIN, .before = media_before, .main_work = media_main};

	(void)state;
	assert_int_equal(run(&c), CHILD_OK);
}

/* A network adapter hot-added with keeld's /dev/vhost-net (control "nic-add", hotplug.c):
 * the main loop, jailed, makes the worker the instance's owner and reads its features
 * (vhost_net_open), with the interrupt relays' eventfds and their watches in the card's
 * epoll set. This host may have no vhost-net: on an eventfd the kernel answers ENOTTY, and
 * the filter lets the calls through. No other class may make them: a vCPU thread's ends the
 * worker, and so does a late virtio-net I/O thread's (a hot-added card's, under the main
 * loop's filter and its class's). */
static int vhost_open_calls(void)
{
	uint64_t features = 0;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), ep = epoll_create1(EPOLL_CLOEXEC), r;
	struct epoll_event ev = {.events = EPOLLIN};

	if (fd < 0 || ep < 0)
		return CHILD_SETUP;
	r = ioctl(fd, VHOST_SET_OWNER) < 0 && errno == ENOTTY &&
			    ioctl(fd, VHOST_GET_FEATURES, &features) < 0 && errno == ENOTTY &&
			    !epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)
		    ? CHILD_OK
		    : CHILD_WRONG;
	close(fd);
	close(ep);
	return r;
}

static int vhost_owner_call(long i)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	(void)i;
	if (fd < 0)
		return CHILD_SETUP;
	(void)ioctl(fd, VHOST_SET_OWNER);
	return CHILD_WRONG; /* the filter let it through */
}

static void *late_net_owner(void *arg)
{
	(void)arg;
	if (seccomp_thread_begin(SECCOMP_NET))
		return (void *)(intptr_t)CHILD_SETUP;
	return (void *)(intptr_t)vhost_owner_call(0);
}

static int late_net_owner_main(void)
{
	pthread_t t;
	void *r;

	if (vhost_open_calls() != CHILD_OK)
		return CHILD_WRONG;
	if (pthread_create(&t, NULL, late_net_owner, NULL) || pthread_join(t, &r))
		return CHILD_SETUP;
	return (int)(intptr_t)r;
}

static void test_vhost_open_main_only(void **state)
{
	struct jail_case main_loop = {.cls = SECCOMP_MAIN, .main_work = vhost_open_calls},
			 vcpu = {.cls = SECCOMP_VCPU,
				 .nthreads = 1,
				 .thread_work = vhost_owner_call},
			 net = {.cls = SECCOMP_NET, .nthreads = 1, .thread_work = vhost_owner_call},
			 late = {.cls = SECCOMP_MAIN, .main_work = late_net_owner_main};

	(void)state;
	assert_int_equal(run(&main_loop), CHILD_OK);
	/* Exit status 1: the filter's SIGSYS handler ended the child. */
	assert_int_equal(run(&vcpu), 1);
	assert_int_equal(run(&net), 1);
	assert_int_equal(run(&late), 1);
}

/* The kernel's struct sigaction for rt_sigaction (x86-64). */
struct ksigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

/* Set SIGSYS to be ignored by the raw call, with the signal number's register as given (the
 * kernel reads its low 32 bits): any return means the filter let it through. */
static int sigsys_ignore(uint64_t signum)
{
	struct ksigaction sa = {.handler = SIG_IGN};

	syscall(SYS_rt_sigaction, signum, &sa, NULL, sizeof(sa.mask));
	return CHILD_WRONG;
}

/* The signal number's register for the next case (set before run forks the child). */
static uint64_t sigsys_arg;

static int work_sigsys(long i)
{
	(void)i;
	return sigsys_ignore(sigsys_arg);
}

static int main_sigsys(void)
{
	return sigsys_ignore(sigsys_arg);
}

/* Another signal's handler: the main loop may still set it. */
static int main_sigusr2(void)
{
	struct sigaction sa = {.sa_handler = SIG_IGN};

	return sigaction(SIGUSR2, &sa, NULL) ? CHILD_WRONG : CHILD_OK;
}

/* No thread of any class can replace the filter's SIGSYS handler (a taken-over worker that
 * could would survive its refused calls): the call itself traps and the handler ends the
 * child (exit status 1), with the signal number as is and with high bits set. */
static void test_sigsys_handler_pinned(void **state)
{
	struct jail_case other = {.cls = SECCOMP_MAIN, .main_work = main_sigusr2};

	(void)state;
	for (unsigned cls = 0; cls < SECCOMP_NCLASSES; cls++) {
		for (int high = 0; high < 2; high++) {
			struct jail_case c = {
				.cls = cls, .nthreads = 1, .thread_work = work_sigsys};

			if (cls == SECCOMP_MAIN) {
				c.nthreads = 0;
				c.main_work = main_sigsys;
			}
			sigsys_arg = high ? (1ull << 32) | SIGSYS : SIGSYS;
			print_message("%s: rt_sigaction(SIGSYS)%s\n", seccomp_classes[cls].name,
				      high ? " with high bits" : "");
			assert_int_equal(run(&c), 1);
		}
	}
	assert_int_equal(run(&other), CHILD_OK);
}

#if defined(KEEL_TEST_HOOKS)
/* Test builds' seccomp probe (vmm/dev/seccomp_probe.h), whose calls the e2e jail case has a
 * guest ask for. The vCPU request is a call the main loop's list allows (it returns there)
 * and the vCPU list does not (the vCPU thread is ended); a value that is no request does
 * nothing on either. */
static int probe_vcpu(long i)
{
	(void)i;
	return seccomp_probe_request(SECCOMP_PROBE_VCPU) == 1 ? CHILD_WRONG : CHILD_SETUP;
}

static int probe_ignored(long i)
{
	static const uint32_t not_requests[] = {
		0, 1, 2, 0x5ec00000u, 0x5ec00004u, 0xffffffffu, SECCOMP_PROBE_VCPU << 1};

	(void)i;
	for (size_t k = 0; k < sizeof(not_requests) / sizeof(not_requests[0]); k++)
		if (seccomp_probe_request(not_requests[k]) != 0)
			return CHILD_WRONG;
	return CHILD_OK;
}

static int probe_vcpu_on_main(void)
{
	return seccomp_probe_request(SECCOMP_PROBE_VCPU) == 1 ? CHILD_OK : CHILD_WRONG;
}

/* The main loop's request (the device hands it to the loop): executable memory, an argument
 * no list allows, ends the child on the main loop too. */
static int probe_main(void)
{
	return seccomp_probe_request(SECCOMP_PROBE_MAIN) == 1 ? CHILD_WRONG : CHILD_SETUP;
}

/* One device thread asks: a confined device thread (itself or the other) makes the call. */
static int probe_device(long i)
{
	if (i == 0)
		return seccomp_probe_request(SECCOMP_PROBE_DEVICE) == 1 ? CHILD_WRONG : CHILD_SETUP;
	usleep(2000000);
	return CHILD_WRONG; /* the call that ends the process did not come */
}

static void test_probe(void **state)
{
	struct jail_case vcpu = {.cls = SECCOMP_VCPU, .nthreads = 1, .thread_work = probe_vcpu},
			 ignored = {.cls = SECCOMP_VCPU,
				    .nthreads = 1,
				    .thread_work = probe_ignored,
				    .main_work = probe_vcpu_on_main},
			 dev = {.cls = SECCOMP_NET, .nthreads = 2, .thread_work = probe_device},
			 loop = {.cls = SECCOMP_MAIN, .main_work = probe_main};

	(void)state;
	/* Exit status 1: the filter's SIGSYS handler ended the child. */
	assert_int_equal(run(&vcpu), 1);
	assert_int_equal(run(&ignored), CHILD_OK);
	assert_int_equal(run(&dev), 1);
	assert_int_equal(run(&loop), 1);
	/* Unconfined (keel-vmm run by hand): the vCPU's call returns and touches nothing, and
	 * no device thread has a filter of its own to ask. */
	assert_int_equal(seccomp_probe_request(SECCOMP_PROBE_VCPU), 1);
	assert_int_equal(seccomp_probe_request(SECCOMP_PROBE_DEVICE), -ENOENT);
	assert_int_equal(seccomp_probe_request(SECCOMP_PROBE_MAIN), 1);
	assert_int_equal(seccomp_probe_request(0x5ec00004u), 0);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malloc_many_threads),
		cmocka_unit_test(test_nprocs_every_class),
		cmocka_unit_test(test_net_watch_mod),
		cmocka_unit_test(test_uring_main_and_vcpu),
		cmocka_unit_test(test_device_thread_after_jail),
		cmocka_unit_test(test_main_block_size),
		cmocka_unit_test(test_vhost_open_main_only),
		cmocka_unit_test(test_sigsys_handler_pinned),
#if defined(KEEL_TEST_HOOKS)
		cmocka_unit_test(test_probe),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
