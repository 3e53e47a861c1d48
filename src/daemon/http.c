/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "lib/log.h"

struct http {
	struct MHD_Daemon *d;
	struct api_ctx *ctx;
};

/* One request's body as it arrives. */
struct request {
	struct api_caller caller;
	char *body;
	size_t len;
	bool too_large;
	void (*after_sent)(void); /* the reply's, once it was delivered whole */
};

static enum MHD_Result send_reply(struct MHD_Connection *c, struct api_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->body) {
		resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
		if (resp)
			r->body = NULL; /* MHD owns it now */
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	api_reply_free(r);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", r->content_type);
	ret = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

struct query_text {
	char text[1024];
	size_t n; /* >= sizeof(text): too long */
};

/* s onto the query; with encode, '&', '=' and '%' percent-encoded: MHD decoded them, and a
 * value must not turn into more arguments. */
static void query_put(struct query_text *q, const char *s, bool encode)
{
	for (; *s && q->n < sizeof(q->text); s++) {
		if (encode && (*s == '&' || *s == '=' || *s == '%'))
			q->n += (size_t)snprintf(q->text + q->n, sizeof(q->text) - q->n, "%%%02X",
						 (unsigned char)*s);
		else
			q->text[q->n++] = *s;
	}
	if (q->n < sizeof(q->text))
		q->text[q->n] = '\0';
}

/* One query argument: "key=value", then "&key=value". */
static enum MHD_Result query_add(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct query_text *q = cls;

	if (q->n)
		query_put(q, "&", false);
	query_put(q, key, true);
	if (value) {
		query_put(q, "=", false);
		query_put(q, value, true);
	}
	return MHD_YES;
}

/* A method as HTTP spells one: 1 to 16 capital letters. MHD takes any token (bytes that are
 * not spaces), and the method is audited and printed: nothing else gets past. */
static bool method_ok(const char *method)
{
	size_t n = strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");

	return n >= 1 && n <= 16 && !method[n];
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct request *req = *con_cls;
	struct api_reply reply = {0};

	if (!req) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		/* Who is calling, as the kernel says (access.h); unknown: no role at all. */
		if (!ci || access_identify(ci->connect_fd, &req->caller)) {
			memset(&req->caller, 0, sizeof(req->caller));
			req->caller.uid = (uid_t)-1;
			snprintf(req->caller.user, sizeof(req->caller.user), "(unknown)");
		}
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (req->too_large || req->len + n > API_BODY_MAX) {
			req->too_large = true;
			return MHD_YES;
		}
		char *bigger = realloc(req->body, req->len + n + 1);
		if (!bigger) {
			req->too_large = true;
			return MHD_YES;
		}
		memcpy(bigger + req->len, upload_data, n);
		req->len += n;
		bigger[req->len] = '\0';
		req->body = bigger;
		return MHD_YES;
	}
	if (!method_ok(method)) {
		/* Not audited: the record would carry the bytes (escape sequences to an
		 * admin's terminal); nothing was tried. */
		api_error_reply(&reply, 400, "BadRequest",
				"request method is not 1 to 16 capital letters");
	} else if (req->too_large) {
		char msg[128];
		snprintf(msg, sizeof(msg), "request body is larger than %d bytes", API_BODY_MAX);
		api_error_reply(&reply, 413, "PayloadTooLarge", msg);
		api_audit_refused(h->ctx, &req->caller, method, url, &reply);
	} else {
		/* MHD splits the query off the (decoded) path: give the API the whole query
		 * (the values MHD decoded, re-encoded where they would split), so that each
		 * route takes the arguments it knows and refuses the others. */
		struct query_text q = {.n = 0};

		q.text[0] = '\0';
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_add, &q);
		if (q.n >= sizeof(q.text)) {
			api_error_reply(&reply, 414, "UriTooLong", "request query is too long");
			api_audit_refused(h->ctx, &req->caller, method, url, &reply);
		} else {
			api_handle(h->ctx, &req->caller, method, url, q.text, req->body, req->len,
				   &reply);
		}
	}
	log_debug("%s %s -> %u", method_ok(method) ? method : "(bad method)", url, reply.status);
	req->after_sent = reply.after_sent;
	return send_reply(c, &reply);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *req = *con_cls;

	if (req) {
		if (req->after_sent && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
			req->after_sent();
		free(req->body);
		free(req);
	}
	*con_cls = NULL;
}

int http_start(int listen_fd, struct api_ctx *ctx, struct http **out)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->ctx = ctx;
	/* One thread per connection: a request that waits on a worker (with keeld's lock let
	 * go, biglock.h) holds up no other request. */
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					MHD_USE_POLL | MHD_USE_ERROR_LOG,
				0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, listen_fd,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
	if (!h->d) {
		log_err("cannot start the HTTP server (libmicrohttpd) on the API socket");
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
