/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock's packets and one stream connection's state machine (virtio 1.2, 5.10),
 * without queues or sockets, so that the rules are tested on their own (tests/unit): the
 * header as the guest wrote it and its checks, the credit arithmetic in both directions,
 * what a guest packet does to a connection, and the host side's "CONNECT <port>\n" line.
 * The device (vsock.c) carries the verdicts out on its queues and the host's sockets.
 *
 * Every number here is the guest's and is checked before use: the header's length against
 * the chain and VSOCK_MAX_PAYLOAD, the CIDs against the device's, the type and operation,
 * and the guest's credit claims (buf_alloc, fwd_cnt) in wrapping 32-bit arithmetic that can
 * never make the device send more than the guest said it has room for, nor accept more than
 * the device advertised.
 */
#ifndef KEEL_VMM_VIRTIO_VSOCK_CONN_H
#define KEEL_VMM_VIRTIO_VSOCK_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VSOCK_HDR_SIZE	    44
#define VSOCK_CID_HOST	    2
#define VSOCK_TYPE_STREAM   1
#define VSOCK_MAX_PAYLOAD   (64u * 1024)  /* the most one packet carries either way */
#define VSOCK_BUF_ALLOC	    (256u * 1024) /* what the device buffers per connection */
#define VSOCK_SHUTDOWN_RCV  1u		  /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2u		  /* the sender will send no more */
#define VSOCK_SHUTDOWN_BOTH 3u

enum vsock_op {
	VSOCK_OP_INVALID,
	VSOCK_OP_REQUEST,
	VSOCK_OP_RESPONSE,
	VSOCK_OP_RST,
	VSOCK_OP_SHUTDOWN,
	VSOCK_OP_RW,
	VSOCK_OP_CREDIT_UPDATE,
	VSOCK_OP_CREDIT_REQUEST,
};

/* struct virtio_vsock_hdr, decoded (all fields little-endian, packed, 44 bytes). */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

void vsock_hdr_decode(const uint8_t b[VSOCK_HDR_SIZE], struct vsock_hdr *h);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t b[VSOCK_HDR_SIZE]);
/* A packet the guest sent on its transmit queue, in a chain of chain_len readable bytes:
 * from guest_cid to the host, a stream, a known operation, a payload only with RW, at
 * most VSOCK_MAX_PAYLOAD and within the chain. NULL, or why not. */
const char *vsock_hdr_check(const struct vsock_hdr *h, uint64_t guest_cid, uint64_t chain_len);

enum vsock_state {
	VSOCK_FREE,
	VSOCK_HOST_LINE,   /* a host client connected; its CONNECT line has not come yet */
	VSOCK_CONNECTING,  /* a REQUEST for the host client is sent or owed to the guest */
	VSOCK_ESTABLISHED, /* data flows (until both sides shut down) */
};

/* Control packets a connection owes the guest (vsock_conn.pending). */
#define VSOCK_OWE_REQUEST  1u
#define VSOCK_OWE_RESPONSE 2u
#define VSOCK_OWE_CREDIT   4u
#define VSOCK_OWE_RST	   8u

struct vsock_conn {
	enum vsock_state state;
	uint32_t host_port, guest_port;
	unsigned pending; /* VSOCK_OWE_* */
	/* Guest to host: bytes received (rx_cnt), forwarded to the host socket (fwd_cnt), and
	 * the fwd_cnt the guest last heard of (fwd_told); rx_cnt - fwd_cnt are buffered. */
	uint32_t rx_cnt, fwd_cnt, fwd_told;
	/* Host to guest: what the guest said it has room for and has consumed, and what the
	 * device sent it. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	uint8_t peer_shutdown; /* VSOCK_SHUTDOWN_* the guest sent */
	uint8_t shutdown;      /* VSOCK_SHUTDOWN_* the device sent (host end of file) */
	long long deadline_ms; /* clock_mono_ms: end of the handshake or the close; 0 none */
};

/* What a guest packet means for its connection. */
enum vsock_verdict {
	VSOCK_V_NONE,	     /* nothing for the host side to do */
	VSOCK_V_DATA,	     /* take the packet's payload (len bytes: room was checked) */
	VSOCK_V_ESTABLISHED, /* the guest accepted the host client: answer it OK */
	VSOCK_V_SHUTDOWN,    /* the guest shut a direction down (see peer_shutdown) */
	VSOCK_V_CLOSE,	     /* the guest reset the connection: drop it, say nothing */
	VSOCK_V_RESET,	     /* the guest broke the protocol: RST it and drop the connection */
};

/* Bytes the device may send the guest now (0 when the guest's claims do not add up). */
uint32_t vsock_conn_credit(const struct vsock_conn *c);
/* Bytes of guest data buffered (received, not yet forwarded to the host). */
uint32_t vsock_conn_buffered(const struct vsock_conn *c);
/* Apply packet h (checked by vsock_hdr_check, addressed to c) and say what follows; on
 * VSOCK_V_DATA the caller takes h->len bytes and calls vsock_conn_received. */
enum vsock_verdict vsock_conn_recv(struct vsock_conn *c, const struct vsock_hdr *h);
void vsock_conn_received(struct vsock_conn *c, uint32_t n);
/* n buffered bytes went to the host socket; owe a credit update when the guest's view of
 * the room left has fallen a quarter of the buffer behind. */
void vsock_conn_forwarded(struct vsock_conn *c, uint32_t n);
/* A packet from the device to the guest on c (op, flags, payload length), stamped with
 * the device's credit; the guest hears of fwd_cnt, and len counts as sent. */
void vsock_conn_packet(struct vsock_conn *c, uint64_t guest_cid, enum vsock_op op, uint32_t flags,
		       uint32_t len, struct vsock_hdr *h);
/* A RST answering packet h for which there is no connection (never for a RST). */
void vsock_rst_for(const struct vsock_hdr *h, struct vsock_hdr *rst);

/* The host client's first line, "CONNECT <port>\n" (len bytes, the newline included):
 * 0 and the port, or -EINVAL. */
int vsock_parse_connect(const char *line, size_t len, uint32_t *port)
	__attribute__((warn_unused_result));
/* The longest such line the device reads. */
#define VSOCK_CONNECT_LINE_MAX 32

/* Host ports for host clients: from VSOCK_HOST_PORT_FIRST up, wrapping, never 0xffffffff
 * (VMADDR_PORT_ANY); *next advances past the port returned. */
#define VSOCK_HOST_PORT_FIRST 0x40000000u
uint32_t vsock_next_host_port(uint32_t *next);

#endif
