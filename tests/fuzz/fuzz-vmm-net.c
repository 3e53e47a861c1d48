/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: virtio-net's transmit and receive paths (vmm/virtio/net.c) on
 * descriptor chains the input builds in guest RAM, with a datagram socket pair as the tap:
 * the target sends frames for the device to receive and reads the frames it transmits.
 * Every chain taken must be returned, a receive chain never reported longer than its
 * writable buffers, a transmit chain with 0 bytes, every frame sent with its header.
 * Input: a features byte (bit 0 GUEST_TSO4, 1 GUEST_TSO6, 2 GUEST_ECN, 3 HOST_TSO4,
 * 4 HOST_TSO6, 5 MRG_RXBUF: mergeable receive buffers, one frame over many chains, waiting
 * for buffers, dropped when the ring cannot hold it; bit 6: the device with two queue pairs,
 * MQ and the control queue asked for, bit 7 with it: CTRL_VQ without MQ, the control queue
 * then queue 2), fake_guest.h's two header bytes (bits 4 and 5 of byte 0 offer CSUM and
 * GUEST_CSUM), then its operations, and these: 9 a frame of a given length, 10 a frame of
 * the input's bytes (bit 4 of the operation byte: on pair 1's tap queue). Transmit headers
 * and control commands are whatever the input puts in guest RAM (net_hdr_tx_check; the
 * control queue's VQ_PAIRS_SET and every other class and command); a control chain gets at
 * most its 1-byte ack written.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "fake_guest.h"
#include "fake_machine.h"
#include "lib/le.h"
#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_guest g;
static struct virtio_dev *one, *two; /* one queue pair, two */
static int peer[2];
static uint8_t frame[256 * 1024];

/* The frames the device received since the last check: each in used entries that follow
 * each other, as many as its header's num_buffers says, all of them there (published
 * together); a chain not used for a frame (malformed, or a frame dropped) has 0 bytes.
 * Only when the walk knows where the headers are (chains that do not overlap). */
static void check_frames(struct fake_guest *fg, unsigned q)
{
	const struct vq *vq = &fg->vd->q[q].vq;
	uint16_t k = fg->used_seen[q], end = vq->used_idx;

	if (!vq->ready || (uint16_t)(end - k) > vq->size)
		return;
	while (k != end) {
		const uint8_t *e = vq->used + 4 + 8 * (k & (vq->size - 1));
		uint16_t head = (uint16_t)le_load(e, 4), nbuf, i;
		uint8_t *lo = fake_guest_out_byte(q, head, 10),
			*hi = fake_guest_out_byte(q, head, 11);

		if (!le_load(e + 4, 4)) {
			k++;
			continue;
		}
		if (!lo || !hi)
			return;
		nbuf = (uint16_t)(*lo | *hi << 8);
		FAKE_CHECK(nbuf >= 1 && nbuf <= (uint16_t)(end - k),
			   "a frame of %u buffers with %u used entries after it", nbuf,
			   (uint16_t)(end - k));
		for (i = 1; i < nbuf; i++)
			FAKE_CHECK(le_load(vq->used + 4 + 8 * ((k + i) & (vq->size - 1)) + 4, 4),
				   "buffer %u of a frame of %u has 0 bytes", i, nbuf);
		k = (uint16_t)(k + nbuf);
	}
}

/* Frames the device transmitted: each whole, led by its header. */
static void served(struct fake_guest *fg)
{
	ssize_t n;

	for (unsigned k = 0; k < (fg->vd == two ? 2u : 1u); k++)
		while ((n = recv(peer[k], frame, sizeof(frame), MSG_TRUNC)) >= 0)
			FAKE_CHECK(n >= NET_HDR_SIZE, "a %zd-byte frame without a header", n);
	check_frames(fg, 0);
	/* Pair 1's receive queue (with MQ; without it queue 2 is the control queue). */
	if (fg->vd == two && virtio_has_feature(fg->vd, NET_F_MQ))
		check_frames(fg, 2);
}

static void send_frame(unsigned pair, size_t len, uint8_t fill, const uint8_t *bytes, size_t nbytes)
{
	memset(frame, fill, len);
	if (nbytes)
		memcpy(frame, bytes, nbytes < len ? nbytes : len);
	(void)send(peer[g.vd == two ? pair : 0], frame, len, MSG_DONTWAIT);
}

static size_t net_op(const uint8_t *data, size_t size)
{
	size_t n;

	switch (data[0] & 0xf) {
	case 9: /* a frame of 0 to 64 KiB of one byte */
		if (size < 4)
			return 0;
		send_frame(data[0] >> 4 & 1, (size_t)le_load(data + 1, 2), data[3], NULL, 0);
		return 4;
	case 10: /* a frame of up to 64 bytes from the input, padded to a given length */
		n = size < 3 ? 3 : 3u + data[1] % 65;
		if (size < n)
			return 0;
		send_frame(data[0] >> 4 & 1, NET_HDR_SIZE + data[2] * 8u, 0, data + 3, n - 3);
		return n;
	default:
		return 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!one) {
		fake_machine();
		one = fake_virtio_net(&peer[0]);
		two = fake_virtio_net_mq(peer);
		g.served = served;
		fake_machine_pause(true);
	}
	if (!size)
		return 0;
	g.vd = data[0] & 0x40 ? two : one;
	/* Receive queues: what the chain holds; transmit: nothing written; the control queue
	 * (queue 4, or 2 without MQ): the ack byte. */
	g.max_used[0] = UINT32_MAX;
	g.max_used[1] = 0;
	g.max_used[2] = data[0] & 0x80 ? 1 : UINT32_MAX;
	g.max_used[3] = 0;
	g.max_used[4] = 1;
	g.extra_features = (uint64_t)(data[0] & 1) << NET_F_GUEST_TSO4 |
			   (uint64_t)(data[0] >> 1 & 1) << NET_F_GUEST_TSO6 |
			   (uint64_t)(data[0] >> 2 & 1) << NET_F_GUEST_ECN |
			   (uint64_t)(data[0] >> 3 & 1) << NET_F_HOST_TSO4 |
			   (uint64_t)(data[0] >> 4 & 1) << NET_F_HOST_TSO6 |
			   (uint64_t)(data[0] >> 5 & 1) << NET_F_MRG_RXBUF;
	if (g.vd == two)
		g.extra_features |= 1ull << NET_F_CTRL_VQ | (uint64_t) !(data[0] & 0x80)
								    << NET_F_MQ;
	/* No frame left from the last input. */
	if (g.vd == two)
		fake_virtio_net_mq(peer);
	else
		fake_virtio_net(&peer[0]);
	fake_guest_run(&g, data + 1, size - 1, net_op);
	return 0;
}
