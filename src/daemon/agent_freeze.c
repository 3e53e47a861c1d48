/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/agent_freeze.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/agent_mon.h"
#include "daemon/agent_stop.h"
#include "daemon/biglock.h"
#include "lib/agent_client.h"
#include "lib/error.h"

unsigned agent_freeze_timeout_ms = AGENT_FREEZE_TIMEOUT_DEFAULT_MS;

#define AGENT_FREEZE_CALL_MS 5000 /* to connect, and for each request's answer */

int agent_freeze_ready(struct store *store, const struct vm_def *def, char *why, size_t whylen)
{
	struct agent_status st;
	uint32_t disabled = 0;

	agent_mon_status(def->uuid, &st);
	if (strcmp(st.heartbeat, AGENT_HEARTBEAT_OK)) {
		error_set(why, whylen, "no integration services in VM '%s' (heartbeat: %s)",
			  def->name, st.heartbeat);
		return -ENOTCONN;
	}
	if (store_integration_disabled(store, def->uuid, &disabled))
		disabled = 0;
	if (disabled & 1u << AP_S_FREEZE) {
		error_set(why, whylen,
			  "the freeze service of VM '%s' is disabled (keel vm integration %s "
			  "enable freeze)",
			  def->name, def->name);
		return -EOPNOTSUPP;
	}
	if (!(st.services & 1u << AP_S_FREEZE)) {
		error_set(why, whylen, "the agent of VM '%s' does not offer the freeze service",
			  def->name);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Whether the agent answered the last request with an error: it did nothing (a freeze that
 * fails is thawed again by the agent), so no thaw is sent, which would end a freeze someone
 * else made (an administrator's fsfreeze). */
static bool agent_refused(const struct agent_conn *c)
{
	return (c->msg.flags & (AP_F_REPLY | AP_F_ERROR)) == (AP_F_REPLY | AP_F_ERROR) &&
	       c->msg.type == c->last_type && c->msg.id == c->last_id;
}

int agent_freeze(struct store *store, struct sup *sup, const struct vm_def *def,
		 struct agent_conn **conn, unsigned *count, char *why, size_t whylen)
{
	struct agent_conn *c;
	uint32_t n = 0;
	char path[512];
	int r;

	*conn = NULL;
	*count = 0;
	r = agent_freeze_ready(store, def, why, whylen);
	if (r)
		return r;
	r = agent_vsock_path(sup, def->uuid, path, sizeof(path));
	if (r) {
		error_set(why, whylen, "VM '%s' has no vsock socket", def->name);
		return r;
	}
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	keeld_unlock();
	r = agent_open(c, path, AGENT_FREEZE_CALL_MS, why, whylen);
	if (!r) {
		agent_begin(c, AP_T_FREEZE);
		ap_put_u32(&c->out, AP_A_TIMEOUT_MS, agent_freeze_timeout_ms);
		r = agent_call(c, AGENT_FREEZE_CALL_MS, why, whylen);
		if (!r && ap_get_u32(&c->msg, AP_A_COUNT, &n)) {
			error_set(why, whylen, "the agent's freeze reply has no count");
			r = -EPROTO;
		}
		if (r && !agent_refused(c)) {
			/* The outcome is unknown (no answer, a broken one): it may have frozen
			 * before the answer was lost, so undo on this connection (its end thaws
			 * too). The agent thaws only what it recorded freezing. */
			agent_begin(c, AP_T_THAW);
			(void)!agent_call(c, AGENT_FREEZE_CALL_MS, NULL, 0);
		}
		if (r)
			agent_close(c);
	}
	keeld_lock();
	if (r) {
		free(c);
		return r;
	}
	*conn = c;
	*count = n;
	return 0;
}

int agent_thaw(struct sup *sup, const struct vm_def *def, struct agent_conn *conn, unsigned *thawed,
	       char *err, size_t errlen)
{
	uint32_t n = 0;
	char path[512];
	int r;

	*thawed = 0;
	keeld_unlock();
	agent_begin(conn, AP_T_THAW);
	r = agent_call(conn, AGENT_FREEZE_CALL_MS, err, errlen);
	if (!r && !ap_get_u32(&conn->msg, AP_A_COUNT, &n))
		*thawed = n;
	agent_close(conn);
	keeld_lock();
	if (r != -EPIPE && r != -ECONNRESET && r != -ETIMEDOUT)
		goto out;
	/* The connection that froze went away with the worker it ran through; the agent
	 * thawed when it saw that, and a thaw on a new one makes sure (thaw_mounts). */
	r = agent_vsock_path(sup, def->uuid, path, sizeof(path));
	if (r)
		goto out;
	keeld_unlock();
	r = agent_open(conn, path, AGENT_FREEZE_CALL_MS, err, errlen);
	if (!r) {
		agent_begin(conn, AP_T_THAW);
		r = agent_call(conn, AGENT_FREEZE_CALL_MS, err, errlen);
		if (!r && !ap_get_u32(&conn->msg, AP_A_COUNT, &n))
			*thawed = n;
		agent_close(conn);
	}
	keeld_lock();
out:
	free(conn);
	return r;
}
