/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/api.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/agent_stop.h"
#include "daemon/api_internal.h"
#include "daemon/biglock.h"
#include "daemon/ckpt.h"
#include "daemon/disk_policy.h"
#include "daemon/events.h"
#include "daemon/host.h"
#include "daemon/jobs.h"
#include "daemon/qos_mon.h"
#include "daemon/switch.h"
#include "daemon/vm_macs.h"
#include "daemon/vm_nethotplug.h"
#include "daemon/vm_netmove.h"
#include "lib/log.h"
#include "lib/parse.h"

#define JSON_TYPE "application/json"

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void api_reply_json(struct api_reply *out, unsigned status, json_object *o)
{
	const char *s = o ? json_object_to_json_string_ext(
				    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
			  : NULL;

	out->status = status;
	out->content_type = JSON_TYPE;
	out->body = dup_or_null(s);
	if (!out->body) {
		out->status = 500;
		out->body =
			strdup("{\"error\":{\"code\":\"Internal\",\"message\":\"out of memory\"}}");
	}
	out->len = out->body ? strlen(out->body) : 0;
	/* A JSON body ends with a newline, so that `curl` output reads well. */
	if (out->body) {
		char *nl = realloc(out->body, out->len + 2);
		if (nl) {
			nl[out->len++] = '\n';
			nl[out->len] = '\0';
			out->body = nl;
		}
	}
	json_object_put(o);
}

void api_error_reply(struct api_reply *out, unsigned status, const char *code, const char *msg)
{
	json_object *o = json_object_new_object();
	json_object *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	api_reply_json(out, status, o);
}

void api_reply_free(struct api_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

/* Map an -errno from a lower layer onto an HTTP error. */
/* The HTTP status and error code of an operation's -errno (docs/api/openapi.yaml). */
static const char *errno_code(int err, unsigned *status)
{
	switch (err) {
	case -EINVAL:
		*status = 400;
		return "InvalidArgument";
	case -ENOENT:
		*status = 404;
		return "NotFound";
	case -EBUSY:
		*status = 409;
		return "InvalidState";
	case -EEXIST:
		*status = 409;
		return "AlreadyExists";
	case -ESTALE:
		*status = 409;
		return "Conflict";
	case -ENOEXEC:
		*status = 500;
		return "StartFailed";
	case -ENAMETOOLONG:
		*status = 500;
		return "Configuration";
	case -EMEDIUMTYPE:
		*status = 409;
		return "UnsupportedDisk";
	case -EDQUOT:
		*status = 507;
		return "InsufficientMemory";
	case -CKPT_ENOPRODUCTION: /* only ckpt.c's: -EOPNOTSUPP from elsewhere is Internal */
		*status = 409;
		return "ProductionCheckpointUnavailable";
	default:
		*status = 500;
		return "Internal";
	}
}

void api_reply_errno(struct api_reply *out, int err, const char *msg)
{
	unsigned status;
	const char *code = errno_code(err, &status);

	api_error_reply(out, status, code, msg);
}

/* Parse a request body: empty means an empty object. Refuses trailing garbage. */
static json_object *parse_body(const char *body, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok;
	json_object *o;
	size_t used;

	while (len && (body[len - 1] == ' ' || body[len - 1] == '\n' || body[len - 1] == '\r' ||
		       body[len - 1] == '\t'))
		len--;
	if (len == 0)
		return json_object_new_object();
	tok = json_tokener_new_ex(32);
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, body, (int)len);
	used = tok->char_offset;
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		snprintf(err, errlen, "malformed JSON in the request body at byte %zu: %s", used,
			 e == json_tokener_continue ? "unexpected end of input"
						    : json_tokener_error_desc(e));
		json_object_put(o);
		o = NULL;
	} else if (used != len) {
		snprintf(err, errlen, "malformed JSON in the request body: extra data at byte %zu",
			 used);
		json_object_put(o);
		o = NULL;
	} else if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "the request body must be a JSON object");
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static json_object *vm_json(struct api_ctx *ctx, const struct vm_def *def)
{
	json_object *o = vmdef_to_json(def);
	struct sup_status st;

	if (!o)
		return NULL;
	sup_status(ctx->sup, def->uuid, &st);
	json_object_object_add(o, "state", json_object_new_string(vm_state_name(st.state)));
	json_object_object_add(o, "state_reason", json_object_new_string(st.reason));
	json_object_object_add(o, "damaged",
			       def->damaged[0] ? json_object_new_string(def->damaged) : NULL);
	json_object_object_add(o, "pid", st.pid > 0 ? json_object_new_int(st.pid) : NULL);
	json_object_object_add(o, "console_socket",
			       st.console[0] ? json_object_new_string(st.console) : NULL);
	/* The disks with a minimum IOPS that their worker last found below it (qos_mon.h): a
	 * field of its own, so that the disks read back as a description. */
	{
		json_object *below = json_object_new_array();
		uint64_t secs;

		for (unsigned i = 0; below && i < VMDEF_DISK_IDS; i++) {
			struct vm_disk_id id = vmdef_disk_id_at(i);
			const struct vm_disk *disk = vmdef_disk_of(def, id);
			json_object *d;

			if (!disk || !disk->min_iops || !qos_mon_below_min(def->uuid, id, &secs))
				continue;
			d = json_object_new_object();
			vmdef_disk_id_json(id, d);
			json_object_object_add(d, "seconds", json_object_new_int64((int64_t)secs));
			json_object_array_add(below, d);
		}
		json_object_object_add(o, "disks_below_min_iops", below);
	}
	/* Each adapter on a switch: the guest's addresses from the switch's DHCP leases and
	 * the host's neighbour table, and where each came from. */
	{
		json_object *nets = NULL, *sources, *n;

		json_object_object_get_ex(o, "nets", &nets);
		for (unsigned i = 0; i < def->nnics && i < json_object_array_length(nets); i++)
			if (def->nics[i].sw[0]) {
				n = json_object_array_get_idx(nets, i);
				json_object_object_add(n, "addresses",
						       switches_nic_addresses(ctx->store,
									      &def->nics[i],
									      &sources));
				json_object_object_add(n, "address_sources", sources);
			}
	}
	/* Hyper-V's ParentCheckpointName: the checkpoint the VM's current state comes from. */
	{
		struct ckpt_ctx cc = {ctx->store, ctx->sup};
		char name[CKPT_NAME_MAX + 1];

		json_object_object_add(o, "parent_checkpoint",
				       ckpt_now_parent(&cc, def->uuid, name, sizeof(name)) == 0
					       ? json_object_new_string(name)
					       : NULL);
	}
	/* The integration services (api_agent.c); the agent's socket while a worker runs. */
	json_object_object_add(o, "integration", api_integration_json(ctx, def, false));
	{
		char vsock[512];

		json_object_object_add(o, "agent_socket",
				       st.console[0] && !agent_vsock_path(ctx->sup, def->uuid,
									  vsock, sizeof(vsock))
					       ? json_object_new_string(vsock)
					       : NULL);
	}
	return o;
}

static bool is_off(struct api_ctx *ctx, const char *uuid, struct sup_status *st)
{
	sup_status(ctx->sup, uuid, st);
	return st->state == VM_OFF || st->state == VM_CRASHED || st->state == VM_SAVED;
}

