/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A guest driver for one virtio device whose chains come from the fuzz input (the
 * virtio-net and virtio-console targets): the device brought up with queues at fixed places
 * in the first pages of RAM, then operations read from the input that write descriptors
 * anywhere, post heads, poke RAM, notify, reset, save and restore, and let the device's
 * I/O thread run. After each, the device must have returned every chain it took, with used
 * entries that name a descriptor of the ring and no more bytes than the target allows.
 */
#ifndef KEEL_TESTS_FUZZ_FAKE_GUEST_H
#define KEEL_TESTS_FUZZ_FAKE_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "fake_virtio.h"

/* Queues a device may have here: virtio-net's two pairs and its control queue. */
#define FAKE_GUEST_QUEUES 5
/* Operations 0 to FAKE_GUEST_OPS - 1 (the low nibble of an operation's first byte) are
 * fake_guest_op's; the target has the others. */
#define FAKE_GUEST_OPS 9
/* Header bytes an input starts with. */
#define FAKE_GUEST_HEADER 2

struct fake_guest {
	struct virtio_dev *vd;
	/* Set by the target: the most bytes a used entry of each queue may report. */
	uint32_t max_used[FAKE_GUEST_QUEUES];
	/* Set by the target: called after the device's work was served. */
	void (*served)(struct fake_guest *g);
	/* Set by the target: device features asked for besides the header's (if offered). */
	uint64_t extra_features;
	/* From the input's header (fake_guest_start). */
	uint8_t hdr[FAKE_GUEST_HEADER];
	uint64_t features;
	struct fake_vq q[FAKE_GUEST_QUEUES];
	uint16_t used_seen[FAKE_GUEST_QUEUES];
};

/* Power-on, then bring the device up as the header says: byte 0 bit 0 indirect
 * descriptors, bit 1 event index, bit 2 no MSI-X vectors, bit 3 KVM takes ioeventfds,
 * bits 4-7 device feature bits 0-3; byte 1 log2 of each queue's size (nibbles, modulo what
 * the device offers: queue i takes nibble i % 2, queues 2 and up at most 16 entries). */
void fake_guest_start(struct fake_guest *g, const uint8_t *hdr);
/* A whole input: the header, then operations until the input ends, each followed by
 * fake_guest_check: the common ones, and the target's through op (the bytes it took, 0 when
 * the input is too short for it). */
void fake_guest_run(struct fake_guest *g, const uint8_t *data, size_t size,
		    size_t (*op)(const uint8_t *data, size_t size));
/* Run the common operation at data (its low nibble is below FAKE_GUEST_OPS); returns the
 * bytes it took, 0 when the input is too short for it. */
size_t fake_guest_op(struct fake_guest *g, const uint8_t *data, size_t size);
/* Around anything that lets the device take chains: before, walk what it may take; after,
 * check what it returned against that. */
void fake_guest_expect(struct fake_guest *g);
void fake_guest_verify(struct fake_guest *g);
/* The device's I/O thread's work and the target's served hook, between the two. */
void fake_guest_serve(struct fake_guest *g);
/* Writable bytes of a chain the walk before the last serve found: byte off (below
 * FAKE_GUEST_HEAD_BYTES) of head's chain on queue q, or NULL when unknown (no such byte, or
 * chains that overlap: the device may have written it more than once). */
#define FAKE_GUEST_HEAD_BYTES 16
uint8_t *fake_guest_out_byte(unsigned q, uint16_t head, unsigned off);
/* The transport's and PCI's invariants (after every operation). */
void fake_guest_check(struct fake_guest *g);

#endif
