/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk's storage QoS in the device (vmm/virtio/blk_throttle.c) on the fuzz targets'
 * fake machine, its I/O thread's work run on the test's thread: requests beyond the limit
 * wait in their queue (none lost), and the release takes the queues in turn, so a queue
 * the guest floods does not starve another; the buckets are refilled by setting the limit
 * again (control disk-qos), so that no test waits for the clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "disk/disk.h"
#include "lib/le.h"
#include "vmm/blkio/qos.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"

#define NQ	  2
#define QSIZE	  16
#define QBASE(i)  (0x400u * (i))
#define HDR(q, s) (0x1000u + 0x1000u * (q) + 0x20u * (s)) /* header, then the status at +16 */

static struct virtio_dev *vd;
static char disk_path[64];
static uint16_t avail_idx[NQ];

static void remove_scratch(void)
{
	unlink(disk_path);
}

static void start(void)
{
	struct vm_disk spec = {.format = VM_DISK_RAW};
	struct machine *m = fake_machine();
	const struct vm_def *def = m->def;
	struct vm_def two = *def;
	char err[256] = "";
	int fd;

	if (!vd) {
		snprintf(disk_path, sizeof(disk_path), "/tmp/test-blk-qos-XXXXXX");
		fd = mkstemp(disk_path);
		FAKE_CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "scratch disk");
		close(fd);
		atexit(remove_scratch);
		spec.path = disk_path;
		two.cpus = NQ; /* a queue per vCPU */
		m->def = &two;
		FAKE_CHECK(virtio_blk_create(m, &spec, -1, NULL, &vd, err, sizeof(err)) == 0,
			   "virtio-blk: %s", err);
		m->def = def;
		fake_machine_pause(true);
	}
	memset(avail_idx, 0, sizeof(avail_idx));
	/* FLUSH, MQ */
	FAKE_CHECK(fake_virtio_restart(vd, 1ull << 9 | 1ull << 12, NQ, QSIZE, QBASE(1)),
		   "virtio-blk bring-up");
}

/* A flush on queue qi (one normalized I/O): its header and status byte. */
static void post_flush(unsigned qi)
{
	unsigned slot = avail_idx[qi] % (QSIZE / 2);
	uint8_t *d = fake_ram(QBASE(qi) + 16u * 2 * slot, 32),
		*avail = fake_ram(QBASE(qi) + 0x100, 4 + 2 * QSIZE),
		*h = fake_ram(HDR(qi, slot), 17);

	memset(h, 0, 17);
	le32_store(h, 4); /* VIRTIO_BLK_T_FLUSH */
	h[16] = 0xee;
	le64_store(d, HDR(qi, slot));
	le32_store(d + 8, 16);
	le16_store(d + 12, VRING_DESC_F_NEXT);
	le16_store(d + 14, (uint16_t)(2 * slot + 1));
	le64_store(d + 16, HDR(qi, slot) + 16);
	le32_store(d + 24, 1);
	le16_store(d + 28, VRING_DESC_F_WRITE);
	le16_store(d + 30, 0);
	le16_store(avail + 4 + 2 * (avail_idx[qi] % QSIZE), (uint16_t)(2 * slot));
	avail_idx[qi]++;
	le16_store(avail + 2, avail_idx[qi]);
}

static uint16_t used_idx(unsigned qi)
{
	return fake_virtio_used_idx(QBASE(qi) + 0x200);
}

/* Serve until the device has nothing in flight (its flushes come back from the backend). */
static void settle(void)
{
	struct timespec ms = {0, 1000000};

	for (unsigned i = 0; i < 2000; i++) {
		fake_virtio_serve(vd);
		if (!virtio_blk_inflight(vd))
			break;
		nanosleep(&ms, NULL);
	}
	fake_virtio_serve(vd);
	assert_int_equal(virtio_blk_inflight(vd), 0);
}

static unsigned qos(const struct blk_qos_limits *set, struct blk_qos_stats *st)
{
	struct blk_qos_limits lim;
	unsigned waiting;

	virtio_blk_qos(vd, set, &lim, st, &waiting);
	return waiting;
}