static void do_list(struct api_ctx *ctx, struct api_reply *out)
{
	struct vm_def *defs = NULL;
	json_object *arr;
	size_t n = 0;

	if (store_vm_list(ctx->store, &defs, &n)) {
		api_error_reply(out, 500, "Internal", "cannot read the VM list from the store");
		return;
	}
	arr = json_object_new_array();
	for (size_t i = 0; arr && i < n; i++)
		json_object_array_add(arr, vm_json(ctx, &defs[i]));
	store_vm_list_free(defs, n);
	api_reply_json(out, 200, arr);
}

/*
 * A Generation 2 VM's UEFI variable store is keeld's, in the VM's directory
 * (sup_nvram_path): a request that leaves "nvram" out or null gets that place, one that
 * names another is refused. Another generation has none (a request naming one is left for
 * vmdef_check to refuse, with its reason).
 */
static int place_nvram(struct api_ctx *ctx, json_object *req, struct vm_def *nd, char *err,
		       size_t errlen)
{
	json_object *v = NULL;
	bool asked = json_object_object_get_ex(req, "nvram", &v) && v;
	char path[PATH_MAX];

	if (sup_nvram_path(ctx->sup, nd->uuid, path, sizeof(path)))
		return -ENAMETOOLONG;
	if (nd->firmware != VM_FIRMWARE_UEFI) {
		if (!asked) {
			free(nd->nvram);
			nd->nvram = NULL;
		}
		return 0;
	}
	if (asked && strcmp(nd->nvram, path)) {
		snprintf(err, errlen,
			 "nvram %.100s: keeld keeps a Generation 2 VM's variable store in the "
			 "VM's directory (%.200s); leave 'nvram' out",
			 nd->nvram, path);
		return -EINVAL;
	}
	if (!nd->nvram || strcmp(nd->nvram, path)) {
		free(nd->nvram);
		nd->nvram = strdup(path);
		if (!nd->nvram)
			return -ENOMEM;
	}
	return 0;
}

static void do_create(struct api_ctx *ctx, json_object *req, struct api_reply *out)
{
	struct vm_def def;
	char err[512] = "";
	int ret;

	vmdef_init(&def);
	ret = vmdef_apply_json(&def, req, VMDEF_JSON_REQUEST, err, sizeof(err));
	if (!ret) {
		ret = vmdef_gen_uuid(def.uuid);
		if (ret)
			snprintf(err, sizeof(err), "cannot generate a VM id: %s", strerror(-ret));
	}
	if (!ret)
		ret = place_nvram(ctx, req, &def, err, sizeof(err));
	if (!ret)
		ret = vmdef_validate(&def, err, sizeof(err));
	if (!ret)
		ret = disk_policy_attach(ctx->store, ctx->sup, &def, NULL, err, sizeof(err));
	if (ret)
		goto fail;
	def.created = (int64_t)time(NULL);
	def.revision = 1;
	def.version = VMDEF_CONFIG_VERSION;
	ret = vm_macs_assign(ctx->store, &def, err, sizeof(err));
	if (!ret)
		ret = store_vm_insert(ctx->store, &def, err, sizeof(err));
	if (ret)
		goto fail;
	log_info("VM %s: created (id %s)", def.name, def.uuid);
	switches_ports_changed(ctx->store, NULL, &def);
	api_reply_json(out, 201, vm_json(ctx, &def));
	vmdef_free(&def);
	return;
fail:
	api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
	vmdef_free(&def);
}

/* A Saved VM's DVD drives keep their media: its saved state names them, and its restore
 * is given the description's (docs/checkpoints.md). */
static int saved_media_check(const struct vm_def *def, const struct vm_def *nd, char *err,
			     size_t errlen)
{
	for (unsigned k = 0; k < def->scsi.nluns && k < nd->scsi.nluns; k++) {
		const char *a = def->scsi.luns[k].disk.path, *b = nd->scsi.luns[k].disk.path;

		if (def->scsi.luns[k].type != VM_LUN_DVD || nd->scsi.luns[k].type != VM_LUN_DVD ||
		    (a && b ? !strcmp(a, b) : a == b))
			continue;
		snprintf(err, errlen,
			 "cannot change the DVD medium of VM '%s' while it is Saved: its saved "
			 "state holds %s%s; start it and change the medium while it runs, or "
			 "`keel vm discard-state %s` first",
			 def->name, a ? "the medium " : "an empty drive", a ? a : "", def->name);
		return -EBUSY;
	}
	return 0;
}

