/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-net's frame header: the transmit rules and the tap offloads (net_hdr.h). */
#include "vmm/virtio/net_hdr.h"

#include <linux/if_tun.h>
#include <stddef.h>

#include "lib/le.h"

static int has(uint64_t features, unsigned bit)
{
	return (int)(features >> bit & 1);
}

void net_hdr_parse(const uint8_t raw[NET_HDR_SIZE], struct net_hdr *h)
{
	h->flags = raw[0];
	h->gso_type = raw[1];
	h->hdr_len = (uint16_t)le_load(raw + 2, 2);
	h->gso_size = (uint16_t)le_load(raw + 4, 2);
	h->csum_start = (uint16_t)le_load(raw + 6, 2);
	h->csum_offset = (uint16_t)le_load(raw + 8, 2);
	h->num_buffers = (uint16_t)le_load(raw + 10, 2);
}

const char *net_hdr_tx_check(const struct net_hdr *h, uint64_t frame_len, uint64_t features)
{
	unsigned gso = h->gso_type & ~NET_HDR_GSO_ECN;

	if (frame_len < NET_ETH_HLEN)
		return "frame shorter than an Ethernet header";
	if (frame_len > NET_FRAME_MAX)
		return "frame longer than 64 KiB";
	if (h->flags & ~NET_HDR_F_NEEDS_CSUM)
		return "unknown header flags";
	if (h->flags & NET_HDR_F_NEEDS_CSUM) {
		if (!has(features, NET_F_CSUM))
			return "checksum offload without CSUM";
		if ((uint64_t)h->csum_start + h->csum_offset + 2 > frame_len)
			return "checksum field beyond the frame";
	}
	if (h->gso_type & NET_HDR_GSO_ECN)
		return "segmentation with ECN, not offered";
	if (gso == NET_HDR_GSO_NONE)
		return NULL;
	if (gso == NET_HDR_GSO_TCPV4   ? !has(features, NET_F_HOST_TSO4)
	    : gso == NET_HDR_GSO_TCPV6 ? !has(features, NET_F_HOST_TSO6)
				       : 1)
		return "segmentation type not negotiated";
	if (!(h->flags & NET_HDR_F_NEEDS_CSUM))
		return "segmentation without checksum offload";
	if (!h->gso_size)
		return "segment size 0";
	if (h->hdr_len > frame_len)
		return "header length beyond the frame";
	return NULL;
}

bool net_hdr_rx_fix(uint8_t raw[NET_HDR_SIZE], uint64_t features)
{
	unsigned o = net_hdr_tap_offloads(features), gso = raw[1] & ~NET_HDR_GSO_ECN;

	if (!(o & TUN_F_CSUM)) {
		if (raw[0] & NET_HDR_F_NEEDS_CSUM)
			return false;
		raw[0] = 0;
	}
	if ((raw[1] & NET_HDR_GSO_ECN) && !(o & TUN_F_TSO_ECN))
		return false;
	if (gso == NET_HDR_GSO_NONE)
		return true;
	return gso == NET_HDR_GSO_TCPV4	  ? (o & TUN_F_TSO4) != 0
	       : gso == NET_HDR_GSO_TCPV6 ? (o & TUN_F_TSO6) != 0
					  : false;
}

unsigned net_hdr_tap_offloads(uint64_t features)
{
	unsigned o;

	if (!has(features, NET_F_GUEST_CSUM))
		return 0;
	o = TUN_F_CSUM;
	if (has(features, NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (has(features, NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if ((o & (TUN_F_TSO4 | TUN_F_TSO6)) && has(features, NET_F_GUEST_ECN))
		o |= TUN_F_TSO_ECN;
	return o;
}
