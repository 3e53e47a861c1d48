/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (vmm/virtio/net.c, net_hdr.c) on the fuzz targets' fake machine, its tap a
 * datagram socket pair: mergeable receive buffers (a frame over many small chains, all
 * returned at once with num_buffers; a frame waiting for buffers; a frame larger than the
 * whole ring), the single-chain receive path, the checks on the guest's transmit headers,
 * the tap offloads that follow the negotiated features, and on a real tap (when the test
 * may create one) that they are set, cleared by a driver without them, and set again by a
 * restore. Multi-queue: two pairs on two socket pairs, the control queue's VQ_PAIRS_SET
 * (attaching and detaching pair 1's tap queue), hostile control commands, and the enabled
 * pairs across a save and restore.
 */
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <dirent.h>
#include <cmocka.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/crc32c.h"
#include "lib/le.h"
#include "lib/tap.h"
#include "vmm/device.h"
#include "vmm/fail_point.h"
#include "vmm/x86/layout.h"
#include "vmm/pci.h"
#include "vmm/state.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/net.h"
#include "vmm/mem.h"
#include "vmm/seccomp_filter.h"
#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"

/* The fake machine has 64 KiB of low RAM: rings at 0 and 0x800, 1 KiB receive buffers
 * from 0x1000, 128-byte transmit buffers from 0x9000. The multi-queue device's pair 1 and
 * control queue (queues 2 to 4, at most MQ_QSIZE entries): rings from 0xa000, pair 1's
 * receive buffers from 0xc000, its transmit and the control queue's buffers from 0xe000. */
#define QSIZE	 32
#define MQ_QSIZE 8
#define NQ	 5
#define QBASE(i) ((i) < 2 ? 0x800u * (i) : 0xa000u + 0x800u * ((i)-2))
#define AVAIL(i) (QBASE(i) + 0x200)
#define USED(i)	 (QBASE(i) + 0x400)
#define BUF(q, s)                                                                                  \
	((q) == 0   ? 0x1000u + 0x400u * (s)                                                       \
	 : (q) == 1 ? 0x9000u + 0x80u * (s)                                                        \
	 : (q) == 2 ? 0xc000u + 0x400u * (s)                                                       \
		    : 0xe000u + 0x400u * ((q)-3) + 0x80u * (s))
#define BUF_MAX(q) ((q) % 2 || (q) == 4 ? 0x80u : 0x400u)
#define F(bit)	   (1ull << (bit))
#define ALL_F                                                                                      \
	(F(NET_F_CSUM) | F(NET_F_HOST_TSO4) | F(NET_F_GUEST_CSUM) | F(NET_F_GUEST_TSO4) |          \
	 F(NET_F_GUEST_TSO6) | F(NET_F_MRG_RXBUF) | F(VIRTIO_F_EVENT_IDX))

extern const struct device_class virtio_net_class;

static struct virtio_dev *vd;
static int peer;
static uint16_t avail_idx[NQ], used_seen[NQ];
static uint8_t frame[NET_HDR_SIZE + NET_FRAME_MAX], got[NET_HDR_SIZE + NET_FRAME_MAX];

/* TUNSETOFFLOAD, seen through -Wl,--wrap=ioctl: on the socket pair's "tap" it does nothing
 * and works (or fails, offl_fail times). */
int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);
static unsigned offl_calls, offl_fail;
static unsigned long offl_set; /* what the last one that worked set */
/* TUNSETQUEUE on a socket pair's "tap" queue: counted, the last one's fd and flags kept. */
static unsigned q_calls;
static int q_fd;
static unsigned q_flags;

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	struct stat st;
	va_list ap;
	unsigned long arg;
	int r;

	va_start(ap, req);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	if (req == TUNSETQUEUE && !fstat(fd, &st) && S_ISSOCK(st.st_mode)) {
		q_calls++;
		q_fd = fd;
		q_flags = ((const struct ifreq *)arg)->ifr_flags;
		return 0;
	}
	if (req != TUNSETOFFLOAD)
		return __real_ioctl(fd, req, arg);
	offl_calls++;
	if (offl_fail) {
		offl_fail--;
		errno = EBUSY;
		return -1;
	}
	r = !fstat(fd, &st) && S_ISSOCK(st.st_mode) ? 0 : __real_ioctl(fd, req, arg);
	if (!r)
		offl_set = arg;
	return r;
}

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(fake_machine()->mem, gpa, len);

	FAKE_CHECK(p, "guest address 0x%llx not in RAM", (unsigned long long)gpa);
	return p;
}

static void queues(struct fake_vq q[2], uint16_t qsize)
{
	for (unsigned i = 0; i < 2; i++) {
		q[i] = (struct fake_vq){.size = qsize,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = AVAIL(i),
					.used = USED(i)};
		avail_idx[i] = used_seen[i] = 0;
	}
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
	queues(q, qsize);
	assert_true(fake_virtio_start(vd, features, q, 2));
	fake_virtio_serve(vd);
}

/* Descriptor i of a table at gpa. */
static void desc(uint64_t gpa, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	uint8_t *d = ram(gpa + 16u * i, 16);

	le64_store(d, addr);
	le32_store(d + 8, len);
	le16_store(d + 12, flags);
	le16_store(d + 14, next);
}

/* A one-descriptor chain (at the ring's next slot) of len bytes at addr on queue qi. */
static void post_desc(unsigned qi, uint64_t addr, uint32_t len, uint16_t flags)
{
	uint16_t size = vd->q[qi].size;
	unsigned slot = avail_idx[qi] % size;
	uint8_t *avail = ram(AVAIL(qi), 4 + 2 * size);

	desc(QBASE(qi), slot, addr, len, flags, 0);
	le16_store(avail + 4 + 2 * slot, (uint16_t)slot);
	avail_idx[qi]++;
	le16_store(avail + 2, avail_idx[qi]);
}