static void do_set(struct api_ctx *ctx, struct vm_def *def, json_object *req, struct api_reply *out)
{
	struct vm_def nd;
	struct sup_status st;
	const char *hw;
	unsigned media, moves = 0, moved = 0, removed = 0, added = 0, plugged = 0;
	json_object *dvd = NULL;
	bool have_dvd;
	char err[512] = "";
	int ret;

	if (json_object_object_length(req) == 0) {
		api_reply_json(out, 200, vm_json(ctx, def));
		return;
	}
	ret = vmdef_copy(&nd, def);
	if (ret) {
		api_reply_errno(out, ret, "out of memory");
		return;
	}
	/* "dvd" is a request on one drive (api_dvd.c), not a field of the description; given
	 * as null (json-c: present, but NULL) it is refused there, not taken for no request. */
	have_dvd = json_object_object_get_ex(req, "dvd", &dvd);
	if (have_dvd) {
		json_object_get(dvd);
		json_object_object_del(req, "dvd");
	}
	ret = vmdef_apply_json(&nd, req, VMDEF_JSON_REQUEST, err, sizeof(err));
	if (!ret && have_dvd)
		ret = api_dvd_apply(&nd, dvd, err, sizeof(err));
	json_object_put(dvd);
	if (!ret)
		ret = place_nvram(ctx, req, &nd, err, sizeof(err));
	if (!ret)
		ret = vmdef_validate(&nd, err, sizeof(err));
	if (!ret)
		ret = disk_policy_attach(ctx->store, ctx->sup, &nd, def, err, sizeof(err));
	if (ret)
		goto fail;
	hw = vmdef_hw_change(def, &nd);
	ret = hw && is_off(ctx, def->uuid, &st) && st.state == VM_SAVED
		      ? saved_media_check(def, &nd, err, sizeof(err))
		      : 0;
	if (ret)
		goto fail;
	media = hw && !is_off(ctx, def->uuid, &st) ? vmdef_media_change(def, &nd) : 0;
	/* A running VM's DVD media change in its worker, and then in the description. */
	for (unsigned k = 0, drive = 0; media && k < nd.scsi.nluns; k++) {
		if (nd.scsi.luns[k].type != VM_LUN_DVD)
			continue;
		if (media >> drive & 1) {
			ret = sup_dvd(ctx->sup, def, drive, nd.scsi.luns[k].disk.path, err,
				      sizeof(err));
			if (ret)
				goto fail;
		}
		drive++;
	}
	if (media)
		hw = NULL;
	/* A running VM's adapters that only change switch (or their switch settings) move
	 * now, as Connect-VMNetworkAdapter; the description follows once they did. */
	if (hw && !is_off(ctx, def->uuid, &st))
		moves = vmdef_net_move_change(def, &nd);
	if (moves) {
		ret = vm_macs_assign(ctx->store, &nd, err, sizeof(err));
		ret = ret ?: vm_net_move(ctx->store, ctx->sup, def, &nd, moves, err, sizeof(err));
		if (ret)
			goto fail;
		moved = moves;
		hw = NULL;
	}
	/* A running VM's adapters added or taken out: hot plug (Add-/Remove-VMNetworkAdapter);
	 * the description follows once the worker took them. */
	if (hw && !is_off(ctx, def->uuid, &st) &&
	    vmdef_net_hotplug_change(def, &nd, &removed, &added)) {
		ret = vm_macs_assign(ctx->store, &nd, err, sizeof(err));
		ret = ret
			      ?: vm_net_hotplug(ctx->store, ctx->sup, def, &nd, removed, added,
						false, err, sizeof(err));
		if (ret)
			goto fail;
		plugged = added;
		hw = NULL;
	}
	if (hw && !is_off(ctx, def->uuid, &st)) {
		snprintf(err, sizeof(err), "changing %s needs VM '%s' to be off (it is %s)", hw,
			 def->name, vm_state_name(st.state));
		ret = -EBUSY;
		goto fail;
	}
	if (json_object_object_get_ex(req, "disks", NULL) ||
	    json_object_object_get_ex(req, "scsi", NULL)) {
		/* The disks checkpoints take, virtio-blk and SCSI (a DVD's medium may change). */
		struct ckpt_ctx cc = {ctx->store, ctx->sup};
		struct vm_disk *a[CKPT_DISKS_MAX], *b[CKPT_DISKS_MAX];
		unsigned na = ckpt_vm_disks(def, a), nb = ckpt_vm_disks(&nd, b);
		int n = ckpt_count(&cc, def->uuid);
		bool same = na == nb;

		for (unsigned i = 0; same && i < na; i++)
			same = !strcmp(a[i]->path, b[i]->path);
		if (n > 0 && !same) {
			snprintf(err, sizeof(err),
				 "VM '%s' has %d checkpoints, which hold its disks: delete them "
				 "before changing its disks",
				 def->name, n);
			ret = -EBUSY;
			goto fail;
		}
	}
	ret = vm_macs_assign(ctx->store, &nd, err, sizeof(err));
	/* Storage QoS applies to a running VM at once, as keel vm disk set does. */
	ret = ret ?: api_disk_qos_live(ctx, def, &nd, err, sizeof(err));
	if (ret)
		goto fail;
	ret = api_store_live(ctx, def, &nd, err, sizeof(err));
	if (ret)
		goto fail;
	log_info("VM %s: configuration changed (revision %llu)", nd.name,
		 (unsigned long long)nd.revision);
	if (moves)
		switches_moves_end(def);
	if (plugged) /* stored: the rules have their guards from the store now */
		switches_moves_end(&nd);
	switches_ports_changed(ctx->store, def, &nd);
	api_reply_json(out, 200, vm_json(ctx, &nd));
	vmdef_free(&nd);
	return;
fail:
	if (moved) /* the description stays as it was, and so do the adapters */
		vm_net_unmove(ctx->store, ctx->sup, def, &nd, moved);
	if (plugged) /* added, but the description could not follow: out again */
		vm_net_hotplug_undo(ctx->store, ctx->sup, def, &nd, plugged);
	if (moves)
		switches_moves_end(def);
	api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
	vmdef_free(&nd);
}

/* POST /v1/vms/NAME/net-remove-force {"mac": MAC} (keel vm net remove --force): the running
 * VM's adapter taken away at once, without the guest, also one whose removal the guest never
 * finished (docs/networking.md, "Hot plug"). */
static void do_net_remove_force(struct api_ctx *ctx, struct vm_def *def, json_object *req,
				struct api_reply *out)
{
	struct sup_status st;
	struct vm_def nd;
	json_object *m = NULL;
	uint8_t addr[6];
	char err[512] = "";
	int ret;

	if (!json_object_is_type(req, json_type_object)) {
		api_reply_errno(out, -EINVAL, "the request body must be an object {\"mac\": MAC}");
		return;
	}
	json_object_object_foreach(req, key, val)
	{
		(void)val;
		if (strcmp(key, "mac")) {
			snprintf(err, sizeof(err),
				 "unknown field '%.64s' (net-remove-force takes 'mac')", key);
			api_reply_errno(out, -EINVAL, err);
			return;
		}
	}
	if (!json_object_object_get_ex(req, "mac", &m) ||
	    !json_object_is_type(m, json_type_string) ||
	    vmdef_mac_parse(json_object_get_string(m), addr)) {
		api_reply_errno(
			out, -EINVAL,
			"field 'mac' must be the adapter's MAC address (keel vm net list shows "
			"it), such as 02:00:00:00:00:01");
		return;
	}
	if (is_off(ctx, def->uuid, &st)) {
		snprintf(err, sizeof(err),
			 "VM '%s' is %s: only a running VM's adapter is taken away by force (keel "
			 "vm "
			 "net remove without --force changes the description of a VM that is off)",
			 def->name, vm_state_name(st.state));
		api_reply_errno(out, -EBUSY, err);
		return;
	}
	ret = vm_net_remove_force(ctx->store, ctx->sup, def, json_object_get_string(m), err,
				  sizeof(err));
	if (ret) {
		api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
		return;
	}
	if (store_vm_get(ctx->store, def->uuid, &nd)) {
		api_reply_json(out, 200, vm_json(ctx, def));
		return;
	}
	api_reply_json(out, 200, vm_json(ctx, &nd));
	vmdef_free(&nd);
}

static void do_delete(struct api_ctx *ctx, struct vm_def *def, struct api_reply *out)
{
	struct ckpt_ctx cc = {ctx->store, ctx->sup};
	char err[512] = "";
	json_object *o;
	int ret;

	ret = ckpt_count(&cc, def->uuid);
	if (ret > 0) {
		snprintf(err, sizeof(err),
			 "VM '%s' has %d checkpoints: delete them first (keel checkpoint delete %s "
			 "ROOT --subtree merges them into its disks)",
			 def->name, ret, def->name);
		api_error_reply(out, 409, "InvalidState", err);
		return;
	}
	ret = sup_forget(ctx->sup, def, err, sizeof(err));
	if (!ret)
		ret = store_vm_delete(ctx->store, def->uuid);
	if (ret) {
		api_reply_errno(out, ret, err[0] ? err : "cannot delete the VM from the store");
		return;
	}
	log_info("VM %s: deleted (its disk files are kept)", def->name);
	switches_ports_changed(ctx->store, def, NULL);
	o = json_object_new_object();
	json_object_object_add(o, "deleted", json_object_new_string(def->name));
	json_object_object_add(o, "id", json_object_new_string(def->uuid));
	api_reply_json(out, 200, o);
}

/* Options of an action: only "force" and "timeout" (stop) are known. */
static int action_opts(json_object *req, bool is_stop, bool *force, unsigned *timeout, char *err,
		       size_t errlen)
{
	json_object_object_foreach(req, key, val)
	{
		if (is_stop && !strcmp(key, "force")) {
			if (!json_object_is_type(val, json_type_boolean)) {
				snprintf(err, errlen, "field 'force' must be true or false");
				return -EINVAL;
			}
			*force = json_object_get_boolean(val);
		} else if (is_stop && !strcmp(key, "timeout")) {
			int64_t t;
			errno = 0;
			t = json_object_get_int64(val);
			if (!json_object_is_type(val, json_type_int) || errno == ERANGE || t < 0 ||
			    t > API_STOP_TIMEOUT_MAX) {
				snprintf(err, errlen,
					 "field 'timeout' must be an integer number of seconds "
					 "from 0 to %d",
					 API_STOP_TIMEOUT_MAX);
				return -EINVAL;
			}
			*timeout = (unsigned)t;
		} else {
			snprintf(err, errlen, "unknown field '%s' for this action", key);
			return -EINVAL;
		}
	}
	return 0;
}

