/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock's packets and connection state machine (vmm/virtio/vsock_conn.c), and how a
 * VM gets the device: the "vsock" field of its description and keel-vmm's --vsock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/vmdef.h"
#include "vmm/config.h"
#include "vmm/virtio/vsock_conn.h"

#define GUEST_CID 7

/* A packet the guest sends to the host. */
static struct vsock_hdr guest_pkt(uint16_t op, uint32_t len)
{
	return (struct vsock_hdr){.src_cid = GUEST_CID,
				  .dst_cid = VSOCK_CID_HOST,
				  .src_port = 1000,
				  .dst_port = 5000,
				  .len = len,
				  .type = VSOCK_TYPE_STREAM,
				  .op = op,
				  .buf_alloc = 65536,
				  .fwd_cnt = 0};
}

static struct vsock_conn established(void)
{
	return (struct vsock_conn){.state = VSOCK_ESTABLISHED,
				   .host_port = 5000,
				   .guest_port = 1000,
				   .peer_buf_alloc = 65536};
}

static void test_header_round_trip(void **state)
{
	struct vsock_hdr h = {0x1122334455667788ull, 2, 0xaabbccdd, 7, 4096, 1, 5, 3, 262144, 99},
			 back;
	uint8_t raw[VSOCK_HDR_SIZE];

	vsock_hdr_encode(&h, raw);
	assert_int_equal(raw[0], 0x88); /* little-endian */
	assert_int_equal(raw[30], 5);	/* op at byte 30 */
	vsock_hdr_decode(raw, &back);
	/* Field by field: the struct's tail padding (44 bytes of fields in 48) is whatever the
	 * stack held in a release build. */
	assert_true(back.src_cid == h.src_cid && back.dst_cid == h.dst_cid &&
		    back.src_port == h.src_port && back.dst_port == h.dst_port &&
		    back.len == h.len && back.type == h.type && back.op == h.op &&
		    back.flags == h.flags && back.buf_alloc == h.buf_alloc &&
		    back.fwd_cnt == h.fwd_cnt);
}

static void test_header_checks(void **state)
{
	struct vsock_hdr h = guest_pkt(VSOCK_OP_RW, 100);

	assert_null(vsock_hdr_check(&h, GUEST_CID, VSOCK_HDR_SIZE + 100));
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, VSOCK_HDR_SIZE + 99)); /* beyond chain */
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, 10));		      /* no header */
	assert_non_null(vsock_hdr_check(&h, GUEST_CID + 1, 1 << 20));	      /* spoofed CID */
	h.dst_cid = 3;
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, 1 << 20)); /* not to the host */
	h = guest_pkt(VSOCK_OP_RW, 100);
	h.type = 2; /* seqpacket: not offered */
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, 1 << 20));
	h = guest_pkt(0, 0);
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, 1 << 20));
	h = guest_pkt(8, 0);
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, 1 << 20));
	h = guest_pkt(VSOCK_OP_REQUEST, 1); /* payload on a control packet */
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, 1 << 20));
	h = guest_pkt(VSOCK_OP_RW, VSOCK_MAX_PAYLOAD + 1);
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, 1ull << 32));
	h = guest_pkt(VSOCK_OP_RW, 0xffffffffu); /* a length that would wrap */
	assert_non_null(vsock_hdr_check(&h, GUEST_CID, 1ull << 33));
}

static void test_credit(void **state)
{
	struct vsock_conn c = established();

	assert_int_equal(vsock_conn_credit(&c), 65536);
	c.tx_cnt = 60000;
	assert_int_equal(vsock_conn_credit(&c), 5536);
	c.peer_fwd_cnt = 60000; /* the guest consumed it all */
	assert_int_equal(vsock_conn_credit(&c), 65536);
	/* Counters wrap: 100 bytes in flight across 2^32. */
	c.tx_cnt = 50;
	c.peer_fwd_cnt = 0xffffffff - 49;
	assert_int_equal(vsock_conn_credit(&c), 65536 - 100);
	/* A guest that claims to have consumed more than was sent gets nothing, not 4 GiB. */
	c.tx_cnt = 10;
	c.peer_fwd_cnt = 20;
	assert_int_equal(vsock_conn_credit(&c), 0);
	/* More in flight than its buffer: nothing. */
	c.tx_cnt = 70000;
	c.peer_fwd_cnt = 0;
	assert_int_equal(vsock_conn_credit(&c), 0);
}

