/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Freezing a running guest's file systems through keel-agent, for production checkpoints and
 * backups (docs/integration-services.md, docs/checkpoints.md): the agent FIFREEZEs every
 * block-device file system with a deadline (agent_freeze_timeout_ms) after which it thaws by
 * itself, so a keeld that never comes back never leaves the guest frozen. keeld's lock is let
 * go while the guest answers.
 */
#ifndef KEEL_DAEMON_AGENT_FREEZE_H
#define KEEL_DAEMON_AGENT_FREEZE_H

#include <stddef.h>

#include "config/vmdef.h"
#include "daemon/store.h"
#include "daemon/sup.h"

/* The guest thaws by itself this long after a freeze: keeld --freeze-timeout (seconds),
 * default 10 s, as VSS allows between freeze and thaw. */
#define AGENT_FREEZE_TIMEOUT_DEFAULT_MS 10000
extern unsigned agent_freeze_timeout_ms;

struct agent_conn;

/* Whether agent_freeze can be tried: the heartbeat is OK and the agent offers freeze, which
 * the VM has enabled. 0, or -ENOTCONN / -EOPNOTSUPP with why (as agent_freeze). */
int agent_freeze_ready(struct store *store, const struct vm_def *def, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/*
 * Freeze the guest of def (Running). 0 with *conn the connection that froze it (for
 * agent_thaw) and *count the file systems frozen; else -errno with why saying why, without a
 * freeze: -ENOTCONN (no heartbeat: no agent, or it does not answer), -EOPNOTSUPP (the agent
 * does not offer freeze, or `keel vm integration ... disable freeze`), or the agent's error
 * (then nothing is thawed: the agent undid its own freeze). A thaw is sent only when the
 * outcome is unknown (no answer in time, the connection lost, a malformed reply).
 * With keeld's lock held.
 */
int agent_freeze(struct store *store, struct sup *sup, const struct vm_def *def,
		 struct agent_conn **conn, unsigned *count, char *why, size_t whylen)
	__attribute__((warn_unused_result));
/*
 * End a freeze: a thaw on conn, and when that connection has gone (the worker restarted
 * under it) on a new one; conn is closed and freed. 0 with *thawed the file systems that
 * were still frozen (fewer than the freeze's count: the agent's deadline thawed them
 * first), or -errno with err set (the guest still thaws at its deadline by itself). With
 * keeld's lock held.
 */
int agent_thaw(struct sup *sup, const struct vm_def *def, struct agent_conn *conn, unsigned *thawed,
	       char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