/* The job JSON with its error code, as the API shows jobs. */
json_object *api_job_json(struct job *j)
{
	json_object *o = job_to_json(j), *e;

	if (o && json_object_object_get_ex(o, "error", &e)) {
		unsigned status;

		json_object_object_add(e, "code",
				       json_object_new_string(errno_code(job_error(j), &status)));
	}
	return o;
}

/* Save-VM as a job: the save (as long as writing the VM's memory takes) runs on the job's
 * thread; the request answers at once. */
struct save_job {
	struct sup *sup;
	struct vm_def def;
};

static int save_job_run(void *arg, json_object **result, char *err, size_t errlen)
{
	struct save_job *a = arg;

	return sup_save(a->sup, &a->def, err, errlen);
}

static void save_job_free(void *arg)
{
	struct save_job *a = arg;

	vmdef_free(&a->def);
	free(a);
}

static int start_save_job(struct api_ctx *ctx, const struct vm_def *def, struct job **job,
			  char *err, size_t errlen)
{
	struct save_job *a = calloc(1, sizeof(*a));
	char progress[PATH_MAX];
	int ret;

	if (!a)
		return -ENOMEM;
	a->sup = ctx->sup;
	ret = vmdef_copy(&a->def, def);
	if (ret) {
		free(a);
		return ret;
	}
	/* Progress: keel-vmm writes the memory in order to memory.tmp, which it renames to
	 * memory once complete (docs/state.md); the file's size is how far it got. */
	ret = sup_saved_file(ctx->sup, def->uuid, "memory.tmp", progress, sizeof(progress));
	if (ret) {
		save_job_free(a);
		return ret;
	}
	ret = job_start(ctx->sup, "save", def->uuid, def->name, progress, def->memory, 0,
			save_job_run, a, save_job_free, job);
	if (ret)
		snprintf(err, errlen, "cannot start the save of VM '%s': %s", def->name,
			 ret == -ESHUTDOWN ? "keeld is exiting" : strerror(-ret));
	return ret;
}

static void do_action(struct api_ctx *ctx, struct vm_def *def, const char *action, json_object *req,
		      struct api_reply *out)
{
	char err[512] = "", how[400] = "";
	bool force = false;
	unsigned timeout = ctx->stop_timeout_s;
	unsigned status = 200;
	struct job *job = NULL;
	json_object *o;
	int ret;

	ret = action_opts(req, !strcmp(action, "stop"), &force, &timeout, err, sizeof(err));
	if (ret) {
		api_reply_errno(out, ret, err);
		return;
	}
	if (!strcmp(action, "start") && host_shutting_down()) {
		/* What the shutdown stopped must stay stopped until keeld exits. */
		snprintf(err, sizeof(err),
			 "cannot start VM '%s': the host is shutting down (keel host shutdown); "
			 "start it once keeld runs again",
			 def->name);
		api_error_reply(out, 503, "ShuttingDown", err);
		return;
	}
	if (!strcmp(action, "start")) {
		struct vm_def check;
		char why[400] = "";
		/* Files may have gone since the VM was defined: say so before starting. */
		ret = vmdef_copy(&check, def);
		if (!ret) {
			ret = vmdef_validate(&check, why, sizeof(why));
			vmdef_free(&check);
		}
		if (ret == -EINVAL)
			snprintf(err, sizeof(err), "cannot start VM '%s': %s", def->name, why);
		if (!ret)
			ret = sup_start(ctx->sup, def, err, sizeof(err));
		status = 202;
	} else if (!strcmp(action, "stop")) {
		ret = agent_stop(ctx->store, ctx->sup, def, force, timeout, how, sizeof(how), err,
				 sizeof(err));
		status = 202;
	} else if (!strcmp(action, "turn-off")) {
		ret = sup_turn_off(ctx->sup, def, err, sizeof(err));
		status = 202;
	} else if (!strcmp(action, "pause")) {
		ret = sup_pause(ctx->sup, def, err, sizeof(err));
	} else if (!strcmp(action, "resume")) {
		ret = sup_resume(ctx->sup, def, err, sizeof(err));
	} else if (!strcmp(action, "restart")) {
		ret = sup_restart(ctx->sup, def, err, sizeof(err));
	} else if (!strcmp(action, "save")) {
		ret = sup_save_check(ctx->sup, def, err, sizeof(err));
		if (!ret)
			ret = start_save_job(ctx, def, &job, err, sizeof(err));
		status = 202;
	} else if (!strcmp(action, "discard-state")) {
		ret = sup_discard_state(ctx->sup, def, err, sizeof(err));
	} else {
		snprintf(err, sizeof(err),
			 "unknown action '%s': use start, stop, turn-off, restart, pause, resume, "
			 "save or discard-state",
			 action);
		api_error_reply(out, 404, "NotFound", err);
		return;
	}
	if (ret) {
		api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
		return;
	}
	o = vm_json(ctx, def);
	if (o && job)
		json_object_object_add(o, "job", api_job_json(job));
	if (o && how[0]) /* a stop: through the agent or the power button */
		json_object_object_add(o, "stopped_through", json_object_new_string(how));
	api_reply_json(out, status, o);
}

void api_method_not_allowed(struct api_reply *out, const char *method, const char *url,
			    const char *allowed)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "method %.16s is not allowed on %.128s (allowed: %s)", method,
		 url, allowed);
	api_error_reply(out, 405, "MethodNotAllowed", msg);
}

/* A checkpoint body: "name" (a string) and, for a creation (type not NULL), "type"
 * ("production", the default, "production-only" or "standard"). */
static int ckpt_body(json_object *req, const char **name, enum ckpt_type *type, bool need,
		     char *err, size_t errlen)
{
	json_object_object_foreach(req, key, val)
	{
		bool is_type = type && !strcmp(key, "type");

		if (strcmp(key, "name") && !is_type) {
			snprintf(err, errlen, "unknown field '%s' for a checkpoint", key);
			return -EINVAL;
		}
		if (!json_object_is_type(val, json_type_string)) {
			snprintf(err, errlen, "field '%s' must be a string", key);
			return -EINVAL;
		}
		if (is_type && ckpt_type_parse(json_object_get_string(val), type)) {
			snprintf(err, errlen,
				 "unknown checkpoint type '%.40s': production, production-only or "
				 "standard",
				 json_object_get_string(val));
			return -EINVAL;
		}
		if (!is_type)
			*name = json_object_get_string(val);
	}
	if (need && !*name) {
		snprintf(err, errlen, "field 'name' is required");
		return -EINVAL;
	}
	return 0;
}

/* The checkpoint operations that take long, as jobs: creating one (a running VM's memory
 * is saved first), applying one (the VM is turned off, its disks get new children) and
 * deleting one (disk files merge; a running VM is saved and restored around it). */
enum ckpt_job_kind { CKPT_JOB_CREATE, CKPT_JOB_APPLY, CKPT_JOB_DELETE };

static const char *const ckpt_job_names[] = {"checkpoint", "checkpoint-apply", "checkpoint-delete"};

