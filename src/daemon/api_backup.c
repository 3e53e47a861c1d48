/* SPDX-License-Identifier: Apache-2.0 */
/*
 * POST /v1/vms/NAME/backup {"to": DIR}: keel vm backup as a job (backup.h), whose progress is
 * the bytes of the disks copied and whose result says where the copy is and how consistent.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api_internal.h"
#include "daemon/backup.h"
#include "daemon/jobs.h"

struct backup_job {
	struct ckpt_ctx cc;
	struct vm_def def;
	char *to;
};

static int backup_job_run(void *arg, json_object **result, char *err, size_t errlen)
{
	struct backup_job *a = arg;

	return backup_run(&a->cc, &a->def, a->to, result, err, errlen);
}

static void backup_job_free(void *arg)
{
	struct backup_job *a = arg;

	vmdef_free(&a->def);
	free(a->to);
	free(a);
}

/* The body's one field, "to" (a string). */
static int backup_body(json_object *req, const char **to, char *err, size_t errlen)
{
	*to = NULL;
	json_object_object_foreach(req, key, val)
	{
		if (strcmp(key, "to")) {
			snprintf(err, errlen, "unknown field '%s' for a backup", key);
			return -EINVAL;
		}
		if (!json_object_is_type(val, json_type_string)) {
			snprintf(err, errlen, "field 'to' must be a string");
			return -EINVAL;
		}
		*to = json_object_get_string(val);
	}
	if (!*to) {
		snprintf(err, errlen,
			 "field 'to' (the directory to put the backup in) is required");
		return -EINVAL;
	}
	return 0;
}

void api_vm_backup(struct api_ctx *ctx, const char *method, const char *url,
		   const struct vm_def *def, json_object *req, struct api_reply *out)
{
	struct ckpt_ctx cc = {ctx->store, ctx->sup};
	char err[768] = "", vmdir[PATH_MAX], progress[PATH_MAX + 32];
	struct backup_job *a = NULL;
	struct job *job = NULL;
	const char *to = NULL;
	uint64_t total = 0;
	int ret;

	if (strcmp(method, "POST")) {
		api_method_not_allowed(out, method, url, "POST");
		return;
	}
	ret = backup_body(req, &to, err, sizeof(err));
	if (!ret)
		ret = backup_check(&cc, def, to, &total, err, sizeof(err));
	if (!ret)
		ret = sup_vm_dir(ctx->sup, def->uuid, vmdir, sizeof(vmdir));
	if (!ret && !(a = calloc(1, sizeof(*a))))
		ret = -ENOMEM;
	if (!ret) {
		a->cc = cc;
		ret = vmdef_copy(&a->def, def);
		if (ret) {
			free(a);
		} else if (!(a->to = strdup(to))) {
			backup_job_free(a);
			ret = -ENOMEM;
		}
	}
	if (!ret) {
		snprintf(progress, sizeof(progress), "%s/%s", vmdir, BACKUP_PROGRESS_FILE);
		ret = job_start(ctx->sup, "backup", def->uuid, def->name, progress, total,
				JOB_FINISH_BEFORE_EXIT, backup_job_run, a, backup_job_free, &job);
		if (ret)
			snprintf(err, sizeof(err), "cannot start the backup of VM '%s': %s",
				 def->name,
				 ret == -ESHUTDOWN ? "keeld is exiting" : strerror(-ret));
	}
	if (ret)
		api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
	else
		api_reply_json(out, 202, api_job_json(job));
}
