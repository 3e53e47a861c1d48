/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET, PATCH /v1/vms/NAME/disks/N (docs/api.md): one disk of a VM and its storage QoS
 * (Set-VMHardDiskDrive -MaximumIOPS -MinimumIOPS, and a bandwidth limit). A change applies
 * at once to a running or paused VM (its worker's "disk-qos") and is stored for the next
 * start; GET on such a VM adds the device's counters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmdef_device.h"
#include "daemon/api_internal.h"
#include "daemon/sup.h"
#include "lib/log.h"

/* Has the VM a worker that serves disk-qos now? -EBUSY with err while it starts or stops. */
static int has_worker(struct api_ctx *ctx, const struct vm_def *def, bool *yes, char *err,
		      size_t errlen)
{
	struct sup_status st;

	sup_status(ctx->sup, def->uuid, &st);
	*yes = st.state == VM_RUNNING || st.state == VM_PAUSED;
	if (st.state == VM_STARTING || st.state == VM_STOPPING) {
		snprintf(err, errlen, "VM '%s' is %s: change its disks' QoS once it runs or is off",
			 def->name, vm_state_name(st.state));
		return -EBUSY;
	}
	return 0;
}

int api_disk_qos_live(struct api_ctx *ctx, const struct vm_def *def, const struct vm_def *nd,
		      char *err, size_t errlen)
{
	bool live;
	int ret = 0;

	for (unsigned i = 0; i < nd->ndisks && i < def->ndisks && !ret; i++) {
		const struct vm_disk *a = &def->disks[i], *b = &nd->disks[i];

		if (strcmp(a->path, b->path) ||
		    (a->max_iops == b->max_iops && a->max_bw == b->max_bw &&
		     a->min_iops == b->min_iops))
			continue;
		ret = has_worker(ctx, def, &live, err, errlen);
		if (ret || !live)
			return ret;
		ret = sup_disk_qos(ctx->sup, def, i, b, NULL, err, errlen);
	}
	return ret;
}

int api_store_live(struct api_ctx *ctx, const struct vm_def *def, struct vm_def *nd, char *err,
		   size_t errlen)
{
	char why[200];
	int ret;

	nd->revision = def->revision + 1;
	ret = store_vm_update(ctx->store, nd, err, errlen);
	/* Not stored: the worker goes back to what the store has. */
	if (ret && api_disk_qos_live(ctx, nd, def, why, sizeof(why)))
		log_warn("VM %s: its disks' QoS in its worker differs from the store: %s",
			 def->name, why);
	return ret;
}

static json_object *disk_json(const struct vm_def *def, unsigned i, json_object *counters)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "disk", json_object_new_int((int)i));
	vmdef_disk_fields_json(&def->disks[i], o);
	json_object_object_add(o, "max_iops",
			       json_object_new_int64((int64_t)def->disks[i].max_iops));
	json_object_object_add(o, "max_bandwidth",
			       json_object_new_int64((int64_t)def->disks[i].max_bw));
	json_object_object_add(o, "min_iops",
			       json_object_new_int64((int64_t)def->disks[i].min_iops));
	json_object_object_add(o, "qos", counters);
	return o;
}

/* The device's counters of a running VM's disk i (NULL when it has no worker). */
static int counters(struct api_ctx *ctx, const struct vm_def *def, unsigned i, json_object **out,
		    char *err, size_t errlen)
{
	json_object *reply = NULL;
	bool live;
	int ret = has_worker(ctx, def, &live, err, errlen);

	*out = NULL;
	if (ret == -EBUSY)
		return 0; /* starting or stopping: none to show */
	if (ret || !live)
		return ret;
	ret = sup_disk_qos(ctx->sup, def, i, NULL, &reply, err, errlen);
	if (!ret) {
		json_object_object_del(reply, "disk");
		json_object_object_del(reply, "max_iops");
		json_object_object_del(reply, "max_bandwidth");
		json_object_object_del(reply, "min_iops");
		*out = reply;
	}
	return ret;
}

static int do_patch(struct api_ctx *ctx, const struct vm_def *def, unsigned i, json_object *req,
		    struct vm_def *nd, char *err, size_t errlen)
{
	char what[24];
	int ret;

	if (!req || !json_object_is_type(req, json_type_object) ||
	    !json_object_object_length(req)) {
		snprintf(err, errlen, "give at least one of max_iops, max_bandwidth, min_iops");
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "disks[%u]", i);
	ret = vmdef_copy(nd, def);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	json_object_object_foreach(req, key, val)
	{
		if (strcmp(key, "max_iops") && strcmp(key, "max_bandwidth") &&
		    strcmp(key, "min_iops")) {
			snprintf(err, errlen,
				 "'%.40s': only max_iops, max_bandwidth and min_iops of a disk "
				 "change here (keel vm set --disk for the rest)",
				 key);
			return -EINVAL;
		}
		ret = vmdef_disk_field(&nd->disks[i], what, key, val, true, err, errlen);
		if (ret)
			return ret < 0 ? ret : -EINVAL;
	}
	ret = vmdef_disk_qos_check(&nd->disks[i], what, err, errlen);
	ret = ret ?: api_disk_qos_live(ctx, def, nd, err, errlen);
	if (ret)
		return ret;
	ret = api_store_live(ctx, def, nd, err, errlen);
	if (ret)
		return ret;
	log_info("VM %s: disk %u QoS max-iops %llu, max-bandwidth %llu, min-iops %llu "
		 "(revision %llu)",
		 def->name, i, (unsigned long long)nd->disks[i].max_iops,
		 (unsigned long long)nd->disks[i].max_bw, (unsigned long long)nd->disks[i].min_iops,
		 (unsigned long long)nd->revision);
	return 0;
}

void api_vm_disk(struct api_ctx *ctx, const char *method, const char *url, const struct vm_def *def,
		 const char *which, json_object *req, struct api_reply *out)
{
	char err[512] = "", *end;
	unsigned long i = strtoul(which, &end, 10);
	json_object *c = NULL;
	struct vm_def nd;
	int ret;

	if (!*which || *end || which[0] < '0' || which[0] > '9' || i >= def->ndisks) {
		snprintf(err, sizeof(err), "VM '%s' has no disk %.20s (it has %u: 0 to %u)",
			 def->name, which, def->ndisks, def->ndisks ? def->ndisks - 1 : 0);
		api_error_reply(out, 404, "NotFound", err);
		return;
	}
	if (!strcmp(method, "GET")) {
		ret = counters(ctx, def, (unsigned)i, &c, err, sizeof(err));
		if (ret)
			api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
		else
			api_reply_json(out, 200, disk_json(def, (unsigned)i, c));
		return;
	}
	if (strcmp(method, "PATCH")) {
		api_method_not_allowed(out, method, url, "GET, PATCH");
		return;
	}
	vmdef_init(&nd);
	ret = do_patch(ctx, def, (unsigned)i, req, &nd, err, sizeof(err));
	if (!ret)
		ret = counters(ctx, &nd, (unsigned)i, &c, err, sizeof(err));
	if (ret)
		api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
	else
		api_reply_json(out, 200, disk_json(&nd, (unsigned)i, c));
	vmdef_free(&nd);
}
