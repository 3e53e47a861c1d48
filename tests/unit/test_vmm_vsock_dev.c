/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-vsock device itself (vmm/virtio/vsock.c) on the fuzz targets' fake machine
 * (tests/fuzz/fake_machine.h, fake_virtio.h): a guest driver on its three queues, host
 * clients on real Unix sockets in a scratch directory, and the device's I/O-thread work run
 * on the test's thread. Each test states one rule a hostile guest or host client must not be
 * able to break.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "vmm/device.h"
#include "vmm/mem.h"
#include "vmm/seccomp_filter.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/vsock.h"
#include "vmm/virtio/vsock_conn.h"

/* The model's class (listed in src/vmm/device_table.c): its state sections. */
extern const struct device_class virtio_vsock_class;

#define CID	  3
#define NQ	  3
#define QSIZE	  16
#define QBASE(i)  (0x400u * (i))
#define BUF(q, s) (0x1000u + 0x4000u * (q) + 0x400u * (s)) /* 1 KiB per slot */
#define BUF_MAX	  0x400u

static struct virtio_dev *vd;
static char dir[64], sock_path[108];
static uint16_t avail_idx[NQ], used_seen[NQ];

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(fake_machine()->mem, gpa, len);

	FAKE_CHECK(p, "guest address 0x%llx not in RAM", (unsigned long long)gpa);
	return p;
}

static void remove_scratch(void)
{
	unlink(sock_path);
	rmdir(dir);
}

static void setup_once(void)
{
	char err[256] = "";

	if (vd)
		return;
	fake_machine();
	snprintf(dir, sizeof(dir), "/tmp/test-vsock.%d", (int)getpid());
	mkdir(dir, 0700);
	atexit(remove_scratch);
	snprintf(sock_path, sizeof(sock_path), "%s/v.sock", dir);
	FAKE_CHECK(virtio_vsock_create(fake_machine(), 0, CID, sock_path, &vd, err, sizeof(err)) ==
			   0,
		   "virtio-vsock: %s", err);
	FAKE_CHECK(device_state_register(fake_machine(), &virtio_vsock_class, vd->pci.slot, vd) ==
			   0,
		   "virtio-vsock state sections");
	fake_machine_pause(true);
}

/* Power-on and a driver's bring-up of the three queues. */
static void start(bool event_idx)
{
	struct fake_vq q[NQ];

	setup_once();
	fake_machine_reset();
	fake_virtio_serve(vd);
	for (unsigned i = 0; i < NQ; i++) {
		q[i] = (struct fake_vq){.size = QSIZE,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = QBASE(i) + 0x100,
					.used = QBASE(i) + 0x200};
		avail_idx[i] = used_seen[i] = 0;
	}
	FAKE_CHECK(fake_virtio_start(vd, event_idx ? 1ull << VIRTIO_F_EVENT_IDX : 0, q, NQ),
		   "virtio-vsock bring-up");
}

/* A one-descriptor chain of len bytes on queue qi (bytes: what the device reads). */
static void post(unsigned qi, const void *bytes, uint32_t len, bool writable)
{
	unsigned slot = avail_idx[qi] % QSIZE;
	uint8_t *d = ram(QBASE(qi) + 16u * slot, 16),
		*avail = ram(QBASE(qi) + 0x100, 4 + 2 * QSIZE);

	FAKE_CHECK(len <= BUF_MAX, "a chain of %u bytes", len);
	if (!writable)
		memcpy(ram(BUF(qi, slot), len), bytes, len);
	le64_store(d, BUF(qi, slot));
	le32_store(d + 8, len);
	le16_store(d + 12, writable ? VRING_DESC_F_WRITE : 0);
	le16_store(d + 14, 0);
	le16_store(avail + 4 + 2 * slot, (uint16_t)slot);
	avail_idx[qi]++;
	le16_store(avail + 2, avail_idx[qi]);
}

static void serve(void)
{
	fake_virtio_serve(vd);
}