struct ckpt_job {
	struct ckpt_ctx cc;
	struct vm_def def;
	enum ckpt_job_kind kind;
	char *name; /* create: the new name (NULL: the default); else the checkpoint's */
	bool subtree;
	enum ckpt_type type; /* create */
};

/* The result: the new checkpoint; {"applied": NAME}; {"deleted": NAME, "subtree": B}. */
static int ckpt_job_run(void *arg, json_object **result, char *err, size_t errlen)
{
	struct ckpt_job *a = arg;
	int ret;

	switch (a->kind) {
	case CKPT_JOB_CREATE:
		return ckpt_create(&a->cc, &a->def, a->name, a->type, result, err, errlen);
	case CKPT_JOB_APPLY:
		ret = ckpt_apply(&a->cc, &a->def, a->name, err, errlen);
		if (!ret && (*result = json_object_new_object()))
			json_object_object_add(*result, "applied", json_object_new_string(a->name));
		return ret;
	case CKPT_JOB_DELETE:
		ret = ckpt_delete(&a->cc, &a->def, a->name, a->subtree, err, errlen);
		if (!ret && (*result = json_object_new_object())) {
			json_object_object_add(*result, "deleted", json_object_new_string(a->name));
			json_object_object_add(*result, "subtree",
					       json_object_new_boolean(a->subtree));
		}
		return ret;
	}
	return -EINVAL;
}

static void ckpt_job_free(void *arg)
{
	struct ckpt_job *a = arg;

	vmdef_free(&a->def);
	free(a->name);
	free(a);
}

static int start_ckpt_job(struct api_ctx *ctx, const struct vm_def *def, enum ckpt_job_kind kind,
			  const char *name, bool subtree, enum ckpt_type type, struct job **job,
			  char *err, size_t errlen)
{
	static const char *const verbs[] = {NULL, "apply a checkpoint to",
					    "delete a checkpoint of"};
	struct ckpt_ctx cc = {ctx->store, ctx->sup};
	struct ckpt_job *a;
	int ret;

	/* What can be checked now fails the request, not the job: creation is checked by
	 * the caller (its name), apply and delete here (the checkpoint, the VM's state). */
	if (verbs[kind] && (ret = ckpt_change_check(&cc, def, name, verbs[kind],
						    kind == CKPT_JOB_APPLY, err, errlen)))
		return ret;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->cc = cc;
	a->kind = kind;
	a->subtree = subtree;
	a->type = type;
	ret = vmdef_copy(&a->def, def);
	if (!ret && name && !(a->name = strdup(name)))
		ret = -ENOMEM;
	if (ret) {
		ckpt_job_free(a);
		return ret;
	}
	ret = job_start(ctx->sup, ckpt_job_names[kind], def->uuid, def->name, NULL, 0,
			JOB_FINISH_BEFORE_EXIT, ckpt_job_run, a, ckpt_job_free, job);
	if (ret)
		snprintf(err, errlen, "cannot start the %s of VM '%s': %s", ckpt_job_names[kind],
			 def->name, ret == -ESHUTDOWN ? "keeld is exiting" : strerror(-ret));
	return ret;
}

/* Routes under /v1/vms/NAME/checkpoints[/CKPT[/apply]]; query is the URL's query string. */
static void route_ckpt(struct api_ctx *ctx, const char *method, const char *url, struct vm_def *def,
		       char *rest, const char *query, json_object *req, struct api_reply *out)
{
	struct ckpt_ctx cc = {ctx->store, ctx->sup};
	char err[768] = "", *verb = NULL;
	json_object *o = NULL;
	const char *name = NULL;
	int ret;

	if (rest) {
		verb = strchr(rest, '/');
		if (verb)
			*verb++ = '\0';
		if (!*rest || (verb && strcmp(verb, "apply"))) {
			snprintf(err, sizeof(err), "no such resource: %.200s", url);
			api_error_reply(out, 404, "NotFound", err);
			return;
		}
	}
	if (!rest) {
		if (!strcmp(method, "GET")) {
			ret = ckpt_list(&cc, def, &o);
			if (ret)
				snprintf(err, sizeof(err), "cannot read the checkpoints of VM '%s'",
					 def->name);
			else
				api_reply_json(out, 200, o);
		} else if (!strcmp(method, "POST")) {
			struct job *job = NULL;

			/* Checked here, so that a bad request fails at once; created by a job
			 * (a running VM's memory is saved first: as long as Save-VM). */
			enum ckpt_type type = CKPT_PRODUCTION; /* Hyper-V's default */

			ret = ckpt_body(req, &name, &type, false, err, sizeof(err));
			if (!ret)
				ret = ckpt_create_check(&cc, def, name, type, err, sizeof(err));
			if (!ret)
				ret = start_ckpt_job(ctx, def, CKPT_JOB_CREATE, name, false, type,
						     &job, err, sizeof(err));
			if (!ret)
				api_reply_json(out, 202, api_job_json(job));
		} else {
			api_method_not_allowed(out, method, url, "GET, POST");
			return;
		}
	} else if (verb) {
		if (strcmp(method, "POST")) {
			api_method_not_allowed(out, method, url, "POST");
			return;
		}
		struct job *job = NULL;

		ret = json_object_object_length(req) ? -EINVAL : 0;
		if (ret)
			snprintf(err, sizeof(err), "apply takes no fields");
		if (!ret)
			ret = start_ckpt_job(ctx, def, CKPT_JOB_APPLY, rest, false, CKPT_STANDARD,
					     &job, err, sizeof(err));
		if (!ret)
			api_reply_json(out, 202, api_job_json(job));
	} else if (!strcmp(method, "PATCH")) {
		ret = ckpt_body(req, &name, NULL, true, err, sizeof(err));
		if (!ret)
			ret = ckpt_rename(&cc, def, rest, name, err, sizeof(err));
		if (!ret) {
			o = json_object_new_object();
			json_object_object_add(o, "renamed", json_object_new_string(rest));
			json_object_object_add(o, "name", json_object_new_string(name));
			api_reply_json(out, 200, o);
		}
	} else if (!strcmp(method, "DELETE")) {
		struct job *job = NULL;
		bool subtree = false;

		ret = 0;
		if (query && query[0]) {
			if (!strcmp(query, "subtree=true") || !strcmp(query, "subtree=1"))
				subtree = true;
			else if (strcmp(query, "subtree=false") && strcmp(query, "subtree=0")) {
				snprintf(err, sizeof(err),
					 "unknown query '%.100s': only subtree=true or false",
					 query);
				ret = -EINVAL;
			}
		}
		if (!ret)
			ret = start_ckpt_job(ctx, def, CKPT_JOB_DELETE, rest, subtree,
					     CKPT_STANDARD, &job, err, sizeof(err));
		if (!ret)
			api_reply_json(out, 202, api_job_json(job));
	} else if (!strcmp(method, "GET")) {
		ret = ckpt_list(&cc, def, &o);
		if (!ret) {
			json_object *arr = NULL, *found = NULL;

			json_object_object_get_ex(o, "checkpoints", &arr);
			for (size_t i = 0; i < json_object_array_length(arr) && !found; i++) {
				json_object *c = json_object_array_get_idx(arr, i), *v;
				if ((json_object_object_get_ex(c, "name", &v) &&
				     !strcmp(json_object_get_string(v), rest)) ||
				    (json_object_object_get_ex(c, "id", &v) &&
				     !strcmp(json_object_get_string(v), rest)))
					found = json_object_get(c);
			}
			json_object_put(o);
			if (found) {
				api_reply_json(out, 200, found);
			} else {
				ret = -ENOENT;
				snprintf(err, sizeof(err),
					 "VM '%s' has no checkpoint named '%.100s'", def->name,
					 rest);
			}
		}
	} else {
		api_method_not_allowed(out, method, url, "GET, PATCH, DELETE");
		return;
	}
	if (ret)
		api_reply_errno(out, ret, err[0] ? err : strerror(-ret));
}

