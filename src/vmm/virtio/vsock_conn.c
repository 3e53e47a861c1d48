/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-vsock's packets and connection state machine (vsock_conn.h). */
#include "vmm/virtio/vsock_conn.h"

#include <errno.h>
#include <string.h>

#include "lib/le.h"

void vsock_hdr_decode(const uint8_t b[VSOCK_HDR_SIZE], struct vsock_hdr *h)
{
	h->src_cid = le64_load(b + 0);
	h->dst_cid = le64_load(b + 8);
	h->src_port = le32_load(b + 16);
	h->dst_port = le32_load(b + 20);
	h->len = le32_load(b + 24);
	h->type = le16_load(b + 28);
	h->op = le16_load(b + 30);
	h->flags = le32_load(b + 32);
	h->buf_alloc = le32_load(b + 36);
	h->fwd_cnt = le32_load(b + 40);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t b[VSOCK_HDR_SIZE])
{
	le64_store(b + 0, h->src_cid);
	le64_store(b + 8, h->dst_cid);
	le32_store(b + 16, h->src_port);
	le32_store(b + 20, h->dst_port);
	le32_store(b + 24, h->len);
	le16_store(b + 28, h->type);
	le16_store(b + 30, h->op);
	le32_store(b + 32, h->flags);
	le32_store(b + 36, h->buf_alloc);
	le32_store(b + 40, h->fwd_cnt);
}

const char *vsock_hdr_check(const struct vsock_hdr *h, uint64_t guest_cid, uint64_t chain_len)
{
	if (chain_len < VSOCK_HDR_SIZE)
		return "a packet shorter than its header";
	if (h->src_cid != guest_cid)
		return "a packet from another CID than the guest's";
	if (h->dst_cid != VSOCK_CID_HOST)
		return "a packet to another CID than the host's";
	if (h->type != VSOCK_TYPE_STREAM)
		return "a packet of another type than stream";
	if (h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_CREDIT_REQUEST)
		return "a packet with an unknown operation";
	if (h->len && h->op != VSOCK_OP_RW)
		return "a payload on a packet other than RW";
	if (h->len > VSOCK_MAX_PAYLOAD)
		return "a payload over 64 KiB";
	if (h->len > chain_len - VSOCK_HDR_SIZE)
		return "a payload longer than its chain";
	return NULL;
}

uint32_t vsock_conn_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt; /* wraps as the counters do */

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

uint32_t vsock_conn_buffered(const struct vsock_conn *c)
{
	return c->rx_cnt - c->fwd_cnt;
}

enum vsock_verdict vsock_conn_recv(struct vsock_conn *c, const struct vsock_hdr *h)
{
	if (h->op == VSOCK_OP_RST)
		return VSOCK_V_CLOSE;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (c->state) {
	case VSOCK_CONNECTING:
		/* Only an answer to a REQUEST the guest has seen. */
		if (h->op != VSOCK_OP_RESPONSE || (c->pending & VSOCK_OWE_REQUEST))
			return VSOCK_V_RESET;
		c->state = VSOCK_ESTABLISHED;
		c->deadline_ms = 0;
		return VSOCK_V_ESTABLISHED;
	case VSOCK_ESTABLISHED:
		break;
	default:
		return VSOCK_V_RESET;
	}
	switch (h->op) {
	case VSOCK_OP_RW:
		if (c->peer_shutdown & VSOCK_SHUTDOWN_SEND)
			return VSOCK_V_RESET; /* data after it said it would send no more */
		if (h->len > VSOCK_BUF_ALLOC - vsock_conn_buffered(c))
			return VSOCK_V_RESET; /* beyond the credit the device gave */
		return h->len ? VSOCK_V_DATA : VSOCK_V_NONE;
	case VSOCK_OP_SHUTDOWN:
		c->peer_shutdown |= (uint8_t)(h->flags & VSOCK_SHUTDOWN_BOTH);
		return VSOCK_V_SHUTDOWN;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= VSOCK_OWE_CREDIT;
		return VSOCK_V_NONE;
	case VSOCK_OP_CREDIT_UPDATE:
		return VSOCK_V_NONE;
	default: /* REQUEST or RESPONSE on an established connection */
		return VSOCK_V_RESET;
	}
}

void vsock_conn_received(struct vsock_conn *c, uint32_t n)
{
	c->rx_cnt += n;
}

void vsock_conn_forwarded(struct vsock_conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (c->fwd_cnt - c->fwd_told >= VSOCK_BUF_ALLOC / 4)
		c->pending |= VSOCK_OWE_CREDIT;
}

void vsock_conn_packet(struct vsock_conn *c, uint64_t guest_cid, enum vsock_op op, uint32_t flags,
		       uint32_t len, struct vsock_hdr *h)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_CID_HOST,
		.dst_cid = guest_cid,
		.src_port = c->host_port,
		.dst_port = c->guest_port,
		.len = len,
		.type = VSOCK_TYPE_STREAM,
		.op = (uint16_t)op,
		.flags = flags,
		.buf_alloc = VSOCK_BUF_ALLOC,
		.fwd_cnt = c->fwd_cnt,
	};
	c->fwd_told = c->fwd_cnt;
	c->tx_cnt += len;
}

void vsock_rst_for(const struct vsock_hdr *h, struct vsock_hdr *rst)
{
	*rst = (struct vsock_hdr){
		.src_cid = h->dst_cid,
		.dst_cid = h->src_cid,
		.src_port = h->dst_port,
		.dst_port = h->src_port,
		.type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_RST,
	};
}

int vsock_parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char verb[] = "CONNECT ";
	uint64_t v = 0;
	size_t i, n = sizeof(verb) - 1;

	if (len <= n + 1 || len > n + 11 || memcmp(line, verb, n) || line[len - 1] != '\n')
		return -EINVAL;
	for (i = n; i < len - 1; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	if (v >= 0xffffffffu) /* VMADDR_PORT_ANY and beyond */
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

uint32_t vsock_next_host_port(uint32_t *next)
{
	uint32_t p = *next;

	if (p < VSOCK_HOST_PORT_FIRST || p == 0xffffffffu)
		p = VSOCK_HOST_PORT_FIRST;
	*next = p + 1;
	return p;
}