/* A one-descriptor chain of len bytes on queue qi (bytes: what the device reads). */
static void post(unsigned qi, const void *bytes, uint32_t len, bool writable)
{
	unsigned slot = avail_idx[qi] % vd->q[qi].size;

	assert_true(len <= BUF_MAX(qi));
	if (!writable)
		memcpy(ram(BUF(qi, slot), len), bytes, len);
	post_desc(qi, BUF(qi, slot), len, writable ? VRING_DESC_F_WRITE : 0);
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
static size_t rx_frame_on(unsigned q, unsigned *nbufs)
{
	const uint8_t *used = ram(USED(q), 4 + 8 * vd->q[q].size);
	size_t len = 0;
	unsigned n, i;

	if (used_idx(q) == used_seen[q])
		return 0;
	for (i = 0, n = 1; i < n; i++) {
		const uint8_t *e = used + 4 + 8 * (used_seen[q] % vd->q[q].size);
		uint32_t l = le32_load(e + 4);

		assert_true(used_idx(q) != used_seen[q]); /* every buffer of the frame is there */
		assert_true(l <= BUF_MAX(q));
		memcpy(got + len, ram(BUF(q, le32_load(e)), l), l);
		if (!i) {
			assert_true(l >= NET_HDR_SIZE);
			n = le16_load(got + 10);
			assert_true(n >= 1);
		}
		len += l;
		used_seen[q]++;
	}
	*nbufs = n;
	return len;
}

static void check_frame_on(unsigned q, size_t len, uint8_t seed, unsigned want_bufs)
{
	unsigned nbufs = 0;

	assert_int_equal(rx_frame_on(q, &nbufs), NET_HDR_SIZE + len);
	assert_int_equal(nbufs, want_bufs);
	for (size_t i = 0; i < len; i++)
		if (got[NET_HDR_SIZE + i] != (uint8_t)(i * 7 + seed))
			fail_msg("byte %zu of the frame differs", i);
}

static void check_frame(size_t len, uint8_t seed, unsigned want_bufs)
{
	check_frame_on(0, len, seed, want_bufs);
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

/* A frame waiting for buffers is not placed again on a notify that brings none: the four
 * chains it was copied into are not written again (nor the tap watched). */
static void test_rx_wait_notify_without_buffers(void **state)
{
	(void)state;
	start(ALL_F, QSIZE);
	rx_buffers(4, 256);
	send_frame(3000, 3);
	assert_int_equal(used_idx(0), 0);
	memset(ram(BUF(0, 0), 256), 0, 256);
	for (int i = 0; i < 3; i++) {
		fake_virtio_notify(vd, 0);
		fake_virtio_serve(vd);
	}
	for (unsigned i = 0; i < 256; i++)
		if (ram(BUF(0, 0), 256)[i])
			fail_msg("the waiting frame was copied again (byte %u)", i);
	assert_int_equal(used_idx(0), 0);
	rx_buffers(10, 256);
	check_frame(3000, 3, (NET_HDR_SIZE + 3000 + 255) / 256);
}

/* The ring breaks (an avail entry names no descriptor) after three good chains of a frame:
 * they go back untaken, nothing is returned (the bug 7357254 fixed). */
static void test_rx_ring_breaks_mid_frame(void **state)
{
	uint8_t *avail;

	(void)state;
	start(ALL_F, QSIZE);
	for (unsigned i = 0; i < 3; i++)
		post(0, NULL, 256, true);
	avail = ram(AVAIL(0), 4 + 2 * QSIZE);
	le16_store(avail + 4 + 2 * 3, 999);
	le16_store(avail + 2, 4);
	fake_virtio_notify(vd, 0);
	fake_virtio_serve(vd);
	send_frame(3000, 3);
	assert_int_equal(vd->q[0].vq.last_avail, 0);
	assert_int_equal(used_idx(0), 0);
	assert_int_equal(vd->q[0].vq.used_idx, 0);
}

/* A transmit chain with this header and a 100-byte frame: whether the tap got it. */
static bool tx(uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size, uint16_t csum_start,
	       uint16_t csum_off)
{
	uint8_t buf[NET_HDR_SIZE + 100] = {flags, gso};
	ssize_t n;

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
	assert_true(tx(0, NET_HDR_GSO_NONE, 0, 0, 0, 0));
	assert_true(tx(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_NONE, 0, 0, 34, 16));
	assert_true(tx(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 54, 1448, 34, 16));
	assert_false(tx(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_NONE, 0, 0, 90, 9)); /* 101 > 100 */
	assert_false(tx(2, NET_HDR_GSO_NONE, 0, 0, 0, 0));		       /* DATA_VALID */
	assert_false(tx(0, NET_HDR_GSO_TCPV4, 54, 1448, 0, 0)); /* no checksum offload */
	assert_false(tx(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV6, 54, 1448, 34, 16));
	assert_false(tx(NET_HDR_F_NEEDS_CSUM, 3, 54, 1448, 34, 16)); /* UDP */
	assert_false(
		tx(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4 | NET_HDR_GSO_ECN, 54, 1448, 34, 16));
	assert_false(tx(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 54, 0, 34, 16));
	assert_false(tx(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 101, 1448, 34, 16));
	/* Without CSUM negotiated, no checksum offload either. */
	start(F(VIRTIO_F_EVENT_IDX), QSIZE);
	assert_true(tx(0, NET_HDR_GSO_NONE, 0, 0, 0, 0));
	assert_false(tx(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_NONE, 0, 0, 34, 16));
}

/* A chain of VQ_MAX_SEGS buffers (indirect) whose first holds the header and one byte of
 * the frame: sent whole (it once took IOV_MAX + 1 iovecs and writev refused it). */
static void test_tx_max_segments(void **state)
{
	const uint64_t table = 0xa000, data = 0xe000;
	uint8_t *p = ram(data, NET_HDR_SIZE + VQ_MAX_SEGS);
	ssize_t n;

	(void)state;
	start(ALL_F | F(VIRTIO_F_INDIRECT_DESC), QSIZE);
	memset(p, 0, NET_HDR_SIZE);
	for (unsigned i = 0; i < VQ_MAX_SEGS; i++)
		p[NET_HDR_SIZE + i] = (uint8_t)(i * 3 + 1);
	desc(table, 0, data, NET_HDR_SIZE + 1, VRING_DESC_F_NEXT, 1);
	for (unsigned i = 1; i < VQ_MAX_SEGS; i++)
		desc(table, i, data + NET_HDR_SIZE + i, 1,
		     i + 1 < VQ_MAX_SEGS ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	post_desc(1, table, 16 * VQ_MAX_SEGS, VRING_DESC_F_INDIRECT);
	fake_virtio_notify(vd, 1);
	fake_virtio_serve(vd);
	assert_int_equal(used_idx(1), 1);
	n = recv(peer, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(n, NET_HDR_SIZE + VQ_MAX_SEGS);
	assert_memory_equal(got, p, NET_HDR_SIZE + VQ_MAX_SEGS);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define ALL_OFFL (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) /* what ALL_F takes */

/* A driver that renegotiates in a loop, GUEST_CSUM on and off: a few TUNSETOFFLOADs (four,
 * then one every 250 ms), the tap never left with offloads the driver did not take, and
 * the driver's set once the bucket has refilled. */
static void test_offload_rate_limit(void **state)
{
	struct fake_vq q[2];
	unsigned calls;
	uint64_t t0;

	(void)state;
	start(F(NET_F_MRG_RXBUF), QSIZE);
	usleep(1100 * 1000); /* the bucket full (the device is the other tests') */
	calls = offl_calls;
	t0 = now_ms();
	for (unsigned i = 0; i < 200; i++) {
		uint64_t f = i % 2 ? F(NET_F_MRG_RXBUF) : ALL_F;

		fake_machine_reset();
		queues(q, QSIZE);
		assert_true(fake_virtio_start(vd, f, q, 2));
		fake_virtio_serve(vd);
		assert_true(tx(0, NET_HDR_GSO_NONE, 0, 0, 0, 0));
		if (offl_calls != calls)
			assert_int_equal(offl_set & ~(unsigned long)net_hdr_tap_offloads(f), 0);
	}
	printf("%u TUNSETOFFLOADs in %llu ms\n", offl_calls - calls,
	       (unsigned long long)(now_ms() - t0));
	assert_true(offl_calls - calls >= 4);
	assert_true(offl_calls - calls <= 5 + (now_ms() - t0) / 250);
	/* The last driver takes them all: set once the limit allows. */
	fake_machine_reset();
	queues(q, QSIZE);
	assert_true(fake_virtio_start(vd, ALL_F, q, 2));
	fake_virtio_serve(vd);
	usleep(600 * 1000);
	assert_true(tx(0, NET_HDR_GSO_NONE, 0, 0, 0, 0));
	assert_int_equal(offl_set, ALL_OFFL);
}

/* A TUNSETOFFLOAD that fails is tried again (the device does not take it as done). */
static void test_offload_retry(void **state)
{
	(void)state;
	start(F(NET_F_MRG_RXBUF), QSIZE); /* the tap without offloads */
	usleep(1100 * 1000);		  /* the bucket full */
	offl_set = 0;
	offl_fail = 1;
	start(ALL_F, QSIZE); /* its first TUNSETOFFLOAD fails */
	fake_virtio_serve(vd);
	assert_true(tx(0, NET_HDR_GSO_NONE, 0, 0, 0, 0));
	assert_int_equal(offl_fail, 0);
	assert_int_equal(offl_set, ALL_OFFL);
}

/* The device's saved state with host_features, driver_features and status replaced (found
 * as the two saved after each other), loaded: 0 or the load's error, err its message. */
static int load_edited(uint64_t host, uint64_t driver, uint8_t status, char *err, size_t errlen)
{
	uint8_t *saved, want[16];
	size_t len, off;
	int r;

	fake_machine_save(&saved, &len);
	le64_store(want, vd->host_features);
	le64_store(want + 8, vd->driver_features);
	for (off = 0; off + 25 <= len && memcmp(saved + off, want, 16); off++)
		;
	assert_true(off + 25 <= len);
	assert_int_equal(saved[off + 24], vd->status);
	le64_store(saved + off, host);
	le64_store(saved + off + 8, driver);
	saved[off + 24] = status;
	le32_store(saved + len - 8, crc32c(0, saved, len - 8));
	err[0] = 0;
	r = fake_machine_load(saved, len, err, errlen);
	free(saved);
	return r;
}

/* A state saved by a device that offered fewer features loads; one that claims features the
 * device does not offer, or accepted ones its saved offer did not have, is refused, as is
 * DRIVER_OK without FEATURES_OK (keel's devices are modern only). */
static void test_state_features(void **state)
{
	uint64_t host, drv;
	uint8_t st;
	char err[256];

	(void)state;
	start(ALL_F, QSIZE);
	host = vd->host_features;
	drv = vd->driver_features;
	st = vd->status;
	assert_true(st & VIRTIO_STATUS_DRIVER_OK);
	assert_false(drv & F(NET_F_GUEST_ECN));
	assert_int_equal(load_edited(host & ~F(NET_F_GUEST_ECN), drv, st, err, sizeof(err)), 0);
	assert_true(vd->driver_features == drv);
	assert_int_not_equal(load_edited(host | 1ull << 50, drv, st, err, sizeof(err)), 0);
	printf("%s\n", err);
	assert_non_null(strstr(err, "(not 0x4000000000000)"));
	assert_int_not_equal(load_edited(host & ~F(NET_F_GUEST_TSO6), drv, st, err, sizeof(err)),
			     0);
	printf("%s\n", err);
	assert_non_null(strstr(err, "were never offered"));
	assert_non_null(strstr(err, "not 0x100)"));
	assert_int_not_equal(
		load_edited(host, drv, st & ~VIRTIO_STATUS_FEATURES_OK, err, sizeof(err)), 0);
	printf("%s\n", err);
	assert_non_null(strstr(err, "DRIVER_OK without FEATURES_OK"));
	assert_int_not_equal(load_edited(host, drv | 1ull << 50, st & ~VIRTIO_STATUS_FEATURES_OK,
					 err, sizeof(err)),
			     0);
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

/* A virtio-net I/O thread in a jailed worker's child: begins (registers its class), waits
 * for the jail, then does what net_sync_offloads does. */
struct offload_thread {
	int fd, begun[2], go[2];
	bool forbidden; /* try mkdirat instead, which its filter forbids */
	int result;
};

static void *offload_thread(void *arg)
{
	struct offload_thread *t = arg;
	char c = 0;

	t->result = seccomp_thread_begin(SECCOMP_NET) ? 2 : 0;
	if (write(t->begun[1], &c, 1) != 1 || read(t->go[0], &c, 1) != 1)
		t->result = 4;
	if (!t->result && t->forbidden)
		(void)syscall(SYS_mkdirat, AT_FDCWD, "/keel-forbidden", 0700);
	else if (!t->result && __real_ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)TUN_F_CSUM))
		t->result = 3;
	return NULL;
}

/* Run under the worker's filters (a child process): 0 when virtio-net's I/O thread may set
 * the tap's offloads; with main_too, the main loop then sets them too (its own filter allows
 * it: a hot-added adapter's I/O thread starts under it). The SIGSYS handler ends the child with
 * status 1: with forbidden, when the I/O thread calls mkdirat, which the main loop's list (so
 * the process's) allows and the I/O thread's does not. 2: no seccomp filter here. */
static int offload_child(int fd, bool main_too, bool forbidden)
{
	struct offload_thread t = {.fd = fd, .forbidden = forbidden};
	char err[256], c = 0;
	pthread_t th;

	if (pipe(t.begun) || pipe(t.go) || pthread_create(&th, NULL, offload_thread, &t) ||
	    read(t.begun[0], &c, 1) != 1)
		return 5;
	if (seccomp_install_process(err, sizeof(err))) {
		printf("%s\n", err);
		return 2;
	}
	if (write(t.go[1], &c, 1) != 1 || pthread_join(th, NULL))
		return 5;
	if (t.result || !main_too)
		return t.result;
	return __real_ioctl(fd, TUNSETOFFLOAD, (unsigned long)TUN_F_CSUM) ? 3 : 0;
}

/* The I/O threads' seccomp list lets virtio-net's set the tap's offloads; so does the main
 * loop's own (a hot-added adapter's I/O thread starts under it, seccomp_rules.c); the I/O
 * thread's own filter ends the worker on a call the main loop may make. */
static void tap_offload_under_seccomp(int fd)
{
	for (int mode = 0; mode < 3; mode++) {
		pid_t pid = fork();
		int st;

		assert_true(pid >= 0);
		if (!pid)
			_exit(offload_child(fd, mode == 1, mode == 2));
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 2) {
			printf("no seccomp filter here: the filter part skipped\n");
			return;
		}
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), mode == 2 ? 1 : 0);
	}
	assert_int_equal(ioctl(fd, TUNSETOFFLOAD, 0ul), 0); /* as the device last left it */
}

/* The first test, while this process has no device thread: a child forked while one holds
 * a lock of the sanitizers' allocator (which does not take them around fork) hangs on its
 * first allocation, as test_real_tap's did once when it forked here. */
static void test_tap_offload_seccomp(void **state)
{
	char name[IFNAMSIZ], ifname[IFNAMSIZ], err[256];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "knsec%d", (int)(getpid() % 100000));
	fd = tap_open(name, ifname, err, sizeof(err));
	if (fd < 0) {
		printf("no tap device here (%s): skipped\n", err);
		skip();
	}
	tap_offload_under_seccomp(fd);
	close(fd);
}

