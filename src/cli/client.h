/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel's client of keeld's REST API (docs/api/openapi.yaml): HTTP/1.1 over the Unix
 * socket, one request per connection, JSON bodies. Used by the vm and console groups.
 */
#ifndef KEEL_CLI_CLIENT_H
#define KEEL_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define CLIENT_DEFAULT_SOCKET "/run/keel/keeld.sock"

/* keel's exit statuses (docs/cli.md). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,	    /* the operation failed (keeld said why) */
	EXIT_USAGE = 2,	    /* bad arguments, or a request keeld found invalid */
	EXIT_NO_DAEMON = 3, /* keeld cannot be reached */
	EXIT_NOT_FOUND = 4, /* no such VM */
	EXIT_BAD_STATE = 5, /* the VM's state does not allow the operation */
	EXIT_TIMED_OUT = 6, /* the VM did not reach the wanted state in time */
	EXIT_DENIED = 7,    /* the caller may not do that (HTTP 403, docs/security.md) */
};

struct client_reply {
	int status; /* HTTP status */
	char *body; /* NUL-terminated */
	size_t len;
};

/* The API socket: --socket if given (set by keel's main), else $KEEL_SOCKET, else default. */
void client_set_socket(const char *path);
const char *client_socket(void);

/*
 * Send one request; body may be NULL. Returns 0 with out filled (any HTTP status), or
 * -errno when keeld cannot be reached or answers nonsense, with err set.
 */
int client_request(const char *method, const char *path, const char *body, struct client_reply *out,
		   char *err, size_t errlen) __attribute__((warn_unused_result));
void client_reply_free(struct client_reply *r);

/*
 * A JSON request; on a 2xx reply returns EXIT_OK and *json (may be NULL if not wanted);
 * otherwise prints "keel: <what>: <keeld's message>" on stderr and returns the exit status
 * matching the HTTP status.
 */
int client_call(const char *method, const char *path, json_object *body, json_object **json,
		const char *what);

/* Percent-encode a VM name for a URL path segment into buf. */
const char *client_escape(const char *name, char *buf, size_t size);

/* o on stdout as indented JSON (what every --json prints). */
void client_print_json(json_object *o);
/* s on stdout with its control characters (escape sequences for the terminal, newlines that
 * would make lines of their own) as '?' (log_text_safe): text keeld or a guest chose. */
void client_put_safe(const char *s);
/* The member `key` of object o as a string; "" when it is missing or null. */
const char *client_str_field(json_object *o, const char *key);

/*
 * Poll VM `name` until it leaves the transitional state `while_state` (at most limit_s
 * seconds). EXIT_OK if it reached one of `want` (a list like "Running,Paused"); otherwise
 * prints why on stderr and returns EXIT_FAIL (or EXIT_TIMED_OUT, or the call's failure).
 */
#define CLIENT_WAIT_POLL_MS 100
/*
 * Follow a job (the "job" object of keeld's 202 reply) until it ends, with a progress bar
 * on a terminal. EXIT_OK when it succeeded; else prints keeld's reason and returns
 * EXIT_BAD_STATE or EXIT_FAIL (or the call's failure).
 */
int client_wait_job(json_object *job, const char *what) __attribute__((warn_unused_result));
/* The same, and *done (when not NULL) is the job as keeld last showed it, ended (the
 * caller puts it), or NULL when it could not be read. */
int client_wait_job_done(json_object *job, const char *what, json_object **done)
	__attribute__((warn_unused_result));
/*
 * POST body to path, which starts a job (what names it in messages). With no_wait: the job
 * printed (as JSON with json, else "job N started: what") and *result NULL. Otherwise waited
 * for (client_wait_job_done) and *result its "result" (the caller puts it; NULL when it has
 * none). An exit status.
 */
int client_run_job(const char *path, json_object *body, const char *what, bool no_wait, bool json,
		   json_object **result) __attribute__((warn_unused_result));
int client_wait_state(const char *name, const char *while_state, const char *want, long limit_s,
		      const char *verb) __attribute__((warn_unused_result));

#endif
