/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-agent-frames: what the guest sends to the host. keeld and keel read the agent's
 * frames with the same reader and decoder (lib/agentproto.c); the guest controls every byte.
 * The input is a stream of frames; each one read is decoded, and what decodes must keep the
 * codec's promises: strings NUL-terminated UTF-8 within their limits, single attributes once,
 * and an encoding of the same attributes decodes to the same message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/agentproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct ap_msg *m)
{
	static struct ap_out o;
	static struct ap_msg again;

	ap_begin(&o, m->type, m->flags, m->id);
	for (size_t i = 0; i < m->nattr; i++) {
		const struct ap_attr *a = &m->attr[i];
		const char *s = ap_get_str(m, a->tag);

		if (s && (strlen(s) + 1 != ap_get(m, a->tag)->len ||
			  !ap_utf8_valid((const uint8_t *)s, strlen(s))))
			abort();
		ap_put_bytes(&o, a->tag, a->val, a->len);
	}
	if (ap_end(&o) || ap_decode(o.buf, o.len, &again, NULL) || again.nattr != m->nattr ||
	    again.type != m->type || again.id != m->id || again.flags != m->flags)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ap_reader rd;
	static struct ap_msg m;
	int sv[2], r;

	if (size > 256 * 1024)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	/* Large enough for the whole input: a non-blocking writer with no reader. */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &(int){1 << 20}, sizeof(int));
	for (size_t off = 0; off < size;) {
		ssize_t w = write(sv[0], data + off, size - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(sv[0]);
	ap_reader_init(&rd);
	while ((r = ap_read(&rd, sv[1])) == 1) {
		if (rd.len < AP_HDR_SIZE || rd.len > AP_MAX_FRAME)
			abort();
		if (ap_decode(rd.buf, rd.len, &m, NULL) == 0)
			check(&m);
	}
	close(sv[1]);
	return 0;
}