/* The link as the host sets it (the control command "link"): the status the driver reads
 * loses and regains VIRTIO_NET_S_LINK_UP, each change a new configuration generation and a
 * configuration interrupt (ISR bit 1); setting it as it is changes nothing. */
static void test_link_status(void **state)
{
	uint8_t gen;

	start(ALL_F | F(NET_F_STATUS), QSIZE);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 1);
	gen = (uint8_t)fake_virtio_read(vd, FAKE_CC(config_generation), 1);
	(void)fake_virtio_read(vd, VIRTIO_ISR_OFF, 1); /* reading clears it */
	virtio_net_set_link(vd, false);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 0);
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(config_generation), 1), (uint8_t)(gen + 1));
	assert_int_equal(fake_virtio_read(vd, VIRTIO_ISR_OFF, 1), 2);
	virtio_net_set_link(vd, false);
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(config_generation), 1), (uint8_t)(gen + 1));
	assert_int_equal(fake_virtio_read(vd, VIRTIO_ISR_OFF, 1), 0);
	/* The MAC is still there while the link is down. */
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF, 1), 0x52);
	virtio_net_set_link(vd, true);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 1);
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(config_generation), 1), (uint8_t)(gen + 2));
	assert_int_equal(fake_virtio_read(vd, VIRTIO_ISR_OFF, 1), 2);
	/* Down and up before the driver read the status: the up waits for that read, so the
	 * driver sees the link down once, then up on the next interrupt. */
	virtio_net_set_link(vd, false);
	virtio_net_set_link(vd, true);
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(config_generation), 1), (uint8_t)(gen + 3));
	assert_int_equal(fake_virtio_read(vd, VIRTIO_ISR_OFF, 1), 2);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 0);
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(config_generation), 1), (uint8_t)(gen + 4));
	assert_int_equal(fake_virtio_read(vd, VIRTIO_ISR_OFF, 1), 2);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 1);
	/* A reset while an up waits: the next driver finds the link up. */
	virtio_net_set_link(vd, false);
	virtio_net_set_link(vd, true);
	start(ALL_F | F(NET_F_STATUS), QSIZE);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 1);
}

/* An up waiting for a driver that never reads the status goes through when its wait ends
 * (the device's timer, on its I/O thread): the link does not stay down. */
static void test_link_up_wait_bounded(void **state)
{
	struct pollfd p;
	uint8_t gen;

	start(ALL_F | F(NET_F_STATUS), QSIZE);
	gen = (uint8_t)fake_virtio_read(vd, FAKE_CC(config_generation), 1);
	virtio_net_set_link(vd, false);
	virtio_net_set_link(vd, true); /* waits: the driver has not read the down */
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(config_generation), 1), (uint8_t)(gen + 1));
	(void)fake_virtio_read(vd, VIRTIO_ISR_OFF, 1);
	/* The driver reads nothing; the I/O thread wakes at the wait's end (10 s: a bound for
	 * a broken timer, never a measurement). */
	p = (struct pollfd){.fd = vd->io[0].epfd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 10000), 1);
	fake_virtio_serve(vd);
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(config_generation), 1), (uint8_t)(gen + 2));
	assert_int_equal(fake_virtio_read(vd, VIRTIO_ISR_OFF, 1), 2);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 1);
}

