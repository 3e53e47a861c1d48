/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net's feature bits, its 12-byte frame header (virtio 1.2, 5.1.6) and the rules the
 * device holds the guest's headers to before they reach the host kernel, and the tap
 * offloads (TUNSETOFFLOAD) that follow from what the driver negotiated.
 */
#ifndef KEEL_VMM_VIRTIO_NET_HDR_H
#define KEEL_VMM_VIRTIO_NET_HDR_H

#include <stdbool.h>
#include <stdint.h>

/* Feature bits (virtio 1.2, 5.1.3). */
#define NET_F_CSUM	 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC	 5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_GUEST_ECN	 9
#define NET_F_HOST_TSO4	 11
#define NET_F_HOST_TSO6	 12
#define NET_F_MRG_RXBUF	 15
#define NET_F_STATUS	 16
#define NET_F_CTRL_VQ	 17
#define NET_F_MQ	 22

/* The header's flags and gso_type values. */
#define NET_HDR_F_NEEDS_CSUM 1
#define NET_HDR_GSO_NONE     0
#define NET_HDR_GSO_TCPV4    1
#define NET_HDR_GSO_TCPV6    4
#define NET_HDR_GSO_ECN	     0x80

#define NET_HDR_SIZE	     12
#define NET_ETH_HLEN	     14
/* The longest frame either way, header not counted: a 64 KiB segmentation frame and its
 * link-layer headers. */
#define NET_FRAME_MAX (65536 + 256)

struct net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len; /* the fields in host order (net_hdr_parse) */
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

/* The header's 12 little-endian bytes. */
void net_hdr_parse(const uint8_t raw[NET_HDR_SIZE], struct net_hdr *h);
/* Whether a transmit header (the guest's) may go to the tap with a frame of frame_len bytes
 * after it, given the negotiated features: NULL, or why not. Only what was negotiated is
 * allowed (checksum offload with CSUM, TCP segmentation with HOST_TSO4/6, no ECN, UDP or
 * unknown flags), and every offset and length lies inside the frame. */
const char *net_hdr_tx_check(const struct net_hdr *h, uint64_t frame_len, uint64_t features);
/* Whether a received frame's header (the tap's) may reach a guest that negotiated features:
 * offloads it did not negotiate (a frame the tap queued before a renegotiation) mean no;
 * DATA_VALID is cleared for a guest without GUEST_CSUM (virtio 1.2, 5.1.6.4.1). */
bool net_hdr_rx_fix(uint8_t raw[NET_HDR_SIZE], uint64_t features);
/* The TUN_F_* offloads the tap may use for frames to the guest: checksum offload and TCP
 * segmentation (with ECN) as far as GUEST_CSUM, GUEST_TSO4/6 and GUEST_ECN were
 * negotiated; none without GUEST_CSUM (segmentation depends on it). */
unsigned net_hdr_tap_offloads(uint64_t features);

#endif
