/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One host connection: read frames, check them, dispatch requests, and run the connection's
 * exec, copy and freeze deadline around them. A malformed frame gets an error reply and the
 * connection goes on; only a header that cannot be followed (a length outside the limits)
 * ends it, since the stream cannot be resynchronised.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/clock.h"
#include "lib/le.h"

typedef int (*conn_handler)(struct conn *c, const struct ap_msg *m);

/* Requests the host may send, by type. Types agent-to-host only (exec output and exit) are
 * absent: the host sending one is an unknown command. */
static const conn_handler conn_handlers[AP_T_COUNT] = {
	[AP_T_HELLO] = svc_hello,	  [AP_T_PING] = svc_ping,
	[AP_T_SHUTDOWN] = svc_shutdown,	  [AP_T_TIME_SET] = svc_time_set,
	[AP_T_TIME_GET] = svc_time_get,	  [AP_T_KVP_SET] = kvp_handle,
	[AP_T_KVP_GET] = kvp_handle,	  [AP_T_KVP_DELETE] = kvp_handle,
	[AP_T_KVP_LIST] = kvp_handle,	  [AP_T_EXEC] = exec_start,
	[AP_T_EXEC_INPUT] = exec_input,	  [AP_T_COPY_BEGIN] = copy_begin,
	[AP_T_COPY_DATA] = copy_data,	  [AP_T_COPY_END] = copy_end,
	[AP_T_FREEZE] = freeze_handle,	  [AP_T_THAW] = thaw_handle,
	[AP_T_EXEC_RESIZE] = exec_resize,
};

int conn_send(struct conn *c)
{
	return ap_send(c->fd, &c->out);
}

int conn_error(struct conn *c, const struct ap_msg *m, int code, const char *fmt, ...)
{
	char msg[AP_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ap_error(&c->out, m->type, m->id, code, "%s", msg))
		return -EIO;
	return conn_send(c);
}

int conn_ok(struct conn *c, const struct ap_msg *m)
{
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

static int conn_dispatch(struct conn *c, const struct ap_msg *m)
{
	int service;

	if (m->flags & AP_F_REPLY)
		return conn_error(c, m, EINVAL, "the agent takes requests, not replies");
	if (m->type >= AP_T_COUNT || !conn_handlers[m->type])
		return conn_error(c, m, ENOSYS, "unknown command %u", m->type);
	if (!c->hello && m->type != AP_T_HELLO)
		return conn_error(c, m, EPROTO, "%s before hello: say hello first",
				  ap_type_name(m->type));
	service = ap_type_service(m->type);
	if (service >= 0 && !(agent_opts.services & (1u << service)))
		return conn_error(c, m, ENOTSUP, "the %s service is disabled in this guest",
				  ap_service_name((unsigned)service));
	return conn_handlers[m->type](c, m);
}

/* Ends when the host closes or the stream breaks. */
void conn_serve(int fd)
{
	static struct conn c;
	static struct ap_reader rd;
	static struct ap_msg m;

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.exec.in_fd = c.exec.out_fd = c.exec.err_fd = c.exec.pidfd = -1;
	c.copy.fd = -1;
	c.copy.dirfd = -1;
	ap_reader_init(&rd);
	for (;;) {
		struct pollfd p[8];
		long long now = clock_mono_ms(), deadline = exec_deadline(&c);
		int n = 1, timeout = -1, r;

		if (c.thaw_deadline_ms && (!deadline || c.thaw_deadline_ms < deadline))
			deadline = c.thaw_deadline_ms;
		if (deadline)
			timeout = deadline > now ? (int)(deadline - now) : 0;
		/* While the child has not taken the last input, read no more from the host (the
		 * socket's own buffer is the back pressure), but still notice it going away. */
		p[0].fd = fd;
		p[0].events = c.exec.pending_len ? POLLRDHUP : POLLIN;
		n += exec_poll_fds(&c, p + 1, 7);
		r = poll(p, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r < 0)
			continue;
		if (c.thaw_deadline_ms && clock_mono_ms() >= c.thaw_deadline_ms) {
			fprintf(stderr, "keel-agent: the host did not thaw in time; thawing\n");
			freeze_thaw_all(&c);
		}
		if (exec_after_poll(&c, p + 1, n - 1) < 0)
			break;
		if (c.exec.pending_len && (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			break; /* the host is gone: its exec's process group goes with it */
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)) || c.exec.pending_len)
			continue;
		r = ap_read(&rd, fd);
		if (r == 0)
			continue;
		if (r == -EMSGSIZE) {
			/* The length cannot be trusted, so neither can anything after it. */
			r = ap_error(&c.out, 0, 0, EMSGSIZE,
				     "a frame's length is outside %d to %d bytes; closing",
				     AP_HDR_SIZE, AP_MAX_FRAME);
			if (!r && conn_send(&c))
				fprintf(stderr, "keel-agent: the host is gone\n");
			break;
		}
		if (r < 0)
			break;
		{
			const char *why = "";

			if (ap_decode(rd.buf, rd.len, &m, &why)) {
				/* The header itself was read whole: answer the id it gave. */
				m.type = le16_load(rd.buf + 4);
				m.id = le32_load(rd.buf + 8);
				r = conn_error(&c, &m, EINVAL, "malformed frame: %s", why);
			} else {
				r = conn_dispatch(&c, &m);
			}
		}
		if (r < 0)
			break;
	}
	exec_abort(&c);
	copy_abort(&c);
	freeze_conn_end(&c);
	close(fd);
}
