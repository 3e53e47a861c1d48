/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/jobs.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/biglock.h"
#include "daemon/events.h"
#include "lib/clock.h"
#include "lib/log.h"

struct job {
	uint64_t id;
	char operation[32];
	char op_desc[64]; /* what the VM shows as in progress: "save (job 7)" */
	char uuid[VMDEF_UUID_LEN + 1];
	char name[VMDEF_NAME_MAX + 1];
	enum job_state state;
	int error; /* 0 or the failure's -errno */
	char message[768];
	json_object *result;
	time_t created, finished;
	char progress_file[PATH_MAX];
	uint64_t total;
	uint64_t done_seen; /* the most progress_file has shown: it may go before the job ends */
	int percent_sent;   /* the percent of the last progress event (-1: none yet) */
	uint64_t sent_ms;   /* when it was sent (clock_mono_ms) */
	unsigned flags;	    /* JOB_FINISH_BEFORE_EXIT */
	char requester[64]; /* who asked (jobs_requester), for the audit */
	long long requester_uid;
	struct sup *sup;
	job_fn fn;
	void *arg;
	void (*free_arg)(void *);
};

/* Every job kept, oldest first; with keeld's lock held. */
static struct job **jobs;
static size_t njobs, cap;
/* Ids go on from the time of the first job, so that a client following a job across a
 * keeld restart never meets another job under the same id. */
static uint64_t next_id;
static atomic_bool refusing; /* keeld is exiting */
/* The caller of the request this thread serves (jobs_requester); "" when none. */
static _Thread_local char cur_requester[64];
static _Thread_local long long cur_requester_uid;
static job_end_fn end_fn;
static void *end_opaque;

void jobs_requester(const char *user, long long uid)
{
	snprintf(cur_requester, sizeof(cur_requester), "%s", user ? user : "");
	cur_requester_uid = uid;
}

void jobs_on_end(job_end_fn fn, void *opaque)
{
	end_fn = fn;
	end_opaque = opaque;
}

static void forget_old(void)
{
	size_t finished = 0;

	for (size_t i = 0; i < njobs; i++)
		finished += jobs[i]->state != JOB_RUNNING;
	for (size_t i = 0; i < njobs && finished > JOBS_KEEP_FINISHED;) {
		struct job *j = jobs[i];

		if (j->state == JOB_RUNNING) {
			i++;
			continue;
		}
		json_object_put(j->result);
		free(j);
		memmove(&jobs[i], &jobs[i + 1], (njobs - i - 1) * sizeof(*jobs));
		njobs--;
		finished--;
	}
}

static void *job_thread(void *opaque)
{
	struct job *j = opaque;
	json_object *result = NULL;
	char err[768] = "";
	int r;

	keeld_lock();
	r = j->fn(j->arg, &result, err, sizeof(err));
	j->state = r ? JOB_FAILED : JOB_SUCCEEDED;
	j->error = r;
	j->result = result;
	snprintf(j->message, sizeof(j->message), "%s", r && !err[0] ? strerror(-r) : err);
	j->finished = time(NULL);
	/* Finished jobs are kept in the order they finished, the oldest forgotten first. */
	for (size_t i = 0; i < njobs; i++) {
		if (jobs[i] == j) {
			memmove(&jobs[i], &jobs[i + 1], (njobs - i - 1) * sizeof(*jobs));
			jobs[njobs - 1] = j;
			break;
		}
	}
	if (j->free_arg)
		j->free_arg(j->arg);
	j->arg = NULL;
	log_info("job %" PRIu64 " (%s%s%s) %s%s%s", j->id, j->operation,
		 j->uuid[0] ? " of VM " : "", j->name, r ? "failed" : "done",
		 j->message[0] ? ": " : "", j->message);
	events_job(j->id, j->operation, j->name, r ? "failed" : "succeeded", j->message);
	if (end_fn)
		end_fn(j, end_opaque);
	if (j->uuid[0])
		sup_op_end(j->sup, j->uuid);
	forget_old();
	keeld_unlock();
	return NULL;
}

