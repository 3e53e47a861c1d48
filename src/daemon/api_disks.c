/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET, PATCH /v1/vms/NAME/disks/N and /v1/vms/NAME/disks/scsi:L (docs/api.md): one disk of a
 * VM, virtio-blk disk N or the disk at LUN L of its SCSI controller, and its storage QoS
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

/* Has disk id QoS limits in nd other than in def (the same file in both)? */
static bool qos_changed(const struct vm_def *def, const struct vm_def *nd, struct vm_disk_id id)
{
	const struct vm_disk *a = vmdef_disk_of(def, id), *b = vmdef_disk_of(nd, id);

	return a && b && !strcmp(a->path, b->path) &&
	       (a->max_iops != b->max_iops || a->max_bw != b->max_bw || a->min_iops != b->min_iops);
}

int api_disk_qos_live(struct api_ctx *ctx, const struct vm_def *def, const struct vm_def *nd,
		      char *err, size_t errlen)
{
	bool live;
	int ret = 0;

	/* The virtio-blk disks, then the SCSI controller's. */
	for (unsigned k = 0; k < VMDEF_DISK_IDS && !ret; k++) {
		struct vm_disk_id id = vmdef_disk_id_at(k);

		if (!qos_changed(def, nd, id))
			continue;
		ret = has_worker(ctx, def, &live, err, errlen);
		if (ret || !live)
			return ret;
		ret = sup_disk_qos(ctx->sup, def, id, vmdef_disk_of(nd, id), NULL, err, errlen);
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

static json_object *disk_json(const struct vm_def *def, struct vm_disk_id id, json_object *counters)
{
	const struct vm_disk *d = vmdef_disk_of(def, id);
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	vmdef_disk_id_json(id, o);
	vmdef_disk_fields_json(d, o);
	json_object_object_add(o, "max_iops", json_object_new_int64((int64_t)d->max_iops));
	json_object_object_add(o, "max_bandwidth", json_object_new_int64((int64_t)d->max_bw));
	json_object_object_add(o, "min_iops", json_object_new_int64((int64_t)d->min_iops));
	json_object_object_add(o, "qos", counters);
	return o;
}

/* The device's counters of a running VM's disk id (NULL when it has no worker). */
static int counters(struct api_ctx *ctx, const struct vm_def *def, struct vm_disk_id id,
		    json_object **out, char *err, size_t errlen)
{
	json_object *reply = NULL;
	bool live;
	int ret = has_worker(ctx, def, &live, err, errlen);

	*out = NULL;
	if (ret == -EBUSY)
		return 0; /* starting or stopping: none to show */
	if (ret || !live)
		return ret;
	ret = sup_disk_qos(ctx->sup, def, id, NULL, &reply, err, errlen);
	if (!ret) {
		json_object_object_del(reply, "disk");
		json_object_object_del(reply, "lun");
		json_object_object_del(reply, "max_iops");
		json_object_object_del(reply, "max_bandwidth");
		json_object_object_del(reply, "min_iops");
		*out = reply;
	}
	return ret;
}

static int do_patch(struct api_ctx *ctx, const struct vm_def *def, struct vm_disk_id id,
		    json_object *req, struct vm_def *nd, char *err, size_t errlen)
{
	char what[24], name[16];
	struct vm_disk *d;
	int ret;

	if (!req || !json_object_is_type(req, json_type_object) ||
	    !json_object_object_length(req)) {
		snprintf(err, errlen, "give at least one of max_iops, max_bandwidth, min_iops");
		return -EINVAL;
	}
	vmdef_disk_id_name(id, name, sizeof(name));
	if (id.lun)
		snprintf(what, sizeof(what), "scsi.luns[%u]", id.index);
	else
		snprintf(what, sizeof(what), "disks[%u]", id.index);
	ret = vmdef_copy(nd, def);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	d = vmdef_disk_of(nd, id);
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
		ret = vmdef_disk_field(d, what, key, val, true, err, errlen);
		if (ret)
			return ret < 0 ? ret : -EINVAL;
	}
	ret = vmdef_disk_qos_check(d, what, err, errlen);
	ret = ret ?: api_disk_qos_live(ctx, def, nd, err, errlen);
	if (ret)
		return ret;
	ret = api_store_live(ctx, def, nd, err, errlen);
	if (ret)
		return ret;
	log_info("VM %s: disk %s QoS max-iops %llu, max-bandwidth %llu, min-iops %llu "
		 "(revision %llu)",
		 def->name, name, (unsigned long long)d->max_iops, (unsigned long long)d->max_bw,
		 (unsigned long long)d->min_iops, (unsigned long long)nd->revision);
	return 0;
}

void api_vm_disk(struct api_ctx *ctx, const char *method, const char *url, const struct vm_def *def,
		 const char *which, json_object *req, struct api_reply *out)
{
	char err[512] = "";
	struct vm_disk_id id;
	json_object *c = NULL;
	struct vm_def nd;
	int ret;

	if (vmdef_disk_id_parse(which, &id) || !vmdef_disk_of(def, id)) {
		snprintf(err, sizeof(err),
			 "VM '%s' has no disk %.20s (its virtio-blk disks are 0 to %d, its SCSI "
			 "disks scsi:LUN; a DVD drive has no QoS)",
			 def->name, which, (int)def->ndisks - 1);
		api_error_reply(out, 404, "NotFound", err);
		return;
	}
	if (!strcmp(method, "GET")) {
		ret = counters(ctx, def, id, &c, err, sizeof(err));
		if (ret)
			api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
		else
			api_reply_json(out, 200, disk_json(def, id, c));
		return;
	}
	if (strcmp(method, "PATCH")) {
		api_method_not_allowed(out, method, url, "GET, PATCH");
		return;
	}
	vmdef_init(&nd);
	ret = do_patch(ctx, def, id, req, &nd, err, sizeof(err));
	if (!ret)
		ret = counters(ctx, &nd, id, &c, err, sizeof(err));
	if (ret)
		api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
	else
		api_reply_json(out, 200, disk_json(&nd, id, c));
	vmdef_free(&nd);
}