/* Six flushes on queue 0, then one on queue 1, at one I/O per second: one goes at once,
 * the others wait; each refill releases one, queue 0's oldest and queue 1's in turn, so
 * queue 1's request goes second, ahead of queue 0's four older ones. */
static void test_queues_take_turns(void **state)
{
	struct blk_qos_limits one = {.max_iops = 1}, none = {0};
	struct blk_qos_stats st;

	(void)state;
	start();
	assert_int_equal(qos(&one, &st), 0);
	for (int i = 0; i < 6; i++)
		post_flush(0);
	fake_virtio_queue_notify(vd, 0);
	post_flush(1);
	fake_virtio_queue_notify(vd, 1);
	settle();
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(used_idx(1), 0);
	assert_int_equal(qos(NULL, &st), 6);
	assert_int_equal(st.throttled, 6);
	/* A refill: queue 0's oldest waiting (queues are taken in turn from queue 0). */
	assert_int_equal(qos(&one, &st), 6);
	settle();
	assert_int_equal(used_idx(0), 2);
	assert_int_equal(used_idx(1), 0);
	/* The next: queue 1's, ahead of queue 0's four older ones. */
	assert_int_equal(qos(&one, &st), 5);
	settle();
	assert_int_equal(used_idx(1), 1);
	assert_int_equal(used_idx(0), 2);
	assert_int_equal(fake_ram(HDR(1, 0) + 16, 1)[0], 0); /* VIRTIO_BLK_S_OK */
	/* No limit: what waits goes at once, none lost. */
	assert_int_equal(qos(&none, &st), 4);
	settle();
	assert_int_equal(used_idx(0), 6);
	assert_int_equal(qos(NULL, &st), 0);
	assert_int_equal(st.requests, 7);
	for (unsigned s = 0; s < 6; s++)
		assert_int_equal(fake_ram(HDR(0, s % 8) + 16, 1)[0], 0);
}

/* A driver reset while requests wait: they are dropped unanswered (their buffers belong to
 * the old driver), and the device serves the new one. */
static void test_reset_drops_waiting(void **state)
{
	struct blk_qos_limits one = {.max_iops = 1}, none = {0};
	struct blk_qos_stats st;

	(void)state;
	start();
	assert_int_equal(qos(&one, &st), 0);
	for (int i = 0; i < 4; i++)
		post_flush(0);
	fake_virtio_queue_notify(vd, 0);
	settle();
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(qos(NULL, &st), 3);
	fake_virtio_write(vd, offsetof(struct virtio_pci_common_cfg, device_status), 1, 0);
	assert_int_equal(qos(&none, &st), 0);
	settle();
	start();
	post_flush(1);
	fake_virtio_queue_notify(vd, 1);
	settle();
	assert_int_equal(used_idx(1), 1);
}

/* Minimum IOPS counts only the seconds the disk had requests outstanding: a disk idle for
 * over two seconds whose next request comes in was short of nothing meanwhile (the windows
 * that ended before a request are judged without it; it once counted the idle seconds as
 * shortfalls). Waits 2.2 s of the real clock, the length of two windows: no threshold. */
static void test_idle_is_no_shortfall(void **state)
{
	struct blk_qos_limits min = {.min_iops = 1000}, none = {0};
	struct timespec idle = {2, 200000000};
	struct blk_qos_stats st;
	uint64_t before;

	(void)state;
	start();
	assert_int_equal(qos(&min, &st), 0);
	before = st.below_min_seconds;
	post_flush(0);
	fake_virtio_queue_notify(vd, 0);
	settle();
	assert_int_equal(used_idx(0), 1);
	while (nanosleep(&idle, &idle))
		;
	post_flush(0);
	fake_virtio_queue_notify(vd, 0);
	settle();
	assert_int_equal(used_idx(0), 2);
	assert_int_equal(qos(&none, &st), 0);
	assert_int_equal(st.below_min_seconds, before);
	assert_false(st.below_min);
}