/* The next packet the device put on the receive queue: true and its header. */
static bool rx_next(struct vsock_hdr *h)
{
	const uint8_t *used = ram(QBASE(0) + 0x200, 4 + 8 * QSIZE);
	const uint8_t *e;

	if (le16_load(used + 2) == used_seen[0])
		return false;
	e = used + 4 + 8 * (used_seen[0] % QSIZE);
	vsock_hdr_decode(ram(BUF(0, le32_load(e)), VSOCK_HDR_SIZE), h);
	used_seen[0]++;
	return true;
}

static void rx_buffers(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		post(0, NULL, BUF_MAX, true);
	fake_virtio_notify(vd, 0);
}

static int host_connect(const char *line)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, sock_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	return fd;
}

/* ---- a device reset on a vCPU thread ---- */

static volatile sig_atomic_t trapped_nr = -1;

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	(void)sig;
	(void)uctx;
	if (trapped_nr < 0)
		trapped_nr = si->si_syscall;
}

/* The guest writes 0 to device_status: a vCPU thread, under its own seccomp filter, runs
 * the device's reset. */
static void *vcpu_reset(void *arg)
{
	int *r = arg;

	*r = seccomp_install_vcpu();
	if (!*r)
		fake_virtio_write(vd, FAKE_CC(device_status), 1, 0);
	return NULL;
}

/* A host client waits for the guest's answer (a deadline: the device's timer runs) when the
 * guest resets the device: the reset runs on a vCPU thread, whose filter has no timer calls,
 * so the reset must leave the timer to the I/O thread (a call there ended the worker). */
static void test_reset_on_vcpu_thread(void **state)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO}, old;
	struct vsock_hdr h;
	pthread_t t;
	int fd, r = 0;

	(void)state;
	start(false);
	rx_buffers(4);
	fd = host_connect("CONNECT 1234\n");
	serve();
	assert_true(rx_next(&h));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 1234);

	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGSYS, &sa, &old), 0);
	trapped_nr = -1;
	assert_int_equal(pthread_create(&t, NULL, vcpu_reset, &r), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	sigaction(SIGSYS, &old, NULL);
	if (r) {
		close(fd);
		print_message("no seccomp filter here (%s): skipped\n", strerror(-r));
		skip();
	}
	if (trapped_nr >= 0)
		fail_msg(
			"the device reset made syscall %d on a vCPU thread (timerfd_settime is %d)",
			(int)trapped_nr, SYS_timerfd_settime);
	/* The host client was let go, and the I/O thread still runs the device. */
	serve();
	{
		char c;

		assert_int_equal(recv(fd, &c, 1, 0), 0);
	}
	close(fd);
}

/* Used entries of the event queue since the last look, each checked as TRANSPORT_RESET. */
static unsigned events_taken(void)
{
	const uint8_t *used = ram(QBASE(2) + 0x200, 4 + 8 * QSIZE);
	unsigned n = 0;

	for (; le16_load(used + 2) != used_seen[2]; used_seen[2]++, n++) {
		const uint8_t *e = used + 4 + 8 * (used_seen[2] % QSIZE);

		assert_int_equal(le32_load(e + 4), 4);
		assert_int_equal(le32_load(ram(BUF(2, le32_load(e)), 4)), 0); /* TRANSPORT_RESET */
	}
	return n;
}

/* A save and restore (and the same for a resume): the host's connections are dropped, the
 * guest is told TRANSPORT_RESET once (when it posts an event buffer, if it had none), and a
 * new host connection gets a host port the guest never saw before. */
