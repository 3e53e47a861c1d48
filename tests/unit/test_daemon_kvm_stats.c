/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parser of a vCPU statistics fd's header and descriptors (src/daemon/kvm_stats.c) on
 * crafted blocks: counters found by name wherever they are, the wrong kinds ignored, and
 * every impossible size or offset refused; then reading and summing them from a file.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/kvm_stats.h"
#include "daemon/vcpu_progress.h"
#include "lib/unix_socket.h"

#define NAME_SIZE 48
#define DESC_OFF  40 /* after the header and an id string, as the kernel lays it out */

struct desc {
	uint32_t flags;
	uint16_t size;
	uint32_t offset;
	const char *name;
};

/* A block as the kernel writes it: header, id, descriptors, data (values[i] at 8 * i). */
static size_t build(unsigned char *buf, size_t cap, const struct desc *d, unsigned n,
		    const uint64_t *values, unsigned nvalues)
{
	uint32_t hdr[6] = {0, NAME_SIZE, n, 24, DESC_OFF, DESC_OFF + n * (16 + NAME_SIZE)};
	size_t end = hdr[5] + (size_t)nvalues * 8;

	assert_true(end <= cap);
	memset(buf, 0, end);
	memcpy(buf, hdr, sizeof(hdr));
	memcpy(buf + 24, "kvm-1234/vcpu0", 15);
	for (unsigned i = 0; i < n; i++) {
		unsigned char *p = buf + DESC_OFF + i * (16 + NAME_SIZE);

		memcpy(p, &d[i].flags, 4);
		memcpy(p + 6, &d[i].size, 2);
		memcpy(p + 8, &d[i].offset, 4);
		snprintf((char *)p + 16, NAME_SIZE, "%s", d[i].name);
	}
	memcpy(buf + hdr[5], values, (size_t)nvalues * 8);
	return end;
}

static const struct desc kernel_like[] = {
	{KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_NONE, 1, 0, "halt_poll_fail_hist_max"},
	{KVM_STATS_TYPE_CUMULATIVE, 1, 8, "exits"},
	{KVM_STATS_TYPE_CUMULATIVE, 1, 16, "halt_wakeup"},
	{KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS, 1, 24, "halt_wait_ns"},
	{KVM_STATS_TYPE_CUMULATIVE, 1, 32, "irq_injections"},
	{KVM_STATS_TYPE_CUMULATIVE, 1, 40, "nmi_injections"},
};
static const uint64_t kernel_values[] = {7, 1000000, 20, 555, 300, 4};

static void test_found_by_name(void **state)
{
	unsigned char buf[4096];
	size_t len = build(buf, sizeof(buf), kernel_like, 6, kernel_values, 6);
	uint32_t data = DESC_OFF + 6 * (16 + NAME_SIZE);
	struct kvm_stats_map m;
	size_t need;

	(void)state;
	assert_int_equal(kvm_stats_need(buf, len, &need), 0);
	assert_int_equal(need, data);
	assert_int_equal(kvm_stats_parse(buf, len, &m), 0);
	assert_int_equal(m.n, 3); /* exits and the ns and peak kinds are not interrupts taken */
	assert_int_equal(m.offset[0], data + 16);
	assert_int_equal(m.offset[1], data + 32);
	assert_int_equal(m.offset[2], data + 40);
}

static void test_wrong_kinds_ignored(void **state)
{
	static const struct desc d[] = {
		{KVM_STATS_TYPE_INSTANT, 1, 0, "irq_injections"},
		{KVM_STATS_TYPE_CUMULATIVE, 2, 0, "halt_wakeup"},
		{KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_CYCLES, 1, 0, "nmi_injections"},
		{KVM_STATS_TYPE_CUMULATIVE, 1, 0, "irq_injections_x"},
	};
	unsigned char buf[4096];
	size_t len = build(buf, sizeof(buf), d, 4, kernel_values, 1);
	struct kvm_stats_map m;

	(void)state;
	assert_int_equal(kvm_stats_parse(buf, len, &m), -ENOENT);
	assert_int_equal(m.n, 0);
	len = build(buf, sizeof(buf), d, 0, kernel_values, 0); /* no descriptors at all */
	assert_int_equal(kvm_stats_parse(buf, len, &m), -ENOENT);
}

static void put32(unsigned char *buf, size_t off, uint32_t v)
{
	memcpy(buf + off, &v, 4);
}

