/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker, and so is a host client: virtio-vsock's request handling
 * (vmm/virtio/vsock.c, vsock_conn.c) on packets the input writes, with the device's host
 * side on real Unix sockets in a scratch directory. The target is the guest's driver (three
 * queues of 16 entries, chains of one or two descriptors) and the host's clients: it sends
 * packets with any header (ports, lengths, operations, credit claims, CIDs), posts receive
 * and event buffers, connects to the device's socket with any first line, writes, half-closes
 * and closes host connections, accepts the device's connects to SOCK_5, saves and restores.
 * A packet may answer the device's last REQUEST (its host port), so that host clients'
 * connections get established.
 *
 * After every operation the device's work is served (a device that keeps its thread busy
 * fails), and every used entry is checked: a chain the target posted, no more bytes than it
 * holds, and on the receive queue a well-formed packet from the host to the guest's CID
 * whose length is what the entry says.
 *
 * Input: byte 0 (bit 0 event index, bit 1 indirect offered but unused), then operations:
 * the low 3 bits of an operation's first byte say which.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "vmm/device.h"
#include "vmm/mem.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/vsock.h"
#include "vmm/virtio/vsock_conn.h"

/* The model's class (listed in src/vmm/device_table.c): its state sections. */
extern const struct device_class virtio_vsock_class;

#define CID	   3
#define NQ	   3
#define QSIZE	   16
#define SLOTS	   8 /* chains of two descriptors each */
#define QBASE(i)   (0x400u * (i))
#define BUF(q, s)  (0x1000u + 0x1000u * 8 * (q) / 2 + 0x800u * (s)) /* 2 KiB per slot */
#define BUF_MAX	   0x800u
#define MAX_CLIENT 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct virtio_dev *vd;
static char dir[64], sock_path[108], port5[108];
static int listen5 = -1;
static int clients[MAX_CLIENT]; /* host sockets: ours to the device, or accepted on SOCK_5 */
static uint16_t avail_idx[NQ], used_seen[NQ];
static uint32_t posted_len[NQ][SLOTS]; /* writable bytes of each posted chain */
static uint8_t page[BUF_MAX + VSOCK_HDR_SIZE];
static uint32_t last_request_port; /* host port of the device's last REQUEST to the guest */

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(fake_machine()->mem, gpa, len);

	FAKE_CHECK(p, "guest address 0x%llx not in RAM", (unsigned long long)gpa);
	return p;
}

/* The scratch directory goes with the process (libFuzzer ends with exit()). */
static void remove_scratch(void)
{
	unlink(port5);
	unlink(sock_path);
	rmdir(dir);
}

static void setup_once(void)
{
	char err[256] = "";
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	fake_machine();
	snprintf(dir, sizeof(dir), "/tmp/fuzz-vsock.%d", (int)getpid());
	mkdir(dir, 0700);
	atexit(remove_scratch);
	snprintf(sock_path, sizeof(sock_path), "%s/v.sock", dir);
	snprintf(port5, sizeof(port5), "%s_5", sock_path);
	FAKE_CHECK(virtio_vsock_create(fake_machine(), 0, CID, sock_path, &vd, err, sizeof(err)) ==
			   0,
		   "virtio-vsock: %s", err);
	FAKE_CHECK(device_state_register(fake_machine(), &virtio_vsock_class, vd->pci.slot, vd) ==
			   0,
		   "virtio-vsock state sections");
	unlink(port5);
	listen5 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, port5);
	FAKE_CHECK(listen5 >= 0 && bind(listen5, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
			   listen(listen5, 4) == 0,
		   "listening on %s", port5);
	for (unsigned i = 0; i < MAX_CLIENT; i++)
		clients[i] = -1;
	fake_machine_pause(true);
}