/* Save and load the device (its section through the state file) into itself. */
static int save_load(char *err, size_t errlen)
{
	struct state_registry reg = {0};
	struct state_file f;
	uint8_t *buf = NULL;
	size_t len;
	int r;

	assert_int_equal(
		state_register(&reg, "virtio-net.03", STATE_VIRTIO_VERSION, virtio_state, vd), 0);
	assert_int_equal(state_save(&reg, &buf, &len, err, errlen), 0);
	assert_int_equal(state_parse(buf, len, &f, err, errlen), 0);
	r = state_load(&reg, &f, STATE_CHECK, err, errlen);
	r = r ?: state_load(&reg, &f, STATE_LOAD, err, errlen);
	free(buf);
	return r;
}

/* A VM saved with its link down (an up still waiting, or a down the driver read) restores
 * with its link up, and the save does not count as the driver's read (docs/networking.md). */
static void test_link_save_restore(void **state)
{
	char err[256] = "";
	uint8_t gen;

	start(ALL_F | F(NET_F_STATUS), QSIZE);
	virtio_net_set_link(vd, false);
	virtio_net_set_link(vd, true); /* waits for the driver's read */
	gen = (uint8_t)fake_virtio_read(vd, FAKE_CC(config_generation), 1);
	(void)fake_virtio_read(vd, VIRTIO_ISR_OFF, 1);
	assert_int_equal(save_load(err, sizeof(err)), 0);
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(config_generation), 1), gen);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 1);
	/* Down and read by the driver, then saved: up after the load too. */
	virtio_net_set_link(vd, false);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 0);
	assert_int_equal(save_load(err, sizeof(err)), 0);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 6, 2), 1);
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
	assert_int_equal(virtio_net_create_fd(fake_machine(), 0, &fd, 1, ifname, mac, &tvd), 0);
	/* Its state saved and restored too (the restore below sets its offloads). */
	assert_int_equal(
		device_state_register(fake_machine(), &virtio_net_class, tvd->pci.slot, tvd), 0);
	fake_machine_reset();
	for (unsigned i = 0; i < 2; i++)
		q[i] = (struct fake_vq){.size = QSIZE,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = AVAIL(i),
					.used = USED(i)};
	assert_int_equal(ethtool_get(ifname, ETHTOOL_GTSO), 0);
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

/* ---- multi-queue: a device with two queue pairs, each on a socket pair ---- */

static struct virtio_dev *mq;
static int mq_peer[2];
static int mq_fd[2]; /* the device's ends (its tap queues) */
static const uint64_t MQ_F = ALL_F | F(NET_F_CTRL_VQ) | F(NET_F_MQ);

static void drain(int fd)
{
	while (recv(fd, got, sizeof(got), MSG_DONTWAIT) >= 0)
		;
}

/* The two-pair device brought up with features (queues 0 to nq - 1), the other device's
 * queues left as they are. */
static void start_mq(uint64_t features, unsigned nq)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x58};
	struct fake_vq q[NQ];

	if (!vd)
		start(ALL_F, QSIZE); /* the fake machine, paused */
	if (!mq) {
		int sv[2][2], fds[2];

		for (unsigned k = 0; k < 2; k++) {
			assert_int_equal(socketpair(AF_UNIX,
						    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
						    sv[k]),
					 0);
			fds[k] = sv[k][0];
			mq_fd[k] = sv[k][0];
			mq_peer[k] = sv[k][1];
		}
		assert_int_equal(virtio_net_create_fd(fake_machine(), 0, fds, 2, "mq0", mac, &mq),
				 0);
		assert_int_equal(
			device_state_register(fake_machine(), &virtio_net_class, mq->pci.slot, mq),
			0);
		fake_machine_pause(true);
	}
	fake_machine_reset();
	fake_virtio_serve(mq);
	for (unsigned k = 0; k < 2; k++) {
		drain(mq_peer[k]);
	}
	vd = mq;
	for (unsigned i = 0; i < NQ; i++) {
		q[i] = (struct fake_vq){.size = i < 2 ? QSIZE : MQ_QSIZE,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = AVAIL(i),
					.used = USED(i)};
		avail_idx[i] = used_seen[i] = 0;
	}
	assert_true(fake_virtio_start(mq, features, q, nq));
	fake_virtio_serve(mq);
}

/* Wait until the device's bucket of tap queue changes is full again (8, one more every
 * 250 ms: the other tests spent some). */
static void mq_bucket_full(void)
{
	usleep(2100 * 1000);
}

static void mq_send(unsigned pair, size_t len, uint8_t seed)
{
	memset(frame, 0, NET_HDR_SIZE);
	for (size_t i = 0; i < len; i++)
		frame[NET_HDR_SIZE + i] = (uint8_t)(i * 7 + seed);
	assert_int_equal(send(mq_peer[pair], frame, NET_HDR_SIZE + len, 0),
			 (ssize_t)(NET_HDR_SIZE + len));
	fake_virtio_serve(mq);
}

/* One control command on queue cq: cmd's len bytes readable, then ack_len writable bytes
 * (0: none). Returns the ack the device wrote, or -1 when it wrote no byte; the used entry's
 * length must be 1 with an ack, 0 without. */
static int ctrl(unsigned cq, const uint8_t *cmd, uint32_t len, uint32_t ack_len)
{
	uint16_t size = mq->q[cq].size, head = (uint16_t)(avail_idx[cq] % size * 2 % size);
	uint8_t *avail = ram(AVAIL(cq), 4 + 2 * size), *ack = ram(BUF(cq, head + 1), 1);
	const uint8_t *e;

	*ack = 0xee;
	if (len) {
		memcpy(ram(BUF(cq, head), len), cmd, len);
		desc(QBASE(cq), head, BUF(cq, head), len, ack_len ? VRING_DESC_F_NEXT : 0,
		     (uint16_t)(head + 1));
	}
	if (ack_len)
		desc(QBASE(cq), len ? head + 1u : head, BUF(cq, head + 1), ack_len,
		     VRING_DESC_F_WRITE, 0);
	le16_store(avail + 4 + 2 * (avail_idx[cq] % size), head);
	avail_idx[cq]++;
	le16_store(avail + 2, avail_idx[cq]);
	fake_virtio_notify(mq, cq);
	fake_virtio_serve(mq);
	assert_int_equal(used_idx(cq), avail_idx[cq]); /* answered */
	e = ram(USED(cq) + 4 + 8 * ((avail_idx[cq] - 1) % size), 8);
	assert_int_equal(le32_load(e), head);
	if (!ack_len) {
		assert_int_equal(le32_load(e + 4), 0);
		return -1;
	}
	assert_int_equal(le32_load(e + 4), 1);
	return *ack;
}

static int pairs_set(unsigned cq, uint16_t pairs)
{
	uint8_t cmd[4] = {4, 0}; /* VIRTIO_NET_CTRL_MQ, VQ_PAIRS_SET */

	le16_store(cmd + 2, pairs);
	return ctrl(cq, cmd, 4, 1);
}

/* Two pairs: MQ and the control queue offered, max_virtqueue_pairs 2, five queues; a single
 * pair is the device of old (two queues, neither feature, max_virtqueue_pairs 1). */
static void test_mq_config(void **state)
{
	uint64_t f;

	(void)state;
	start_mq(MQ_F, NQ);
	assert_int_equal(mq->nqueues, 5);
	f = mq->host_features;
	assert_true(f >> NET_F_MQ & 1);
	assert_true(f >> NET_F_CTRL_VQ & 1);
	assert_int_equal(fake_virtio_read(mq, VIRTIO_DEVICE_OFF + 8, 2), 2);
	assert_int_equal(fake_virtio_read(mq, FAKE_CC(num_queues), 2), 5);
	start(ALL_F, QSIZE);
	assert_int_equal(vd->nqueues, 2);
	assert_false(vd->host_features >> NET_F_MQ & 1);
	assert_false(vd->host_features >> NET_F_CTRL_VQ & 1);
	assert_int_equal(fake_virtio_read(vd, VIRTIO_DEVICE_OFF + 8, 2), 1);
}

/* The driver starts on pair 0 (pair 1's tap queue detached, not read); VQ_PAIRS_SET 2
 * attaches it: frames from it arrive on queue 2, frames sent on queue 3 leave through it; a
 * reset goes back to one pair. */