static void test_handshake(void **state)
{
	struct vsock_conn c = {.state = VSOCK_CONNECTING,
			       .host_port = 5000,
			       .guest_port = 1000,
			       .pending = VSOCK_OWE_REQUEST};
	struct vsock_hdr h = guest_pkt(VSOCK_OP_RESPONSE, 0), out;

	/* An answer to a REQUEST the guest never got is a protocol error. */
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_RESET);
	c.pending = 0;
	c.deadline_ms = 1;
	h = guest_pkt(VSOCK_OP_RW, 10);
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_RESET); /* data before the answer */
	h = guest_pkt(VSOCK_OP_RESPONSE, 0);
	h.buf_alloc = 4096;
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_ESTABLISHED);
	assert_int_equal(c.state, VSOCK_ESTABLISHED);
	assert_int_equal(c.deadline_ms, 0);
	assert_int_equal(vsock_conn_credit(&c), 4096);
	/* A second RESPONSE or a REQUEST on a live connection. */
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_RESET);
	h = guest_pkt(VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_RESET);
	/* The device's packets carry its credit and count the payload. */
	c.fwd_cnt = 123;
	vsock_conn_packet(&c, GUEST_CID, VSOCK_OP_RW, 0, 100, &out);
	assert_int_equal(out.src_cid, VSOCK_CID_HOST);
	assert_int_equal(out.dst_cid, GUEST_CID);
	assert_int_equal(out.src_port, 5000);
	assert_int_equal(out.dst_port, 1000);
	assert_int_equal(out.buf_alloc, VSOCK_BUF_ALLOC);
	assert_int_equal(out.fwd_cnt, 123);
	assert_int_equal(c.fwd_told, 123);
	assert_int_equal(c.tx_cnt, 100);
	/* A guest RST: drop silently. */
	h = guest_pkt(VSOCK_OP_RST, 0);
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_CLOSE);
}

static void test_data_and_flow_control(void **state)
{
	struct vsock_conn c = established();
	struct vsock_hdr h = guest_pkt(VSOCK_OP_RW, VSOCK_MAX_PAYLOAD);
	unsigned i;

	/* The guest may fill exactly the buffer the device advertised. */
	for (i = 0; i < VSOCK_BUF_ALLOC / VSOCK_MAX_PAYLOAD; i++) {
		assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_DATA);
		vsock_conn_received(&c, h.len);
	}
	assert_int_equal(vsock_conn_buffered(&c), VSOCK_BUF_ALLOC);
	h.len = 1;
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_RESET); /* beyond its credit */
	/* Forwarding a quarter of the buffer owes the guest a credit update. */
	vsock_conn_forwarded(&c, VSOCK_BUF_ALLOC / 4 - 1);
	assert_false(c.pending & VSOCK_OWE_CREDIT);
	vsock_conn_forwarded(&c, 1);
	assert_true(c.pending & VSOCK_OWE_CREDIT);
	assert_int_equal(vsock_conn_buffered(&c), VSOCK_BUF_ALLOC * 3 / 4);
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_DATA);
	/* An empty RW is nothing to take. */
	h.len = 0;
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_NONE);
	/* A credit request is answered with an update; an update changes the credit. */
	c.pending = 0;
	h = guest_pkt(VSOCK_OP_CREDIT_REQUEST, 0);
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_NONE);
	assert_true(c.pending & VSOCK_OWE_CREDIT);
	h = guest_pkt(VSOCK_OP_CREDIT_UPDATE, 0);
	h.buf_alloc = 100;
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_NONE);
	assert_int_equal(vsock_conn_credit(&c), 100);
}

static void test_shutdown(void **state)
{
	struct vsock_conn c = established();
	struct vsock_hdr h = guest_pkt(VSOCK_OP_SHUTDOWN, 0);

	h.flags = VSOCK_SHUTDOWN_SEND | 0xf0; /* unknown bits are ignored */
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_SHUTDOWN);
	assert_int_equal(c.peer_shutdown, VSOCK_SHUTDOWN_SEND);
	h = guest_pkt(VSOCK_OP_RW, 10); /* data after "I send no more" */
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_RESET);
	h = guest_pkt(VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_RCV;
	assert_int_equal(vsock_conn_recv(&c, &h), VSOCK_V_SHUTDOWN);
	assert_int_equal(c.peer_shutdown, VSOCK_SHUTDOWN_BOTH);
}

static void test_rst_for_unknown(void **state)
{
	struct vsock_hdr h = guest_pkt(VSOCK_OP_REQUEST, 0), rst;

	vsock_rst_for(&h, &rst);
	assert_int_equal(rst.op, VSOCK_OP_RST);
	assert_int_equal(rst.src_cid, VSOCK_CID_HOST);
	assert_int_equal(rst.dst_cid, GUEST_CID);
	assert_int_equal(rst.src_port, 5000);
	assert_int_equal(rst.dst_port, 1000);
	assert_int_equal(rst.len, 0);
}

