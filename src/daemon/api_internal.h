/* SPDX-License-Identifier: Apache-2.0 */
/* The reply helpers the API's route files share (api.c, api_pools.c, api_log.c). */
#ifndef KEEL_DAEMON_API_INTERNAL_H
#define KEEL_DAEMON_API_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "daemon/api.h"

/* o as the JSON body (o is taken; NULL: out of memory, a 500). */
void api_reply_json(struct api_reply *out, unsigned status, json_object *o);
/* An -errno from a lower layer as an HTTP error with its code (docs/api/openapi.yaml). */
void api_reply_errno(struct api_reply *out, int err, const char *msg);
void api_method_not_allowed(struct api_reply *out, const char *method, const char *url,
			    const char *allowed);
/* Routes under /v1/pools (api_pools.c). path has no trailing slash. */
void api_route_pools(struct api_ctx *ctx, const char *method, const char *url, const char *path,
		     json_object *req, struct api_reply *out);

/* Routes under /v1/switches (api_switches.c). */
void api_route_switches(struct api_ctx *ctx, const char *method, const char *url, const char *path,
			json_object *req, struct api_reply *out);

/* A long-poll's query, since=N&wait=SEC (either may be left out; wait at most wait_max):
 * 0, or -EINVAL with a 400 in out that says since is since_is. query is cut up. */
int api_since_wait(char *query, const char *since_is, unsigned wait_max, uint64_t *since,
		   bool *have_since, uint64_t *wait, struct api_reply *out)
	__attribute__((warn_unused_result));
/* GET /v1/vms/NAME/log[?since=OFFSET[&wait=SEC]] (api_log.c); query is cut up. */
void api_vm_log(struct api_ctx *ctx, const struct vm_def *def, char *query, struct api_reply *out);

/* The integration services (api_agent.c). */
struct vm_def;
/* The services and heartbeat; with detail also the last error and the clock's offset. */
json_object *api_integration_json(struct api_ctx *ctx, const struct vm_def *def, bool detail);
/* GET, POST /v1/vms/NAME/integration. */
void api_vm_integration(struct api_ctx *ctx, const char *method, const char *url,
			const struct vm_def *def, json_object *req, struct api_reply *out);
/* GET, POST /v1/vms/NAME/kvp; GET, DELETE /v1/vms/NAME/kvp/KEY (key NULL: the first two). */
void api_vm_kvp(struct api_ctx *ctx, const char *method, const char *url, const struct vm_def *def,
		const char *key, const char *query, json_object *req, struct api_reply *out);
/* The request field "dvd" of PATCH /v1/vms/NAME, {"lun": L, "path": FILE or null} (api_dvd.c):
 * the medium of nd's DVD drive at SCSI LUN L (without "lun": its first DVD drive) becomes
 * FILE (null: none). 0, or -EINVAL with err saying why (no such LUN, a disk there, no DVD
 * drive, a bad field), which the API answers 400. */
struct vm_def;
int api_dvd_apply(struct vm_def *nd, json_object *dvd, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* GET, PATCH /v1/vms/NAME/disks/N, which the index (api_disks.c). */
void api_vm_disk(struct api_ctx *ctx, const char *method, const char *url, const struct vm_def *def,
		 const char *which, json_object *req, struct api_reply *out);
/* The disks of a running or paused VM whose storage QoS differs from def in nd (the same
 * path at the same index) get nd's in its worker; nothing for a VM that is off; -EBUSY while
 * it starts or stops. err says why. */
int api_disk_qos_live(struct api_ctx *ctx, const struct vm_def *def, const struct vm_def *nd,
		      char *err, size_t errlen) __attribute__((warn_unused_result));
/* Store nd as def's next revision; when that fails, what api_disk_qos_live changed in the
 * worker goes back to def's. */
int api_store_live(struct api_ctx *ctx, const struct vm_def *def, struct vm_def *nd, char *err,
		   size_t errlen) __attribute__((warn_unused_result));
/* A job as the API shows it, with its error's code (api.c). */
struct job;
json_object *api_job_json(struct job *j);
/* POST /v1/vms/NAME/backup {"to": DIR} (api_backup.c): keel vm backup, as a job. */
void api_vm_backup(struct api_ctx *ctx, const char *method, const char *url,
		   const struct vm_def *def, json_object *req, struct api_reply *out);
/* POST /v1/vms/import {"from": DIR, ...} (api_import.c): keel vm import, as a job. */
void api_vm_import(struct api_ctx *ctx, const char *method, const char *url, json_object *req,
		   struct api_reply *out);

#endif