/* Routes under /v1/vms/NAME[/SUB]. */
static void route_vm(struct api_ctx *ctx, const char *method, const char *url, const char *key,
		     char *sub, char *query, json_object *req, struct api_reply *out)
{
	struct vm_def def;
	const char *op = NULL;
	char msg[256], opname[48];
	int ret;

	ret = store_vm_get(ctx->store, key, &def);
	if (ret == -ENOENT) {
		snprintf(msg, sizeof(msg), "no VM named '%.80s'", key);
		api_error_reply(out, 404, "NotFound", msg);
		return;
	}
	if (ret) {
		api_error_reply(out, 500, "Internal", "cannot read the VM from the store");
		return;
	}
	/* A request that changes the VM owns it until it is done (sup_op_begin): another one
	 * meanwhile gets 409 naming what is in progress, reads go on. */
	if (!strcmp(method, "POST") || !strcmp(method, "PATCH") || !strcmp(method, "DELETE")) {
		/* What the VM shows as in progress: the action, "checkpoints", "change" or
		 * "delete" (copied: route_ckpt cuts the path up). */
		snprintf(opname, sizeof(opname), "%.*s", sub ? (int)strcspn(sub, "/") : 16,
			 sub			    ? sub
			 : !strcmp(method, "PATCH") ? "change"
						    : "delete");
		op = opname;
		ret = sup_op_begin(ctx->sup, def.uuid, def.name, op, msg, sizeof(msg));
		if (ret) {
			api_error_reply(out, ret == -EBUSY ? 409 : 500,
					ret == -EBUSY ? "InvalidState" : "Internal", msg);
			vmdef_free(&def);
			return;
		}
		/* A backup copying a checkpoint's files lets the VM go (stop, save and the
		 * worker's supervision go on) but keeps what would change those files away. */
		if (sup_pinned(ctx->sup, def.uuid) &&
		    (!sub || !strcmp(opname, "checkpoints") || !strcmp(opname, "backup"))) {
			snprintf(msg, sizeof(msg),
				 "VM '%s' has a %s under way: its checkpoints and disks cannot "
				 "change until it is done",
				 def.name, sup_pinned(ctx->sup, def.uuid));
			api_error_reply(out, 409, "InvalidState", msg);
			sup_op_end(ctx->sup, def.uuid);
			vmdef_free(&def);
			return;
		}
	}
	if (def.damaged[0] && strcmp(method, "GET") && !(!sub && !strcmp(method, "DELETE")) &&
	    !(sub && !strcmp(method, "POST") &&
	      (!strcmp(sub, "stop") || !strcmp(sub, "turn-off") || !strcmp(sub, "pause") ||
	       !strcmp(sub, "resume")))) {
		/* Its description in the store could not be read whole (docs/keeld.md): what is
		 * left is reading it, stopping its worker and deleting it. */
		char why[VMDEF_NAME_MAX + sizeof(def.damaged) + 40];

		snprintf(why, sizeof(why), "VM '%s' is damaged in the store: %s", def.name,
			 def.damaged);
		api_error_reply(out, 409, "Damaged", why);
	} else if (sub && !strncmp(sub, "checkpoints", 11) && (sub[11] == '\0' || sub[11] == '/')) {
		route_ckpt(ctx, method, url, &def, sub[11] ? sub + 12 : NULL, query, req, out);
	} else if (sub && !strncmp(sub, "kvp", 3) &&
		   (sub[3] == '\0' || (sub[3] == '/' && sub[4]))) {
		/* A key may hold '/': all that follows "kvp/" is the key. */
		api_vm_kvp(ctx, method, url, &def, sub[3] ? sub + 4 : NULL, query, req, out);
	} else if (sub && !strcmp(sub, "integration")) {
		api_vm_integration(ctx, method, url, &def, req, out);
	} else if (sub && !strcmp(sub, "backup")) {
		api_vm_backup(ctx, method, url, &def, req, out);
	} else if (sub && !strncmp(sub, "disks/", 6)) {
		api_vm_disk(ctx, method, url, &def, sub + 6, req, out);
	} else if (sub && strchr(sub, '/')) {
		snprintf(msg, sizeof(msg), "no such resource: %.200s", url);
		api_error_reply(out, 404, "NotFound", msg);
	} else if (!sub) {
		if (!strcmp(method, "GET"))
			api_reply_json(out, 200, vm_json(ctx, &def));
		else if (!strcmp(method, "PATCH"))
			do_set(ctx, &def, req, out);
		else if (!strcmp(method, "DELETE"))
			do_delete(ctx, &def, out);
		else
			api_method_not_allowed(out, method, url, "GET, PATCH, DELETE");
	} else if (!strcmp(sub, "net-remove-force")) {
		if (!strcmp(method, "POST"))
			do_net_remove_force(ctx, &def, req, out);
		else
			api_method_not_allowed(out, method, url, "POST");
	} else if (!strcmp(sub, "log")) {
		if (!strcmp(method, "GET"))
			api_vm_log(ctx, &def, query, out);
		else
			api_method_not_allowed(out, method, url, "GET");
	} else {
		if (!strcmp(method, "POST"))
			do_action(ctx, &def, sub, req, out);
		else
			api_method_not_allowed(out, method, url, "POST");
	}
	if (op)
		sup_op_end(ctx->sup, def.uuid);
	vmdef_free(&def);
}

/* POST /v1/host/shutdown {"timeout": SEC}: every running VM's automatic stop action, as a
 * job of the host; its result is the report of what happened to each VM. */
struct host_job {
	struct store *store;
	struct sup *sup;
	unsigned timeout;
};

static int host_job_run(void *arg, json_object **result, char *err, size_t errlen)
{
	struct host_job *a = arg;

	return host_shutdown(a->store, a->sup, a->timeout, result, err, errlen);
}

static void do_host_shutdown(struct api_ctx *ctx, json_object *req, struct api_reply *out)
{
	struct host_job *a;
	struct job *job = NULL;
	char err[256] = "";
	unsigned timeout = ctx->stop_timeout_s;
	int ret;

	json_object_object_foreach(req, key, val)
	{
		int64_t t;

		if (strcmp(key, "timeout")) {
			snprintf(err, sizeof(err), "unknown field '%s' (only 'timeout')", key);
			api_error_reply(out, 400, "InvalidArgument", err);
			return;
		}
		t = json_object_get_int64(val);
		if (!json_object_is_type(val, json_type_int) || t < 0 ||
		    t > HOST_SHUTDOWN_TIMEOUT_MAX) {
			snprintf(err, sizeof(err), "field 'timeout' must be seconds from 0 to %d",
				 HOST_SHUTDOWN_TIMEOUT_MAX);
			api_error_reply(out, 400, "InvalidArgument", err);
			return;
		}
		timeout = (unsigned)t;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		api_reply_errno(out, -ENOMEM, "out of memory");
		return;
	}
	*a = (struct host_job){ctx->store, ctx->sup, timeout};
	ret = job_start(ctx->sup, "host-shutdown", NULL, NULL, NULL, 0, 0, host_job_run, a, free,
			&job);
	if (ret) {
		api_reply_errno(out, ret, "cannot start the host shutdown job");
		return;
	}
	api_reply_json(out, 202, api_job_json(job));
}

