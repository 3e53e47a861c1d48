/* SPDX-License-Identifier: Apache-2.0 */
/* keeld's HTTP server: libmicrohttpd on a listening Unix socket, one thread per connection;
 * each request runs api_handle, which takes keeld's lock (biglock.h). */
#ifndef KEEL_DAEMON_HTTP_H
#define KEEL_DAEMON_HTTP_H

#include "daemon/api.h"

struct http;

/* Serve the API on listen_fd (already bound and listening). Returns 0 or -errno. */
int http_start(int listen_fd, struct api_ctx *ctx, struct http **out)
	__attribute__((warn_unused_result));
/* Stop serving: waits for requests in progress (call it without keeld's lock). */
void http_stop(struct http *h);

#endif
