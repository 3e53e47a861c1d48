/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/events.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "daemon/biglock.h"

struct event {
	uint64_t seq;
	time_t time;
	char kind[8]; /* "vm", "job", "switch" or "disk" */
	char vm[72];
	char vm_id[40];
	char state[24];
	char text[256]; /* the reason, or the job's message */
	uint64_t job;
	bool lun; /* a disk event: job is a SCSI LUN, not an index in disks */
	char operation[32];
	bool progress; /* a running job's progress: percent, and bytes when total is known */
	int percent;
	uint64_t bytes_done, bytes_total;
};

/* A ring of the last EVENTS_KEEP events; seq of the newest is last_seq. Numbers go on from
 * base, the time keeld started (in ms), so that a client's number from an earlier keeld is
 * recognised as such ("lost"), never mistaken for one of this keeld's. */
static struct event ring[EVENTS_KEEP];
static uint64_t base, last_seq;
static pthread_cond_t arrived;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool closing;

static void init_cond(void)
{
	pthread_condattr_t a;

	base = last_seq = (uint64_t)time(NULL) * 1000;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&arrived, &a);
	pthread_condattr_destroy(&a);
}

static struct event *next_event(void)
{
	struct event *e;

	pthread_once(&once, init_cond);
	e = &ring[++last_seq % EVENTS_KEEP];
	memset(e, 0, sizeof(*e));
	e->seq = last_seq;
	e->time = time(NULL);
	return e;
}

void events_vm_state(const char *uuid, const char *name, const char *state, const char *reason)
{
	struct event *e = next_event();

	snprintf(e->kind, sizeof(e->kind), "vm");
	snprintf(e->vm, sizeof(e->vm), "%s", name);
	snprintf(e->vm_id, sizeof(e->vm_id), "%s", uuid);
	snprintf(e->state, sizeof(e->state), "%s", state);
	snprintf(e->text, sizeof(e->text), "%s", reason);
	pthread_cond_broadcast(&arrived);
}

void events_job(uint64_t id, const char *operation, const char *vm, const char *state,
		const char *message)
{
	struct event *e = next_event();

	snprintf(e->kind, sizeof(e->kind), "job");
	snprintf(e->vm, sizeof(e->vm), "%s", vm);
	snprintf(e->state, sizeof(e->state), "%s", state);
	snprintf(e->text, sizeof(e->text), "%s", message);
	snprintf(e->operation, sizeof(e->operation), "%s", operation);
	e->job = id;
	pthread_cond_broadcast(&arrived);
}

void events_job_progress(uint64_t id, const char *operation, const char *vm, int percent,
			 uint64_t bytes_done, uint64_t bytes_total)
{
	struct event *e = next_event();

	snprintf(e->kind, sizeof(e->kind), "job");
	snprintf(e->vm, sizeof(e->vm), "%s", vm);
	snprintf(e->state, sizeof(e->state), "running");
	snprintf(e->operation, sizeof(e->operation), "%s", operation);
	e->job = id;
	e->progress = true;
	e->percent = percent;
	e->bytes_done = bytes_done;
	e->bytes_total = bytes_total;
	pthread_cond_broadcast(&arrived);
}

void events_switch(const char *name, const char *state, const char *reason)
{
	struct event *e = next_event();

	snprintf(e->kind, sizeof(e->kind), "switch");
	snprintf(e->vm, sizeof(e->vm), "%s", name); /* shown as "switch" */
	snprintf(e->state, sizeof(e->state), "%s", state);
	snprintf(e->text, sizeof(e->text), "%s", reason);
	pthread_cond_broadcast(&arrived);
}

void events_disk(const char *uuid, const char *name, struct vm_disk_id disk, const char *state,
		 const char *reason)
{
	struct event *e = next_event();

	snprintf(e->kind, sizeof(e->kind), "disk");
	snprintf(e->vm, sizeof(e->vm), "%s", name);
	snprintf(e->vm_id, sizeof(e->vm_id), "%s", uuid);
	snprintf(e->state, sizeof(e->state), "%s", state);
	snprintf(e->text, sizeof(e->text), "%s", reason);
	e->job = disk.index; /* shown as "disk" or "lun" */
	e->lun = disk.lun;
	pthread_cond_broadcast(&arrived);
}

static json_object *event_json(const struct event *e)
{
	json_object *o = json_object_new_object();
	char t[CLOCK_UTC_LEN];

	if (!o)
		return NULL;
	clock_utc_text(e->time, t);
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)e->seq));
	json_object_object_add(o, "time", json_object_new_string(t));
	json_object_object_add(o, "kind", json_object_new_string(e->kind));
	if (e->vm[0])
		json_object_object_add(o, strcmp(e->kind, "switch") ? "vm" : "switch",
				       json_object_new_string(e->vm));
	if (e->vm_id[0])
		json_object_object_add(o, "vm_id", json_object_new_string(e->vm_id));
	json_object_object_add(o, "state", json_object_new_string(e->state));
	if (!strcmp(e->kind, "job")) {
		json_object_object_add(o, "job", json_object_new_int64((int64_t)e->job));
		json_object_object_add(o, "operation", json_object_new_string(e->operation));
		json_object_object_add(o, "message", json_object_new_string(e->text));
		if (e->progress) {
			json_object *p = json_object_new_object();

			json_object_object_add(p, "percent", json_object_new_int(e->percent));
			if (e->bytes_total) {
				json_object_object_add(
					p, "bytes_done",
					json_object_new_int64((int64_t)e->bytes_done));
				json_object_object_add(
					p, "bytes_total",
					json_object_new_int64((int64_t)e->bytes_total));
			}
			json_object_object_add(o, "progress", p);
		}
	} else {
		if (!strcmp(e->kind, "disk"))
			vmdef_disk_id_json((struct vm_disk_id){e->lun, (unsigned)e->job}, o);
		json_object_object_add(o, "reason", json_object_new_string(e->text));
	}
	return o;
}

json_object *events_since(uint64_t since, unsigned wait_s)
{
	json_object *o, *arr;
	uint64_t first;

	bool lost = false;

	pthread_once(&once, init_cond);
	if (since == 0) {
		since = base; /* from the first event of this keeld */
	} else if (since < base || since > last_seq) {
		since = base; /* a number of another keeld's: what it missed is lost */
		lost = true;
	}
	if (since == last_seq && wait_s && !closing) {
		struct timespec deadline;

		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += wait_s > EVENTS_WAIT_MAX ? EVENTS_WAIT_MAX : wait_s;
		while (since == last_seq && !closing) {
			struct timespec now;

			keeld_wait(&arrived, &deadline);
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > deadline.tv_sec ||
			    (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
				break;
		}
	}
	o = json_object_new_object();
	arr = json_object_new_array();
	if (!o || !arr) {
		json_object_put(o);
		json_object_put(arr);
		return NULL;
	}
	first = last_seq - base > EVENTS_KEEP ? last_seq - EVENTS_KEEP + 1 : base + 1;
	for (uint64_t s = since + 1 > first ? since + 1 : first; s <= last_seq; s++)
		json_object_array_add(arr, event_json(&ring[s % EVENTS_KEEP]));
	json_object_object_add(o, "events", arr);
	json_object_object_add(o, "next", json_object_new_int64((int64_t)last_seq));
	json_object_object_add(o, "lost", json_object_new_boolean(lost || since + 1 < first));
	return o;
}

void events_shutdown(void)
{
	pthread_once(&once, init_cond);
	closing = true;
	pthread_cond_broadcast(&arrived);
}

bool events_closing(void)
{
	return closing;
}
