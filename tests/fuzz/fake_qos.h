/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage QoS for the disk device targets (fuzz-vmm-blkdev, fuzz-vmm-scsidev): an operation
 * that sets limits so tight that requests wait in the device, serves, then either resets the
 * device while they wait (none may be left waiting, none answered) or pauses the VM (which
 * must start every waiting request) and saves and restores it, then lifts the limits; and the
 * wait for the device's requests in flight that the targets do after each serve.
 */
#ifndef KEEL_TESTS_FUZZ_FAKE_QOS_H
#define KEEL_TESTS_FUZZ_FAKE_QOS_H

#include <stddef.h>
#include <stdint.h>

#include "fake_guest.h"
#include "vmm/blkio/qos.h"

/* The device's side: set its disks' limits (every disk of the device), the requests that
 * wait for them in *waiting; and its requests in flight on the block backend. */
struct fake_qos_dev {
	void (*set)(struct virtio_dev *vd, const struct blk_qos_limits *lim, unsigned *waiting);
	unsigned (*inflight)(struct virtio_dev *vd);
};

/* The operation on input data (two bytes: byte 1's low bits the IOPS limit, 1 to 4, bit 7
 * reset rather than pause): the bytes it took, 0 when the input is too short. */
size_t fake_qos_op(struct fake_guest *g, const struct fake_qos_dev *dev, const uint8_t *data,
		   size_t size);
/* Serve until the device has no request in flight (10 s at most for each completion). */
void fake_qos_settle(struct fake_guest *g, const struct fake_qos_dev *dev);

#endif