static void test_restore_resets_transport(void **state)
{
	struct vsock_hdr h;
	uint32_t first;
	int fd;
	char c;

	(void)state;
	start(true);
	rx_buffers(4);
	fd = host_connect("CONNECT 99\n");
	serve();
	assert_true(rx_next(&h));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	first = h.src_port;
	assert_true(first >= VSOCK_HOST_PORT_FIRST);

	fake_machine_save_restore();
	serve();
	assert_int_equal(recv(fd, &c, 1, 0), 0); /* dropped */
	close(fd);
	assert_int_equal(events_taken(), 0); /* no event buffer yet: owed */
	post(2, NULL, 4, true);
	post(2, NULL, 4, true);
	fake_virtio_notify(vd, 2);
	serve();
	assert_int_equal(events_taken(), 1);

	fd = host_connect("CONNECT 99\n");
	serve();
	assert_true(rx_next(&h));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 99);
	assert_true(h.src_port > first);
	close(fd);
}

static uint16_t used_idx(unsigned qi)
{
	return le16_load(ram(QBASE(qi) + 0x200 + 2, 2));
}

/* A packet from the guest on the transmit queue (one chain). */
static void tx(uint16_t op, uint32_t src_port, uint32_t dst_port)
{
	struct vsock_hdr h = {.src_cid = CID,
			      .dst_cid = VSOCK_CID_HOST,
			      .src_port = src_port,
			      .dst_port = dst_port,
			      .type = VSOCK_TYPE_STREAM,
			      .op = op,
			      .buf_alloc = 65536};
	uint8_t raw[VSOCK_HDR_SIZE];

	vsock_hdr_encode(&h, raw);
	post(1, raw, sizeof(raw), false);
}

/* Packets for connections that do not exist each owe the guest a RST; while 64 are owed
 * (the guest takes none: no receive buffers) the transmit queue waits, and it is read again
 * once the guest takes them: every packet is answered, none is lost or read twice. */
static void test_rst_backlog(void **state)
{
	struct vsock_hdr h;
	unsigned sent = 0, rsts = 0;

	(void)state;
	start(false);
	for (unsigned round = 0; round < 6; round++) {
		for (unsigned i = 0; i < QSIZE && (uint16_t)(avail_idx[1] - used_idx(1)) < QSIZE;
		     i++, sent++)
			tx(VSOCK_OP_CREDIT_UPDATE, 1000 + sent, 7);
		fake_virtio_notify(vd, 1);
		serve();
	}
	assert_int_equal(used_idx(1), 64); /* the ring of RSTs is full */
	assert_true(sent > 64);
	while (rsts < sent) {
		unsigned before = rsts;

		rx_buffers(QSIZE - (uint16_t)(avail_idx[0] - used_idx(0)));
		serve();
		while (rx_next(&h)) {
			assert_int_equal(h.op, VSOCK_OP_RST);
			assert_int_equal(h.dst_port, 1000 + rsts);
			assert_int_equal(h.src_port, 7);
			rsts++;
		}
		assert_true(rsts > before);
	}
	assert_int_equal(used_idx(1), sent);
	assert_false(rx_next(&h));
}

/* The CONNECT line may come in pieces; a line too long, or one that is not CONNECT <port>,
 * closes the client (without a REQUEST to the guest); data right after the line is kept for
 * the connection. */
static void test_connect_line_pieces(void **state)
{
	struct vsock_hdr h;
	char c, ok[32];
	int fd, bad, n;

	(void)state;
	start(false);
	rx_buffers(8);
	fd = host_connect("CONN");
	serve();
	assert_false(rx_next(&h));
	assert_int_equal(send(fd, "ECT 77\nhi", 9, MSG_NOSIGNAL), 9);
	bad = host_connect("CONNECT 000000000000000000000000077\n");
	serve();
	assert_true(recv(bad, &c, 1, 0) <= 0); /* closed with bytes unread: may be a reset */
	close(bad);
	bad = host_connect("CONNECT 77 \n");
	serve();
	assert_int_equal(recv(bad, &c, 1, 0), 0);
	close(bad);
	assert_true(rx_next(&h));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 77);
	assert_false(rx_next(&h));
	/* The guest accepts: the client hears OK and its "hi" reaches the guest. */
	tx(VSOCK_OP_RESPONSE, 77, h.src_port);
	fake_virtio_notify(vd, 1);
	serve();
	n = snprintf(ok, sizeof(ok), "OK %u\n", h.src_port);
	{
		char got[32] = "";

		assert_int_equal(recv(fd, got, (size_t)n, MSG_WAITALL), n);
		assert_memory_equal(got, ok, (size_t)n);
	}
	serve();
	assert_true(rx_next(&h));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 2);
	close(fd);
}

