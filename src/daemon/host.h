/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's own life cycle (Hyper-V's automatic stop action): when the host shuts down,
 * every running VM is shut down through its power button, saved or turned off as its
 * definition says, within a bounded time, before keeld is stopped. keeld's systemd unit
 * runs `keel host shutdown` as its ExecStop (contrib/systemd/keeld.service); stopping or
 * restarting keeld any other way leaves the VMs running. The automatic start action is
 * applied when keeld starts (sup_autostart).
 */
#ifndef KEEL_DAEMON_HOST_H
#define KEEL_DAEMON_HOST_H

#include <json-c/json.h>

#include "daemon/store.h"
#include "daemon/sup.h"

#define HOST_SHUTDOWN_TIMEOUT_MAX 3600

/*
 * Apply every running VM's automatic stop action and wait until no worker runs: a graceful
 * shutdown gets timeout_s seconds, then the VM is turned off; saves run one after another;
 * anything left when the time is up (plus the saves' own time) is turned off. Every VM that
 * was running is marked so, for a `start-if-running` start action. Called with keeld's lock
 * held (let go while it waits). Returns 0 and a report (an array: each VM's name, action
 * and outcome), or -errno with err.
 */
int host_shutdown(struct store *store, struct sup *sup, unsigned timeout_s, json_object **report,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
