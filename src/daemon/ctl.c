/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/unix_socket.h"

#define CTL_REPLY_MAX 65536

static int ctl_call(const char *sock_path, const char *cmd, const char *args, const int *pass,
		    size_t npass, int *fds, size_t max, size_t *nfds, int timeout_ms,
		    json_object **ret, char *err, size_t errlen);

static int parse_reply(const char *line, json_object **ret, char *err, size_t errlen)
{
	json_object *reply = json_tokener_parse(line);
	json_object *v;
	int rc = 0;

	if (!reply || !json_object_is_type(reply, json_type_object)) {
		snprintf(err, errlen, "keel-vmm sent a reply that is not a JSON object: %.80s",
			 line);
		rc = -EBADMSG;
	} else if (json_object_object_get_ex(reply, "return", &v)) {
		if (ret)
			*ret = json_object_get(v);
	} else if (json_object_object_get_ex(reply, "error", &v)) {
		json_object *desc = NULL;
		json_object_object_get_ex(v, "desc", &desc);
		snprintf(err, errlen, "%s",
			 desc ? json_object_get_string(desc) : "keel-vmm refused the command");
		rc = -EREMOTEIO;
	} else {
		snprintf(err, errlen, "keel-vmm sent a reply with neither return nor error: %.80s",
			 line);
		rc = -EBADMSG;
	}
	json_object_put(reply);
	return rc;
}

int ctl_execute(const char *sock_path, const char *cmd, int timeout_ms, json_object **ret,
		char *err, size_t errlen)
{
	return ctl_execute_args(sock_path, cmd, NULL, timeout_ms, ret, err, errlen);
}

int ctl_execute_args(const char *sock_path, const char *cmd, const char *args, int timeout_ms,
		     json_object **ret, char *err, size_t errlen)
{
	return ctl_execute_fds(sock_path, cmd, args, NULL, 0, timeout_ms, ret, err, errlen);
}

int ctl_execute_fds(const char *sock_path, const char *cmd, const char *args, const int *pass,
		    size_t npass, int timeout_ms, json_object **ret, char *err, size_t errlen)
{
	size_t none = 0; /* a descriptor sent back is closed */

	return ctl_call(sock_path, cmd, args, pass, npass, NULL, 0, &none, timeout_ms, ret, err,
			errlen);
}

int ctl_execute_recv_fds(const char *sock_path, const char *cmd, const char *args, int *fds,
			 size_t max, size_t *nfds, int timeout_ms, json_object **ret, char *err,
			 size_t errlen)
{
	int r;

	*nfds = 0;
	r = ctl_call(sock_path, cmd, args, NULL, 0, fds, max, nfds, timeout_ms, ret, err, errlen);
	if (r) {
		while (*nfds)
			close(fds[--*nfds]);
	}
	return r;
}

static int ctl_call(const char *sock_path, const char *cmd, const char *args, const int *pass,
		    size_t npass, int *fds, size_t max, size_t *nfds, int timeout_ms,
		    json_object **ret, char *err, size_t errlen)
{
	char req[4608], buf[CTL_REPLY_MAX + 1];
	size_t have = 0;
	long long deadline = clock_mono_ms() + timeout_ms;
	int fd, rc = 0, n;

	if (ret)
		*ret = NULL;
	fd = unix_connect_timeout(sock_path, timeout_ms);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to keel-vmm control socket %s: %s", sock_path,
			 strerror(-fd));
		return fd;
	}
	n = args ? snprintf(req, sizeof(req), "{\"execute\":\"%s\",\"arguments\":%s}\n", cmd, args)
		 : snprintf(req, sizeof(req), "{\"execute\":\"%s\"}\n", cmd);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		rc = -EINVAL;
		snprintf(err, errlen, "control command '%s' too long", cmd);
		goto out;
	}
	if (unix_send_fds(fd, req, (size_t)n, pass, npass, 0) != n) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot send '%s' to keel-vmm at %s: %s", cmd, sock_path,
			 strerror(errno));
		goto out;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long left = deadline - clock_mono_ms();
		char *nl;
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			rc = -ETIMEDOUT;
			snprintf(err, errlen, "keel-vmm did not answer '%s' within %d ms", cmd,
				 timeout_ms);
			goto out;
		}
		r = unix_recv_fds(fd, buf + have, CTL_REPLY_MAX - have, fds, max, nfds, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -ECONNRESET;
			snprintf(err, errlen, "keel-vmm closed the control connection during '%s'",
				 cmd);
			goto out;
		}
		have += (size_t)r;
		buf[have] = '\0';
		nl = memchr(buf, '\n', have);
		if (nl) {
			*nl = '\0';
			rc = parse_reply(buf, ret, err, errlen);
			goto out;
		}
		if (have == CTL_REPLY_MAX) {
			rc = -EBADMSG;
			snprintf(err, errlen, "keel-vmm reply to '%s' is longer than %d bytes", cmd,
				 CTL_REPLY_MAX);
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}