static void close_clients(void)
{
	for (unsigned i = 0; i < MAX_CLIENT; i++) {
		if (clients[i] >= 0)
			close(clients[i]);
		clients[i] = -1;
	}
	while (1) {
		int fd = accept4(listen5, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		close(fd);
	}
}

static void start(bool event_idx)
{
	struct fake_vq q[NQ];

	fake_machine_reset();
	fake_virtio_serve(vd);
	for (unsigned i = 0; i < NQ; i++) {
		q[i] = (struct fake_vq){.size = QSIZE,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = QBASE(i) + 0x100,
					.used = QBASE(i) + 0x200};
		avail_idx[i] = used_seen[i] = 0;
	}
	fake_virtio_start(vd, event_idx ? 1ull << VIRTIO_F_EVENT_IDX : 0, q, NQ);
}

/* Post a chain on queue qi: one or two descriptors at the slot's buffer, len bytes in all
 * (written from bytes when the device reads it). */
static void post(unsigned qi, const uint8_t *bytes, uint32_t len, bool writable, bool split)
{
	unsigned slot = avail_idx[qi] % SLOTS;
	uint16_t head = (uint16_t)(2 * slot), flags = writable ? VRING_DESC_F_WRITE : 0;
	uint8_t *d = ram(QBASE(qi) + 16u * head, 32),
		*avail = ram(QBASE(qi) + 0x100, 4 + 2 * QSIZE);
	uint32_t first = split && len > 1 ? len / 2 : len;
	uint64_t buf = BUF(qi, slot);

	if ((uint16_t)(avail_idx[qi] - used_seen[qi]) >= SLOTS)
		return; /* every slot is in the device's hands */
	if (len > BUF_MAX)
		len = BUF_MAX;
	if (first > len)
		first = len;
	if (!writable)
		memcpy(ram(buf, len), bytes, len);
	le64_store(d, buf);
	le32_store(d + 8, first);
	le16_store(d + 12, (uint16_t)(flags | (first < len ? VRING_DESC_F_NEXT : 0)));
	le16_store(d + 14, (uint16_t)(head + 1));
	le64_store(d + 16, buf + first);
	le32_store(d + 24, len - first);
	le16_store(d + 28, flags);
	le16_store(d + 30, 0);
	posted_len[qi][slot] = writable ? len : 0;
	le16_store(avail + 4 + 2 * (avail_idx[qi] % QSIZE), head);
	avail_idx[qi]++;
	le16_store(avail + 2, avail_idx[qi]);
	fake_virtio_notify(vd, qi);
}

/* Every used entry since the last look: a posted chain, its length, and on the receive
 * queue a packet that says what the entry says. */
static void check_used(void)
{
	for (unsigned qi = 0; qi < NQ; qi++) {
		const uint8_t *used = ram(QBASE(qi) + 0x200, 4 + 8 * QSIZE);
		uint16_t idx = le16_load(used + 2);

		FAKE_CHECK((uint16_t)(idx - used_seen[qi]) <=
				   (uint16_t)(avail_idx[qi] - used_seen[qi]),
			   "queue %u: used index %u beyond the %u chains posted", qi, idx,
			   avail_idx[qi]);
		for (; used_seen[qi] != idx; used_seen[qi]++) {
			const uint8_t *e = used + 4 + 8 * (used_seen[qi] % QSIZE);
			uint32_t id = le32_load(e), len = le32_load(e + 4), slot = id / 2;
			struct vsock_hdr h;

			FAKE_CHECK(id < 2 * SLOTS && !(id & 1),
				   "queue %u: used id %u was never posted", qi, id);
			FAKE_CHECK(len <= posted_len[qi][slot],
				   "queue %u: %u bytes used of a %u-byte chain", qi, len,
				   posted_len[qi][slot]);
			if (qi != 0 || !len)
				continue;
			FAKE_CHECK(len >= VSOCK_HDR_SIZE, "a %u-byte receive packet", len);
			vsock_hdr_decode(ram(BUF(0, slot), VSOCK_HDR_SIZE), &h);
			FAKE_CHECK(h.src_cid == VSOCK_CID_HOST && h.dst_cid == CID &&
					   h.type == VSOCK_TYPE_STREAM &&
					   h.op >= VSOCK_OP_REQUEST &&
					   h.op <= VSOCK_OP_CREDIT_REQUEST,
				   "a malformed packet to the guest: op %u type %u cids %llu>%llu",
				   h.op, h.type, (unsigned long long)h.src_cid,
				   (unsigned long long)h.dst_cid);
			if (h.op == VSOCK_OP_REQUEST)
				last_request_port = h.src_port;
			FAKE_CHECK(h.len + VSOCK_HDR_SIZE == len &&
					   (h.op == VSOCK_OP_RW || h.len == 0),
				   "a packet of %u payload bytes (op %u) in a %u-byte entry", h.len,
				   h.op, len);
		}
	}
}

static void serve(void)
{
	static uint8_t sink[4096];

	fake_virtio_serve(vd);
	for (unsigned i = 0; i < MAX_CLIENT; i++)
		while (clients[i] >= 0 && recv(clients[i], sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	fake_virtio_serve(vd);
	check_used();
}

static int *client(uint8_t b)
{
	return &clients[b % MAX_CLIENT];
}

/* One operation; the bytes it took, 0 when the input is too short. */
static size_t op(const uint8_t *p, size_t n)
{
	struct vsock_hdr h;
	uint32_t len;
	int *c;

	switch (p[0] & 7) {
	case 0: /* a packet: CIDs, ports, length, type, op, flags, credit claims, how it is
		 * posted, how many payload bytes follow; then those */
		if (n < 16)
			return 0;
		h = (struct vsock_hdr){
			.src_cid = p[0] & 0x80 ? le32_load(p + 1) : CID,
			.dst_cid = p[0] & 0x40 ? p[1] : VSOCK_CID_HOST,
			.src_port = p[2] % 4u,
			.dst_port = p[3] & 0x80 ? last_request_port : p[3] % 8u,
			.len = p[4] & 0x80 ? le32_load(p + 4) : le16_load(p + 4) % 256u,
			.type = p[0] & 0x20 ? p[6] : VSOCK_TYPE_STREAM,
			.op = p[7] % 9u,
			.flags = p[8],
			.buf_alloc = p[9] & 0x80 ? le32_load(p + 9) : (uint32_t)p[9] << 8,
			.fwd_cnt = le32_load(p + 12),
		};
		vsock_hdr_encode(&h, page);
		len = p[11]; /* payload bytes that follow in the input */
		if (n < 16 + len)
			return 0;
		memcpy(page + VSOCK_HDR_SIZE, p + 16, len);
		post(1, page, VSOCK_HDR_SIZE + (p[10] & 0x80 ? len : (h.len <= len ? h.len : len)),
		     false, p[10] & 0x40);
		return 16 + len;
	case 1: /* receive buffers: how many, how big, split */
		if (n < 3)
			return 0;
		for (unsigned i = 0; i < p[1] % 9u; i++)
			post(0, NULL, p[2] & 0x80 ? p[2] % 64u : 44u + 64u * (p[2] % 32u), true,
			     p[0] & 0x80);
		return 3;
	case 2: /* event buffers */
		if (n < 2)
			return 0;
		for (unsigned i = 0; i < p[1] % 4u; i++)
			post(2, NULL, p[1] & 0x80 ? 2 : 4, true, false);
		return 2;
	case 3: { /* a host client connects to SOCK and sends a first line */
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		char line[32];
		int fd, l;

		if (n < 3)
			return 0;
		c = client(p[1]);
		if (*c >= 0)
			close(*c);
		strcpy(sa.sun_path, sock_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			fd = -1;
		}
		*c = fd;
		if (fd < 0)
			return 3;
		if (p[0] & 0x80)
			l = snprintf(line, sizeof(line), "CONNECT %u\n", p[2] % 4u);
		else
			l = snprintf(line, sizeof(line), "%.*s", (int)(p[2] % 16u),
				     "CONNECT 99999999999999\n");
		(void)!send(fd, line, (size_t)l, MSG_DONTWAIT | MSG_NOSIGNAL);
		return 3;
	}
	case 4: /* a host client writes */
		if (n < 3)
			return 0;
		c = client(p[1]);
		len = p[2] * 97u;
		if (*c >= 0) {
			static uint8_t junk[256 * 97];

			(void)!send(*c, junk, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
		return 3;
	case 5: /* a host client half-closes or closes */
		if (n < 2)
			return 0;
		c = client(p[1]);
		if (*c >= 0 && (p[0] & 0x80)) {
			shutdown(*c, SHUT_WR);
		} else if (*c >= 0) {
			close(*c);
			*c = -1;
		}
		return 2;
	case 6: { /* the host accepts what the device connected to SOCK_5 */
		int fd;

		if (n < 2)
			return 0;
		c = client(p[1]);
		fd = accept4(listen5, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (*c >= 0)
				close(*c);
			*c = fd;
		}
		return 2;
	}
	default: /* save and restore (the device drops its connections, owes a reset) */
		fake_machine_save_restore();
		return 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t used;

	if (!vd)
		setup_once();
	if (size < 1)
		return 0;
	close_clients();
	start(data[0] & 1);
	serve();
	data++, size--;
	while (size && (used = op(data, size)) > 0) {
		serve();
		data += used;
		size -= used;
	}
	return 0;
}
