/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lib/clock.h"
#include "lib/log.h"

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

/* The reply as it arrives (libcurl's write callback), up to CLIENT_REPLY_MAX bytes. */
struct reply_buf {
	char *data;
	size_t len, cap;
	bool too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *opaque)
{
	struct reply_buf *b = opaque;
	size_t add = size * n;

	if (b->len + add + 1 > CLIENT_REPLY_MAX) {
		b->too_big = true;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *bigger;

		while (cap < b->len + add + 1)
			cap *= 2;
		bigger = realloc(b->data, cap);
		if (!bigger)
			return 0;
		b->data = bigger;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

/* Why keeld cannot be reached, in words that say what to do. */
static void unreachable(const char *sock, CURLcode c, const char *detail, char *err, size_t errlen)
{
	struct stat st;
	const char *hint = "";

	if (stat(sock, &st) < 0)
		hint = " (is keeld running? --socket or KEEL_SOCKET choose another)";
	else if (access(sock, R_OK | W_OK) < 0)
		hint = " (are you root or in group keel?)";
	snprintf(err, errlen, "cannot reach keeld at %s: %s%s", sock,
		 detail[0] ? detail : curl_easy_strerror(c), hint);
}

int client_request(const char *method, const char *path, const char *body, struct client_reply *out,
		   char *err, size_t errlen)
{
	static bool curl_ready;
	const char *sock = client_socket();
	struct reply_buf buf = {0};
	struct curl_slist *headers = NULL;
	char url[1100], detail[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURL *c;
	CURLcode rc;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (strlen(path) > 1024) {
		snprintf(err, errlen, "request path too long");
		return -E2BIG;
	}
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			snprintf(err, errlen, "cannot set up libcurl");
			return -ENOMEM;
		}
		curl_ready = true;
	}
	c = curl_easy_init();
	if (!c) {
		snprintf(err, errlen, "cannot set up libcurl");
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "http://keeld%s", path);
	headers = curl_slist_append(headers, "Accept: application/json");
	if (body)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CLIENT_TIMEOUT_MS);
	/* No whole-transfer limit: a long-poll or a slow request may take a while; a keeld
	 * that sends nothing for CLIENT_TIMEOUT_MS is given up on. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(CLIENT_TIMEOUT_MS / 1000));
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
		unreachable(sock, rc, detail, err, errlen);
		ret = -ECONNREFUSED;
	} else if (rc == CURLE_WRITE_ERROR && buf.too_big) {
		snprintf(err, errlen, "keeld's reply is larger than %d bytes", CLIENT_REPLY_MAX);
		ret = -E2BIG;
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(err, errlen, "keeld at %s did not answer within %d s", sock,
			 CLIENT_TIMEOUT_MS / 1000);
		ret = -ETIMEDOUT;
	} else if (rc != CURLE_OK) {
		snprintf(err, errlen, "talking to keeld at %s: %s", sock,
			 detail[0] ? detail : curl_easy_strerror(rc));
		ret = -EBADMSG;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		out->status = (int)status;
		out->body = buf.data ? buf.data : strdup("");
		out->len = buf.len;
		buf.data = NULL;
		if (!out->body)
			ret = -ENOMEM;
	}
	free(buf.data);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return ret;
}

static int exit_for_status(int status)
{
	if (status == 404)
		return EXIT_NOT_FOUND;
	if (status == 409)
		return EXIT_BAD_STATE;
	if (status == 403)
		return EXIT_DENIED;
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

int client_wait_state(const char *name, const char *while_state, const char *want, long limit_s,
		      const char *verb)
{
	long long deadline = clock_mono_ms() + limit_s * 1000;
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
		if (clock_mono_ms() > deadline) {
			fprintf(stderr, "keel: %s: still %s after %ld s\n", what, while_state,
				limit_s);
			return EXIT_TIMED_OUT;
		}
		usleep(CLIENT_WAIT_POLL_MS * 1000);
	}
}

int client_run_job(const char *path, json_object *body, const char *what, bool no_wait, bool json,
		   json_object **result)
{
	json_object *job = NULL, *done = NULL, *res;
	int ret = client_call("POST", path, body, &job, what);

	*result = NULL;
	if (ret)
		return ret;
	if (no_wait) {
		if (json)
			client_print_json(job);
		else
			printf("job %s started: %s\n", client_str_field(job, "id"), what);
		json_object_put(job);
		return EXIT_OK;
	}
	ret = client_wait_job_done(job, what, &done);
	json_object_put(job);
	if (!ret && done && json_object_object_get_ex(done, "result", &res) && res)
		*result = json_object_get(res);
	json_object_put(done);
	return ret;
}

int client_wait_job(json_object *job, const char *what)
{
	return client_wait_job_done(job, what, NULL);
}

int client_wait_job_done(json_object *job, const char *what, json_object **done)
{
	char path[128];
	bool tty = isatty(2), shown = false;
	int ret;

	if (done)
		*done = NULL;
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
			ret = EXIT_OK;
			if (strcmp(state, "succeeded")) {
				e = NULL;
				json_object_object_get_ex(j, "error", &e);
				fprintf(stderr, "keel: %s: %s\n", what,
					client_str_field(e, "message"));
				ret = !strcmp(client_str_field(e, "code"), "InvalidState")
					      ? EXIT_BAD_STATE
					      : EXIT_FAIL;
			}
			if (done)
				*done = j;
			else
				json_object_put(j);
			return ret;
		}
		json_object_put(j);
		usleep(CLIENT_WAIT_POLL_MS * 1000);
	}
}

void client_put_safe(const char *s)
{
	char *copy = strdup(s);

	if (copy)
		log_text_safe(copy, strlen(copy), false);
	fputs(copy ? copy : "?", stdout);
	free(copy);
}

void client_print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}
