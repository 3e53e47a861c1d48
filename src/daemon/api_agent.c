/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The integration services in the API (docs/integration-services.md): a VM's services and
 * heartbeat (GET/POST /v1/vms/NAME/integration), key-value exchange (/v1/vms/NAME/kvp[/KEY])
 * and a stop through the agent. Requests to the agent are made on a connection of their own,
 * with keeld's lock let go while the guest answers, so a slow guest holds up only its request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/agent_mon.h"
#include "daemon/agent_stop.h"
#include "daemon/api_internal.h"
#include "daemon/biglock.h"
#include "lib/agent_client.h"
#include "lib/clock.h"

#define API_AGENT_TIMEOUT_MS 5000
/* A list's bounds: the agent keeps at most 1024 pairs in a pool and a few dozen facts; a guest
 * that sends MORE without end must not grow keeld's memory or hold the request forever. */
#define API_KVP_LIST_MAX_PAIRS 4096
#define API_KVP_LIST_MAX_MS    30000

static const char *const api_pool_names[AP_POOL_COUNT] = {"auto", "guest", "host"};

json_object *api_integration_json(struct api_ctx *ctx, const struct vm_def *def, bool detail)
{
	json_object *o = json_object_new_object(), *svcs = json_object_new_array();
	struct agent_status st;
	uint32_t disabled = 0;

	if (!o || !svcs) {
		json_object_put(o);
		json_object_put(svcs);
		return NULL;
	}
	agent_mon_status(def->uuid, &st);
	if (store_integration_disabled(ctx->store, def->uuid, &disabled))
		disabled = 0;
	json_object_object_add(o, "heartbeat", json_object_new_string(st.heartbeat));
	json_object_object_add(o, "agent_version",
			       st.agent_version[0] ? json_object_new_string(st.agent_version)
						   : NULL);
	/* With the heartbeat not OK: whether the guest's vCPUs still run ("agent gone") or not
	 * ("guest hung"). */
	json_object_object_add(o, "vcpus", st.vcpus ? json_object_new_string(st.vcpus) : NULL);
	/* Hyper-V's IPAddresses of Get-VMNetworkAdapter, from the guest's KVP facts. */
	{
		json_object *addrs = json_object_new_array();
		char *save = NULL;

		for (char *a = strtok_r(st.addresses, ",", &save); a && addrs;
		     a = strtok_r(NULL, ",", &save))
			json_object_array_add(addrs, json_object_new_string(a));
		json_object_object_add(o, "addresses", addrs);
	}
	/* What changes from one second to the next is in GET .../integration only, so that a
	 * VM's own JSON stays the same while nothing happens to it. */
	if (detail) {
		json_object_object_add(
			o, "clock_offset_ms",
			st.connected && st.clock_sampled
				? json_object_new_double((double)st.clock_offset_us / 1000)
				: NULL);
		json_object_object_add(o, "last_error",
				       st.last_error[0] ? json_object_new_string(st.last_error)
							: NULL);
	}
	for (unsigned s = 0; s < AP_S_COUNT; s++) {
		json_object *one = json_object_new_object();

		json_object_object_add(one, "name", json_object_new_string(ap_service_name(s)));
		json_object_object_add(one, "enabled",
				       json_object_new_boolean(!(disabled & 1u << s)));
		/* Hyper-V's PrimaryStatusDescription: whether the guest runs it. */
		json_object_object_add(one, "running",
				       json_object_new_boolean(st.connected &&
							       (st.services & 1u << s) &&
							       !(disabled & 1u << s)));
		json_object_array_add(svcs, one);
	}
	json_object_object_add(o, "services", svcs);
	return o;
}

/* A connection to the VM's agent for service, or an error reply in out (NULL). Called with
 * keeld's lock held; let go while connecting. */
