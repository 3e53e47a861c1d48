/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/unix_socket.h"

#define CLIENT_REPLY_MAX  (8 << 20)
#define CLIENT_TIMEOUT_MS 30000

static const char *socket_path;

void client_set_socket(const char *path)
{
	socket_path = path;
}

const char *client_socket(void)
{
	if (socket_path)
		return socket_path;
	if (getenv("KEEL_SOCKET") && getenv("KEEL_SOCKET")[0])
		return getenv("KEEL_SOCKET");
	return CLIENT_DEFAULT_SOCKET;
}

void client_reply_free(struct client_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Split "HTTP/1.1 200 OK\r\nheaders\r\n\r\nbody" into status and body. */
static int parse_response(char *buf, size_t len, struct client_reply *out, char *err, size_t errlen)
{
	char *hdr_end = strstr(buf, "\r\n\r\n"), *line, *save = NULL;
	long clen = -1;
	size_t body_len;

	if (strncmp(buf, "HTTP/1.", 7) || !hdr_end || len < 12) {
		snprintf(err, errlen, "keeld at %s sent a reply that is not HTTP", client_socket());
		return -EBADMSG;
	}
	*hdr_end = '\0';
	out->status = atoi(buf + 9);
	for (line = strtok_r(buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
		if (!strncasecmp(line, "Content-Length:", 15))
			clen = strtol(line + 15, NULL, 10);
	body_len = len - (size_t)(hdr_end + 4 - buf);
	if (clen >= 0 && (size_t)clen < body_len)
		body_len = (size_t)clen;
	out->body = malloc(body_len + 1);
	if (!out->body)
		return -ENOMEM;
	memcpy(out->body, hdr_end + 4, body_len);
	out->body[body_len] = '\0';
	out->len = body_len;
	return 0;
}

int client_request(const char *method, const char *path, const char *body, struct client_reply *out,
		   char *err, size_t errlen)
{
	const char *sock = client_socket();
	char head[1024], *buf = NULL;
	size_t blen = body ? strlen(body) : 0, have = 0, cap = 0;
	int fd, ret = 0, n;

	memset(out, 0, sizeof(*out));
	fd = unix_connect(sock);
	if (fd < 0) {
		snprintf(err, errlen, "cannot reach keeld at %s: %s%s", sock, strerror(-fd),
			 fd == -ENOENT || fd == -ECONNREFUSED
				 ? " (is keeld running? --socket or KEEL_SOCKET choose another)"
			 : fd == -EACCES ? " (are you root or in group keel?)"
					 : "");
		return fd;
	}
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: keeld\r\nConnection: close\r\n"
		     "Accept: application/json\r\n%s%s%s",
		     method, path, body ? "Content-Type: application/json\r\n" : "",
		     body ? "Content-Length: " : "", body ? "" : "\r\n");
	if (n < 0 || (size_t)n >= sizeof(head) - 32) {
		snprintf(err, errlen, "request path too long");
		ret = -E2BIG;
		goto out;
	}
	if (body)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "%zu\r\n\r\n", blen);
	ret = send_all(fd, head, (size_t)n);
	if (!ret && blen)
		ret = send_all(fd, body, blen);
	if (ret) {
		snprintf(err, errlen, "cannot send the request to keeld at %s: %s", sock,
			 strerror(-ret));
		goto out;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (cap - have < 4096) {
			char *bigger;
			cap = cap ? cap * 2 : 16384;
			if (cap > CLIENT_REPLY_MAX) {
				snprintf(err, errlen, "keeld's reply is larger than %d bytes",
					 CLIENT_REPLY_MAX);
				ret = -E2BIG;
				goto out;
			}
			bigger = realloc(buf, cap);
			if (!bigger) {
				ret = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = bigger;
		}
		if (poll(&p, 1, CLIENT_TIMEOUT_MS) == 0) {
			snprintf(err, errlen, "keeld at %s did not answer within %d s", sock,
				 CLIENT_TIMEOUT_MS / 1000);
			ret = -ETIMEDOUT;
			goto out;
		}
		r = recv(fd, buf + have, cap - have - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			snprintf(err, errlen, "reading keeld's reply: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		have += (size_t)r;
	}
	if (!buf) {
		snprintf(err, errlen, "keeld at %s closed the connection without a reply", sock);
		ret = -EBADMSG;
		goto out;
	}
	buf[have] = '\0';
	ret = parse_response(buf, have, out, err, errlen);
out:
	free(buf);
	close(fd);
	return ret;
}

static int exit_for_status(int status)
{
	if (status == 404)
		return EXIT_NOT_FOUND;
	if (status == 409)
		return EXIT_BAD_STATE;
	if (status >= 400 && status < 500)
		return EXIT_USAGE;
	return EXIT_FAIL;
}

int client_call(const char *method, const char *path, json_object *body, json_object **json,
		const char *what)
{
	struct client_reply r;
	json_object *o = NULL, *e, *m;
	char err[512];
	int ret;

	if (json)
		*json = NULL;
	ret = client_request(method, path,
			     body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)
				  : NULL,
			     &r, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "keel: %s: %s\n", what, err);
		return EXIT_NO_DAEMON;
	}
	o = json_tokener_parse(r.body);
	if (r.status >= 200 && r.status < 300) {
		if (json)
			*json = o;
		else
			json_object_put(o);
		client_reply_free(&r);
		return EXIT_OK;
	}
	if (o && json_object_object_get_ex(o, "error", &e) &&
	    json_object_object_get_ex(e, "message", &m))
		fprintf(stderr, "keel: %s: %s\n", what, json_object_get_string(m));
	else
		fprintf(stderr, "keel: %s: keeld answered HTTP %d: %.200s\n", what, r.status,
			r.body);
	json_object_put(o);
	ret = exit_for_status(r.status);
	client_reply_free(&r);
	return ret;
}

const char *client_escape(const char *name, char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p && o + 4 < size; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.') {
			buf[o++] = (char)*p;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[*p >> 4];
			buf[o++] = hex[*p & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

const char *client_str_field(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return "";
	return json_object_get_string(v);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int client_wait_state(const char *name, const char *while_state, const char *want, long limit_s,
		      const char *verb)
{
	long long deadline = now_ms() + limit_s * 1000;
	char path[512], esc[256], what[128];
	int ret;

	snprintf(path, sizeof(path), "/v1/vms/%s", client_escape(name, esc, sizeof(esc)));
	snprintf(what, sizeof(what), "%s VM '%s'", verb, name);
	for (;;) {
		json_object *vm = NULL;
		const char *state;

		ret = client_call("GET", path, NULL, &vm, what);
		if (ret)
			return ret;
		state = client_str_field(vm, "state");
		if (strcmp(state, while_state)) {
			char list[80], needle[40];
			bool ok;

			snprintf(list, sizeof(list), ",%s,", want);
			snprintf(needle, sizeof(needle), ",%s,", state);
			ok = strstr(list, needle) != NULL;
			if (!ok)
				fprintf(stderr, "keel: %s: the VM is %s: %s\n", what, state,
					client_str_field(vm, "state_reason"));
			json_object_put(vm);
			return ok ? EXIT_OK : EXIT_FAIL;
		}
		json_object_put(vm);
		if (now_ms() > deadline) {
			fprintf(stderr, "keel: %s: still %s after %ld s\n", what, while_state,
				limit_s);
			return EXIT_TIMED_OUT;
		}
		usleep(CLIENT_WAIT_POLL_MS * 1000);
	}
}

int client_wait_job(json_object *job, const char *what)
{
	char path[128];
	bool tty = isatty(2), shown = false;
	int ret;

	snprintf(path, sizeof(path), "%s", client_str_field(job, "href"));
	if (!path[0]) {
		fprintf(stderr, "keel: %s: keeld's reply names no job\n", what);
		return EXIT_FAIL;
	}
	for (;;) {
		json_object *j = NULL, *p, *e, *v;
		const char *state;

		ret = client_call("GET", path, NULL, &j, what);
		if (ret)
			return ret;
		state = client_str_field(j, "state");
		if (tty && json_object_object_get_ex(j, "progress", &p) &&
		    json_object_object_get_ex(p, "percent", &v)) {
			int pct = json_object_get_int(v), bars = pct / 5;
			json_object *d = NULL, *t = NULL;

			json_object_object_get_ex(p, "bytes_done", &d);
			json_object_object_get_ex(p, "bytes_total", &t);
			fprintf(stderr, "\r%s: [%.*s%*s] %3d%% (%lld of %lld MiB)", what, bars,
				"####################", 20 - bars, "", pct,
				(long long)(json_object_get_int64(d) >> 20),
				(long long)(json_object_get_int64(t) >> 20));
			shown = true;
		}
		if (strcmp(state, "running")) {
			if (shown)
				fputc('\n', stderr);
			if (!strcmp(state, "succeeded")) {
				json_object_put(j);
				return EXIT_OK;
			}
			e = NULL;
			json_object_object_get_ex(j, "error", &e);
			fprintf(stderr, "keel: %s: %s\n", what, client_str_field(e, "message"));
			ret = !strcmp(client_str_field(e, "code"), "InvalidState") ? EXIT_BAD_STATE
										   : EXIT_FAIL;
			json_object_put(j);
			return ret;
		}
		json_object_put(j);
		usleep(CLIENT_WAIT_POLL_MS * 1000);
	}
}
