/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk's parking of writes behind a write that allocates their VHDX block
 * (vmm/virtio/blk.c, blk_park): a pause's quiesce leaves none parked or in flight, whatever
 * queue the unparking completion is on; only writes that allocate in the library (a
 * differencing disk's) park; a dynamic disk's new blocks are allocated by the map.
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
#include "lib/clock.h"
#include "lib/le.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/blk_internal.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"

#define NQ	   2
#define QSIZE	   16
#define QBASE(i)   (0x400u * (i))
#define HDR(q, s)  (0x1000u + 0x1000u * (q) + 0x20u * (s))
#define DATA(q, s) (0x8000u + 0x4000u * (q) + 0x1000u * (s))

static struct virtio_dev *vd;
static bool aligned_writes;
static char disk_path[64];
static uint16_t avail_idx[NQ];

static char parent_path[96];

static void remove_scratch(void)
{
	unlink(disk_path);
	if (parent_path[0])
		unlink(parent_path);
}

static void start_on(const char *path);

/* A card with two queues on a new VHDX (1 MiB blocks, none allocated): dynamic, or a
 * differencing child of an empty dynamic parent (its allocations stay the library's). */
static void start(bool differencing)
{
	struct disk_create_opts o = {.format = DISK_FORMAT_VHDX,
				     .type = DISK_TYPE_DYNAMIC,
				     .size = 64ull << 20,
				     .block_size = 1u << 20};
	struct disk_create_opts c = {.format = DISK_FORMAT_VHDX, .type = DISK_TYPE_DIFFERENCING};
	struct disk_err e = {{0}};
	int fd;

	snprintf(disk_path, sizeof(disk_path), "/tmp/test-blk-park-XXXXXX");
	fd = mkstemp(disk_path);
	FAKE_CHECK(fd >= 0, "scratch");
	close(fd);
	unlink(disk_path);
	atexit(remove_scratch);
	if (differencing) {
		snprintf(parent_path, sizeof(parent_path), "%s-parent.vhdx", disk_path);
		FAKE_CHECK(disk_create(parent_path, &o, &e) == 0, "parent: %s", e.msg);
		c.parent = parent_path;
		FAKE_CHECK(disk_create(disk_path, &c, &e) == 0, "child: %s", e.msg);
	} else {
		FAKE_CHECK(disk_create(disk_path, &o, &e) == 0, "vhdx: %s", e.msg);
	}
	start_on(disk_path);
}

static void start_on(const char *path)
{
	struct vm_disk spec = {.format = VM_DISK_VHDX, .cache = VM_DISK_CACHE_WRITEBACK};
	struct machine *m = fake_machine();
	const struct vm_def *def = m->def;
	struct vm_def two = *def;
	char err[256] = "";

	spec.path = (char *)path;
	two.cpus = NQ;
	m->def = &two;
	FAKE_CHECK(virtio_blk_create(m, &spec, -1, NULL, &vd, err, sizeof(err)) == 0,
		   "virtio-blk: %s", err);
	m->def = def;
	fake_machine_pause(true);
	FAKE_CHECK(fake_virtio_restart(vd, 1ull << 9 | 1ull << 12, NQ, QSIZE, QBASE(1)),
		   "virtio-blk bring-up");
}

/* A 4 KiB write at sector on queue qi, its data in two segments (256 + 3840 bytes: not whole
 * sectors, so the library does it whatever the block's state). */
static void post_write(unsigned qi, uint64_t sector)
{
	unsigned slot = avail_idx[qi] % (QSIZE / 4);
	uint8_t *d = fake_ram(QBASE(qi) + 16u * 4 * slot, 64),
		*avail = fake_ram(QBASE(qi) + 0x100, 4 + 2 * QSIZE),
		*h = fake_ram(HDR(qi, slot), 17);
	uint16_t base = (uint16_t)(4 * slot);

	memset(h, 0, 17);
	le32_store(h, 1); /* VIRTIO_BLK_T_OUT */
	le64_store(h + 8, sector);
	h[16] = 0xee;
	memset(fake_ram(DATA(qi, slot), 4096), 0x5a, 4096);
	le64_store(d, HDR(qi, slot));
	le32_store(d + 8, 16);
	le16_store(d + 12, VRING_DESC_F_NEXT);
	le16_store(d + 14, base + 1);
	le64_store(d + 16, DATA(qi, slot));
	le32_store(d + 24, aligned_writes ? 512 : 256);
	le16_store(d + 28, VRING_DESC_F_NEXT);
	le16_store(d + 30, base + 2);
	le64_store(d + 32, DATA(qi, slot) + (aligned_writes ? 512 : 256));
	le32_store(d + 40, aligned_writes ? 3584 : 3840);
	le16_store(d + 44, VRING_DESC_F_NEXT);
	le16_store(d + 46, base + 3);
	le64_store(d + 48, HDR(qi, slot) + 16);
	le32_store(d + 56, 1);
	le16_store(d + 60, VRING_DESC_F_WRITE);
	le16_store(d + 62, 0);
	le16_store(avail + 4 + 2 * (avail_idx[qi] % QSIZE), base);
	avail_idx[qi]++;
	le16_store(avail + 2, avail_idx[qi]);
}

/* A write parked on queue 0 behind an allocating write on queue 1 (a differencing disk's
 * allocation is the library's): the quiesce reaps queue 1 after it looked at queue 0, and
 * that completion starts the parked write. The pause still finds nothing in flight (it
 * failed after 5 s when it counted queue by queue). */
static void test_pause_with_parked_write_on_lower_queue(void **state)
{
	long long t0;

	(void)state;
	start(true);
	post_write(1, 0); /* A: queue 1, block 0: the library, marked allocating */
	fake_virtio_queue_notify(vd, 1);
	post_write(0, 8); /* B: queue 0, the same block: parked behind A */
	fake_virtio_queue_notify(vd, 0);
	/* The I/O thread is paused: A is not reaped, B waits for it. */
	assert_int_equal(((struct virtio_blk *)vd->priv)->stats.parked, 1);
	/* A pause again (the I/O thread stays parked): quiesce, then the idle check. */
	t0 = clock_mono_ms();
	fake_machine_pause(true); /* FAKE_CHECK aborts if the pause hook fails */
	fprintf(stderr, "pause took %lld ms\n", clock_mono_ms() - t0);
	assert_int_equal(virtio_blk_inflight(vd), 0);
}

/* A dynamic VHDX without parent: the first write's map allocates the block (vhdx_map), so
 * the same two writes (the library's anyway: their segments are not whole sectors) allocate
 * nothing in the library and neither waits for the other: both in flight at once. */
static void test_dynamic_allocation_does_not_park(void **state)
{
	struct timespec ms = {0, 1000000};
	unsigned n;

	(void)state;
	vd = NULL;
	memset(avail_idx, 0, sizeof(avail_idx));
	aligned_writes = false;
	start(false);
	post_write(1, 0);
	fake_virtio_queue_notify(vd, 1);
	post_write(0, 8);
	fake_virtio_queue_notify(vd, 0);
	n = virtio_blk_inflight(vd);
	assert_int_equal(((struct virtio_blk *)vd->priv)->stats.parked, 0);
	for (unsigned i = 0; i < 2000 && virtio_blk_inflight(vd); i++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	fake_virtio_serve(vd);
	assert_int_equal(n, 2);
	assert_int_equal(virtio_blk_inflight(vd), 0);
}

/* A differencing disk: writes to a partially present block always need the library (they
 * never go direct) but allocate nothing: two of them are in flight together, neither parked
 * behind the other. */
static void test_differencing_writes_serialized(void **state)
{
	static char parent[64], child[64];
	struct disk_create_opts o = {.format = DISK_FORMAT_VHDX,
				     .type = DISK_TYPE_DYNAMIC,
				     .size = 64ull << 20,
				     .block_size = 1u << 20};
	struct disk_create_opts c = {.format = DISK_FORMAT_VHDX, .type = DISK_TYPE_DIFFERENCING};
	struct disk_err e = {{0}};
	struct disk *d;
	static uint8_t buf[4096];
	unsigned n;
	struct timespec ms = {0, 1000000};

	(void)state;
	snprintf(parent, sizeof(parent), "/tmp/test-blk-park-p-%d.vhdx", getpid());
	snprintf(child, sizeof(child), "/tmp/test-blk-park-c-%d.vhdx", getpid());
	unlink(parent);
	unlink(child);
	FAKE_CHECK(disk_create(parent, &o, &e) == 0, "parent: %s", e.msg);
	FAKE_CHECK(disk_open(parent, 0, &d, &e) == 0, "open parent: %s", e.msg);
	memset(buf, 0x11, sizeof(buf));
	FAKE_CHECK(disk_write(d, buf, 64 << 10, sizeof(buf)) == 0, "parent write");
	FAKE_CHECK(disk_flush(d) == 0, "parent flush");
	disk_close(d);
	c.parent = parent;
	FAKE_CHECK(disk_create(child, &c, &e) == 0, "child: %s", e.msg);

	vd = NULL;
	start_on(child);
	memset(avail_idx, 0, sizeof(avail_idx));
	aligned_writes = true;
	post_write(0, 0); /* allocates block 0 partially present */
	fake_virtio_queue_notify(vd, 0);
	for (n = 0; n < 2000 && virtio_blk_inflight(vd); n++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	fake_virtio_serve(vd);
	post_write(1, 8);
	fake_virtio_queue_notify(vd, 1);
	post_write(0, 16);
	fake_virtio_queue_notify(vd, 0);
	n = virtio_blk_inflight(vd);
	fprintf(stderr, "two writes to a partially present block: %u in flight\n", n);
	assert_int_equal(((struct virtio_blk *)vd->priv)->stats.parked, 0);
	for (unsigned i = 0; i < 2000 && virtio_blk_inflight(vd); i++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	fake_virtio_serve(vd);
	unlink(parent);
	unlink(child);
	assert_int_equal(n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_with_parked_write_on_lower_queue),
		cmocka_unit_test(test_dynamic_allocation_does_not_park),
		cmocka_unit_test(test_differencing_writes_serialized),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
