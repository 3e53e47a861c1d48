/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's REST/JSON API (docs/api/openapi.yaml): routes one request to the store and the
 * supervisor and builds the reply. No HTTP here (http.c does that), so the fuzz target can
 * drive it directly. Bad input never changes anything and gets a 4xx JSON error.
 */
#ifndef KEEL_DAEMON_API_H
#define KEEL_DAEMON_API_H

#include <stddef.h>

#include "daemon/access.h"
#include "daemon/store.h"
#include "daemon/sup.h"

#define API_BODY_MAX	     (1 << 20)
#define API_LOG_MAX	     (1 << 20)
#define API_STOP_TIMEOUT_MAX 86400

struct api_ctx {
	struct store *store;
	struct sup *sup;
	unsigned stop_timeout_s; /* default for stop without "timeout" */
};

struct api_reply {
	unsigned status;	  /* HTTP status */
	const char *content_type; /* static string */
	char *body;		  /* malloc'd */
	size_t len;
	void (*after_sent)(void); /* NULL, or called once the reply was delivered whole */
};

/* Handle one request of caller (access.h: refused with 403 unless their role allows it;
 * every request that is not a read is recorded in the audit log, with its outcome). path is
 * the decoded path (it may hold any character, '?' included); query the query string
 * ("since=3&wait=10", NULL or "" for none), whose keys and values are percent-encoded where
 * they hold '&', '=' or '%'. body may be NULL when len is 0. Always fills out (status 500 and
 * a JSON error if memory runs out). */
void api_handle(struct api_ctx *ctx, const struct api_caller *caller, const char *method,
		const char *path, const char *query, const char *body, size_t len,
		struct api_reply *out);
/* A JSON error reply, for errors found before api_handle (e.g. a body too large). */
void api_error_reply(struct api_reply *out, unsigned status, const char *code, const char *msg);
/* The audit record of a request refused before api_handle (413, 414): a refused request is
 * recorded like any other. Takes keeld's lock. */
void api_audit_refused(struct api_ctx *ctx, const struct api_caller *caller, const char *method,
		       const char *path, const struct api_reply *out);
/* The audit record of a job's outcome (jobs_on_end; opaque the api_ctx): "JOB
 * /v1/jobs/ID" by whoever started it, with the status its error maps to (200: it
 * succeeded). */
struct job;
void api_audit_job_end(const struct job *j, void *opaque);
void api_reply_free(struct api_reply *r);

#endif