static void test_mq_pairs(void **state)
{
	uint8_t hdr[NET_HDR_SIZE + 64] = {0};
	int fd1;

	(void)state;
	mq_bucket_full();
	start_mq(MQ_F, NQ);
	assert_int_equal(q_flags, IFF_DETACH_QUEUE); /* pair 1, on the device's first event */
	fd1 = q_fd;
	for (unsigned i = 0; i < 4; i++)
		post(2, NULL, 1024, true);
	fake_virtio_notify(mq, 2);
	mq_send(1, 200, 9);
	assert_int_equal(used_idx(2), 0); /* pair 1 is not enabled: its queue is not read */
	q_calls = 0;
	assert_int_equal(pairs_set(4, 2), 0);
	assert_int_equal(q_calls, 1);
	assert_int_equal(q_fd, fd1);
	assert_int_equal(q_flags, IFF_ATTACH_QUEUE);
	mq_send(1, 300, 10);
	check_frame_on(2, 300, 10, 1);
	/* Transmit on pair 1: through its own queue. */
	drain(mq_peer[0]);
	post(3, hdr, sizeof(hdr), false);
	fake_virtio_notify(mq, 3);
	fake_virtio_serve(mq);
	assert_int_equal(used_idx(3), 1);
	assert_int_equal(recv(mq_peer[1], got, sizeof(got), MSG_DONTWAIT), (ssize_t)sizeof(hdr));
	assert_true(recv(mq_peer[0], got, sizeof(got), MSG_DONTWAIT) < 0);
	/* Back to one pair: detached again. */
	q_calls = 0;
	assert_int_equal(pairs_set(4, 1), 0);
	assert_int_equal(q_calls, 1);
	assert_int_equal(q_flags, IFF_DETACH_QUEUE);
	/* Its transmit chains left on pair 1 go out through pair 0's queue. */
	post(3, hdr, sizeof(hdr), false);
	fake_virtio_notify(mq, 3);
	fake_virtio_serve(mq);
	assert_int_equal(used_idx(3), 2);
	assert_int_equal(recv(mq_peer[0], got, sizeof(got), MSG_DONTWAIT), (ssize_t)sizeof(hdr));
	assert_int_equal(pairs_set(4, 2), 0);
	q_calls = 0;
	start_mq(MQ_F, NQ); /* a reset: one pair again */
	assert_int_equal(q_calls, 1);
	assert_int_equal(q_flags, IFF_DETACH_QUEUE);
}

/* Wait until queue q's used index is want (10 s at most: a bound for a broken device, never
 * a measurement), the device's threads running. */
static void wait_used(unsigned q, uint16_t want)
{
	for (unsigned i = 0; i < 10000 && used_idx(q) != want; i++)
		usleep(1000);
	assert_int_equal(used_idx(q), want);
}

