/* SPDX-License-Identifier: Apache-2.0 */
/* The reply helpers the API's route files share (api.c, api_pools.c). */
#ifndef KEEL_DAEMON_API_INTERNAL_H
#define KEEL_DAEMON_API_INTERNAL_H

#include <json-c/json.h>

#include "daemon/api.h"

/* o as the JSON body (o is taken; NULL: out of memory, a 500). */
void api_reply_json(struct api_reply *out, unsigned status, json_object *o);
/* An -errno from a lower layer as an HTTP error with its code (docs/api/openapi.yaml). */
void api_reply_errno(struct api_reply *out, int err, const char *msg);
void api_method_not_allowed(struct api_reply *out, const char *method, const char *url,
			    const char *allowed);
/* Routes under /v1/pools (api_pools.c). path has no trailing slash. */
void api_route_pools(struct api_ctx *ctx, const char *method, const char *url, const char *path,
		     json_object *req, struct api_reply *out);

#endif
