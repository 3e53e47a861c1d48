/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-agent-conn: what the host sends to keel-agent. The input is the byte stream of one
 * connection, served by the agent's own connection loop (conn_serve) on a socket pair, so
 * framing, decoding, dispatch and the request checks all run. The host must not crash the
 * agent. Only services without effects outside a scratch directory are enabled (heartbeat
 * and the KVP pools there): exec, copy, freeze, shutdown and time-set would act on the
 * machine running the fuzzer; their requests still reach dispatch and are refused as disabled.
 * So that exec-resize is reached past that refusal, each frame of the input is also decoded
 * and given to exec_resize on a connection whose exec is running: on a real pseudo-terminal
 * or without one (bit 1 of the frame's id), of that id or another (bit 0).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"

struct agent_opts agent_opts;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
	int fd;
	const uint8_t *data;
	size_t size;
};

static void *feed_input(void *arg)
{
	struct feed *f = arg;

	if (ap_write_all(f->fd, f->data, f->size))
		fprintf(stderr, "fuzz-agent-conn: the agent stopped reading\n");
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

static void *drain_replies(void *arg)
{
	static uint8_t buf[65536];
	int fd = *(int *)arg;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

/* Each frame of the input as the host's EXEC_RESIZE for the running exec of a connection
 * whose replies go to a socket drained after each. */
static void resize_frames(const uint8_t *data, size_t size)
{
	static struct conn c;
	static struct ap_msg m;
	static uint8_t drain[4096];
	const char *why;
	int sv[2], master;
	size_t off = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		abort();
	while (size - off >= AP_HDR_SIZE) {
		int len = ap_frame_len(data + off);

		if (len < 0 || (size_t)len > size - off)
			break;
		if (!ap_decode(data + off, (size_t)len, &m, &why)) {
			c.fd = sv[0];
			c.exec.active = true;
			c.exec.id = m.id & 1 ? m.id ^ 1 : m.id;
			c.exec.tty = !(m.id & 2);
			c.exec.in_fd = c.exec.err_fd = c.exec.pidfd = -1;
			c.exec.out_fd = master;
			if (exec_resize(&c, &m) < 0)
				abort(); /* a socket pair drained here: never broken */
			while (recv(sv[1], drain, sizeof(drain), MSG_DONTWAIT) > 0)
				;
		}
		off += (size_t)len;
	}
	close(master);
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[] = "/tmp/fuzz-agent-conn-XXXXXX";
	static bool ready;
	char path[AP_MAX_PATH];
	pthread_t in, out;
	struct feed f;
	int sv[2];

	if (!ready) {
		if (!mkdtemp(dir))
			abort();
		agent_opts.state_dir = dir;
		agent_opts.services = 1u << AP_S_HEARTBEAT | 1u << AP_S_KVP;
		ready = true;
	}
	for (int pool = AP_POOL_GUEST; pool <= AP_POOL_HOST; pool++)
		if (!kvp_pool_path(pool, path, sizeof(path)))
			unlink(path);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	f = (struct feed){sv[1], data, size};
	if (pthread_create(&in, NULL, feed_input, &f) ||
	    pthread_create(&out, NULL, drain_replies, &sv[1]))
		abort();
	conn_serve(sv[0]); /* closes sv[0] */
	pthread_join(in, NULL);
	pthread_join(out, NULL);
	close(sv[1]);
	resize_frames(data, size);
	return 0;
}