int api_since_wait(char *query, const char *since_is, unsigned wait_max, uint64_t *since,
		   bool *have_since, uint64_t *wait, struct api_reply *out)
{
	char msg[200], *save = NULL;

	*since = *wait = 0;
	*have_since = false;
	for (char *kv = query ? strtok_r(query, "&", &save) : NULL; kv;
	     kv = strtok_r(NULL, "&", &save)) {
		bool ok;

		if (!strncmp(kv, "since=", 6))
			ok = *have_since = !parse_uint(kv + 6, 0, UINT64_MAX, since);
		else if (!strncmp(kv, "wait=", 5))
			ok = !parse_uint(kv + 5, 0, wait_max, wait);
		else
			ok = false;
		if (!ok) {
			snprintf(msg, sizeof(msg),
				 "bad query '%.60s': since=%s and wait=SEC (0 to %u)", kv, since_is,
				 wait_max);
			api_error_reply(out, 400, "InvalidArgument", msg);
			return -EINVAL;
		}
	}
	return 0;
}

/* GET /v1/events?since=N&wait=SEC: the events after N, waiting up to SEC seconds (long-poll). */
static void do_events(char *query, struct api_reply *out)
{
	uint64_t since, wait;
	bool have_since;

	if (api_since_wait(query, "N (an event number)", EVENTS_WAIT_MAX, &since, &have_since,
			   &wait, out))
		return;
	if (events_closing()) {
		api_error_reply(out, 503, "ShuttingDown", "keeld is exiting");
		return;
	}
	api_reply_json(out, 200, events_since(since, (unsigned)wait));
}

/* GET /v1/audit[?vm=NAME][&kind=changes|refused][&limit=N]: the newest N (100) records,
 * oldest first, of one kind or both. */
static void do_audit(struct api_ctx *ctx, char *query, struct api_reply *out)
{
	char msg[256], *save = NULL;
	const char *vm = NULL;
	enum store_audit_kind kind = STORE_AUDIT_ALL;
	json_object *arr = NULL;
	uint64_t limit = 100;

	for (char *kv = query ? strtok_r(query, "&", &save) : NULL; kv;
	     kv = strtok_r(NULL, "&", &save)) {
		bool ok = true;

		if (!strncmp(kv, "vm=", 3) && vmdef_name_ok(kv + 3))
			vm = kv + 3;
		else if (!strcmp(kv, "kind=changes"))
			kind = STORE_AUDIT_CHANGES;
		else if (!strcmp(kv, "kind=refused"))
			kind = STORE_AUDIT_REFUSED;
		else if (!strncmp(kv, "limit=", 6))
			ok = !parse_uint(kv + 6, 1, STORE_AUDIT_KEEP, &limit);
		else
			ok = false;
		if (!ok) {
			snprintf(msg, sizeof(msg),
				 "bad query '%.60s': vm=NAME, kind=changes or kind=refused, and "
				 "limit=N (1 to %d)",
				 kv, STORE_AUDIT_KEEP);
			api_error_reply(out, 400, "InvalidArgument", msg);
			return;
		}
	}
	if (store_audit_list(ctx->store, vm, kind, (unsigned)limit, &arr)) {
		api_error_reply(out, 500, "Internal", "cannot read the audit log from the store");
		return;
	}
	api_reply_json(out, 200, arr);
}

/* GET /v1/jobs and GET /v1/jobs/ID. */
static void route_jobs(const char *method, const char *url, const char *path, struct api_reply *out)
{
	struct job *j = NULL;
	char msg[256];
	uint64_t id;

	if (strcmp(method, "GET")) {
		api_method_not_allowed(out, method, url, "GET");
		return;
	}
	if (!strcmp(path, "/v1/jobs")) {
		api_reply_json(out, 200, jobs_to_json());
		return;
	}
	if (!parse_uint(path + 9, 1, UINT64_MAX, &id))
		j = job_find(id);
	if (!j) {
		snprintf(msg, sizeof(msg), "no job %.40s (finished jobs are kept for the last %d)",
			 path + 9, JOBS_KEEP_FINISHED);
		api_error_reply(out, 404, "NotFound", msg);
		return;
	}
	api_reply_json(out, 200, api_job_json(j));
	/* The host shutdown's report is out: keeld exits once it was delivered (host.h). */
	if (!strcmp(job_operation(j), "host-shutdown") && job_state_of(j) != JOB_RUNNING)
		out->after_sent = host_shutdown_reported;
}

static void handle_locked(struct api_ctx *ctx, const char *method, const char *url,
			  const char *query_in, const char *body, size_t len, struct api_reply *out)
{
	char path[512], err[400], qbuf[1024], *key, *sub, *query = NULL;
	json_object *req = NULL;
	bool has_body = !strcmp(method, "POST") || !strcmp(method, "PATCH");

	memset(out, 0, sizeof(*out));
	if (strlen(url) >= sizeof(path)) {
		api_error_reply(out, 414, "UriTooLong", "request URL is too long");
		return;
	}
	strcpy(path, url);
	if (query_in && query_in[0]) {
		if (strlen(query_in) >= sizeof(qbuf)) {
			api_error_reply(out, 414, "UriTooLong", "request query is too long");
			return;
		}
		query = strcpy(qbuf, query_in);
	}
	/* Accept one trailing slash. */
	if (strlen(path) > 1 && path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = '\0';
	/* Five requests take a query (GET /v1/events, /v1/audit, a VM's log and its KVP pairs,
	 * DELETE of a checkpoint); on any other a query is a mistake to report, not to ignore. */
	if (query && query[0] && strcmp(path, "/v1/events") && strcmp(path, "/v1/audit") &&
	    !(!strcmp(method, "DELETE") && strstr(path, "/checkpoints/")) &&
	    !(!strcmp(method, "GET") && !strncmp(path, "/v1/vms/", 8) && strchr(path + 8, '/') &&
	      !strncmp(strchr(path + 8, '/'), "/kvp", 4)) &&
	    !(!strcmp(method, "GET") && !strncmp(path, "/v1/vms/", 8) && strchr(path + 8, '/') &&
	      !strcmp(strchr(path + 8, '/'), "/log"))) {
		snprintf(err, sizeof(err), "%.10s %.200s takes no query string (got '?%.100s')",
			 method, path, query);
		api_error_reply(out, 400, "InvalidArgument", err);
		return;
	}
	if (has_body) {
		req = parse_body(body ? body : "", body ? len : 0, err, sizeof(err));
		if (!req) {
			api_error_reply(out, 400, "MalformedJSON", err);
			return;
		}
	} else if (len) {
		api_method_not_allowed(out, method, url, "a body only with POST or PATCH");
		return;
	}

	if (!strcmp(path, "/v1/version") || !strcmp(path, "/v1")) {
		if (strcmp(method, "GET")) {
			api_method_not_allowed(out, method, url, "GET");
		} else {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string("keeld"));
			json_object_object_add(o, "version", json_object_new_string(KEEL_VERSION));
			json_object_object_add(o, "api", json_object_new_int(1));
			api_reply_json(out, 200, o);
		}
	} else if (!strcmp(path, "/v1/vms")) {
		if (!strcmp(method, "GET"))
			do_list(ctx, out);
		else if (!strcmp(method, "POST"))
			do_create(ctx, req, out);
		else
			api_method_not_allowed(out, method, url, "GET, POST");
	} else if (!strcmp(path, "/v1/host/shutdown")) {
		if (strcmp(method, "POST"))
			api_method_not_allowed(out, method, url, "POST");
		else
			do_host_shutdown(ctx, req, out);
	} else if (!strcmp(path, "/v1/events")) {
		if (strcmp(method, "GET"))
			api_method_not_allowed(out, method, url, "GET");
		else
			do_events(query, out);
	} else if (!strcmp(path, "/v1/switches") || !strncmp(path, "/v1/switches/", 13)) {
		api_route_switches(ctx, method, url, path, req, out);
	} else if (!strcmp(path, "/v1/pools") || !strncmp(path, "/v1/pools/", 10)) {
		api_route_pools(ctx, method, url, path, req, out);
	} else if (!strcmp(path, "/v1/audit")) {
		if (strcmp(method, "GET"))
			api_method_not_allowed(out, method, url, "GET");
		else
			do_audit(ctx, query, out);
	} else if (!strcmp(path, "/v1/jobs") || !strncmp(path, "/v1/jobs/", 9)) {
		route_jobs(method, url, path, out);
	} else if (!strcmp(path, "/v1/vms/import") && !strcmp(method, "POST")) {
		/* A VM may be named "import": its own routes take no POST without a sub. */
		api_vm_import(ctx, method, url, req, out);
	} else if (!strncmp(path, "/v1/vms/", 8) && path[8]) {
		key = path + 8;
		sub = strchr(key, '/');
		if (sub)
			*sub++ = '\0';
		if (sub && !*sub) {
			snprintf(err, sizeof(err), "no such resource: %.200s", url);
			api_error_reply(out, 404, "NotFound", err);
		} else {
			route_vm(ctx, method, url, key, sub, query, req, out);
		}
	} else {
		snprintf(err, sizeof(err), "no such resource: %.200s (the API is under /v1)", url);
		api_error_reply(out, 404, "NotFound", err);
	}
	json_object_put(req);
}

