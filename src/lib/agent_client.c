/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/agent_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/unix_socket.h"

/* Milliseconds left until deadline (-1: none), at least 0. */
static int left_ms(long long deadline)
{
	long long now;

	if (deadline < 0)
		return -1;
	now = clock_mono_ms();
	return now >= deadline ? 0 : (int)(deadline - now);
}

static int wait_readable(int fd, long long deadline)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;

	do
		r = poll(&p, 1, left_ms(deadline));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* The hybrid-vsock handshake: "CONNECT 52\n", then "OK <port>\n" from keel-vmm. */
static int agent_handshake(int fd, long long deadline, char *err, size_t errlen)
{
	char line[32];
	size_t n = 0;
	int r;

	r = snprintf(line, sizeof(line), "CONNECT %d\n", AP_PORT);
	if (send(fd, line, (size_t)r, MSG_NOSIGNAL) != r) {
		error_set(err, errlen, "cannot write to the VM's vsock socket: %s",
			  strerror(errno));
		return -EIO;
	}
	while (n < sizeof(line) - 1) {
		ssize_t got;

		r = wait_readable(fd, deadline);
		if (r) {
			error_set(err, errlen,
				  "the VM's vsock device did not answer CONNECT in time");
			return r;
		}
		got = read(fd, line + n, 1);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0) {
			error_set(err, errlen,
				  "nothing listens on vsock port %d in the guest: no keel-agent "
				  "running in it",
				  AP_PORT);
			return -ECONNRESET;
		}
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	if (strncmp(line, "OK ", 3) || n < 5 || line[n - 1] != '\n' ||
	    strspn(line + 3, "0123456789") != n - 4) {
		error_set(err, errlen, "the VM's vsock device answered CONNECT with '%.*s'",
			  (int)strcspn(line, "\n"), line);
		return -EPROTO;
	}
	return 0;
}

/* The frame in c->out, waiting for room in the socket until deadline (-1: none). The socket
 * is non-blocking (agent_open_fd), so that a guest that stops reading cannot hold a send, nor
 * one that stops in the middle of a frame a read, past the caller's deadline. */
static int agent_send_until(struct agent_conn *c, long long deadline)
{
	const uint8_t *p = c->out.buf;
	size_t n = c->out.len;
	int r = ap_end(&c->out);

	if (r)
		return r;
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf = {.fd = c->fd, .events = POLLOUT};

			do
				r = poll(&pf, 1, left_ms(deadline));
			while (r < 0 && errno == EINTR);
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

uint32_t agent_begin(struct agent_conn *c, uint16_t type)
{
	uint32_t id = c->next_id++;

	if (c->next_id == 0)
		c->next_id = 1;
	c->last_id = id;
	c->last_type = type;
	ap_begin(&c->out, type, 0, id);
	return id;
}

int agent_send(struct agent_conn *c)
{
	return agent_send_until(c, -1);
}

int agent_recv(struct agent_conn *c, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
	const char *why = "";

	for (;;) {
		int r = ap_read(&c->reader, c->fd);

		if (r == 1)
			break;
		if (r == -EPIPE) {
			error_set(err, errlen, "the agent closed the connection");
			return r;
		}
		if (r == -EMSGSIZE) {
			error_set(err, errlen, "the agent sent a frame of impossible length");
			return -EPROTO;
		}
		if (r < 0) {
			error_set(err, errlen, "cannot read from the agent: %s", strerror(-r));
			return r;
		}
		r = wait_readable(c->fd, deadline);
		if (r) {
			error_set(err, errlen, "the agent did not answer within %d ms", timeout_ms);
			return r;
		}
	}
	if (ap_decode(c->reader.buf, c->reader.len, &c->msg, &why)) {
		error_set(err, errlen, "the agent sent a malformed frame: %s", why);
		return -EPROTO;
	}
	return 0;
}

int agent_call(struct agent_conn *c, int timeout_ms, char *err, size_t errlen)
{
	uint32_t id = c->last_id, code = EIO;
	int r = agent_send_until(c, timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms);

	if (r) {
		error_set(err, errlen, "cannot send to the agent: %s", strerror(-r));
		return r;
	}
	r = agent_recv(c, timeout_ms, err, errlen);
	if (r)
		return r;
	if (c->msg.id != id || c->msg.type != c->last_type || !(c->msg.flags & AP_F_REPLY)) {
		error_set(err, errlen, "the agent answered %s %u with %s %u",
			  ap_type_name(c->last_type) ? ap_type_name(c->last_type) : "?", id,
			  ap_type_name(c->msg.type) ? ap_type_name(c->msg.type)
						    : "an unknown frame",
			  c->msg.id);
		return -EPROTO;
	}
	if (c->msg.flags & AP_F_ERROR) {
		const char *msg = ap_get_str(&c->msg, AP_A_MESSAGE);

		(void)ap_get_u32(&c->msg, AP_A_ERROR, &code);
		if (code == 0 || code > 4095)
			code = EIO;
		error_set(err, errlen, "%s", msg ? msg : strerror((int)code));
		if (err && errlen)
			log_text_safe(err, strlen(err),
				      false); /* the guest's words, for a terminal and a log */
		return -(int)code;
	}
	return 0;
}

int agent_open_fd(struct agent_conn *c, int fd, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = clock_mono_ms() + timeout_ms;
	const char *v;
	uint32_t version = 0;
	int r;

	memset(c, 0, sizeof(*c));
	c->next_id = 1;
	c->fd = fd;
	ap_reader_init(&c->reader);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		error_set(err, errlen, "cannot set up the VM's vsock socket: %s", strerror(-r));
		goto fail;
	}
	r = agent_handshake(c->fd, deadline, err, errlen);
	if (r)
		goto fail;
	agent_begin(c, AP_T_HELLO);
	ap_put_u32(&c->out, AP_A_VERSION_MIN, AP_VERSION);
	ap_put_u32(&c->out, AP_A_VERSION_MAX, AP_VERSION);
	r = agent_call(c, left_ms(deadline), err, errlen);
	if (r)
		goto fail;
	if (ap_get_u32(&c->msg, AP_A_VERSION, &version) || version != AP_VERSION ||
	    ap_get_u32(&c->msg, AP_A_SERVICES, &c->services)) {
		error_set(err, errlen, "the agent's hello names no version %d and services",
			  AP_VERSION);
		r = -EPROTO;
		goto fail;
	}
	v = ap_get_str(&c->msg, AP_A_AGENT_VERSION);
	snprintf(c->agent_version, sizeof(c->agent_version), "%s", v ? v : "");
	log_text_safe(c->agent_version, strlen(c->agent_version), false);
	return 0;
fail:
	close(c->fd);
	c->fd = -1;
	return r;
}

int agent_open(struct agent_conn *c, const char *vsock_path, int timeout_ms, char *err,
	       size_t errlen)
{
	int fd = unix_connect_timeout(vsock_path, timeout_ms);

	if (fd < 0) {
		c->fd = -1;
		error_set(err, errlen, "cannot connect to the VM's vsock socket %s: %s", vsock_path,
			  strerror(-fd));
		return fd;
	}
	return agent_open_fd(c, fd, timeout_ms, err, errlen);
}

void agent_close(struct agent_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
