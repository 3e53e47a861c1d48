/* SPDX-License-Identifier: Apache-2.0 */
/*
 * POST /v1/vms/import {"from": DIR, "copy_to"?: POOL, "in_place"?: bool, "new_id"?: bool,
 * "name"?: NAME, "kernel"?: PATH, "initrd"?: PATH}: keel vm import as a job (vm_import.h), whose
 * progress is the bytes of the disks copied and whose result names the VM registered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api_internal.h"
#include "daemon/jobs.h"
#include "daemon/vm_import.h"

struct import_job {
	struct store *st;
	struct sup *sup;
	struct import_plan plan;
};

static int import_job_run(void *arg, json_object **result, char *err, size_t errlen)
{
	struct import_job *a = arg;

	return import_run(a->st, a->sup, &a->plan, result, err, errlen);
}

static void import_job_free(void *arg)
{
	struct import_job *a = arg;

	import_plan_free(&a->plan);
	free(a);
}

/* The body: "from" (required), "copy_to", "name", "kernel", "initrd" (strings), "in_place",
 * "new_id" (booleans). */
static int import_body(json_object *req, struct import_req *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	json_object_object_foreach(req, key, val)
	{
		bool str = !strcmp(key, "from") || !strcmp(key, "copy_to") ||
			   !strcmp(key, "name") || !strcmp(key, "kernel") || !strcmp(key, "initrd");
		bool flag = !strcmp(key, "in_place") || !strcmp(key, "new_id");

		if (!str && !flag) {
			snprintf(err, errlen, "unknown field '%s' for an import", key);
			return -EINVAL;
		}
		if (!json_object_is_type(val, str ? json_type_string : json_type_boolean)) {
			snprintf(err, errlen, "field '%s' must be a %s", key,
				 str ? "string" : "boolean");
			return -EINVAL;
		}
		if (!strcmp(key, "from"))
			r->from = json_object_get_string(val);
		else if (!strcmp(key, "copy_to"))
			r->copy_to = json_object_get_string(val);
		else if (!strcmp(key, "name"))
			r->name = json_object_get_string(val);
		else if (!strcmp(key, "kernel"))
			r->kernel = json_object_get_string(val);
		else if (!strcmp(key, "initrd"))
			r->initrd = json_object_get_string(val);
		else if (!strcmp(key, "in_place"))
			r->in_place = json_object_get_boolean(val);
		else
			r->new_id = json_object_get_boolean(val);
	}
	if (!r->from) {
		snprintf(err, errlen, "field 'from' (the backup's directory) is required");
		return -EINVAL;
	}
	return 0;
}

void api_vm_import(struct api_ctx *ctx, const char *method, const char *url, json_object *req,
		   struct api_reply *out)
{
	char err[1024] = "";
	struct import_job *a = NULL;
	struct import_req r;
	struct job *job = NULL;
	int ret;

	if (strcmp(method, "POST")) {
		api_method_not_allowed(out, method, url, "POST");
		return;
	}
	ret = import_body(req, &r, err, sizeof(err));
	if (!ret && !(a = calloc(1, sizeof(*a))))
		ret = -ENOMEM;
	if (!ret) {
		a->st = ctx->store;
		a->sup = ctx->sup;
		ret = import_prepare(ctx->store, ctx->sup, &r, &a->plan, err, sizeof(err));
		if (ret) {
			import_job_free(a);
			a = NULL;
		}
	}
	if (!ret) {
		/* A job of the host: the VM does not exist until the job registers it. Not one
		 * keeld's exit waits for: killed mid-copy it leaves only its staging directory,
		 * which the next import of the name reports. */
		ret = job_start(ctx->sup, "import", NULL, NULL,
				a->plan.progress[0] ? a->plan.progress : NULL, a->plan.total, 0,
				import_job_run, a, import_job_free, &job);
		if (ret)
			snprintf(err, sizeof(err), "cannot start the import from %s: %s", r.from,
				 ret == -ESHUTDOWN ? "keeld is exiting" : strerror(-ret));
	}
	if (ret)
		api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
	else
		api_reply_json(out, 202, api_job_json(job));
}
