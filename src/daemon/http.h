/* SPDX-License-Identifier: Apache-2.0 */
/* keeld's HTTP server: libmicrohttpd on a listening Unix socket, driven by keeld's loop. */
#ifndef KEEL_DAEMON_HTTP_H
#define KEEL_DAEMON_HTTP_H

#include "daemon/api.h"

struct http;

/* Serve the API on listen_fd (already bound and listening). Returns 0 or -errno. */
int http_start(int listen_fd, struct api_ctx *ctx, struct http **out)
	__attribute__((warn_unused_result));
/* The one fd to poll for input, and the longest the loop may sleep (-1: forever). */
int http_fd(struct http *h);
int http_timeout_ms(struct http *h);
/* Do all pending work (accept, read, answer) without blocking. */
void http_run(struct http *h);
void http_stop(struct http *h);

#endif