/* The VM a request is about, for access and audit: NAME in /v1/vms/NAME[/...], or the
 * "name" of a create's or an import's body (an import without one: ""); "" when none. */
static void request_vm(const char *method, const char *url, const char *body, size_t len, char *out,
		       size_t size)
{
	bool import = !strcmp(method, "POST") && !strcmp(url, "/v1/vms/import");

	out[0] = '\0';
	if (!strncmp(url, "/v1/vms/", 8) && !import) {
		snprintf(out, size, "%.*s", (int)strcspn(url + 8, "/"), url + 8);
	} else if (!strcmp(method, "POST") &&
		   (!strcmp(url, "/v1/vms") || !strcmp(url, "/v1/vms/") || import) && body && len) {
		json_tokener *tok = json_tokener_new();
		json_object *o = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL, *v;

		if (json_object_is_type(o, json_type_object) &&
		    json_object_object_get_ex(o, "name", &v) &&
		    json_object_is_type(v, json_type_string))
			snprintf(out, size, "%s", json_object_get_string(v));
		json_object_put(o);
		if (tok)
			json_tokener_free(tok);
	}
}

/* One audit record: the store (each kind's newest: STORE_AUDIT_KEEP, STORE_AUDIT_REFUSED_KEEP)
 * and keeld's log. path and msg are made printable here. keeld's lock held. */
static void audit_record(struct api_ctx *ctx, const char *user, long long uid, const char *method,
			 char *path, const char *vm, unsigned status, char *msg)
{
	struct store_audit a = {.time = (int64_t)time(NULL),
				.uid = (uint32_t)uid,
				.user = user,
				.method = method,
				.path = path,
				.vm = vm,
				.status = status,
				.message = msg};

	log_text_safe(path, strlen(path), false); /* never a forged line of a log */
	log_text_safe(msg, strlen(msg), false);
	log_info("audit: %s (uid %u) %s %s -> %u%s%s", user, (unsigned)uid, method, path, status,
		 msg[0] ? ": " : "", msg);
	if (store_audit_add(ctx->store, &a))
		log_err("audit: cannot record %s %s by %s in the store", method, path, user);
}

/* The audit record of a request: its error's message when it failed. */
static void audit(struct api_ctx *ctx, const struct api_caller *caller, const char *method,
		  const char *url, const char *query, const char *vm, const struct api_reply *out)
{
	char msg[512] = "", path[1200];
	json_object *o = NULL, *e, *m;

	snprintf(path, sizeof(path), "%s%s%s", url, query && query[0] ? "?" : "",
		 query ? query : "");
	if (out->status >= 400 && out->body)
		o = json_tokener_parse(out->body);
	if (json_object_object_get_ex(o, "error", &e) &&
	    json_object_object_get_ex(e, "message", &m))
		snprintf(msg, sizeof(msg), "%s", json_object_get_string(m));
	json_object_put(o);
	audit_record(ctx, caller->user, (long long)caller->uid, method, path, vm, out->status, msg);
}

void api_audit_refused(struct api_ctx *ctx, const struct api_caller *caller, const char *method,
		       const char *url, const struct api_reply *out)
{
	keeld_lock();
	audit(ctx, caller, method, url, NULL, "", out);
	keeld_unlock();
}

void api_audit_job_end(const struct job *j, void *opaque)
{
	struct api_ctx *ctx = opaque;
	char path[64], msg[900];
	unsigned status = 200;
	long long uid;
	const char *user = job_requester(j, &uid);

	snprintf(path, sizeof(path), "/v1/jobs/%" PRIu64, job_id(j));
	if (job_state_of(j) == JOB_FAILED)
		(void)errno_code(job_error(j), &status);
	snprintf(msg, sizeof(msg), "%s %s%s%s", job_operation(j),
		 job_state_of(j) == JOB_FAILED ? "failed" : "succeeded",
		 job_message(j)[0] ? ": " : "", job_message(j));
	audit_record(ctx, user, uid, "JOB", path, job_vm_name(j), status, msg);
}

void api_handle(struct api_ctx *ctx, const struct api_caller *caller, const char *method,
		const char *url, const char *query, const char *body, size_t len,
		struct api_reply *out)
{
	char vm[VMDEF_NAME_MAX + 64], why[512];
	bool reads = !strcmp(method, "GET") || !strcmp(method, "HEAD");

	memset(out, 0, sizeof(*out));
	request_vm(method, url, body, len, vm, sizeof(vm));
	keeld_lock();
	if (!access_allows(caller, method, url, vm[0] ? vm : NULL, why, sizeof(why))) {
		memset(out, 0, sizeof(*out));
		api_error_reply(out, 403, "Forbidden", why);
	} else {
		/* A job the request starts keeps its caller, for the audit of its outcome. */
		jobs_requester(caller->user, (long long)caller->uid);
		handle_locked(ctx, method, url, query, body, len, out);
		jobs_requester(NULL, 0);
	}
	/* What changed or tried to change: every request that is not a read, refused or not;
	 * a refused read too, so that probing shows. */
	if (!reads || out->status == 403)
		audit(ctx, caller, method, url, query, vm, out);
	keeld_unlock();
}
