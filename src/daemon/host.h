/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's own life cycle (Hyper-V's automatic stop action): when the host shuts down,
 * every running VM is shut down through its power button, saved or turned off as its
 * definition says, within a bounded time, and then keeld exits.
 * contrib/systemd/keel-host-shutdown.service runs `keel host shutdown` when the host shuts
 * down; stopping or restarting keeld any other way leaves the VMs running. The automatic
 * start action is applied when keeld starts (sup_autostart).
 */
#ifndef KEEL_DAEMON_HOST_H
#define KEEL_DAEMON_HOST_H

#include <stdbool.h>

#include <json-c/json.h>

#include "daemon/store.h"
#include "daemon/sup.h"

#define HOST_SHUTDOWN_TIMEOUT_MAX 3600
/* After a host shutdown, keeld exits once a client has read its report, or after this long
 * when no one does. */
#define HOST_EXIT_LINGER_S 60

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

/*
 * keeld's part in the host's shutdown: once host_shutdown has run, keeld has nothing left to
 * do and exits (docs/keeld.md, "The host's life cycle"), after a client has been given the
 * report. host_shutdown_reported says that a reply with the finished job was delivered
 * (called without keeld's lock, from the HTTP layer). With keeld's lock held,
 * host_exit_due says whether keeld should exit now, and with what status (0 when every VM
 * was stopped or saved, 1 when some still ran); host_exit_wait_ms how long the main loop may
 * sleep before asking again (-1: no host shutdown has run).
 */
void host_shutdown_reported(void);
/* A host shutdown has begun: VMs are not started any more (keeld's lock held). */
bool host_shutting_down(void);
bool host_exit_due(int *status);
int host_exit_wait_ms(void);

#endif
