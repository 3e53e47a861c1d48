/* SPDX-License-Identifier: Apache-2.0 */
/* Storage QoS for the disk device targets (fake_qos.h). */
#include "fake_qos.h"

#include <poll.h>

#include "fake_machine.h"
#include "vmm/virtio/virtio.h"

size_t fake_qos_op(struct fake_guest *g, const struct fake_qos_dev *dev, const uint8_t *data,
		   size_t size)
{
	struct blk_qos_limits tight = {.max_bw = 4096}, none = {0};
	static const uint8_t reset = 5, save_restore = 8;
	unsigned waiting;

	if (size < 2)
		return 0;
	tight.max_iops = 1u + data[1] % 4;
	dev->set(g->vd, &tight, &waiting);
	fake_guest_expect(g); /* the chains it may take, for the used entries to come */
	fake_virtio_serve(g->vd);
	if (data[1] & 0x80) {
		fake_virtio_write(g->vd, FAKE_CC(device_status), 1, 0); /* the driver resets */
	} else {
		/* The I/O thread stays parked (the target serves by hand): a pause again is
		 * the device's quiesce, which must start what waits. */
		fake_machine_pause(false);
		fake_machine_pause(true);
	}
	dev->set(g->vd, &none, &waiting);
	FAKE_CHECK(waiting == 0, "%u requests still wait for QoS after a %s", waiting,
		   data[1] & 0x80 ? "reset" : "pause");
	if (data[1] & 0x80) {
		fake_guest_op(g, &reset, 1); /* and the driver starts again */
	} else {
		fake_guest_verify(g); /* every chain back, as the walk before allows */
		fake_guest_op(g, &save_restore, 1);
	}
	return 2;
}

void fake_qos_settle(struct fake_guest *g, const struct fake_qos_dev *dev)
{
	while (dev->inflight(g->vd)) {
		struct pollfd p = {.fd = g->vd->io[0].epfd, .events = POLLIN};

		FAKE_CHECK(poll(&p, 1, 10000) == 1, "no completion within 10 s");
		fake_virtio_serve(g->vd);
	}
}