/* A write-zeroes on a VHDX writes its zeros: the bandwidth limit counts them as a write of
 * that length (it once counted none, so a guest wrote zeros at any speed under any
 * max_bandwidth). Two of 1 MiB at 64 KiB/s: the first goes (a full bucket, then in debt),
 * the second waits; a driver that grows the length after the check gets an error. */
#define WZ(s) (0x4000u + 0x40u * (s)) /* header, segment, then the status at +32 */

static void post_zeroes(unsigned slot, uint32_t sectors)
{
	uint8_t *d = fake_ram(QBASE(0) + 16u * 2 * slot, 32),
		*avail = fake_ram(QBASE(0) + 0x100, 4 + 2 * QSIZE), *h = fake_ram(WZ(slot), 33);

	memset(h, 0, 33);
	le32_store(h, 13); /* VIRTIO_BLK_T_WRITE_ZEROES */
	le64_store(h + 16, 0);
	le32_store(h + 24, sectors);
	h[32] = 0xee;
	le64_store(d, WZ(slot));
	le32_store(d + 8, 32);
	le16_store(d + 12, VRING_DESC_F_NEXT);
	le16_store(d + 14, (uint16_t)(2 * slot + 1));
	le64_store(d + 16, WZ(slot) + 32);
	le32_store(d + 24, 1);
	le16_store(d + 28, VRING_DESC_F_WRITE);
	le16_store(d + 30, 0);
	le16_store(avail + 4 + 2 * (avail_idx[0] % QSIZE), (uint16_t)(2 * slot));
	avail_idx[0]++;
	le16_store(avail + 2, avail_idx[0]);
}

static void test_vhdx_zeroes_count_bytes(void **state)
{
	struct blk_qos_limits bw = {.max_bw = 64 << 10}, none = {0};
	struct disk_create_opts o = {
		.format = DISK_FORMAT_VHDX, .type = DISK_TYPE_DYNAMIC, .size = 8 << 20};
	struct vm_disk spec = {.format = VM_DISK_VHDX};
	struct machine *m = fake_machine();
	struct virtio_dev *blk = vd;
	struct blk_qos_stats st;
	char path[64] = "/tmp/test-blk-qos-vhdx-XXXXXX", err[256] = "";
	int fd = mkstemp(path);

	(void)state;
	FAKE_CHECK(fd >= 0, "scratch name");
	close(fd);
	unlink(path);
	FAKE_CHECK(disk_create(path, &o, NULL) == 0, "VHDX scratch disk");
	spec.path = path;
	FAKE_CHECK(virtio_blk_create(m, &spec, -1, NULL, &vd, err, sizeof(err)) == 0,
		   "virtio-blk: %s", err);
	unlink(path);
	memset(avail_idx, 0, sizeof(avail_idx));
	/* WRITE_ZEROES, one queue */
	FAKE_CHECK(fake_virtio_restart(vd, 1ull << 14, 1, QSIZE, QBASE(1)), "VHDX bring-up");
	assert_int_equal(qos(&bw, &st), 0);
	post_zeroes(0, 2048);
	post_zeroes(1, 2048);
	fake_virtio_queue_notify(vd, 0);
	settle();
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(fake_ram(WZ(0) + 32, 1)[0], 0); /* VIRTIO_BLK_S_OK */
	assert_int_equal(qos(NULL, &st), 1);
	assert_int_equal(st.bytes, 1 << 20);
	/* The waiting one grows to 2 MiB: refused when it goes. */
	le32_store(fake_ram(WZ(1) + 24, 4), 4096);
	assert_int_equal(qos(&none, &st), 1);
	settle();
	assert_int_equal(used_idx(0), 2);
	assert_int_equal(fake_ram(WZ(1) + 32, 1)[0], 1); /* VIRTIO_BLK_S_IOERR */
	vd = blk;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queues_take_turns),
		cmocka_unit_test(test_reset_drops_waiting),
		cmocka_unit_test(test_idle_is_no_shortfall),
		cmocka_unit_test(test_vhdx_zeroes_count_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