/* The worker out of descriptors (its jail's RLIMIT_NOFILE): a host client waiting in the
 * listener's backlog cannot be accepted, and the level-triggered listener must not keep the
 * I/O thread busy for ever; once descriptors are free again it is accepted. */
static void test_accept_without_descriptors(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct rlimit old, lim;
	struct timespec nap = {0, 300 * 1000000L};
	struct vsock_hdr h;
	int clients[8], n = 0, probe;

	(void)state;
	start(false);
	rx_buffers(4);
	strcpy(sa.sun_path, sock_path);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(probe >= 0);
	close(probe);
	lim = old;
	lim.rlim_cur = (rlim_t)probe + 3;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	while (n < 8) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd < 0)
			break;
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		clients[n++] = fd;
	}
	assert_true(n > 0 && n < 8);
	serve(); /* accept4 says EMFILE */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	nanosleep(&nap, NULL);
	serve();
	assert_int_equal(send(clients[0], "CONNECT 8\n", 10, MSG_NOSIGNAL), 10);
	serve();
	assert_true(rx_next(&h));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 8);
	for (int i = 0; i < n; i++)
		close(clients[i]);
	serve();
}

/* Deadlines (VSOCK_HANDSHAKE_MS): a client that never sends its line, and one whose
 * REQUEST the guest never takes (no receive buffers), are closed; so is one the guest never
 * answers, and the guest is told RST. A device reset in between leaves the timer to the I/O
 * thread, which still runs the deadlines after it. */
static void test_handshake_deadlines(void **state)
{
	struct timespec nap = {VSOCK_HANDSHAKE_MS / 1000, 400 * 1000000L};
	struct vsock_hdr h;
	int silent, unanswered, untaken;
	char c;

	(void)state;
	start(false);
	silent = host_connect("");
	unanswered = host_connect("CONNECT 5\n");
	serve();
	fake_virtio_write(vd, FAKE_CC(device_status), 1, 0); /* drops both */
	serve();
	assert_int_equal(recv(silent, &c, 1, 0), 0);
	assert_int_equal(recv(unanswered, &c, 1, 0), 0);
	close(silent);
	close(unanswered);
	start(false);
	silent = host_connect("");
	unanswered = host_connect("CONNECT 5\n");
	serve();
	rx_buffers(1);
	serve();
	assert_true(rx_next(&h));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 5);
	untaken = host_connect("CONNECT 6\n");
	serve();
	/* untaken's REQUEST waits for a buffer: none comes before the deadline */
	nanosleep(&nap, NULL);
	serve();
	assert_int_equal(recv(silent, &c, 1, MSG_DONTWAIT), 0);
	assert_int_equal(recv(untaken, &c, 1, MSG_DONTWAIT), 0);
	assert_int_equal(recv(unanswered, &c, 1, MSG_DONTWAIT), 0);
	rx_buffers(2);
	serve();
	assert_true(rx_next(&h)); /* the REQUEST that was sent is taken back */
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.dst_port, 5);
	assert_false(rx_next(&h)); /* nothing for the one never sent */
	close(silent);
	close(untaken);
	close(unanswered);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reset_on_vcpu_thread),
		cmocka_unit_test(test_restore_resets_transport),
		cmocka_unit_test(test_rst_backlog),
		cmocka_unit_test(test_connect_line_pieces),
		cmocka_unit_test(test_accept_without_descriptors),
		cmocka_unit_test(test_handshake_deadlines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
