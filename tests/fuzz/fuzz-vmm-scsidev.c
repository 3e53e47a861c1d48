/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: virtio-scsi's device path (vmm/virtio/scsi.c on the block
 * backend, with storage QoS per LUN) on chains the input builds in guest RAM on its three
 * queues (control, event, requests), over two 1 MiB raw disks at LUNs 0 and 1 (deleted files
 * in $TMPDIR). After each serve the target waits for every request in flight to complete
 * through the device's I/O-thread path, so every chain taken must be back with at most its
 * writable bytes used. Input: fake_guest.h's two header bytes, then its operations, and the
 * target's own (low nibble 9 and up): fake_qos.h's, limits so tight on both LUNs that their
 * requests wait in the device (a reset drops them, a pause starts them; a task management
 * function taken meanwhile waits for them too).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake_guest.h"
#include "fake_machine.h"
#include "fake_qos.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/virtio/scsi.h"
#include "vmm/virtio/virtio.h"

/* The model's class (listed in src/vmm/device_table.c): its state sections. */
extern const struct device_class virtio_scsi_class;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LUNS 2

static struct fake_guest g;

static void scsi_set(struct virtio_dev *vd, const struct blk_qos_limits *lim, unsigned *waiting)
{
	struct blk_qos_limits now;
	struct blk_qos_stats st;

	*waiting = 0;
	for (unsigned l = 0; l < LUNS; l++) {
		unsigned w;

		FAKE_CHECK(virtio_scsi_qos(vd, l, lim, &now, &st, &w) == 0, "LUN %u's QoS", l);
		*waiting += w;
	}
}

static const struct fake_qos_dev scsi_qos = {.set = scsi_set, .inflight = virtio_scsi_inflight};

static void served(struct fake_guest *fg)
{
	fake_qos_settle(fg, &scsi_qos);
}

static size_t qos_op(const uint8_t *data, size_t size)
{
	return fake_qos_op(&g, &scsi_qos, data, size);
}

static struct virtio_dev *scsi_device(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct vm_scsi spec = {.nluns = LUNS};
	struct virtio_dev *vd;
	char path[4096], err[256];
	int fds[LUNS];

	for (unsigned l = 0; l < LUNS; l++) {
		snprintf(path, sizeof(path), "%s/fuzz-vmm-scsidev-XXXXXX", tmp);
		fds[l] = mkstemp(path);
		FAKE_CHECK(fds[l] >= 0 && unlink(path) == 0 && ftruncate(fds[l], 1 << 20) == 0,
			   "disk file");
		spec.luns[l] = (struct vm_lun){
			.type = VM_LUN_DISK, .disk = {.path = "fuzz-disk", .format = VM_DISK_RAW}};
	}
	FAKE_CHECK(virtio_scsi_create(fake_machine(), &spec, fds, NULL, &vd, err, sizeof(err)) == 0,
		   "virtio-scsi: %s", err);
	FAKE_CHECK(device_state_register(fake_machine(), &virtio_scsi_class, vd->pci.slot, vd) == 0,
		   "virtio-scsi state sections");
	return vd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g.vd) {
		g.vd = scsi_device();
		for (unsigned q = 0; q < FAKE_GUEST_QUEUES; q++)
			g.max_used[q] = UINT32_MAX; /* what the chain holds */
		g.served = served;
		fake_machine_pause(true);
	}
	fake_guest_run(&g, data, size, qos_op);
	return 0;
}
