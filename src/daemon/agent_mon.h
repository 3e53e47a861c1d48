/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The heartbeat of the integration services (docs/integration-services.md): for every
 * running VM, a thread of its own keeps a connection to its keel-agent through the VM's
 * vsock.sock, pings it every second and records the answer. The threads never take keeld's
 * lock while they wait on a guest; the records have a lock of their own (a leaf: nothing is
 * taken while it is held), so `keel vm show` reads them at once, and a hung or hostile guest
 * holds up only its own thread.
 */
#ifndef KEEL_DAEMON_AGENT_MON_H
#define KEEL_DAEMON_AGENT_MON_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/store.h"
#include "daemon/sup.h"

#define AGENT_MON_PERIOD_MS  1000 /* a ping a second */
#define AGENT_MON_TIMEOUT_MS 1000 /* for a connect with hello, and for each ping */
#define AGENT_MON_LOST_MS    3000 /* no answer for this long: "Lost communication" */
/* A connection the worker hangs up (the transport reset of a resume or a restore) is made
 * again at once, but no sooner than this after the last round began (a guest that closes
 * each connection makes no busy loop). */
#define AGENT_MON_REDIAL_MS 100

struct agent_status {
	const char *heartbeat; /* AGENT_HEARTBEAT_OK, _LOST or _NONE (static text) */
	bool connected;	       /* a connection with hello done */
	uint32_t services;     /* what the agent offers (hello), when it was ever reached */
	char agent_version[64];
	char last_error[256];	 /* why the last connect or ping failed, or "" */
	int64_t clock_offset_us; /* the guest's clock minus the host's at the last sample */
	bool clock_sampled;	 /* clock_offset_us is of this connection's agent */
	char addresses[1024];	 /* the guest's IPv4 and IPv6 addresses (KVP), comma-separated */
	/* Whether the guest's vCPUs ran lately (vcpu_progress.h), told when the heartbeat is
	 * not OK: AGENT_VCPUS_RUNNING (the agent is gone, the guest lives), AGENT_VCPUS_STALLED
	 * (none ran for AGENT_MON_LOST_MS: the guest hangs), or NULL (OK, or not known). */
	const char *vcpus;
};

#define AGENT_VCPUS_RUNNING "running"
#define AGENT_VCPUS_STALLED "stalled"

/* Start the manager thread, which follows sup's running VMs four times a second and at once
 * after agent_mon_kick (with keeld's lock, briefly: their paths and, from store, the services
 * turned off). Each VM's
 * thread also keeps the guest's clock (the time service): set at each connection, sampled
 * every 10 s and set again when off by more than 10 ms. 0 or -errno. */
int agent_mon_start(struct sup *sup, struct store *store) __attribute__((warn_unused_result));
/* A VM began to run (a start, a resume, the end of a restore): the manager follows the running
 * VMs at once, not at its next look, so their agents are reached again within the transport
 * reset's own time. Called with keeld's lock (the manager takes it after). */
void agent_mon_kick(void);
/* The heartbeat of VM uuid: "No contact" for a VM the monitor does not follow. */
void agent_mon_status(const char *uuid, struct agent_status *out);
/* Worker pid of VM uuid ended: its vCPU statistics fds are closed now and never asked for
 * again (each holds the worker's VM in the kernel, and with it the VM's kernel threads, which
 * sit in the VM's cgroup: sup calls this before it removes the cgroup). */
void agent_mon_worker_ended(const char *uuid, pid_t pid);

#endif
