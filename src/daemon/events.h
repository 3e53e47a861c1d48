/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's event stream: every VM state change and every job's start, progress and end,
 * numbered, kept for the last EVENTS_KEEP. GET /v1/events?since=N&wait=SEC (long-poll)
 * returns the events after N, waiting up to SEC seconds for the first; `keel vm list --watch` and,
 * later, the web manager follow it (docs/keeld.md, "Events"). All functions: keeld's lock held.
 */
#ifndef KEEL_DAEMON_EVENTS_H
#define KEEL_DAEMON_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config/vmdef_device.h"

#define EVENTS_KEEP	1024
#define EVENTS_WAIT_MAX 50 /* seconds a long-poll may wait (under the HTTP idle timeout) */

/* A VM's state (and reason) changed. */
void events_vm_state(const char *uuid, const char *name, const char *state, const char *reason);
/* A job started or ended (state "running", "succeeded" or "failed"). */
void events_job(uint64_t id, const char *operation, const char *vm, const char *state,
		const char *message);
/* A running job's progress changed (jobs_tick, throttled): percent, and bytes_done of
 * bytes_total when the total is known (0: not). */
void events_job_progress(uint64_t id, const char *operation, const char *vm, int percent,
			 uint64_t bytes_done, uint64_t bytes_total);
/* Switch name's state changed ("blocked": its VMs' ports are off until its rules load;
 * "restored"), with the reason. */
void events_switch(const char *name, const char *state, const char *reason);

/* Disk disk of a VM crossed its minimum IOPS (qos_mon.c): state "below-minimum-iops" or
 * "minimum-iops-met", with the reason; the event names it "disk": N or "lun": L. */
void events_disk(const char *uuid, const char *name, struct vm_disk_id disk, const char *state,
		 const char *reason);

/*
 * The events after since (0: from the first of this keeld) as {"events": [...], "next": N,
 * "lost": BOOL}: next is what to pass as since the next time; lost says that events after
 * since were forgotten (more than EVENTS_KEEP happened, or since is from another keeld
 * run): a client then re-reads the state it follows. With none yet, waits up to wait_s
 * seconds (keeld's lock let go) for one. NULL on allocation failure.
 */
json_object *events_since(uint64_t since, unsigned wait_s);
/* keeld is exiting: every long-poll returns now, and none waits any more. */
void events_shutdown(void);
bool events_closing(void);

#endif