static void test_connect_line(void **state)
{
	uint32_t port = 0;

	assert_int_equal(vsock_parse_connect("CONNECT 52\n", 11, &port), 0);
	assert_int_equal(port, 52);
	assert_int_equal(vsock_parse_connect("CONNECT 4294967294\n", 19, &port), 0);
	assert_int_equal(port, 4294967294u);
	assert_int_equal(vsock_parse_connect("CONNECT 4294967295\n", 19, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT 99999999999\n", 20, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT \n", 9, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT 5", 9, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT -5\n", 11, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("connect 5\n", 10, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT 5\r\n", 11, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT 5 \n", 11, &port), -EINVAL);
}

static void test_host_ports(void **state)
{
	uint32_t next = 0;

	assert_int_equal(vsock_next_host_port(&next), VSOCK_HOST_PORT_FIRST);
	assert_int_equal(vsock_next_host_port(&next), VSOCK_HOST_PORT_FIRST + 1);
	/* A restored counter carries on; at the top it wraps to the first, never to -1. */
	next = 0xfffffffe;
	assert_int_equal(vsock_next_host_port(&next), 0xfffffffe);
	assert_int_equal(vsock_next_host_port(&next), VSOCK_HOST_PORT_FIRST);
}

static void test_description(void **state)
{
	struct vm_def def;
	char err[256] = "";
	json_object *o;

	vmdef_init(&def);
	o = json_tokener_parse("{\"kernel\": \"/k\", \"vsock\": {\"cid\": 42}}");
	assert_int_equal(vmdef_apply_json(&def, o, VMDEF_JSON_REQUEST, err, sizeof(err)), 0);
	json_object_put(o);
	assert_true(def.vsock.present);
	assert_int_equal(def.vsock.cid, 42);
	assert_int_not_equal(def.vsock.pci_slot, 0);
	o = json_tokener_parse("{\"vsock\": {\"cid\": 2}}");
	assert_int_equal(vmdef_apply_json(&def, o, VMDEF_JSON_REQUEST, err, sizeof(err)), -EINVAL);
	json_object_put(o);
	assert_non_null(strstr(err, "vsock.cid"));
	assert_int_equal(def.vsock.cid, 42); /* unchanged */
	/* A description that did not come through the parser (keeld's store, a row edited by
	 * hand) is checked as well. */
	assert_int_equal(vmdef_check(&def, err, sizeof(err)), 0);
	def.vsock.cid = 2;
	assert_int_equal(vmdef_check(&def, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vsock.cid"));
	def.vsock.cid = 42;
	o = json_tokener_parse("{\"vsock\": {\"socket\": \"/x\"}}");
	assert_int_equal(vmdef_apply_json(&def, o, VMDEF_JSON_REQUEST, err, sizeof(err)), -EINVAL);
	json_object_put(o);
	o = json_tokener_parse("{\"vsock\": null}");
	assert_int_equal(vmdef_apply_json(&def, o, VMDEF_JSON_REQUEST, err, sizeof(err)), 0);
	json_object_put(o);
	assert_false(def.vsock.present);
	vmdef_free(&def);
}

static void test_option(void **state)
{
	char sock[VMDEF_VSOCK_SOCKET_MAX + 1], err[256] = "", longp[200], arg[256];
	uint32_t cid;
	struct vm_config cfg;
	char *argv[] = {"keel-vmm", "--kernel", "/k", "--vsock", "cid=9,socket=/run/v.sock", NULL};

	assert_int_equal(vmdef_cli_vsock("cid=5,socket=/tmp/v.sock", &cid, sock, err, sizeof(err)),
			 0);
	assert_int_equal(cid, 5);
	assert_string_equal(sock, "/tmp/v.sock");
	assert_int_equal(vmdef_cli_vsock("socket=/tmp/v.sock", &cid, sock, err, sizeof(err)), 0);
	assert_int_equal(cid, 0);
	assert_int_equal(vmdef_cli_vsock("cid=2,socket=/tmp/v", &cid, sock, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(vmdef_cli_vsock("cid=5", &cid, sock, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "socket=PATH is required"));
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	snprintf(arg, sizeof(arg), "socket=%s", longp);
	assert_int_equal(vmdef_cli_vsock(arg, &cid, sock, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at most 96 bytes"));

	assert_int_equal(config_parse(5, argv, &cfg, err, sizeof(err)), 0);
	assert_true(cfg.def.vsock.present);
	assert_int_equal(cfg.def.vsock.cid, 9);
	assert_string_equal(cfg.host.vsock_socket, "/run/v.sock");
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_header_checks),
		cmocka_unit_test(test_credit),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_data_and_flow_control),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_rst_for_unknown),
		cmocka_unit_test(test_connect_line),
		cmocka_unit_test(test_host_ports),
		cmocka_unit_test(test_description),
		cmocka_unit_test(test_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
