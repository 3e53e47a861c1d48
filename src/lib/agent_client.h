/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's side of the agent protocol (docs/agent-protocol.md), for keeld and keel: reach
 * the agent through the VM's vsock.sock (hybrid vsock: "CONNECT 52\n", "OK <n>\n"), say
 * hello, and make requests with a deadline. Everything the guest sends is decoded by the
 * shared codec; nothing here trusts a length, an id or a string it did not check.
 */
#ifndef KEEL_LIB_AGENT_CLIENT_H
#define KEEL_LIB_AGENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/agentproto.h"

struct agent_conn {
	int fd;
	uint32_t next_id;
	uint32_t last_id; /* the request agent_begin began */
	uint16_t last_type;
	uint32_t services;	 /* what the agent offers (hello) */
	char agent_version[64];	 /* its version (hello) */
	struct ap_reader reader; /* frames coming in */
	struct ap_msg msg;	 /* the last frame decoded */
	struct ap_out out;	 /* the frame being sent */
};

/*
 * Connect to the agent behind vsock_path and say hello, within timeout_ms in all. Returns 0
 * with c ready, or -errno with err saying what failed: -ENOENT or -ECONNREFUSED (no vsock
 * device, or the VM is not running), -ECONNRESET (the guest has no agent listening: the
 * device refused CONNECT), -ETIMEDOUT, -EPROTO (not the protocol).
 */
int agent_open(struct agent_conn *c, const char *vsock_path, int timeout_ms, char *err,
	       size_t errlen) __attribute__((warn_unused_result));
/* The same on a connected stream socket fd, which c takes (closed on failure). */
int agent_open_fd(struct agent_conn *c, int fd, int timeout_ms, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void agent_close(struct agent_conn *c);

/* Start a request of type: c->out is begun with a new id, returned; add attributes, then
 * agent_send. */
uint32_t agent_begin(struct agent_conn *c, uint16_t type);
int agent_send(struct agent_conn *c) __attribute__((warn_unused_result));

/*
 * Wait up to timeout_ms (-1: no limit) for the next frame; it is in c->msg. 0, -ETIMEDOUT,
 * -EPIPE (the agent closed), -EPROTO (a frame that is not the protocol), or -errno; err says
 * which.
 */
int agent_recv(struct agent_conn *c, int timeout_ms, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * agent_send, then wait for the reply to it (frames with other ids are an error). An error
 * reply gives -(its code) with err holding the agent's message. 0 with c->msg the reply.
 */
int agent_call(struct agent_conn *c, int timeout_ms, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The path of a VM's vsock socket in its directory. */
#define AGENT_VSOCK_SOCKET "vsock.sock"

/* The heartbeat's three answers, as Hyper-V's Get-VMIntegrationService shows them. */
#define AGENT_HEARTBEAT_OK   "OK"
#define AGENT_HEARTBEAT_LOST "Lost communication"
#define AGENT_HEARTBEAT_NONE "No contact"

#endif