static void test_malformed(void **state)
{
	unsigned char buf[4096];
	size_t len = build(buf, sizeof(buf), kernel_like, 6, kernel_values, 6), need;
	unsigned char bad[4096];
	struct kvm_stats_map m;

	(void)state;
	/* Shorter than the header, and every length short of the descriptors' end. */
	for (size_t l = 0; l < DESC_OFF + 6 * (16 + NAME_SIZE); l++)
		assert_int_equal(kvm_stats_parse(buf, l, &m), -EPROTO);
	assert_int_equal(kvm_stats_need(buf, 23, &need), -EPROTO);
	/* name_size 0 and huge; num_desc huge; descriptors over the header; a block past the
	 * cap; an offset that overflows 32 bits with num_desc * size. */
	static const struct {
		size_t off;
		uint32_t v;
	} cases[] = {{4, 0},   {4, 1u << 20},	  {8, 1u << 20}, {16, 0},
		     {16, 23}, {16, 0xffffff00u}, {8, 65536},	 {4, 4096}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, buf, len);
		put32(bad, cases[i].off, cases[i].v);
		assert_int_equal(kvm_stats_parse(bad, len, &m), -EPROTO);
	}
	/* A name that fills its field without a NUL. */
	memcpy(bad, buf, len);
	memset(bad + DESC_OFF + 16, 'a', NAME_SIZE);
	assert_int_equal(kvm_stats_parse(bad, len, &m), -EPROTO);
}

