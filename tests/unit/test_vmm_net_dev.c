/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (vmm/virtio/net.c, net_hdr.c) on the fuzz targets' fake machine, its tap a
 * datagram socket pair: mergeable receive buffers (a frame over many small chains, all
 * returned at once with num_buffers; a frame waiting for buffers; a frame larger than the
 * whole ring), the single-chain receive path, the checks on the guest's transmit headers,
 * the tap offloads that follow the negotiated features, and on a real tap (when the test
 * may create one) that they are set, cleared by a driver without them, and set again by a
 * restore.
 */
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "lib/tap.h"
#include "vmm/virtio/net.h"
#include "vmm/mem.h"
#include "vmm/seccomp_filter.h"
#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"

/* The fake machine has 64 KiB of low RAM: rings at 0 and 0x800, 1 KiB receive buffers
 * from 0x1000, 128-byte transmit buffers from 0x9000. */
#define QSIZE	   32
#define QBASE(i)   (0x800u * (i))
#define AVAIL(i)   (QBASE(i) + 0x200)
#define USED(i)	   (QBASE(i) + 0x400)
#define BUF(q, s)  ((q) ? 0x9000u + 0x80u * (s) : 0x1000u + 0x400u * (s))
#define BUF_MAX(q) ((q) ? 0x80u : 0x400u)
#define F(bit)	   (1ull << (bit))
#define ALL_F                                                                                      \
	(F(NET_F_CSUM) | F(NET_F_HOST_TSO4) | F(NET_F_GUEST_CSUM) | F(NET_F_GUEST_TSO4) |          \
	 F(NET_F_GUEST_TSO6) | F(NET_F_MRG_RXBUF) | F(VIRTIO_F_EVENT_IDX))

static struct virtio_dev *vd;
static int peer;
static uint16_t avail_idx[2], used_seen[2];
static uint8_t frame[NET_HDR_SIZE + NET_FRAME_MAX], got[NET_HDR_SIZE + NET_FRAME_MAX];

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(fake_machine()->mem, gpa, len);

	FAKE_CHECK(p, "guest address 0x%llx not in RAM", (unsigned long long)gpa);
	return p;
}

static void start(uint64_t features, uint16_t qsize)
{
	struct fake_vq q[2];

	if (!vd) {
		fake_machine();
		vd = fake_virtio_net(&peer);
		fake_machine_pause(true);
	}
	fake_machine_reset();
	fake_virtio_serve(vd);
	vd = fake_virtio_net(&peer); /* no frame left from the last test */
	for (unsigned i = 0; i < 2; i++) {
		q[i] = (struct fake_vq){.size = qsize,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = AVAIL(i),
					.used = USED(i)};
		avail_idx[i] = used_seen[i] = 0;
	}
	assert_true(fake_virtio_start(vd, features, q, 2));
	fake_virtio_serve(vd);
}