/* Is one of this process's threads named name (/proc/self/task/TID/comm)? */
static bool thread_named(const char *name)
{
	char path[300], comm[32];
	bool found = false;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	assert_non_null(d);
	while (!found && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = 0;
			found = !strcmp(comm, name);
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

/* Receive buffers on both pairs' queues, a transmit chain on each, and frames from both tap
 * queues: served by the device's own threads (the machine running). */
static void mq_traffic(uint8_t seed)
{
	uint8_t hdr[NET_HDR_SIZE + 64] = {0};

	for (unsigned i = 0; i < 4; i++) {
		post(0, NULL, 1024, true);
		post(2, NULL, 1024, true);
	}
	post(1, hdr, sizeof(hdr), false);
	post(3, hdr, sizeof(hdr), false);
	for (unsigned q = 0; q < 4; q++)
		fake_virtio_notify(mq, q);
	for (unsigned i = 0; i < 4; i++)
		for (unsigned k = 0; k < 2; k++) {
			memset(frame, 0, NET_HDR_SIZE);
			for (size_t j = 0; j < 100; j++)
				frame[NET_HDR_SIZE + j] = (uint8_t)(j * 7 + seed + 16 * k + i);
			assert_int_equal(send(mq_peer[k], frame, NET_HDR_SIZE + 100, 0),
					 NET_HDR_SIZE + 100);
		}
}

/* One I/O thread per queue pair: pair 0's queues, the control queue and tap queue 0 on the
 * device's first thread (vio-net-SS), pair 1's on its own (vio-net-SS.1); each moves its
 * pair's frames both ways (its count of served events grows). A pause while both carry
 * frames parks both with no chain held, and what came meanwhile arrives after the resume,
 * whole and in order. */
static void test_mq_threads(void **state)
{
	static const unsigned thread_of[NQ] = {0, 0, 1, 1, 0};
	uint64_t served[2];
	char name[16];

	(void)state;
	mq_bucket_full();
	start_mq(MQ_F, NQ);
	assert_int_equal(pairs_set(4, 2), 0);
	assert_int_equal(mq->nthreads, 2);
	for (unsigned q = 0; q < NQ; q++)
		assert_int_equal(mq->q[q].thread, thread_of[q]);
	snprintf(name, sizeof(name), "vio-net-%02x", mq->pci.slot);
	assert_true(thread_named(name));
	snprintf(name, sizeof(name), "vio-net-%02x.1", mq->pci.slot);
	assert_true(thread_named(name));
	for (unsigned k = 0; k < 2; k++)
		served[k] = mq->io[k].served;

	fake_machine_pause(false);
	mq_traffic(0);
	wait_used(0, 4);
	wait_used(2, 4);
	wait_used(1, 1);
	wait_used(3, 1);
	/* Pause with traffic in flight on both pairs. */
	mq_traffic(100);
	fake_machine_pause(true); /* every pause hook answered 0 */
	pthread_mutex_lock(&mq->lock);
	assert_int_equal(mq->nparked, 2);
	assert_true(mq->io[0].parked && mq->io[1].parked);
	for (unsigned q = 0; q < 4; q++)
		assert_int_equal(mq->q[q].vq.last_avail, mq->q[q].vq.used_idx);
	pthread_mutex_unlock(&mq->lock);
	fake_machine_pause(false);
	wait_used(0, 8);
	wait_used(2, 8);
	wait_used(1, 2);
	wait_used(3, 2);
	fake_machine_pause(true);

	for (unsigned k = 0; k < 2; k++) {
		assert_true(mq->io[k].served > served[k]);
		for (unsigned i = 0; i < 8; i++)
			check_frame_on(2 * k, 100, (uint8_t)((i < 4 ? 0 : 100) + 16 * k + i % 4),
				       1);
		for (unsigned i = 0; i < 2; i++)
			assert_int_equal(recv(mq_peer[k], got, sizeof(got), MSG_DONTWAIT),
					 NET_HDR_SIZE + 64);
		assert_true(recv(mq_peer[k], got, sizeof(got), MSG_DONTWAIT) < 0);
	}
}

/* A driver reset while both pairs' threads move frames (their tap reads and writes run
 * without the device's lock): once the reset returns, no thread touches the old rings (the
 * used indexes stay as they were however many frames still come), and the next driver is
 * served. */
static void test_mq_threads_reset(void **state)
{
	uint16_t used[4];

	(void)state;
	mq_bucket_full();
	start_mq(MQ_F, NQ);
	assert_int_equal(pairs_set(4, 2), 0);
	fake_machine_pause(false);
	mq_traffic(0);
	mq_traffic(50);
	fake_virtio_write(mq, FAKE_CC(device_status), 1, 0); /* the driver resets */
	for (unsigned q = 0; q < 4; q++)
		used[q] = used_idx(q);
	mq_traffic(200); /* more frames and chains: a reset device takes none */
	usleep(100 * 1000);
	fake_machine_pause(true);
	for (unsigned q = 0; q < 4; q++)
		assert_int_equal(used_idx(q), used[q]);
	start_mq(MQ_F, NQ);
	mq_send(0, 100, 7);
	drain(mq_peer[0]);
	post(1, (uint8_t[NET_HDR_SIZE + 64]){0}, NET_HDR_SIZE + 64, false);
	fake_virtio_notify(mq, 1);
	fake_virtio_serve(mq);
	assert_int_equal(used_idx(1), 1);
	assert_int_equal(recv(mq_peer[0], got, sizeof(got), MSG_DONTWAIT), NET_HDR_SIZE + 64);
}

/* The guest is an attacker: every malformed or out-of-range command is refused with
 * VIRTIO_NET_ERR (or returned with 0 bytes when it has no ack byte) and changes nothing. */
static void test_mq_ctrl_hostile(void **state)
{
	static const uint8_t rx_promisc[3] = {0, 0, 1}, one[1] = {4};
	uint8_t long_cmd[6] = {4, 0, 2, 0, 0, 0}, bad_cmd[4] = {4, 1, 2, 0};

	(void)state;
	start_mq(MQ_F, NQ);
	q_calls = 0;
	assert_int_equal(pairs_set(4, 0), 1);
	assert_int_equal(pairs_set(4, 3), 1);
	assert_int_equal(pairs_set(4, 0xffff), 1);
	assert_int_equal(pairs_set(4, 0x8000), 1);
	assert_int_equal(ctrl(4, long_cmd, 6, 1), 1);	/* 4 bytes of data, not 2 */
	assert_int_equal(ctrl(4, long_cmd, 3, 1), 1);	/* 1 byte of data */
	assert_int_equal(ctrl(4, bad_cmd, 4, 1), 1);	/* an MQ command not offered */
	assert_int_equal(ctrl(4, rx_promisc, 3, 1), 1); /* CTRL_RX: not offered */
	assert_int_equal(ctrl(4, one, 1, 1), 1);	/* no command byte */
	assert_int_equal(ctrl(4, NULL, 0, 1), 1);	/* nothing readable */
	assert_int_equal(ctrl(4, long_cmd, 4, 0), -1);	/* no ack byte: 0 bytes */
	assert_int_equal(ctrl(4, long_cmd, 4, 8), 0);	/* a longer ack area: the first byte */
	assert_int_equal(q_calls, 1);			/* only the last one attached pair 1 */
	assert_int_equal(pairs_set(4, 1), 0);
	/* Without MQ negotiated the control queue is queue 2 and VQ_PAIRS_SET is refused. */
	start_mq(ALL_F | F(NET_F_CTRL_VQ), 3);
	q_calls = 0;
	assert_int_equal(pairs_set(2, 2), 1);
	assert_int_equal(q_calls, 0);
	/* A driver without either feature: one pair, the control queue unused. */
	start_mq(ALL_F, 2);
	assert_int_equal(fake_virtio_read(mq, FAKE_CC(num_queues), 2), 5);
	mq_send(0, 50, 12);
	assert_int_equal(used_idx(0), 0); /* no buffers posted: the frame waits on pair 0 */
}

/* A driver that toggles its pairs in a loop: a few TUNSETQUEUEs (eight, then one every
 * 250 ms: each takes the host's RTNL), and the pairs it asked for last applied once the
 * bucket has refilled, at the next event. */
static void test_mq_queue_rate_limit(void **state)
{
	unsigned calls;
	uint64_t t0;

	(void)state;
	start_mq(MQ_F, NQ);
	mq_bucket_full();
	calls = q_calls;
	t0 = now_ms();
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(pairs_set(4, (uint16_t)(i % 2 ? 1 : 2)), 0);
	printf("%u TUNSETQUEUEs in %llu ms\n", q_calls - calls,
	       (unsigned long long)(now_ms() - t0));
	assert_true(q_calls - calls >= 8);
	assert_true(q_calls - calls <= 9 + (now_ms() - t0) / 250);
	assert_int_equal(pairs_set(4, 2), 0);
	usleep(600 * 1000);
	for (unsigned i = 0; i < 4; i++)
		post(2, NULL, 1024, true);
	fake_virtio_notify(mq, 2); /* the event that applies it */
	fake_virtio_serve(mq);
	assert_int_equal(q_flags, IFF_ATTACH_QUEUE);
	mq_send(1, 100, 13);
	check_frame_on(2, 100, 13, 1);
}

/* The pairs the driver enabled are saved and restored (a reset in between brought the
 * device back to one; guest RAM, which the machine saves apart, put back as it was). */
static void test_mq_save_restore(void **state)
{
	static uint8_t ram_copy[FAKE_RAM_LOW];
	uint16_t idx_copy[NQ], seen_copy[NQ];
	char err[256] = "";
	uint8_t *saved;
	size_t len;

	(void)state;
	mq_bucket_full();
	start_mq(MQ_F, NQ);
	assert_int_equal(pairs_set(4, 2), 0);
	fake_machine_save(&saved, &len);
	memcpy(ram_copy, ram(0, FAKE_RAM_LOW), FAKE_RAM_LOW);
	memcpy(idx_copy, avail_idx, sizeof(idx_copy));
	memcpy(seen_copy, used_seen, sizeof(seen_copy));
	start_mq(MQ_F, NQ); /* one pair */
	memcpy(ram(0, FAKE_RAM_LOW), ram_copy, FAKE_RAM_LOW);
	memcpy(avail_idx, idx_copy, sizeof(idx_copy));
	memcpy(used_seen, seen_copy, sizeof(seen_copy));
	q_calls = 0;
	assert_int_equal(fake_machine_load(saved, len, err, sizeof(err)), 0);
	fake_virtio_serve(mq);
	assert_int_equal(q_calls, 1);
	assert_int_equal(q_flags, IFF_ATTACH_QUEUE);
	for (unsigned i = 0; i < 4; i++)
		post(2, NULL, 1024, true);
	fake_virtio_notify(mq, 2);
	mq_send(1, 100, 11);
	check_frame_on(2, 100, 11, 1);
	free(saved);
	start_mq(MQ_F, NQ);
}

/* The driver clears FEATURES_OK and DRIVER_OK without a reset (virtio/pci.c lets it),
 * takes CTRL_VQ without MQ and sets them again: queue 2 is its control queue now. */
static void renegotiate_without_mq(void)
{
	uint64_t f = ALL_F | F(NET_F_CTRL_VQ) | 1ull << 32;

	fake_virtio_write(mq, FAKE_CC(device_status), 1, 0x3); /* FEATURES_OK, DRIVER_OK off */
	fake_virtio_write(mq, FAKE_CC(guest_feature_select), 4, 0);
	fake_virtio_write(mq, FAKE_CC(guest_feature), 4, (uint32_t)f);
	fake_virtio_write(mq, FAKE_CC(guest_feature_select), 4, 1);
	fake_virtio_write(mq, FAKE_CC(guest_feature), 4, (uint32_t)(f >> 32));
	fake_virtio_write(mq, FAKE_CC(device_status), 1, 0xb);
	fake_virtio_write(mq, FAKE_CC(device_status), 1, 0xf);
}

/* A driver that clears FEATURES_OK without a reset (virtio/pci.c lets it) and takes CTRL_VQ
 * without MQ after it enabled two pairs: queue 2 is its control queue now, and pair 1 is not
 * in use whatever VQ_PAIRS_SET said (net_pairs_on): a frame on pair 1's tap queue, which
 * may still be attached, lands in no queue, and the state saves one pair. */
static void test_review_mq_renegotiated(void **state)
{
	uint16_t u;

	(void)state;
	mq_bucket_full();
	start_mq(MQ_F, NQ);
	assert_int_equal(pairs_set(4, 2), 0);
	renegotiate_without_mq();
	fake_virtio_serve(mq);
	assert_false(virtio_has_feature(mq, NET_F_MQ));
	assert_true(virtio_has_feature(mq, NET_F_CTRL_VQ));
	for (unsigned i = 0; i < 2; i++)
		post(2, NULL, 1024, true);
	mq_send(1, 100, 21);
	assert_int_equal(used_idx(2), 0);
	/* Restored (the resume kicks queue 2: its buffers are answered as control commands),
	 * with buffers again: still none for pair 1's frames. */
	fake_machine_save_restore();
	fake_virtio_serve(mq);
	u = used_idx(2);
	for (unsigned i = 0; i < 2; i++)
		post(2, NULL, 1024, true);
	mq_send(1, 100, 22);
	assert_int_equal(used_idx(2), u);
}

/* VQ_PAIRS_SET 1 acknowledged while the tap queue changes are rate-limited (the driver
 * toggled its pairs past the bucket): pair 1's tap queue may stay attached until a token
 * is back, but its frames land in no queue once the driver read OK (test_vmm_net_vhost.c
 * has the kernel data path's half: its rings come back before the ack). */
static void test_review_mq_limited_ack(void **state)
{
	unsigned i;

	(void)state;
	mq_bucket_full();
	start_mq(MQ_F, NQ);
	/* Toggle until a VQ_PAIRS_SET 1 is limited with pair 1's queue attached (the bucket
	 * emptied by an attach); emptied by a detach, wait for a token to come back. */
	for (i = 0; i < 200; i++) {
		q_calls = 0;
		assert_int_equal(pairs_set(4, (uint16_t)(i % 2 ? 1 : 2)), 0); /* VIRTIO_NET_OK */
		if (i % 2 && !q_calls && q_flags == IFF_ATTACH_QUEUE)
			break;
		if (!q_calls)
			usleep(100 * 1000);
	}
	assert_true(i < 200);
	for (i = 0; i < 2; i++)
		post(2, NULL, 1024, true);
	fake_virtio_notify(mq, 2);
	fake_virtio_serve(mq);
	mq_send(1, 100, 23);
	assert_int_equal(used_idx(2), 0);
}

/* The kernel data path with two queue pairs (a vhost-net per pair): vhost=on without a
 * /dev/vhost-net for the pairs fails the adapter saying so and which pair, the taps taken
 * over and closed; with auto and descriptors that are not vhost-net (pair 0's refused) the
 * adapter is on the user-space path for every pair and each descriptor passed is closed. */
static void test_mq_vhost_setup(void **state)
{
	struct vm_nic spec = {.vhost = VM_VHOST_ON};
	struct virtio_dev *d = NULL;
	int sv[2][2], taps[2], vh[2];
	char err[256];

	(void)state;
	snprintf(spec.tap, sizeof(spec.tap), "mqv0");
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(
			socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv[k]),
			0);
		taps[k] = sv[k][0];
	}
	assert_int_equal(
		virtio_net_create(fake_machine(), &spec, 2, taps, NULL, &d, err, sizeof(err)),
		-ENODEV);
	assert_null(d);
	assert_non_null(strstr(err, "vhost=on, but vhost-net cannot serve it: keeld passed no "
				    "/dev/vhost-net with the tap"));
	assert_non_null(strstr(err, "(queue pair 0 of 2;"));
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(fcntl(taps[k], F_GETFD), -1);
		close(sv[k][1]);
	}

	spec.vhost = VM_VHOST_AUTO;
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(
			socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv[k]),
			0);
		taps[k] = sv[k][0];
		vh[k] = open("/dev/null", O_RDWR | O_CLOEXEC);
		assert_true(vh[k] >= 0);
	}
	assert_int_equal(
		virtio_net_create(fake_machine(), &spec, 2, taps, vh, &d, err, sizeof(err)), 0);
	assert_non_null(d);
	assert_null(virtio_net_vhost(d, 0));
	assert_null(virtio_net_vhost(d, 1));
	assert_null(virtio_net_vhost(d, 2));
	for (unsigned k = 0; k < 2; k++)
		assert_int_equal(fcntl(vh[k], F_GETFD), -1);
	virtio_dev_destroy(d);
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(fcntl(taps[k], F_GETFD), -1);
		close(sv[k][1]);
	}
}