static void test_read_and_sum(void **state)
{
	unsigned char buf[4096];
	size_t len = build(buf, sizeof(buf), kernel_like, 6, kernel_values, 6);
	struct kvm_stats_map m;
	uint64_t sum, injected;
	int fd = memfd_create("kvm-stats", MFD_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(kvm_stats_map_fd(fd, &m), 0);
	assert_int_equal(kvm_stats_sum(fd, &m, &sum, &injected), 0);
	assert_int_equal(sum, 20 + 300 + 4);
	assert_int_equal(injected, 300 + 4); /* halt_wakeup apart */
	/* The data cut short: the read says so instead of summing what is not there. */
	assert_int_equal(ftruncate(fd, (off_t)len - 8), 0);
	assert_int_equal(kvm_stats_sum(fd, &m, &sum, &injected), -EPROTO);
	/* A header only, its descriptors missing. */
	assert_int_equal(ftruncate(fd, 24), 0);
	assert_int_equal(kvm_stats_map_fd(fd, &m), -EPROTO);
	close(fd);
}

/* A worker (compromised) answering one "vcpu-stats" with its reply and fds. */
struct fake_worker {
	int listen_fd;
	const char *reply;
	int fds[2];
	size_t nfd;
	unsigned requests;
};

static unsigned fake_requests; /* the last ask_fake's */

/* Serves requests until the listening socket is shut down; counts them. */
static void *fake_worker_run(void *arg)
{
	struct fake_worker *w = arg;
	char line[512];
	int c;

	while ((c = accept(w->listen_fd, NULL, NULL)) >= 0) {
		w->requests++;
		if (read(c, line, sizeof(line)) > 0 &&
		    unix_send_fds(c, w->reply, strlen(w->reply), w->fds, w->nfd, 0) < 0)
			perror("fake worker");
		close(c);
	}
	return NULL;
}

static size_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* vcpu_stats_get against the fake worker: its result, with no descriptor left behind. */
static int ask_fake(const char *reply, const int *fds, size_t nfd, char *err, size_t errlen)
{
	char dir[] = "/tmp/keel-stats-XXXXXX", path[64];
	struct fake_worker w = {.reply = reply, .nfd = nfd};
	struct vcpu_stats *s = calloc(1, sizeof(*s));
	size_t before;
	pthread_t t;
	int r;

	assert_non_null(s);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	if (nfd)
		memcpy(w.fds, fds, nfd * sizeof(int));
	w.listen_fd = unix_listen(path, 1);
	assert_true(w.listen_fd >= 0);
	/* A blocking accept: the fake worker may ask before the client connects (a non-blocking
	 * one then ended it at once, and the request timed out on a busy host). */
	assert_int_equal(fcntl(w.listen_fd, F_SETFL, fcntl(w.listen_fd, F_GETFL) & ~O_NONBLOCK), 0);
	before = open_fds();
	assert_int_equal(pthread_create(&t, NULL, fake_worker_run, &w), 0);
	r = vcpu_stats_get(path, s, 2000, err, errlen);
	shutdown(w.listen_fd, SHUT_RDWR); /* ends the worker's accept */
	assert_int_equal(pthread_join(t, NULL), 0);
	fake_requests = w.requests;
	if (!r)
		vcpu_stats_close(s);
	assert_int_equal(open_fds(), before); /* what came over was closed */
	close(w.listen_fd);
	unlink(path);
	rmdir(dir);
	free(s);
	return r;
}

static void test_worker_sends_other_files(void **state)
{
	unsigned char buf[4096];
	size_t len = build(buf, sizeof(buf), kernel_like, 6, kernel_values, 6);
	const char *one = "{\"return\":{\"vcpus\":1,\"first\":0,\"count\":1}}\n";
	int mem = memfd_create("kvm-stats", MFD_CLOEXEC), p[2];
	char err[256];

	(void)state;
	assert_true(mem >= 0);
	assert_int_equal(write(mem, buf, len), (ssize_t)len);
	/* A file laid out as KVM's statistics, but not KVM's: never read (a worker would tell
	 * keeld what it likes, or have it read a disk image on a mount that hangs). */
	assert_int_equal(ask_fake(one, &mem, 1, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "not KVM's but /memfd:kvm-stats"));
	/* A pipe: refused without a read that would block. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(ask_fake(one, p, 1, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "pipe:"));
	/* More descriptors than the reply says: refused, all of them closed. */
	assert_int_equal(ask_fake(one, (int[]){mem, p[0]}, 2, err, sizeof(err)), -EPROTO);
	/* Fewer. */
	assert_int_equal(ask_fake(one, NULL, 0, err, sizeof(err)), -EPROTO);
	/* More than the vCPUs it says it has. */
	assert_int_equal(ask_fake("{\"return\":{\"vcpus\":1,\"first\":0,\"count\":2}}\n",
				  (int[]){mem, mem}, 2, err, sizeof(err)),
			 -EPROTO);
	/* One fd a reply of 256 vCPUs: the first short reply ends the asking. */
	assert_int_equal(ask_fake("{\"return\":{\"vcpus\":256,\"first\":0,\"count\":1}}\n", &mem, 1,
				  err, sizeof(err)),
			 -ENOTSUP);
	assert_int_equal(fake_requests, 1);
	close(p[0]);
	close(p[1]);
	close(mem);
}

static bool kvm_missing; /* the test below skipped: the run says so (77) */

/* The kernel's own stats fd of a vCPU, handed over as keel-vmm does: taken, mapped, summed. */
static void test_worker_sends_kvm_stats(void **state)
{
	const char *one = "{\"return\":{\"vcpus\":1,\"first\":0,\"count\":1}}\n";
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1, vcpu = -1, st = -1;
	char err[256] = "";

	(void)state;
	if (kvm >= 0)
		vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm >= 0)
		vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu >= 0)
		st = ioctl(vcpu, KVM_GET_STATS_FD, NULL);
	if (st < 0) {
		kvm_missing = true;
		fprintf(stderr, "no KVM vCPU statistics fd here (/dev/kvm, Linux 5.14+): %s\n",
			strerror(errno));
	} else {
		assert_int_equal(ask_fake(one, &st, 1, err, sizeof(err)), 0);
	}
	for (int i = 0, fds[] = {st, vcpu, vm, kvm}; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (kvm_missing)
		skip();
}

static void test_same_files(void **state)
{
	struct vcpu_stats *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	int f = memfd_create("x", MFD_CLOEXEC), g = memfd_create("y", MFD_CLOEXEC);

	(void)state;
	assert_true(a && b && f >= 0 && g >= 0);
	a->n = b->n = 1;
	a->fd[0] = f;
	b->fd[0] = dup(f); /* a copy, as a worker asked again hands over */
	assert_true(vcpu_stats_same(a, b));
	close(b->fd[0]);
	b->fd[0] = g; /* a new vCPU's */
	assert_false(vcpu_stats_same(a, b));
	b->n = 0;
	assert_false(vcpu_stats_same(a, b));
	close(f);
	close(g);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_by_name),
		cmocka_unit_test(test_wrong_kinds_ignored),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_read_and_sum),
		cmocka_unit_test(test_worker_sends_other_files),
		cmocka_unit_test(test_same_files),
		cmocka_unit_test(test_worker_sends_kvm_stats),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	return r ? r : kvm_missing ? 77 : 0;
}