/* A one-descriptor chain of len bytes on queue qi (bytes: what the device reads). */
static void post(unsigned qi, const void *bytes, uint32_t len, bool writable)
{
	uint16_t size = vd->q[qi].size;
	unsigned slot = avail_idx[qi] % size;
	uint8_t *d = ram(QBASE(qi) + 16u * slot, 16), *avail = ram(AVAIL(qi), 4 + 2 * size);

	assert_true(len <= BUF_MAX(qi));
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

static void rx_buffers(unsigned n, uint32_t len)
{
	for (unsigned i = 0; i < n; i++)
		post(0, NULL, len, true);
	fake_virtio_notify(vd, 0);
	fake_virtio_serve(vd);
}

/* A frame of len bytes after a zero header, bytes i*7+seed. */
static void send_frame(size_t len, uint8_t seed)
{
	memset(frame, 0, NET_HDR_SIZE);
	for (size_t i = 0; i < len; i++)
		frame[NET_HDR_SIZE + i] = (uint8_t)(i * 7 + seed);
	assert_int_equal(send(peer, frame, NET_HDR_SIZE + len, 0), (ssize_t)(NET_HDR_SIZE + len));
	fake_virtio_serve(vd);
}

static uint16_t used_idx(unsigned qi)
{
	return le16_load(ram(USED(qi) + 2, 2));
}

/* The next frame on the receive queue, gathered over num_buffers used entries that must all
 * be there; its length (header included), or 0 when there is none. */
static size_t rx_frame(unsigned *nbufs)
{
	const uint8_t *used = ram(USED(0), 4 + 8 * QSIZE);
	size_t len = 0;
	unsigned n, i;

	if (used_idx(0) == used_seen[0])
		return 0;
	for (i = 0, n = 1; i < n; i++) {
		const uint8_t *e = used + 4 + 8 * (used_seen[0] % vd->q[0].size);
		uint32_t l = le32_load(e + 4);

		assert_true(used_idx(0) != used_seen[0]); /* every buffer of the frame is there */
		assert_true(l <= BUF_MAX(0));
		memcpy(got + len, ram(BUF(0, le32_load(e)), l), l);
		if (!i) {
			assert_true(l >= NET_HDR_SIZE);
			n = le16_load(got + 10);
			assert_true(n >= 1);
		}
		len += l;
		used_seen[0]++;
	}
	*nbufs = n;
	return len;
}

static void check_frame(size_t len, uint8_t seed, unsigned want_bufs)
{
	unsigned nbufs = 0;

	assert_int_equal(rx_frame(&nbufs), NET_HDR_SIZE + len);
	assert_int_equal(nbufs, want_bufs);
	for (size_t i = 0; i < len; i++)
		if (got[NET_HDR_SIZE + i] != (uint8_t)(i * 7 + seed))
			fail_msg("byte %zu of the frame differs", i);
}

/* A 6000-byte frame over 256-byte buffers: 24 chains, returned together, in order. */
static void test_rx_mergeable(void **state)
{
	(void)state;
	start(ALL_F, QSIZE);
	rx_buffers(30, 256);
	send_frame(6000, 1);
	check_frame(6000, 1, (NET_HDR_SIZE + 6000 + 255) / 256);
	assert_int_equal(used_idx(0), 24);
	/* A 20000-byte frame (a segmentation frame) over the six 256-byte buffers left and
	 * 1 KiB ones. */
	rx_buffers(26, 1024);
	send_frame(20000, 2);
	check_frame(20000, 2, 6 + (NET_HDR_SIZE + 20000 - 6 * 256 + 1023) / 1024);
}

/* Too few buffers: nothing is returned, the frame waits and arrives whole once the guest
 * posts more. */
static void test_rx_waits(void **state)
{
	(void)state;
	start(ALL_F, QSIZE);
	rx_buffers(4, 256);
	send_frame(3000, 3);
	assert_int_equal(used_idx(0), 0);
	assert_int_equal(vd->q[0].vq.last_avail, 0); /* the four chains put back */
	rx_buffers(10, 256);
	check_frame(3000, 3, (NET_HDR_SIZE + 3000 + 255) / 256);
	send_frame(100, 4); /* the next frame in the last two */
	check_frame(100, 4, 1);
}

/* A frame larger than every buffer the ring can hold is dropped; the chains serve the
 * next frame. */
static void test_rx_larger_than_ring(void **state)
{
	(void)state;
	start(ALL_F, 16);
	rx_buffers(16, 64);
	send_frame(2000, 5);
	assert_int_equal(used_idx(0), 0);
	send_frame(100, 6);
	check_frame(100, 6, 2);
}

/* Without MRG_RXBUF a frame goes in one chain (num_buffers 1) or is dropped. */
static void test_rx_single(void **state)
{
	(void)state;
	start(F(VIRTIO_F_EVENT_IDX), QSIZE);
	rx_buffers(2, 1024);
	send_frame(1000, 7);
	check_frame(1000, 7, 1);
	send_frame(1020, 8); /* 1032 bytes do not fit: the chain is returned empty */
	assert_int_equal(used_idx(0), 2);
	assert_int_equal(le32_load(ram(USED(0) + 4 + 8 + 4, 4)), 0);
}

/* A frame the tap sends with a partial checksum to a guest without GUEST_CSUM (queued before
 * a renegotiation) is dropped; the next frame is delivered. */
static void test_rx_offload_not_negotiated(void **state)
{
	(void)state;
	start(F(NET_F_MRG_RXBUF), QSIZE);
	rx_buffers(2, 1024);
	memset(frame, 0, NET_HDR_SIZE);
	frame[0] = NET_HDR_F_NEEDS_CSUM;
	memset(frame + NET_HDR_SIZE, 1, 100);
	assert_int_equal(send(peer, frame, NET_HDR_SIZE + 100, 0), NET_HDR_SIZE + 100);
	fake_virtio_serve(vd);
	assert_int_equal(used_idx(0), 0);
	send_frame(100, 9);
	check_frame(100, 9, 1);
}

/* A transmit chain with this header and a 100-byte frame: whether the tap got it. */
static bool tx(uint64_t features, uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size,
	       uint16_t csum_start, uint16_t csum_off)
{
	uint8_t buf[NET_HDR_SIZE + 100] = {flags, gso};
	ssize_t n;

	(void)features;
	le16_store(buf + 2, hdr_len);
	le16_store(buf + 4, gso_size);
	le16_store(buf + 6, csum_start);
	le16_store(buf + 8, csum_off);
	le16_store(buf + 10, 9); /* num_buffers: zeroed on the way */
	memset(buf + NET_HDR_SIZE, 0xab, 100);
	post(1, buf, sizeof(buf), false);
	fake_virtio_notify(vd, 1);
	fake_virtio_serve(vd);
	assert_int_equal(used_idx(1), avail_idx[1]); /* returned in any case */
	n = recv(peer, got, sizeof(got), MSG_DONTWAIT);
	if (n < 0)
		return false;
	assert_int_equal(n, sizeof(buf));
	assert_memory_equal(got, buf, 10);
	assert_int_equal(le16_load(got + 10), 0);
	return true;
}

static void test_tx_headers(void **state)
{
	(void)state;
	start(ALL_F, QSIZE); /* CSUM and HOST_TSO4, no HOST_TSO6 */
	assert_true(tx(0, 0, NET_HDR_GSO_NONE, 0, 0, 0, 0));
	assert_true(tx(0, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_NONE, 0, 0, 34, 16));
	assert_true(tx(0, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 54, 1448, 34, 16));
	assert_false(tx(0, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_NONE, 0, 0, 90, 9)); /* 101 > 100 */
	assert_false(tx(0, 2, NET_HDR_GSO_NONE, 0, 0, 0, 0));			  /* DATA_VALID */
	assert_false(tx(0, 0, NET_HDR_GSO_TCPV4, 54, 1448, 0, 0)); /* no checksum offload */
	assert_false(tx(0, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV6, 54, 1448, 34, 16));
	assert_false(tx(0, NET_HDR_F_NEEDS_CSUM, 3, 54, 1448, 34, 16)); /* UDP */
	assert_false(
		tx(0, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4 | NET_HDR_GSO_ECN, 54, 1448, 34, 16));
	assert_false(tx(0, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 54, 0, 34, 16));
	assert_false(tx(0, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 101, 1448, 34, 16));
	/* Without CSUM negotiated, no checksum offload either. */
	start(F(VIRTIO_F_EVENT_IDX), QSIZE);
	assert_true(tx(0, 0, NET_HDR_GSO_NONE, 0, 0, 0, 0));
	assert_false(tx(0, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_NONE, 0, 0, 34, 16));
}

static void test_tap_offloads(void **state)
{
	(void)state;
	assert_int_equal(net_hdr_tap_offloads(0), 0);
	assert_int_equal(net_hdr_tap_offloads(F(NET_F_GUEST_TSO4) | F(NET_F_GUEST_TSO6)), 0);
	assert_int_equal(net_hdr_tap_offloads(F(NET_F_GUEST_CSUM)), TUN_F_CSUM);
	assert_int_equal(net_hdr_tap_offloads(F(NET_F_GUEST_CSUM) | F(NET_F_GUEST_ECN)),
			 TUN_F_CSUM);
	assert_int_equal(net_hdr_tap_offloads(F(NET_F_GUEST_CSUM) | F(NET_F_GUEST_TSO4) |
					      F(NET_F_GUEST_TSO6) | F(NET_F_GUEST_ECN)),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
}

static void test_rx_headers(void **state)
{
	uint8_t raw[NET_HDR_SIZE] = {NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4};

	(void)state;
	assert_true(net_hdr_rx_fix(raw, ALL_F));
	assert_false(net_hdr_rx_fix(raw, F(NET_F_MRG_RXBUF)));	/* partial checksum */
	raw[0] = 2;						/* DATA_VALID */
	assert_false(net_hdr_rx_fix(raw, F(NET_F_GUEST_CSUM))); /* TSO4 not taken */
	raw[1] = NET_HDR_GSO_NONE;
	assert_true(net_hdr_rx_fix(raw, F(NET_F_MRG_RXBUF)));
	assert_int_equal(raw[0], 0); /* cleared for a guest without GUEST_CSUM */
	raw[1] = NET_HDR_GSO_TCPV6 | NET_HDR_GSO_ECN;
	assert_false(net_hdr_rx_fix(raw, ALL_F)); /* no GUEST_ECN */
	assert_true(net_hdr_rx_fix(raw, ALL_F | F(NET_F_GUEST_ECN)));
	raw[1] = 3; /* UDP */
	assert_false(net_hdr_rx_fix(raw, ALL_F | F(NET_F_GUEST_ECN)));
}

/* ETHTOOL_GTSO or ETHTOOL_GTXCSUM of interface ifname. */
static unsigned ethtool_get(const char *ifname, uint32_t cmd)
{
	struct ethtool_value ev = {.cmd = cmd};
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	assert_int_equal(ioctl(s, SIOCETHTOOL, &ifr), 0);
	close(s);
	return ev.data;
}

/* The I/O threads' seccomp list lets them set the tap's offloads: a child process under the
 * worker's process filter does what net_sync_offloads does. */
static void tap_offload_under_seccomp(int fd)
{
	char err[256];
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (!pid) {
		if (seccomp_install_process(err, sizeof(err)))
			_exit(2);
		_exit(ioctl(fd, TUNSETOFFLOAD, (unsigned long)TUN_F_CSUM) ? 3 : 0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 2) {
		printf("no seccomp filter here: the filter part skipped\n");
		return;
	}
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(ioctl(fd, TUNSETOFFLOAD, 0ul), 0); /* as the device last left it */
}

static void test_real_tap(void **state)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x57};
	char name[IFNAMSIZ], ifname[IFNAMSIZ], err[256];
	struct virtio_dev *tvd = NULL;
	struct fake_vq q[2];
	uint8_t *saved;
	size_t saved_len;
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "kntest%d", (int)(getpid() % 100000));
	fd = tap_open(name, ifname, err, sizeof(err));
	if (fd < 0) {
		printf("no tap device here (%s): skipped\n", err);
		skip();
	}
	start(ALL_F, QSIZE); /* rings placed; the socket-pair device is reset below */
	assert_int_equal(virtio_net_create_fd(fake_machine(), 0, fd, ifname, mac, &tvd), 0);
	fake_machine_reset();
	for (unsigned i = 0; i < 2; i++)
		q[i] = (struct fake_vq){.size = QSIZE,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = AVAIL(i),
					.used = USED(i)};
	assert_int_equal(ethtool_get(ifname, ETHTOOL_GTSO), 0);
	tap_offload_under_seccomp(fd);
	assert_true(fake_virtio_start(tvd, ALL_F, q, 2));
	fake_virtio_serve(tvd);
	assert_int_equal(ethtool_get(ifname, ETHTOOL_GTSO), 1);
	assert_int_equal(ethtool_get(ifname, ETHTOOL_GTXCSUM), 1);
	fake_machine_save(&saved, &saved_len);
	/* A driver without the receive offloads: the tap sends whole, checksummed frames. */
	fake_machine_reset();
	assert_true(fake_virtio_start(tvd, F(NET_F_MRG_RXBUF), q, 2));
	fake_virtio_serve(tvd);
	assert_int_equal(ethtool_get(ifname, ETHTOOL_GTSO), 0);
	assert_int_equal(ethtool_get(ifname, ETHTOOL_GTXCSUM), 0);
	/* The restore brings back the saved driver's offloads. */
	assert_int_equal(fake_machine_load(saved, saved_len, err, sizeof(err)), 0);
	fake_virtio_serve(tvd);
	assert_int_equal(ethtool_get(ifname, ETHTOOL_GTSO), 1);
	free(saved);
	fake_machine_reset();
	fake_virtio_serve(tvd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rx_mergeable),
		cmocka_unit_test(test_rx_waits),
		cmocka_unit_test(test_rx_larger_than_ring),
		cmocka_unit_test(test_rx_single),
		cmocka_unit_test(test_tx_headers),
		cmocka_unit_test(test_tap_offloads),
		cmocka_unit_test(test_rx_headers),
		cmocka_unit_test(test_real_tap),
		cmocka_unit_test(test_rx_offload_not_negotiated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
