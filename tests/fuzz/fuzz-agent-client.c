/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-agent-client: the host's client of the agent (lib/agent_client.c) against a guest
 * that sends anything. The input is what the vsock device and the agent send back: the
 * CONNECT answer, then frames. The client connects and says hello, asks for a KVP list
 * (following MORE) and runs an exec's stream loop as keel vm exec does, until an error or the
 * end of the input. The guest must not crash keeld or keel, nor make them loop forever.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/agent_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agent_conn c;
	char err[256];
	int sv[2], r;

	if (size > 256 * 1024)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &(int){1 << 20}, sizeof(int));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &(int){1 << 20}, sizeof(int));
	for (size_t off = 0; off < size;) {
		ssize_t w = write(sv[0], data + off, size - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(sv[0], SHUT_WR); /* the guest says no more: every wait ends */
	r = agent_open_fd(&c, sv[1], 1000, err, sizeof(err));
	if (r == 0) {
		agent_begin(&c, AP_T_KVP_LIST);
		ap_put_u32(&c.out, AP_A_POOL, AP_POOL_AUTO);
		r = agent_call(&c, 1000, err, sizeof(err));
		while (r == 0 && (c.msg.flags & AP_F_MORE)) {
			if (ap_count(&c.msg, AP_A_KEY) > AP_MAX_ATTRS)
				abort();
			r = agent_recv(&c, 1000, err, sizeof(err));
		}
		agent_begin(&c, AP_T_EXEC);
		ap_put_str(&c.out, AP_A_ARG, "true");
		r = agent_call(&c, 1000, err, sizeof(err));
		while (r == 0) {
			const struct ap_attr *d;

			r = agent_recv(&c, 1000, err, sizeof(err));
			if (r || c.msg.type == AP_T_EXEC_EXIT)
				break;
			d = ap_get(&c.msg, AP_A_DATA);
			if (d && d->len > AP_MAX_DATA)
				abort();
		}
		agent_close(&c);
	}
	if (!memchr(err, '\0', sizeof(err)))
		abort();
	close(sv[0]);
	return 0;
}
