/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-agent-conn: what the host sends to keel-agent. The input is the byte stream of one
 * connection, served by the agent's own connection loop (conn_serve) on a socket pair, so
 * framing, decoding, dispatch and the request checks all run. The host must not crash the
 * agent. Only services without effects outside a scratch directory are enabled (heartbeat
 * and the KVP pools there): exec, copy, freeze, shutdown and time-set would act on the
 * machine running the fuzzer; their requests still reach dispatch and are refused as disabled.
 */
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
	return 0;
}
