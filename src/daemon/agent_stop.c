/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/agent_stop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/agent_mon.h"
#include "daemon/biglock.h"
#include "lib/agent_client.h"

#define AGENT_STOP_TIMEOUT_MS 5000

int agent_vsock_path(struct sup *sup, const char *uuid, char *buf, size_t n)
{
	char dir[400];
	int r = sup_vm_dir(sup, uuid, dir, sizeof(dir));

	if (r)
		return r;
	return (size_t)snprintf(buf, n, "%s/%s", dir, AGENT_VSOCK_SOCKET) >= n ? -ENAMETOOLONG : 0;
}

/* sup_stop_how's button: the agent's shutdown, keeld's lock let go meanwhile. */
struct agent_stop_press {
	const char *vsock;
	char method[64];
};

static int agent_stop_press_button(void *arg, char *err, size_t errlen)
{
	struct agent_stop_press *s = arg;
	struct agent_conn *c = malloc(sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	keeld_unlock();
	r = agent_open(c, s->vsock, AGENT_STOP_TIMEOUT_MS, err, errlen);
	if (!r) {
		agent_begin(c, AP_T_SHUTDOWN);
		ap_put_u32(&c->out, AP_A_MODE, AP_SHUTDOWN_POWEROFF);
		r = agent_call(c, AGENT_STOP_TIMEOUT_MS, err, errlen);
		if (!r)
			snprintf(s->method, sizeof(s->method), "%s",
				 ap_get_str(&c->msg, AP_A_METHOD) ? ap_get_str(&c->msg, AP_A_METHOD)
								  : "?");
		agent_close(c);
	}
	keeld_lock();
	free(c);
	return r;
}

int agent_stop(struct store *store, struct sup *sup, const struct vm_def *def, bool force,
	       unsigned timeout_s, char *how, size_t howlen, char *err, size_t errlen)
{
	struct agent_stop_press s = {NULL, ""};
	struct agent_status st;
	char path[512], why[300] = "";
	uint32_t disabled = 0;
	int r;

	agent_mon_status(def->uuid, &st);
	if (store_integration_disabled(store, def->uuid, &disabled))
		disabled = 0;
	if (!strcmp(st.heartbeat, AGENT_HEARTBEAT_OK) && (st.services & 1u << AP_S_SHUTDOWN) &&
	    !(disabled & 1u << AP_S_SHUTDOWN) &&
	    !agent_vsock_path(sup, def->uuid, path, sizeof(path))) {
		s.vsock = path;
		r = sup_stop_how(sup, def, force, timeout_s, agent_stop_press_button, &s, s.method,
				 err, errlen);
		if (r != -EAGAIN) {
			if (!r && how)
				snprintf(how, howlen, "keel-agent (%s)", s.method);
			return r;
		}
		/* The agent could not be asked: the power button instead, and say why. */
		snprintf(why, sizeof(why), ": the agent failed: %s", err);
	}
	r = sup_stop(sup, def, force, timeout_s, err, errlen);
	if (!r && how)
		snprintf(how, howlen, "ACPI power button%s", why);
	return r;
}