int job_start(struct sup *sup, const char *operation, const char *uuid, const char *name,
	      const char *progress_file, uint64_t total, unsigned flags, job_fn fn, void *arg,
	      void (*free_arg)(void *), struct job **out)
{
	struct job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t tid;
	char err[256];
	int r;

	if (!j || refusing) {
		free(j);
		free_arg(arg);
		return j ? -ESHUTDOWN : -ENOMEM;
	}
	if (njobs == cap) {
		size_t ncap = cap ? cap * 2 : 16;
		struct job **bigger = realloc(jobs, ncap * sizeof(*bigger));

		if (!bigger) {
			free(j);
			free_arg(arg);
			return -ENOMEM;
		}
		jobs = bigger;
		cap = ncap;
	}
	if (!next_id)
		next_id = (uint64_t)time(NULL) * 1000;
	j->id = next_id++;
	j->flags = flags;
	snprintf(j->operation, sizeof(j->operation), "%s", operation);
	snprintf(j->op_desc, sizeof(j->op_desc), "%s (job %" PRIu64 ")", operation, j->id);
	snprintf(j->uuid, sizeof(j->uuid), "%s", uuid ? uuid : "");
	snprintf(j->name, sizeof(j->name), "%s", name ? name : "");
	snprintf(j->progress_file, sizeof(j->progress_file), "%s",
		 progress_file ? progress_file : "");
	j->total = total;
	if (cur_requester[0]) {
		snprintf(j->requester, sizeof(j->requester), "%s", cur_requester);
		j->requester_uid = cur_requester_uid;
	} else {
		snprintf(j->requester, sizeof(j->requester), "keeld");
		j->requester_uid = (long long)geteuid();
	}
	j->percent_sent = -1;
	j->created = time(NULL);
	j->sup = sup;
	j->fn = fn;
	j->arg = arg;
	j->free_arg = free_arg;
	/* The job's own hold on the VM, taken by the caller's thread (which holds it already)
	 * and handed to the job's thread below. */
	r = uuid ? sup_op_begin(sup, uuid, name, j->op_desc, err, sizeof(err)) : 0;
	if (r) {
		free(j);
		free_arg(arg);
		return r;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&tid, &attr, job_thread, j);
	pthread_attr_destroy(&attr);
	if (r) {
		if (uuid)
			sup_op_end(sup, uuid);
		free(j);
		free_arg(arg);
		return r;
	}
	/* The thread waits for keeld's lock, which the caller holds: hand the VM over first. */
	if (uuid)
		sup_op_handover(sup, uuid, tid, j->op_desc);
	jobs[njobs++] = j;
	events_job(j->id, j->operation, j->name, "running", "");
	*out = j;
	return 0;
}

static const char *state_name(enum job_state s)
{
	return s == JOB_RUNNING ? "running" : s == JOB_SUCCEEDED ? "succeeded" : "failed";
}

static json_object *time_or_null(time_t t)
{
	char buf[CLOCK_UTC_LEN];

	if (!t)
		return NULL;
	clock_utc_text(t, buf);
	return buf[0] ? json_object_new_string(buf) : NULL;
}

