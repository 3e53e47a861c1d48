/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Jobs: operations that take longer than a request (Save-VM, checkpoints; later export,
 * migration, image downloads). The request that starts one returns 202 with the job; the
 * job runs on a thread of its own, holding keeld's lock (biglock.h) except while it waits on
 * a worker, and owning its VM (sup_op_begin) until it ends. GET /v1/jobs/ID reports its
 * state, progress and outcome (docs/keeld.md, "Jobs"). Finished jobs are kept for
 * JOBS_KEEP_FINISHED newer ones, then forgotten.
 */
#ifndef KEEL_DAEMON_JOBS_H
#define KEEL_DAEMON_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "daemon/sup.h"

#define JOBS_KEEP_FINISHED 64

enum job_state { JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED };

struct job;

/*
 * The work: runs on the job's thread with keeld's lock held and the VM owned. Returns 0 or
 * a negative errno with a message in err; *result (optional, taken over) is what the job
 * produced (the checkpoint, ...).
 */
typedef int (*job_fn)(void *arg, json_object **result, char *err, size_t errlen);

/*
 * Start a job named operation on the VM (uuid, name), whose operation the calling request
 * holds (sup_op_begin): the job takes a hold of its own and keeps the VM until it ends. A
 * job of the host (uuid and name NULL) holds no VM.
 * progress_file and total, when given, are the file whose size says how far it got and
 * the size it will have. arg is freed with free_arg when the job ends. Called with keeld's
 * lock held. Returns 0 and the job, or -errno (nothing started, free_arg already called).
 */
/* flags: JOB_FINISH_BEFORE_EXIT for a job that leaves its VM half done if keeld exits
 * during it (checkpoints: the VM's worker is restarted at the end), which keeld's exit then
 * waits for however long it takes. */
#define JOB_FINISH_BEFORE_EXIT (1u << 0)
int job_start(struct sup *sup, const char *operation, const char *uuid, const char *name,
	      const char *progress_file, uint64_t total, unsigned flags, job_fn fn, void *arg,
	      void (*free_arg)(void *), struct job **out) __attribute__((warn_unused_result));

/* The job as the API shows it (keeld's lock held); NULL on allocation failure. A failed
 * job's "error" holds its message; job_error gives its errno for the API's error code. */
json_object *job_to_json(struct job *j);
int job_error(const struct job *j);
const char *job_operation(const struct job *j);
enum job_state job_state_of(const struct job *j);
/* Look a job up by id; NULL if unknown (or forgotten). */
struct job *job_find(uint64_t id);
/* Every job kept, oldest first, as a JSON array. */
json_object *jobs_to_json(void);

/*
 * Who asks, for the audit record of a job's end (docs/security.md): api_handle names the
 * caller of the request it serves on its thread (NULL after), and a job started meanwhile
 * keeps it; a job keeld starts by itself has "keeld" (uid of keeld) as its requester.
 */
void jobs_requester(const char *user, long long uid);
/* Called as each job ends, keeld's lock held (the audit record of its outcome). */
typedef void (*job_end_fn)(const struct job *j, void *opaque);
void jobs_on_end(job_end_fn fn, void *opaque);
/* The ended job's id, VM name ("" for a host job), requester and outcome. */
uint64_t job_id(const struct job *j);
const char *job_vm_name(const struct job *j);
const char *job_requester(const struct job *j, long long *uid);
const char *job_message(const struct job *j);

/* The main loop's turn (keeld's lock held): a running job whose percent changed emits a
 * progress event (events_job_progress), at most one every JOBS_PROGRESS_MS per job.
 * jobs_timeout_ms is how long the main loop may sleep before the next (-1: no job has
 * progress to follow). */
#define JOBS_PROGRESS_MS 500
void jobs_tick(void);
int jobs_timeout_ms(void);

/* keeld is exiting: start no new job (job_start fails with -ESHUTDOWN). */
void jobs_refuse(void);
/* Has keeld begun to exit? Any thread, lock held or not: a job that may stop early (an
 * import's copy) looks at it as it goes. */
bool jobs_exiting(void);
/* How many jobs are running (only those with JOB_FINISH_BEFORE_EXIT when must_finish). */
size_t jobs_running(bool must_finish);
/* Those jobs named for a log line: "checkpoint 12 (VM a), backup 13 (VM b)" (cut at len). */
void jobs_running_names(bool must_finish, char *buf, size_t len);

#endif
