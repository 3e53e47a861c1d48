/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stopping a VM the way its guest takes best (an operation: it decides, the supervisor
 * carries out): through keel-agent's shutdown service when the agent answers its heartbeat
 * and the VM has the service on, else (or when the agent's request fails) the ACPI power
 * button. Used by `keel vm stop` and by the host shutdown's shut-down action.
 */
#ifndef KEEL_DAEMON_AGENT_STOP_H
#define KEEL_DAEMON_AGENT_STOP_H

#include <stdbool.h>
#include <stddef.h>

#include "config/vmdef.h"
#include "daemon/store.h"
#include "daemon/sup.h"

/* The VM's vsock socket (STATE_DIR/vms/UUID/vsock.sock) into buf. 0 or -errno. */
int agent_vsock_path(struct sup *sup, const char *uuid, char *buf, size_t n)
	__attribute__((warn_unused_result));

/* sup_stop through the agent or the power button; how (when not NULL) says which:
 * "keel-agent (systemctl poweroff)", or "ACPI power button" with why the agent was not
 * used when its request failed. With keeld's lock held; let go while the agent answers. */
int agent_stop(struct store *store, struct sup *sup, const struct vm_def *def, bool force,
	       unsigned timeout_s, char *how, size_t howlen, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