static struct agent_conn *api_agent_open(struct api_ctx *ctx, const struct vm_def *def,
					 unsigned service, struct api_reply *out)
{
	struct agent_conn *c;
	struct sup_status st;
	char path[512], err[400], msg[600];
	uint32_t disabled = 0;
	int r;

	sup_status(ctx->sup, def->uuid, &st);
	if (st.state != VM_RUNNING) {
		snprintf(msg, sizeof(msg),
			 "VM '%s' is %s: its integration services need it Running", def->name,
			 vm_state_name(st.state));
		api_error_reply(out, 409, "InvalidState", msg);
		return NULL;
	}
	if (!store_integration_disabled(ctx->store, def->uuid, &disabled) &&
	    (disabled & 1u << service)) {
		snprintf(
			msg, sizeof(msg),
			"the %s service is disabled for VM '%s' (keel vm integration %s enable %s)",
			ap_service_name(service), def->name, def->name, ap_service_name(service));
		api_error_reply(out, 409, "ServiceDisabled", msg);
		return NULL;
	}
	if (agent_vsock_path(ctx->sup, def->uuid, path, sizeof(path)) ||
	    !(c = malloc(sizeof(*c)))) {
		api_error_reply(out, 500, "Internal", "cannot reach the VM's vsock socket");
		return NULL;
	}
	keeld_unlock();
	r = agent_open(c, path, API_AGENT_TIMEOUT_MS, err, sizeof(err));
	keeld_lock();
	if (r) {
		snprintf(msg, sizeof(msg), "no integration services in VM '%s': %s", def->name,
			 err);
		api_error_reply(out, 503, "NoIntegrationServices", msg);
		free(c);
		return NULL;
	}
	if (!(c->services & 1u << service)) {
		snprintf(msg, sizeof(msg), "the agent in VM '%s' does not offer the %s service",
			 def->name, ap_service_name(service));
		api_error_reply(out, 409, "ServiceDisabled", msg);
		agent_close(c);
		free(c);
		return NULL;
	}
	return c;
}

static void api_agent_done(struct agent_conn *c)
{
	agent_close(c);
	free(c);
}

/* An agent's error as an API error. */
static void api_agent_error(struct api_reply *out, const struct vm_def *def, int r, const char *err)
{
	char msg[800];

	snprintf(msg, sizeof(msg), "VM '%s': %.600s", def->name, err);
	switch (r) {
	case -ENOENT:
		api_error_reply(out, 404, "NotFound", msg);
		break;
	case -EINVAL:
	case -EMSGSIZE:
		api_error_reply(out, 400, "InvalidArgument", msg);
		break;
	case -ENOTSUP:
		api_error_reply(out, 409, "ServiceDisabled", msg);
		break;
	default:
		api_error_reply(out, 502, "AgentError", msg);
	}
}

/* The call, without keeld's lock. */
static int api_agent_call(struct agent_conn *c, char *err, size_t errlen)
{
	int r;

	keeld_unlock();
	r = agent_call(c, API_AGENT_TIMEOUT_MS, err, errlen);
	keeld_lock();
	return r;
}

