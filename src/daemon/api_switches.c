/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's virtual switches (docs/networking.md): GET and POST /v1/switches, GET, PATCH and
 * DELETE /v1/switches/NAME; a NAT switch's port forwards: GET and POST
 * /v1/switches/NAME/forwards, DELETE /v1/switches/NAME/forwards/PROTO/PORT.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/api_internal.h"
#include "daemon/switch.h"

static void reply_switch(struct api_ctx *ctx, const char *name, unsigned status,
			 struct api_reply *out)
{
	json_object *o = switches_one_json(ctx->store, name);

	if (o)
		api_reply_json(out, status, o);
	else
		api_error_reply(out, 500, "Internal", "cannot read the switch back");
}

/* NAME/forwards (GET, POST) and NAME/forwards/PROTO/PORT (DELETE). */
static void route_forwards(struct api_ctx *ctx, const char *method, const char *url,
			   const char *rest, json_object *req, struct api_reply *out)
{
	char name[VMDEF_SWITCH_MAX + 1], proto[8] = "", err[600] = "";
	const char *sub = strchr(rest, '/');
	unsigned port = 0;
	int r, n = 0;

	snprintf(name, sizeof(name), "%.*s", (int)(sub - rest), rest);
	if (!strcmp(sub, "/forwards")) {
		if (!strcmp(method, "GET")) {
			json_object *o = switches_forwards_json(ctx->store, name);

			if (o) {
				api_reply_json(out, 200, o);
			} else {
				snprintf(err, sizeof(err), "no switch named '%.100s'", name);
				api_error_reply(out, 404, "NotFound", err);
			}
		} else if (!strcmp(method, "POST")) {
			r = switches_forward_add(ctx->store, name, req, err, sizeof(err));
			if (r)
				api_reply_errno(out, r, err);
			else
				api_reply_json(out, 201, switches_forwards_json(ctx->store, name));
		} else {
			api_method_not_allowed(out, method, url, "GET, POST");
		}
		return;
	}
	if (sscanf(sub, "/forwards/%7[a-z]/%5u%n", proto, &port, &n) != 2 || sub[n] ||
	    (strcmp(proto, "tcp") && strcmp(proto, "udp")) || !port || port > 65535) {
		snprintf(err, sizeof(err), "no such resource: %.200s", url);
		api_error_reply(out, 404, "NotFound", err);
		return;
	}
	if (strcmp(method, "DELETE")) {
		api_method_not_allowed(out, method, url, "DELETE");
		return;
	}
	r = switches_forward_delete(ctx->store, name, proto, port, err, sizeof(err));
	if (r) {
		api_reply_errno(out, r, err);
	} else {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "deleted", json_object_new_string(sub + 10));
		api_reply_json(out, 200, o);
	}
}

void api_route_switches(struct api_ctx *ctx, const char *method, const char *url, const char *path,
			json_object *req, struct api_reply *out)
{
	const char *rest = path + strlen("/v1/switches");
	char err[600] = "";
	int r;

	if (!*rest) {
		if (!strcmp(method, "GET")) {
			json_object *o = switches_json(ctx->store);

			if (o)
				api_reply_json(out, 200, o);
			else
				api_error_reply(out, 500, "Internal", "cannot read the switches");
		} else if (!strcmp(method, "POST")) {
			json_object *name = NULL;

			r = switches_create(ctx->store, req, err, sizeof(err));
			if (r) {
				api_reply_errno(out, r, err);
				return;
			}
			json_object_object_get_ex(req, "name", &name);
			reply_switch(ctx, json_object_get_string(name), 201, out);
		} else {
			api_method_not_allowed(out, method, url, "GET, POST");
		}
		return;
	}
	rest++; /* the name: may hold spaces ("Default Switch"), never '/' */
	if (strchr(rest, '/')) {
		route_forwards(ctx, method, url, rest, req, out);
		return;
	}
	if (!*rest) {
		snprintf(err, sizeof(err), "no such resource: %.200s", url);
		api_error_reply(out, 404, "NotFound", err);
		return;
	}
	if (!strcmp(method, "GET")) {
		json_object *o = switches_one_json(ctx->store, rest);

		if (o) {
			api_reply_json(out, 200, o);
		} else {
			snprintf(err, sizeof(err), "no switch named '%.100s'", rest);
			api_error_reply(out, 404, "NotFound", err);
		}
	} else if (!strcmp(method, "PATCH")) {
		r = switches_set(ctx->store, rest, req, err, sizeof(err));
		if (r)
			api_reply_errno(out, r, err);
		else
			reply_switch(ctx, rest, 200, out);
	} else if (!strcmp(method, "DELETE")) {
		r = switches_delete(ctx->store, rest, err, sizeof(err));
		if (r) {
			api_reply_errno(out, r, err);
		} else {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "deleted", json_object_new_string(rest));
			api_reply_json(out, 200, o);
		}
	} else {
		api_method_not_allowed(out, method, url, "GET, PATCH, DELETE");
	}
}