/* ---- the unlocked tap calls of the pairs' threads, and a failed set-up ---- */

static void set_blocking(int fd, bool block)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, block ? fl & ~O_NONBLOCK : fl | O_NONBLOCK), 0);
}

/* Does queue q's used ring hold an entry of len bytes (among its first n)? */
static bool used_len_seen(unsigned q, uint32_t len, unsigned n)
{
	const uint8_t *used = ram(USED(q), 4 + 8 * vd->q[q].size);

	for (unsigned i = 0; i < n && i < used_idx(q); i++)
		if (le32_load(used + 4 + 8 * i + 4) == len)
			return true;
	return false;
}

/* Pair 1's thread reads its tap without the device's lock (net_rx_read). While it is in
 * that read, the driver clears FEATURES_OK (no reset: the epoch stays), takes CTRL_VQ
 * without MQ and sets DRIVER_OK again: queue 2 is now its control queue and pair 1 is not
 * in use (net_pairs_on). The recheck after the read looks at the epoch, the queue's
 * readiness, p->attached (still true: no net_sync_queues ran, pair 0's thread being busy
 * too) and net_pairs_on, so the frame is dropped, never written into the control queue's
 * buffers (docs/virtio.md: "queue 2 is then its control queue, never pair 1's receive
 * queue"). The
 * tap queues are made blocking only to hold the threads inside the read (in production the
 * read is non-blocking and the window is the copy of up to 64 KiB). */
static void test_mq_unlocked_read_renegotiated(void **state)
{
	bool frame_in_ctrl;

	(void)state;
	mq_bucket_full();
	start_mq(MQ_F, NQ);
	assert_int_equal(pairs_set(4, 2), 0);
	for (unsigned i = 0; i < 4; i++) {
		post(0, NULL, 1024, true);
		post(2, NULL, 1024, true);
	}
	set_blocking(mq_fd[0], true);
	set_blocking(mq_fd[1], true);
	fake_machine_pause(false);
	fake_virtio_notify(mq, 0);
	fake_virtio_notify(mq, 2);
	usleep(300 * 1000); /* both threads wait in their tap's read, the lock let go */
	renegotiate_without_mq();
	set_blocking(mq_fd[1], false); /* the read under way still waits for its frame */
	memset(frame, 0, NET_HDR_SIZE + 100);
	assert_int_equal(send(mq_peer[1], frame, NET_HDR_SIZE + 100, 0), NET_HDR_SIZE + 100);
	usleep(300 * 1000);
	set_blocking(mq_fd[0], false);
	assert_int_equal(send(mq_peer[0], frame, NET_HDR_SIZE + 100, 0), NET_HDR_SIZE + 100);
	wait_used(0, 1);
	fake_machine_pause(true);
	frame_in_ctrl = used_len_seen(2, NET_HDR_SIZE + 100, 8);
	printf("queue 2 (the control queue now): used %u, pair 1's frame in it: %s\n",
	       used_idx(2), frame_in_ctrl ? "yes" : "no");
	start_mq(MQ_F, NQ);
	assert_false(frame_in_ctrl);
}

/* virtio_net_create failing after virtio_dev_create (here vhost=on without vhost-net; in a
 * hot add, a timerfd or epoll_ctl failure in virtio_net_create_fd, or a thread that cannot
 * start in virtio_dev_create) frees the device through virtio_dev_destroy, which takes its
 * pause and report hooks out of the machine's tables (machine_forget): the next pause calls
 * no hook on freed memory (ASan would report a heap-use-after-free). */
static void test_failed_create_forgets_hooks(void **state)
{
	struct vm_nic spec = {.vhost = VM_VHOST_ON};
	struct virtio_dev *d = NULL;
	int sv[2];
	char err[256];

	(void)state;
	snprintf(spec.tap, sizeof(spec.tap), "rv16");
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(
		virtio_net_create(fake_machine(), &spec, 1, sv, NULL, &d, err, sizeof(err)),
		-ENODEV);
	close(sv[1]);
	fake_machine_pause(false);
	fake_machine_pause(true);
}

#if defined(KEEL_TEST_HOOKS)
/* Test builds only: the failure points (vmm/fail_point.h) are compiled away in release ones.
 * A hot add (a VM that runs) failing at each point after the card went on the bus: the
 * card stays pending there (pci.h), never visible to the guest's configuration-space
 * look-up, so virtio_net_create destroys it at once, the vCPUs running. The guest's view is
 * checked at every failure point the add passes (fail_point_hook) and after: the slot reads
 * as empty (all ones through 0xCF8/0xCFC) throughout. Before the rule the card answered
 * (vendor 0x1af4) from virtio_dev_create's registration on, and was then freed under a vCPU
 * that could be reading it. */
#define HA_SLOT 9
/* The point to fail at (NULL: none); points passed; those at which the guest saw the card. */
static const char *ha_fail_at;
static unsigned ha_points, ha_seen;

static uint32_t ha_guest_cfg_read(unsigned slot, unsigned reg)
{
	fake_pio_write(PORT_PCI_CONF1, 4, 0x80000000u | slot << 11 | reg);
	return (uint32_t)fake_pio_read(PORT_PCI_CONF1 + 4, 4);
}

static int ha_hook(const char *point)
{
	ha_points++;
	if (ha_guest_cfg_read(HA_SLOT, PCI_VENDOR_ID) != 0xffffffffu)
		ha_seen++;
	return ha_fail_at && !strcmp(point, ha_fail_at) ? -EIO : 0;
}

/* A hot add of a one-pair card at HA_SLOT on a socket pair sv (made here), failing at point
 * (NULL: none), the guest's view checked at every point: virtio_net_create's result. */
