/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: virtio-blk's device path (vmm/virtio/blk.c on the asynchronous
 * block backend, vmm/blkio) with two request queues, on chains the input builds in guest
 * RAM, over a 1 MiB raw disk (a deleted file in $TMPDIR, cache=none: O_DIRECT transfers,
 * bounce buffers for unaligned guest buffers, the library for the rest). After each serve
 * the target waits for every request in flight to complete through the device's I/O-thread
 * path, so every chain taken must be back with at most its writable bytes used.
 * Input: fake_guest.h's two header bytes, then its operations, and the target's own (low
 * nibble 9 and up): storage QoS so tight that requests wait in the device (1 to 4 I/Os per
 * second, 4 KiB/s), served, then while they wait the driver resets the device (bit 7 of the
 * second byte; none may be left waiting, none answered) or the VM pauses (which must start
 * every waiting request) and is saved and restored, then the limits are lifted.
 * Bit 4 of the first header byte (feature bit 0, which virtio-blk does not offer) picks a
 * VHDX card: the same on a 16 MiB VHDX (1 MiB blocks, MQ, discard and flush negotiated),
 * through the same pause cycle, a discard making blocks not present again. Bit 7 with it
 * (feature bit 3, not offered either) picks a differencing child (of an empty parent),
 * whose writes to blocks not present go through the library and park the writes to the
 * same blocks behind them on either queue (blk_park); without it, a dynamic VHDX, whose
 * writes to blocks not present allocate them as they are mapped and go direct.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake_guest.h"
#include "fake_qos.h"
#include "fake_machine.h"
#include "vmm/device.h"
#include "vmm/blkio/qos.h"
#include "vmm/machine.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/virtio.h"
#include "disk/disk.h"

/* The model's class (listed in src/vmm/device_table.c): its state sections. */
extern const struct device_class virtio_blk_class;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The raw card's driver, the dynamic VHDX card's and the differencing one's; g is this
 * input's. */
static struct fake_guest graw, gvhdx, gdiff, *g;

static void blk_set(struct virtio_dev *vd, const struct blk_qos_limits *lim, unsigned *waiting)
{
	struct blk_qos_limits now;
	struct blk_qos_stats st;

	virtio_blk_qos(vd, lim, &now, &st, waiting);
}

static const struct fake_qos_dev blk_qos = {.set = blk_set, .inflight = virtio_blk_inflight};

/* What the I/O thread does as completions arrive: wait on its epoll set, then serve. */
static void served(struct fake_guest *fg)
{
	fake_qos_settle(fg, &blk_qos);
}

static size_t qos_op(const uint8_t *data, size_t size)
{
	return fake_qos_op(g, &blk_qos, data, size);
}

enum card { CARD_RAW, CARD_VHDX, CARD_DIFF };

/* A card with two queues on a scratch disk (deleted once open): raw (1 MiB, the descriptor
 * passed), a dynamic VHDX or a differencing child of an empty one (opened by path). */
static struct virtio_dev *blk_device(enum card kind)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct vm_disk spec = {.path = "fuzz-disk", .format = VM_DISK_RAW, .serial = "fuzz"};
	struct disk_create_opts o = {.format = DISK_FORMAT_VHDX,
				     .type = DISK_TYPE_DYNAMIC,
				     .size = 16ull << 20,
				     .block_size = 1u << 20};
	struct disk_create_opts c = {.format = DISK_FORMAT_VHDX, .type = DISK_TYPE_DIFFERENCING};
	struct machine *m = fake_machine();
	const struct vm_def *def = m->def;
	struct vm_def two = *def;
	struct disk_err e = {{0}};
	struct virtio_dev *vd;
	char path[4096], parent[4200], err[256];
	int fd;

	snprintf(path, sizeof(path), "%s/fuzz-vmm-blkdev-XXXXXX", tmp);
	fd = mkstemp(path);
	if (kind != CARD_RAW) {
		FAKE_CHECK(fd >= 0 && close(fd) == 0 && unlink(path) == 0, "disk file");
		if (kind == CARD_DIFF) {
			snprintf(parent, sizeof(parent), "%s-parent.vhdx", path);
			FAKE_CHECK(disk_create(parent, &o, &e) == 0, "parent: %s", e.msg);
			c.parent = parent;
		}
		FAKE_CHECK(disk_create(path, kind == CARD_DIFF ? &c : &o, &e) == 0, "vhdx: %s",
			   e.msg);
		spec.path = path;
		spec.format = VM_DISK_VHDX;
		fd = -1;
	} else {
		FAKE_CHECK(fd >= 0 && unlink(path) == 0 && ftruncate(fd, 1 << 20) == 0,
			   "disk file");
	}
	two.cpus = 2; /* two queues */
	m->def = &two;
	FAKE_CHECK(virtio_blk_create(m, &spec, fd, NULL, &vd, err, sizeof(err)) == 0,
		   "virtio-blk: %s", err);
	FAKE_CHECK(device_state_register(m, &virtio_blk_class, vd->pci.slot, vd) == 0,
		   "virtio-blk state sections");
	m->def = def;
	if (kind != CARD_RAW)
		FAKE_CHECK(unlink(path) == 0, "vhdx scratch");
	if (kind == CARD_DIFF)
		FAKE_CHECK(unlink(parent) == 0, "parent scratch");
	return vd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!graw.vd) {
		struct fake_guest *cards[] = {&graw, &gvhdx, &gdiff};

		graw.vd = blk_device(CARD_RAW);
		gvhdx.vd = blk_device(CARD_VHDX);
		gdiff.vd = blk_device(CARD_DIFF);
		for (unsigned i = 0; i < 3; i++) {
			struct fake_guest *fg = cards[i];

			if (i) /* FLUSH, MQ, DISCARD */
				fg->extra_features = 1ull << 9 | 1ull << 12 | 1ull << 13;
			fg->max_used[0] = fg->max_used[1] = UINT32_MAX; /* what the chain holds */
			fg->served = served;
		}
		fake_machine_pause(true);
	}
	g = !size || !(data[0] & 0x10) ? &graw : data[0] & 0x80 ? &gdiff : &gvhdx;
	fake_guest_run(g, data, size, qos_op);
	return 0;
}