/* Every pair of a pool into obj (kvp-list's replies, MORE until the last). */
static int api_kvp_list_pool(struct agent_conn *c, unsigned pool, json_object *obj, char *err,
			     size_t errlen)
{
	long long deadline = clock_mono_ms() + API_KVP_LIST_MAX_MS;
	size_t total = 0;
	int r;

	agent_begin(c, AP_T_KVP_LIST);
	ap_put_u32(&c->out, AP_A_POOL, pool);
	r = api_agent_call(c, err, errlen);
	for (;;) {
		long long left;
		size_t n;

		if (r)
			return r;
		n = ap_count(&c->msg, AP_A_KEY);
		if (n != ap_count(&c->msg, AP_A_VALUE)) {
			snprintf(err, errlen, "the agent's list pairs %zu keys with %zu values", n,
				 ap_count(&c->msg, AP_A_VALUE));
			return -EPROTO;
		}
		total += n;
		if (total > API_KVP_LIST_MAX_PAIRS) {
			snprintf(err, errlen, "the agent's list has more than %d pairs",
				 API_KVP_LIST_MAX_PAIRS);
			return -EPROTO;
		}
		for (size_t i = 0; i < n; i++)
			json_object_object_add(
				obj, (const char *)ap_get_nth(&c->msg, AP_A_KEY, i)->val,
				json_object_new_string(
					(const char *)ap_get_nth(&c->msg, AP_A_VALUE, i)->val));
		if (!(c->msg.flags & AP_F_MORE))
			return 0;
		left = deadline - clock_mono_ms();
		if (left <= 0) {
			snprintf(err, errlen, "the agent's list took more than %d s",
				 API_KVP_LIST_MAX_MS / 1000);
			return -ETIMEDOUT;
		}
		keeld_unlock();
		r = agent_recv(c, left < API_AGENT_TIMEOUT_MS ? (int)left : API_AGENT_TIMEOUT_MS,
			       err, errlen);
		keeld_lock();
		if (!r && (c->msg.id != c->last_id || !(c->msg.flags & AP_F_REPLY))) {
			snprintf(err, errlen, "the agent mixed another frame into a list");
			r = -EPROTO;
		}
		if (!r && (c->msg.flags & AP_F_ERROR)) {
			snprintf(err, errlen, "the agent failed in the middle of a list");
			r = -EIO;
		}
	}
}

static int api_pool_by_name(const char *s)
{
	for (int p = 0; p < AP_POOL_COUNT; p++)
		if (!strcmp(s, api_pool_names[p]))
			return p;
	return -1;
}