static int hot_add(const char *point, enum vm_vhost vhost, int sv[2], struct virtio_dev **d)
{
	struct vm_nic spec = {.vhost = vhost, .pci_slot = HA_SLOT};
	char err[256] = "";
	int r;

	snprintf(spec.tap, sizeof(spec.tap), "rv16d");
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ha_fail_at = point;
	ha_points = ha_seen = 0;
	fail_point_hook = ha_hook;
	fake_machine_running(true);
	r = virtio_net_create(fake_machine(), &spec, 1, sv, NULL, d, err, sizeof(err));
	fail_point_hook = NULL;
	return r;
}

static void hot_add_fails_at(const char *point, enum vm_vhost vhost)
{
	struct virtio_dev *d = NULL;
	int sv[2];

	assert_int_equal(hot_add(point, vhost, sv, &d), point ? -EIO : -ENODEV);
	fake_machine_running(false);
	printf("hot add failing at %s: %u failure points passed, the guest saw the card at %u\n",
	       point ? point : "the data path (vhost=on)", ha_points, ha_seen);
	assert_true(ha_points > 0);
	assert_int_equal(ha_seen, 0);
	assert_null(d); /* destroyed here, at once, and off the bus */
	assert_false(pci_slot_used(fake_machine()->pci, HA_SLOT));
	assert_int_equal(ha_guest_cfg_read(HA_SLOT, PCI_VENDOR_ID), 0xffffffffu);
	assert_int_equal(fcntl(sv[0], F_GETFD), -1); /* the tap went with it */
	close(sv[1]);
	fake_machine_pause(false); /* no hook of the freed card is left */
	fake_machine_pause(true);
}

static void test_hot_add_fails_invisible(void **state)
{
	(void)state;
	hot_add_fails_at("virtio-thread-start", VM_VHOST_OFF); /* virtio_dev_create */
	hot_add_fails_at("net-watch", VM_VHOST_OFF);	       /* virtio_net_create_fd */
	hot_add_fails_at("net-timerfd", VM_VHOST_OFF);
	hot_add_fails_at(NULL, VM_VHOST_ON); /* net_vhost_setup: no vhost-net passed */
}

/* A hot add that succeeds: pending (the guest's look-up finds no card) until the caller
 * publishes it (hotplug.c, once the whole add went through), then the guest finds it. */
static void test_hot_add_published_at_end(void **state)
{
	struct virtio_dev *d = NULL;
	int sv[2];

	(void)state;
	assert_int_equal(hot_add(NULL, VM_VHOST_OFF, sv, &d), 0);
	assert_true(ha_points > 0);
	assert_int_equal(ha_seen, 0);
	assert_true(pci_slot_used(fake_machine()->pci, HA_SLOT)); /* its slot is held */
	assert_int_equal(ha_guest_cfg_read(HA_SLOT, PCI_VENDOR_ID), 0xffffffffu);
	pci_dev_publish(&d->pci);
	assert_int_equal(ha_guest_cfg_read(HA_SLOT, PCI_VENDOR_ID) & 0xffff, 0x1af4);
	virtio_dev_destroy(d); /* as hp_teardown, its vCPUs stopped */
	fake_machine_running(false);
	assert_int_equal(ha_guest_cfg_read(HA_SLOT, PCI_VENDOR_ID), 0xffffffffu);
	close(sv[1]);
}
#endif

/* The tap's side of pair 1 (the test's end), read a while after it starts (the reset is
 * under way by then): whether the transmitted frame carried the bytes written after the
 * reset. */
static void *tx_drainer(void *arg)
{
	bool *saw_b = arg;

	usleep(200 * 1000);
	for (unsigned i = 0; i < 400; i++) {
		ssize_t n = recv(mq_peer[1], got, sizeof(got), MSG_DONTWAIT);

		if (n == NET_HDR_SIZE + 64) {
			*saw_b = got[NET_HDR_SIZE] == 'B';
			break;
		}
		if (n < 0)
			usleep(5 * 1000);
	}
	return NULL;
}

/* Pair 1's thread writes a transmit chain to its tap without the device's lock
 * (net_tx_one). The driver resets the device meanwhile: the reset waits until no pair's
 * thread is inside a tap call (here, until the test's end of the tap is read and the write
 * completes), so that once the status reads 0 the driver may reuse the buffer (here:
 * rewritten with 'B') and nothing it writes then leaves the device. The tap queue's send
 * buffer is filled only to hold the thread inside the write (in production the tap is
 * non-blocking and the window is the copy of up to 64 KiB). */
static void test_mq_reset_waits_for_tx_write(void **state)
{
	uint8_t pkt[NET_HDR_SIZE + 64] = {0}, filler[1000] = {0};
	int small = 1, big = 212992;
	unsigned slot;
	bool saw_b = false;
	pthread_t th;

	(void)state;
	mq_bucket_full();
	start_mq(MQ_F, NQ);
	assert_int_equal(pairs_set(4, 2), 0);
	drain(mq_peer[1]);
	assert_int_equal(setsockopt(mq_fd[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	while (send(mq_fd[1], filler, sizeof(filler), MSG_DONTWAIT) > 0)
		;
	/* A frame for pair 1 and no receive buffers: its thread reads it once and then waits
	 * for buffers (the tap unwatched), never again in a (now blocking) read. */
	assert_int_equal(send(mq_peer[1], pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	set_blocking(mq_fd[1], true);
	memset(pkt + NET_HDR_SIZE, 'A', 64);
	slot = avail_idx[3] % vd->q[3].size;
	post(3, pkt, sizeof(pkt), false);
	fake_machine_pause(false);
	fake_virtio_notify(mq, 3);
	usleep(300 * 1000); /* pair 1's thread waits in writev, the lock let go */
	assert_int_equal(pthread_create(&th, NULL, tx_drainer, &saw_b), 0);
	fake_virtio_write(mq, FAKE_CC(device_status), 1, 0);
	assert_int_equal(fake_virtio_read(mq, FAKE_CC(device_status), 1), 0);
	memset(ram(BUF(3, slot) + NET_HDR_SIZE, 64), 'B', 64); /* reused after the reset */
	assert_int_equal(pthread_join(th, NULL), 0);
	set_blocking(mq_fd[1], false);
	assert_int_equal(setsockopt(mq_fd[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	fake_machine_pause(true);
	printf("a frame with the bytes written after the reset left the device: %s\n",
	       saw_b ? "yes" : "no");
	start_mq(MQ_F, NQ);
	assert_false(saw_b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tap_offload_seccomp),
		cmocka_unit_test(test_rx_mergeable),
		cmocka_unit_test(test_rx_waits),
		cmocka_unit_test(test_rx_larger_than_ring),
		cmocka_unit_test(test_rx_single),
		cmocka_unit_test(test_tx_headers),
		cmocka_unit_test(test_tap_offloads),
		cmocka_unit_test(test_rx_headers),
		cmocka_unit_test(test_real_tap),
		cmocka_unit_test(test_link_status),
		cmocka_unit_test(test_link_up_wait_bounded),
		cmocka_unit_test(test_link_save_restore),
		cmocka_unit_test(test_rx_offload_not_negotiated),
		cmocka_unit_test(test_rx_wait_notify_without_buffers),
		cmocka_unit_test(test_rx_ring_breaks_mid_frame),
		cmocka_unit_test(test_tx_max_segments),
		cmocka_unit_test(test_offload_rate_limit),
		cmocka_unit_test(test_offload_retry),
		cmocka_unit_test(test_state_features),
		cmocka_unit_test(test_mq_config),
		cmocka_unit_test(test_mq_pairs),
		cmocka_unit_test(test_mq_threads),
		cmocka_unit_test(test_mq_threads_reset),
		cmocka_unit_test(test_mq_ctrl_hostile),
		cmocka_unit_test(test_mq_save_restore),
		cmocka_unit_test(test_review_mq_renegotiated),
		cmocka_unit_test(test_review_mq_limited_ack),
		cmocka_unit_test(test_mq_queue_rate_limit),
		cmocka_unit_test(test_mq_unlocked_read_renegotiated),
		cmocka_unit_test(test_mq_reset_waits_for_tx_write),
		cmocka_unit_test(test_mq_vhost_setup),
		cmocka_unit_test(test_failed_create_forgets_hooks),
#if defined(KEEL_TEST_HOOKS)
		cmocka_unit_test(test_hot_add_fails_invisible),
		cmocka_unit_test(test_hot_add_published_at_end),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