/* How many of the job's total bytes are done (its total when it succeeded). */
static uint64_t job_done(struct job *j)
{
	struct stat st;

	if (j->state != JOB_RUNNING)
		return j->state == JOB_SUCCEEDED ? j->total : 0;
	if (!j->progress_file[0])
		return 0;
	/* lstat: the file is in a directory the jailed worker owns while it saves, and a link
	 * there must not make keeld tell the size of a host file. */
	if (lstat(j->progress_file, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size > j->done_seen)
		j->done_seen = (uint64_t)st.st_size;
	return j->done_seen < j->total ? j->done_seen : j->total;
}

void jobs_tick(void)
{
	uint64_t now = (uint64_t)clock_mono_ms();

	for (size_t i = 0; i < njobs; i++) {
		struct job *j = jobs[i];
		uint64_t done;
		int percent;

		if (j->state != JOB_RUNNING || !j->total || !j->progress_file[0] ||
		    (j->percent_sent >= 0 && now - j->sent_ms < JOBS_PROGRESS_MS))
			continue;
		done = job_done(j);
		percent = (int)(done * 100 / j->total);
		if (percent == j->percent_sent || (j->percent_sent < 0 && !percent))
			continue; /* unchanged; 0 % is what the job's start said */
		events_job_progress(j->id, j->operation, j->name, percent, done, j->total);
		j->percent_sent = percent;
		j->sent_ms = now;
	}
}

int jobs_timeout_ms(void)
{
	for (size_t i = 0; i < njobs; i++)
		if (jobs[i]->state == JOB_RUNNING && jobs[i]->total && jobs[i]->progress_file[0])
			return JOBS_PROGRESS_MS / 2;
	return -1;
}

json_object *job_to_json(struct job *j)
{
	json_object *o = json_object_new_object(), *p;
	char href[64];

	if (!o)
		return NULL;
	snprintf(href, sizeof(href), "/v1/jobs/%" PRIu64, j->id);
	json_object_object_add(o, "id", json_object_new_int64((int64_t)j->id));
	json_object_object_add(o, "href", json_object_new_string(href));
	json_object_object_add(o, "operation", json_object_new_string(j->operation));
	if (j->uuid[0]) {
		json_object_object_add(o, "vm", json_object_new_string(j->name));
		json_object_object_add(o, "vm_id", json_object_new_string(j->uuid));
	}
	json_object_object_add(o, "state", json_object_new_string(state_name(j->state)));
	json_object_object_add(o, "created", time_or_null(j->created));
	json_object_object_add(o, "finished", time_or_null(j->finished));
	if (j->total) {
		uint64_t done = job_done(j);

		p = json_object_new_object();
		json_object_object_add(p, "bytes_done", json_object_new_int64((int64_t)done));
		json_object_object_add(p, "bytes_total", json_object_new_int64((int64_t)j->total));
		json_object_object_add(p, "percent",
				       json_object_new_int((int)(done * 100 / j->total)));
		json_object_object_add(o, "progress", p);
	}
	if (j->state == JOB_FAILED) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "message", json_object_new_string(j->message));
		json_object_object_add(o, "error", e);
	}
	if (j->result)
		json_object_object_add(o, "result", json_object_get(j->result));
	return o;
}

uint64_t job_id(const struct job *j)
{
	return j->id;
}

const char *job_vm_name(const struct job *j)
{
	return j->name;
}

const char *job_requester(const struct job *j, long long *uid)
{
	*uid = j->requester_uid;
	return j->requester;
}

const char *job_message(const struct job *j)
{
	return j->message;
}

int job_error(const struct job *j)
{
	return j->error;
}

const char *job_operation(const struct job *j)
{
	return j->operation;
}

enum job_state job_state_of(const struct job *j)
{
	return j->state;
}

struct job *job_find(uint64_t id)
{
	for (size_t i = 0; i < njobs; i++)
		if (jobs[i]->id == id)
			return jobs[i];
	return NULL;
}

json_object *jobs_to_json(void)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < njobs; i++)
		json_object_array_add(a, job_to_json(jobs[i]));
	return a;
}

void jobs_refuse(void)
{
	refusing = true;
}

bool jobs_exiting(void)
{
	return refusing;
}

size_t jobs_running(bool must_finish)
{
	size_t running = 0;

	for (size_t i = 0; i < njobs; i++)
		running += jobs[i]->state == JOB_RUNNING &&
			   (!must_finish || (jobs[i]->flags & JOB_FINISH_BEFORE_EXIT));
	return running;
}

void jobs_running_names(bool must_finish, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < njobs && n < len; i++) {
		const struct job *j = jobs[i];
		int w;

		if (j->state != JOB_RUNNING ||
		    (must_finish && !(j->flags & JOB_FINISH_BEFORE_EXIT)))
			continue;
		w = snprintf(buf + n, len - n, "%s%s %llu%s%s%s", n ? ", " : "", j->operation,
			     (unsigned long long)j->id, j->name[0] ? " (VM " : "", j->name,
			     j->name[0] ? ")" : "");
		if (w < 0)
			break;
		n += (size_t)w;
	}
}