void api_vm_kvp(struct api_ctx *ctx, const char *method, const char *url, const struct vm_def *def,
		const char *key, const char *query, json_object *req, struct api_reply *out)
{
	struct agent_conn *c;
	json_object *o, *k = NULL, *v = NULL;
	char err[600];
	int pool = -1, r = 0;

	if (query && query[0]) {
		if (strncmp(query, "pool=", 5) || (pool = api_pool_by_name(query + 5)) < 0) {
			snprintf(err, sizeof(err),
				 "unknown query '%.100s': only pool=auto, guest or host", query);
			api_error_reply(out, 400, "InvalidArgument", err);
			return;
		}
	}
	if (!key && !strcmp(method, "POST")) {
		const char *bad = NULL;

		if (!json_object_object_get_ex(req, "key", &k) ||
		    !json_object_is_type(k, json_type_string) ||
		    !json_object_object_get_ex(req, "value", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    json_object_object_length(req) != 2)
			bad = "a pair is {\"key\": STRING, \"value\": STRING}";
		else if (!json_object_get_string_len(k) ||
			 json_object_get_string_len(k) >= AP_MAX_KEY)
			bad = "a key is 1 to 511 bytes";
		else if (json_object_get_string_len(v) >= AP_MAX_VALUE)
			bad = "a value is at most 2047 bytes";
		else if (strlen(json_object_get_string(k)) !=
				 (size_t)json_object_get_string_len(k) ||
			 strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
			bad = "a key or value may not hold a NUL";
		if (bad) {
			api_error_reply(out, 400, "InvalidArgument", bad);
			return;
		}
	} else if (key ? strcmp(method, "GET") && strcmp(method, "DELETE")
		       : strcmp(method, "GET")) {
		api_method_not_allowed(out, method, url, key ? "GET, DELETE" : "GET, POST");
		return;
	}
	c = api_agent_open(ctx, def, AP_S_KVP, out);
	if (!c)
		return;
	o = json_object_new_object();
	if (!key && !strcmp(method, "POST")) {
		agent_begin(c, AP_T_KVP_SET);
		ap_put_u32(&c->out, AP_A_POOL, AP_POOL_HOST);
		ap_put_str(&c->out, AP_A_KEY, json_object_get_string(k));
		ap_put_str(&c->out, AP_A_VALUE, json_object_get_string(v));
		r = api_agent_call(c, err, sizeof(err));
		json_object_object_add(o, "pool", json_object_new_string("host"));
		json_object_object_add(o, "key", json_object_get(k));
		json_object_object_add(o, "value", json_object_get(v));
	} else if (!key) {
		for (int p = 0; p < AP_POOL_COUNT && !r; p++) {
			json_object *pairs;

			if (pool >= 0 && p != pool)
				continue;
			pairs = json_object_new_object();
			json_object_object_add(o, api_pool_names[p], pairs);
			r = api_kvp_list_pool(c, (unsigned)p, pairs, err, sizeof(err));
		}
	} else if (!strcmp(method, "DELETE")) {
		agent_begin(c, AP_T_KVP_DELETE);
		ap_put_u32(&c->out, AP_A_POOL, AP_POOL_HOST);
		ap_put_str(&c->out, AP_A_KEY, key);
		r = api_agent_call(c, err, sizeof(err));
		json_object_object_add(o, "deleted", json_object_new_string(key));
	} else {
		/* Without a pool: the guest's own pairs, then its facts, then the host's. */
		static const int order[] = {AP_POOL_GUEST, AP_POOL_AUTO, AP_POOL_HOST};

		r = -ENOENT;
		for (size_t i = 0; i < 3 && r == -ENOENT; i++) {
			if (pool >= 0 && order[i] != pool)
				continue;
			agent_begin(c, AP_T_KVP_GET);
			ap_put_u32(&c->out, AP_A_POOL, (uint32_t)order[i]);
			ap_put_str(&c->out, AP_A_KEY, key);
			r = api_agent_call(c, err, sizeof(err));
			if (!r) {
				const char *val = ap_get_str(&c->msg, AP_A_VALUE);

				json_object_object_add(
					o, "pool",
					json_object_new_string(api_pool_names[order[i]]));
				json_object_object_add(o, "key", json_object_new_string(key));
				json_object_object_add(o, "value",
						       json_object_new_string(val ? val : ""));
			}
		}
	}
	if (c->out.err) {
		r = c->out.err;
		snprintf(err, sizeof(err), "the key or value is not UTF-8 or too long");
	}
	api_agent_done(c);
	if (r) {
		json_object_put(o);
		api_agent_error(out, def, r, err);
		return;
	}
	api_reply_json(out, strcmp(method, "POST") ? 200 : 201, o);
}

void api_vm_integration(struct api_ctx *ctx, const char *method, const char *url,
			const struct vm_def *def, json_object *req, struct api_reply *out)
{
	json_object *svc = NULL, *en = NULL;
	int r;

	if (!strcmp(method, "GET")) {
		api_reply_json(out, 200, api_integration_json(ctx, def, true));
		return;
	}
	if (strcmp(method, "POST")) {
		api_method_not_allowed(out, method, url, "GET, POST");
		return;
	}
	if (!json_object_object_get_ex(req, "service", &svc) ||
	    !json_object_is_type(svc, json_type_string) ||
	    !json_object_object_get_ex(req, "enabled", &en) ||
	    !json_object_is_type(en, json_type_boolean) || json_object_object_length(req) != 2) {
		api_error_reply(out, 400, "InvalidArgument",
				"a change is {\"service\": NAME, \"enabled\": BOOLEAN}");
		return;
	}
	if (ap_service_by_name(json_object_get_string(svc)) < 0) {
		char msg[300];

		snprintf(msg, sizeof(msg),
			 "unknown service '%.60s': heartbeat, shutdown, time, kvp, exec, copy or "
			 "freeze",
			 json_object_get_string(svc));
		api_error_reply(out, 400, "InvalidArgument", msg);
		return;
	}
	r = store_integration_set(ctx->store, def->uuid, json_object_get_string(svc),
				  json_object_get_boolean(en));
	if (r) {
		api_reply_errno(out, r, "cannot record the change in the store");
		return;
	}
	api_reply_json(out, 200, api_integration_json(ctx, def, true));
}
