/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/control.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/unix_socket.h"
#include "vmm/hotplug.h"
#include "vmm/jail.h"
#include "vmm/jail_prep.h"
#include "vmm/loop.h"
#include "vmm/parse_euid.h"
#include "vmm/seccomp_filter.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu.h"
#include "vmm/virtio/blk.h"
#include "vmm/blkio/qos.h"
#include "vmm/virtio/scsi.h"
#include "config/vmdef_device.h"
#include "vmm/vm.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_MAX_LINE    4096
/* restore's state and memory files; nic-add's tap queues and vhost-nets, one each per pair */
#define CONTROL_PASSED_MAX (2 * VMDEF_NET_QUEUES_MAX)

struct control_client {
	struct control *ctl;
	int fd;
	/* The descriptors that came with the request (SCM_RIGHTS), in order; -1 past them. */
	int passed[CONTROL_PASSED_MAX];
	size_t npassed; /* how many came with the request so far, those closed past passed[] too */
	size_t len;
	char buf[CONTROL_MAX_LINE];
};

/* Loop thread only. */
struct control {
	struct vm *vm;
	int listen_fd;
	char *path;
	struct control_client clients[CONTROL_MAX_CLIENTS];
};

static char *control_reply(json_object *ret)
{
	json_object *o = json_object_new_object();
	char *s;

	json_object_object_add(o, "return", ret ? ret : json_object_new_object());
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static char *control_error(const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static char *control_error(const char *cls, const char *fmt, ...)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();
	char desc[256], *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	json_object_object_add(e, "class", json_object_new_string(cls));
	json_object_object_add(e, "desc", json_object_new_string(desc));
	json_object_object_add(o, "error", e);
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static char *control_status(struct vm *vm)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "state",
			       json_object_new_string(vm_is_paused(vm) ? "paused" : "running"));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "cpus", json_object_new_int((int)vm->cfg->def.cpus));
	json_object_object_add(o, "memory", json_object_new_int64((int64_t)vm->cfg->def.memory));
	return control_reply(o);
}

static void add_line(void *ctx, const char *line)
{
	json_object_array_add(ctx, json_object_new_string(line));
}

/* {"devices": [LINE, ...]}: the lines of the crash report, from a running VM (a guest that
 * stops making progress: are its queues moving, is a vector masked or pending?). */
static char *control_devices(struct vm *vm)
{
	json_object *o = json_object_new_object(), *lines = json_object_new_array();

	vm_report(vm, add_line, lines);
	json_object_object_add(o, "devices", lines);
	return control_reply(o);
}

#if defined(KEEL_TEST_HOOKS)
/* {"disk": UID, "state": UID, "nvram": UID}: the lowest effective uid as which the worker
 * parsed each kind of file it was handed (-1: none parsed; parse_euid.h). */
static char *control_parse_euids(void)
{
	static const char *const names[PARSE_KINDS] = {"disk", "state", "nvram"};
	json_object *o = json_object_new_object();

	for (int k = 0; k < PARSE_KINDS; k++)
		json_object_object_add(o, names[k], json_object_new_int64(parse_euid_lowest(k)));
	return control_reply(o);
}
#endif

static const char *const control_names[] = {
	[CONTROL_STATUS] = "status",
	[CONTROL_PAUSE] = "pause",
	[CONTROL_RESUME] = "resume",
	[CONTROL_POWERDOWN] = "powerdown",
	[CONTROL_RESET] = "reset",
	[CONTROL_QUIT] = "quit",
	[CONTROL_SAVE] = "save",
	[CONTROL_RESTORE] = "restore",
	[CONTROL_DEVICES] = "devices",
	[CONTROL_DVD] = "dvd",
	[CONTROL_VCPU_STATS] = "vcpu-stats",
	[CONTROL_LINK] = "link",
	[CONTROL_NIC_ADD] = "nic-add",
	[CONTROL_NIC_REMOVE] = "nic-remove",
	[CONTROL_NIC_LIST] = "nic-list",
	[CONTROL_DISK_QOS] = "disk-qos",
#if defined(KEEL_TEST_HOOKS)
	[CONTROL_TEST_PARSE_EUIDS] = "test-parse-euids",
#endif
};

/* Parse and check one request line; on success *out is the request object (put it). */
static int parse_line(const char *line, size_t len, json_object **out, enum control_cmd *cmd,
		      const char **cls, char *why, size_t whylen)
{
	json_tokener *tok;
	json_object *req, *exec = NULL;
	const char *name = NULL;
	size_t i;
	int r = -EINVAL;

	*cls = "GenericError";
	if (len > CONTROL_MAX_LINE) {
		snprintf(why, whylen, "request longer than %d bytes", CONTROL_MAX_LINE);
		return -EINVAL;
	}
	tok = json_tokener_new();
	if (!tok) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	if (!req || json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(why, whylen, "malformed JSON: %s",
			 req ? "incomplete" : json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	for (i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
			snprintf(why, whylen, "malformed JSON: data after the request object");
			goto out;
		}
	}
	if (!json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "execute", &exec) ||
	    !json_object_is_type(exec, json_type_string)) {
		snprintf(why, whylen, "a request is an object with a string member \"execute\"");
		goto out;
	}
	name = json_object_get_string(exec);
	for (i = 0; i < sizeof(control_names) / sizeof(control_names[0]); i++) {
		if (!strcmp(name, control_names[i])) {
			*cmd = (enum control_cmd)i;
			*out = req;
			req = NULL;
			r = 0;
			goto out;
		}
	}
	*cls = "CommandNotFound";
	snprintf(why, whylen,
		 "unknown command '%.64s' (status, pause, resume, powerdown, reset, quit, save, "
		 "restore, devices, dvd, link, nic-add, nic-remove, nic-list)",
		 name);
out:
	if (req)
		json_object_put(req);
	json_tokener_free(tok);
	return r;
}

int control_parse(const char *line, size_t len, enum control_cmd *cmd, const char **cls, char *why,
		  size_t whylen)
{
	json_object *o = NULL;
	int r = parse_line(line, len, &o, cmd, cls, why, whylen);

	json_object_put(o);
	return r;
}

/* "save" takes {"arguments":{"dir":PATH}}, "restore" also an optional "paused":BOOL and
 * "fd":BOOL; the rest of the request o was checked by parse_line. */
static int control_dir_args(json_object *o, struct control_request *req, char *why, size_t whylen)
{
	const char *name = control_names[req->cmd];
	json_object *args, *dir, *paused, *fd;
	const char *s;
	int r = -EINVAL;

	if (!json_object_object_get_ex(o, "arguments", &args) ||
	    !json_object_is_type(args, json_type_object) ||
	    !json_object_object_get_ex(args, "dir", &dir) ||
	    !json_object_is_type(dir, json_type_string)) {
		snprintf(why, whylen, "%s needs \"arguments\":{\"dir\":PATH}", name);
		goto out;
	}
	s = json_object_get_string(dir);
	if (!*s || (size_t)json_object_get_string_len(dir) != strlen(s) ||
	    strlen(s) >= sizeof(req->dir)) {
		snprintf(why, whylen, "%s: dir must be a non-empty path shorter than %d bytes",
			 name, CONTROL_MAX_PATH);
		goto out;
	}
	strcpy(req->dir, s);
	if (json_object_object_get_ex(args, "paused", &paused)) {
		if (req->cmd != CONTROL_RESTORE ||
		    !json_object_is_type(paused, json_type_boolean)) {
			snprintf(why, whylen, "%s: \"paused\" %s", name,
				 req->cmd == CONTROL_RESTORE ? "must be true or false"
							     : "is an argument of restore");
			goto out;
		}
		req->paused = json_object_get_boolean(paused);
	}
	if (json_object_object_get_ex(args, "fd", &fd)) {
		if (req->cmd != CONTROL_RESTORE || !json_object_is_type(fd, json_type_boolean)) {
			snprintf(why, whylen, "%s: \"fd\" %s", name,
				 req->cmd == CONTROL_RESTORE ? "must be true or false"
							     : "is an argument of restore");
			goto out;
		}
		req->passed = json_object_get_boolean(fd);
	}
	r = 0;
out:
	return r;
}

/* "vcpu-stats" takes {"arguments":{"first":N}} or nothing (first 0). */
static int control_stats_args(json_object *o, struct control_request *req, char *why, size_t whylen)
{
	json_object *args, *first;
	int64_t n;

	if (!json_object_object_get_ex(o, "arguments", &args))
		return 0;
	if (!json_object_is_type(args, json_type_object) ||
	    (json_object_object_get_ex(args, "first", &first) &&
	     (!json_object_is_type(first, json_type_int) ||
	      (n = json_object_get_int64(first)) < 0 || n > 65535))) {
		snprintf(why, whylen, "vcpu-stats takes \"arguments\":{\"first\":N}, N from 0");
		return -EINVAL;
	}
	if (json_object_object_get_ex(args, "first", &first))
		req->first = (unsigned)json_object_get_int64(first);
	return 0;
}

/* An optional boolean argument: 0 with *out set, 1 when absent (*out as it was), -EINVAL when
 * not true or false. */
static int opt_bool(json_object *args, const char *key, bool *out)
{
	json_object *v;

	if (!json_object_object_get_ex(args, key, &v))
		return 1;
	if (!json_object_is_type(v, json_type_boolean))
		return -EINVAL;
	*out = json_object_get_boolean(v);
	return 0;
}

/* "dvd" takes {"arguments":{"drive":N,"path":PATH}} to insert or change a medium, "path":
 * null to eject, and no path to list the drives; drive is 0 (the first) when left out. */
static int control_dvd_args(json_object *o, struct control_request *req, char *why, size_t whylen)
{
	json_object *args, *drive, *path;
	int64_t n;

	req->dvd = CONTROL_DVD_LIST;
	if (!json_object_object_get_ex(o, "arguments", &args))
		return 0;
	if (!json_object_is_type(args, json_type_object)) {
		snprintf(why, whylen, "dvd: \"arguments\" must be an object");
		return -EINVAL;
	}
	json_object_object_foreach(args, key, val)
	{
		if (strcmp(key, "drive") && strcmp(key, "path") && strcmp(key, "fd")) {
			snprintf(why, whylen, "dvd: unknown argument '%.32s' (drive, path, fd)",
				 key);
			return -EINVAL;
		}
	}
	if (opt_bool(args, "fd", &req->passed) < 0) {
		snprintf(why, whylen, "dvd: \"fd\" must be true or false");
		return -EINVAL;
	}
	if (json_object_object_get_ex(args, "drive", &drive)) {
		n = json_object_get_int64(drive);
		if (!json_object_is_type(drive, json_type_int) || n < 0 || n >= 64) {
			snprintf(why, whylen, "dvd: \"drive\" must be a number from 0 to 63");
			return -EINVAL;
		}
		req->drive = (unsigned)n;
	}
	if (!json_object_object_get_ex(args, "path", &path))
		return 0;
	if (json_object_is_type(path, json_type_null)) {
		req->dvd = CONTROL_DVD_EJECT;
		return 0;
	}
	if (!json_object_is_type(path, json_type_string) || !json_object_get_string_len(path) ||
	    (size_t)json_object_get_string_len(path) != strlen(json_object_get_string(path)) ||
	    (size_t)json_object_get_string_len(path) >= sizeof(req->dir)) {
		snprintf(why, whylen,
			 "dvd: \"path\" must be null (eject) or a non-empty path shorter than %d "
			 "bytes",
			 CONTROL_MAX_PATH);
		return -EINVAL;
	}
	strcpy(req->dir, json_object_get_string(path));
	req->dvd = CONTROL_DVD_INSERT;
	return 0;
}

/* A string argument of at most cap - 1 bytes, no NUL inside; 1 when absent. */
static int nic_string(json_object *args, const char *key, char *out, size_t cap)
{
	json_object *v;

	if (!json_object_object_get_ex(args, key, &v))
		return 1;
	if (!json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) >= cap ||
	    (size_t)json_object_get_string_len(v) != strlen(json_object_get_string(v)))
		return -EINVAL;
	strcpy(out, json_object_get_string(v));
	return 0;
}

/* "link" takes {"arguments":{"nic":N,"up":BOOL}}, both required, or "mac":MAC instead of
 * "nic" (an adapter's index moves when one before it is hot-removed; its MAC does not). */
static int control_link_args(json_object *o, struct control_request *req, char *why, size_t whylen)
{
	json_object *args, *nic, *up;
	int64_t n;

	if (json_object_object_get_ex(o, "arguments", &args) &&
	    json_object_is_type(args, json_type_object) &&
	    json_object_object_get_ex(args, "up", &up) && json_object_object_length(args) == 2 &&
	    json_object_is_type(up, json_type_boolean) &&
	    nic_string(args, "mac", req->mac, sizeof(req->mac)) == 0) {
		req->up = json_object_get_boolean(up);
		return 0;
	}
	if (!json_object_object_get_ex(o, "arguments", &args) ||
	    !json_object_is_type(args, json_type_object) ||
	    !json_object_object_get_ex(args, "nic", &nic) ||
	    !json_object_object_get_ex(args, "up", &up) || json_object_object_length(args) != 2) {
		snprintf(why, whylen,
			 "link needs \"arguments\":{\"nic\":N,\"up\":BOOL} or "
			 "{\"mac\":MAC,\"up\":BOOL}");
		return -EINVAL;
	}
	n = json_object_get_int64(nic);
	if (!json_object_is_type(nic, json_type_int) || n < 0 || n >= VMDEF_MAX_NICS ||
	    !json_object_is_type(up, json_type_boolean)) {
		snprintf(why, whylen,
			 "link: \"nic\" must be a number from 0 to %d and \"up\" true or false",
			 VMDEF_MAX_NICS - 1);
		return -EINVAL;
	}
	req->nic = (unsigned)n;
	req->up = json_object_get_boolean(up);
	return 0;
}

/* nic-add's data path: "vhost" (the adapter's nets[].vhost, auto when left out) and
 * "vhost_fd" (its /dev/vhost-nets come with the request, one per queue pair, after the tap's
 * queues, so only with "fd":true, and never for vhost off, which takes none). */
static int control_vhost_args(json_object *args, struct control_request *req, char *why,
			      size_t whylen)
{
	char mode[8] = "auto";

	if (nic_string(args, "vhost", mode, sizeof(mode)) < 0 ||
	    vmdef_vhost_parse(mode, &req->vhost)) {
		snprintf(why, whylen,
			 "nic-add: \"vhost\" is \"auto\", \"off\" or \"on\" (the adapter's data "
			 "path, as nets[].vhost)");
		return -EINVAL;
	}
	if (opt_bool(args, "vhost_fd", &req->vhost_fd) < 0) {
		snprintf(why, whylen, "nic-add: \"vhost_fd\" must be true or false");
		return -EINVAL;
	}
	if (req->vhost_fd && (!req->passed || req->vhost == VM_VHOST_OFF)) {
		snprintf(why, whylen, "nic-add: \"vhost_fd\":true %s",
			 !req->passed ? "needs \"fd\":true (the tap's queues come first, "
					"/dev/vhost-nets after them)"
				      : "with \"vhost\":\"off\" (an adapter off vhost-net takes "
					"none)");
		return -EINVAL;
	}
	return 0;
}

/* "nic-add" takes {"arguments":{"tap":NAME,"mac":MAC,"fd":BOOL,"vhost":MODE,"vhost_fd":BOOL,
 * "queues":N}} (tap required; vhost auto, off or on as nets[].vhost; vhost_fd: the
 * /dev/vhost-nets come after the tap's queues, so it needs "fd" and a vhost other than off;
 * queues: the card's queue pairs, 1 when left out, as nets[].queues), "nic-remove"
 * {"arguments":{"slot":N}} or {"mac":MAC}, with "force":BOOL; the worker checks the values. */
static int control_nic_args(json_object *o, struct control_request *req, char *why, size_t whylen)
{
	bool add = req->cmd == CONTROL_NIC_ADD;
	json_object *args, *v;
	int64_t n;

	if (!json_object_object_get_ex(o, "arguments", &args) ||
	    !json_object_is_type(args, json_type_object))
		goto usage;
	json_object_object_foreach(args, key, val)
	{
		(void)val;
		if (add ? strcmp(key, "tap") && strcmp(key, "mac") && strcmp(key, "fd") &&
				    strcmp(key, "slot") && strcmp(key, "vhost") &&
				    strcmp(key, "vhost_fd") && strcmp(key, "queues")
			: strcmp(key, "slot") && strcmp(key, "mac") && strcmp(key, "force"))
			goto usage;
	}
	if (nic_string(args, "mac", req->mac, sizeof(req->mac)) < 0)
		goto usage;
	if (json_object_object_get_ex(args, "slot", &v)) {
		n = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || n < 1 || n > 31 ||
		    (!add && req->mac[0]))
			goto usage;
		req->slot = (unsigned)n;
	}
	if (add) {
		if (nic_string(args, "tap", req->tap, sizeof(req->tap)) || !req->tap[0])
			goto usage;
		if (opt_bool(args, "fd", &req->passed) < 0)
			goto usage;
		req->queues = 1;
		if (json_object_object_get_ex(args, "queues", &v)) {
			n = json_object_get_int64(v);
			if (!json_object_is_type(v, json_type_int) || n < 1 ||
			    n > VMDEF_NET_QUEUES_MAX) {
				snprintf(why, whylen,
					 "nic-add: \"queues\" is the card's queue pairs, a number "
					 "from 1 to %d",
					 VMDEF_NET_QUEUES_MAX);
				return -EINVAL;
			}
			req->queues = (unsigned)n;
		}
		return control_vhost_args(args, req, why, whylen);
	}
	if (opt_bool(args, "force", &req->force) < 0)
		goto usage;
	if (!req->slot && !req->mac[0])
		goto usage;
	return 0;
usage:
	snprintf(why, whylen,
		 add ? "nic-add needs \"arguments\":{\"tap\":NAME} (at most 15 characters), "
		       "optionally \"mac\":MAC, \"slot\":N (1 to 31), \"fd\":BOOL, "
		       "\"vhost\":\"auto\"|\"off\"|\"on\", \"vhost_fd\":BOOL and \"queues\":N"
		     : "nic-remove needs \"arguments\":{\"slot\":N} (1 to 31) or {\"mac\":MAC}, "
		       "optionally \"force\":BOOL");
	return -EINVAL;
}

static const char *const qos_keys[3] = {"max_iops", "max_bandwidth", "min_iops"};

/* "disk-qos" takes {"arguments":{"disk":N}} (a virtio-blk disk) or {"arguments":{"lun":N}}
 * (a disk on the SCSI controller) and optionally the limits to change, each a number (bounds
 * and consistency are the description's: vmdef_disk_qos_check). */
static int control_qos_args(json_object *o, struct control_request *req, char *why, size_t whylen)
{
	json_object *args, *v;
	int64_t n;

	if (!json_object_object_get_ex(o, "arguments", &args) ||
	    !json_object_is_type(args, json_type_object))
		goto usage;
	req->lun = json_object_object_get_ex(args, "lun", &v);
	if ((!req->lun && !json_object_object_get_ex(args, "disk", &v)) ||
	    (req->lun && json_object_object_get_ex(args, "disk", NULL)) ||
	    !json_object_is_type(v, json_type_int))
		goto usage;
	n = json_object_get_int64(v);
	if (n < 0 || n >= (req->lun ? VMDEF_MAX_LUNS : VMDEF_MAX_DISKS))
		goto usage;
	req->disk = (unsigned)n;
	json_object_object_foreach(args, key, val)
	{
		unsigned k;

		if (!strcmp(key, "disk") || !strcmp(key, "lun"))
			continue;
		for (k = 0; k < 3 && strcmp(key, qos_keys[k]); k++)
			;
		if (k == 3 || !json_object_is_type(val, json_type_int) ||
		    json_object_get_int64(val) < 0) {
			snprintf(why, whylen,
				 "disk-qos: \"%s\": the limits are max_iops, max_bandwidth and "
				 "min_iops, each a whole number, 0 or more",
				 key);
			return -EINVAL;
		}
		req->qos_given[k] = true;
		req->qos[k] = (uint64_t)json_object_get_int64(val);
	}
	return 0;
usage:
	snprintf(why, whylen,
		 "disk-qos needs \"arguments\":{\"disk\":N} (0 to %d) or {\"lun\":N} (0 to %d), "
		 "optionally with \"max_iops\", \"max_bandwidth\" and \"min_iops\"",
		 VMDEF_MAX_DISKS - 1, VMDEF_MAX_LUNS - 1);
	return -EINVAL;
}

int control_parse_request(const char *line, size_t len, struct control_request *req,
			  const char **cls, char *why, size_t whylen)
{
	json_object *o = NULL;
	int r;

	memset(req, 0, sizeof(*req));
	r = parse_line(line, len, &o, &req->cmd, cls, why, whylen);
	if (!r && (req->cmd == CONTROL_SAVE || req->cmd == CONTROL_RESTORE)) {
		*cls = "GenericError";
		r = control_dir_args(o, req, why, whylen);
	} else if (!r && req->cmd == CONTROL_DVD) {
		*cls = "GenericError";
		r = control_dvd_args(o, req, why, whylen);
	} else if (!r && req->cmd == CONTROL_VCPU_STATS) {
		*cls = "GenericError";
		r = control_stats_args(o, req, why, whylen);
	} else if (!r && (req->cmd == CONTROL_NIC_ADD || req->cmd == CONTROL_NIC_REMOVE)) {
		*cls = "GenericError";
		r = control_nic_args(o, req, why, whylen);
	} else if (!r && req->cmd == CONTROL_LINK) {
		*cls = "GenericError";
		r = control_link_args(o, req, why, whylen);
	} else if (!r && req->cmd == CONTROL_DISK_QOS) {
		*cls = "GenericError";
		r = control_qos_args(o, req, why, whylen);
	}
	json_object_put(o);
	return r;
}

/* Save the VM to dir: a running VM is paused first and stays paused (docs/keel-vmm.md). */
static char *control_save(struct vm *vm, const char *host_dir)
{
	char err[400], dir[CONTROL_MAX_PATH];
	bool was_paused = vm_is_paused(vm);
	const char *wait;
	int r;

	if (jail_path(host_dir, dir, sizeof(dir)))
		return control_error("GenericError", "save: %s is outside the worker's jail",
				     host_dir);
	if (!was_paused) {
		r = vm_pause(vm);
		if (r)
			return control_error("GenericError", "save: cannot pause: %s",
					     vm_pause_error(r));
	}
	/* Asked with the vCPUs stopped: a guest's eject between the question and the pause
	 * would otherwise be saved half done (the card still in the description). */
	wait = hotplug_save_blocker(vm);
	if (wait) {
		if (!was_paused && vm_resume(vm))
			log_err("save: cannot resume after refusing it");
		return control_error("GenericError", "save: %s", wait);
	}
	r = snapshot_save(vm, dir, err, sizeof(err));
	if (r)
		return control_error("GenericError", "save failed: %s", err);
	return control_reply(NULL);
}

/* Replace the machine with the state saved in dir, or in the two files passed with the
 * request (state, then memory; dir names them): docs/keel-vmm.md. */
static char *control_restore(struct vm *vm, const struct control_request *req, int *passed)
{
	char err[400], dir[CONTROL_MAX_PATH];
	int r;

	if (req->passed && (passed[0] < 0 || passed[1] < 0))
		return control_error("GenericError",
				     "restore: \"fd\":true needs two descriptors with the request, "
				     "the state file's and then the memory file's");
	if (req->passed) {
		/* Read as files opened by path are (jail_prep.h): the worker opens nothing. */
		snprintf(dir, sizeof(dir), "%s", req->dir);
		r = snapshot_give(dir, passed[0], passed[1], err, sizeof(err));
		passed[0] = passed[1] = -1;
		if (r)
			return control_error("GenericError", "restore failed: %s", err);
	} else if (jail_path(req->dir, dir, sizeof(dir))) {
		return control_error("GenericError",
				     "restore: %s is outside the worker's jail (pass the files "
				     "with the request: \"fd\":true)",
				     req->dir);
	}
	r = vm_restore(vm, dir, req->paused, err, sizeof(err));
	if (req->passed)
		jail_prep_close(); /* what a refused restore did not read */
	if (r)
		return control_error("GenericError", "restore failed: %s", err);
	return control_reply(NULL);
}

/* The disk req names: a virtio-blk disk (its device in *vd) or a SCSI disk (the
 * controller's), its description in *d; NULL with *why when the VM has none such. */
static struct vm_disk *qos_disk(struct vm *vm, const struct control_request *req,
				struct virtio_dev **vd, const char **why)
{
	struct vm_def *def = &vm->cfg->def;

	if (req->lun) {
		*vd = vm->scsi_dev;
		*why = "the VM has no disk at SCSI LUN";
		return req->disk < def->scsi.nluns &&
				       def->scsi.luns[req->disk].type == VM_LUN_DISK && *vd
			       ? &def->scsi.luns[req->disk].disk
			       : NULL;
	}
	*vd = req->disk < def->ndisks ? vm->disk_dev[req->disk] : NULL;
	*why = "the VM has no virtio-blk disk";
	return *vd ? &def->disks[req->disk] : NULL;
}

/* A disk's QoS (virtio-blk, or a disk on the SCSI controller): new limits when the request
 * gives some (checked as the description's, then applied at once and kept in the worker's
 * description, which a save records), then the limits and the device's counters
 * (docs/keel-vmm.md). */
static char *control_disk_qos(struct vm *vm, const struct control_request *req)
{
	struct virtio_dev *vd;
	const char *why;
	struct vm_disk *d = qos_disk(vm, req, &vd, &why), nd;
	struct blk_qos_limits lim, set;
	const struct blk_qos_limits *change;
	struct blk_qos_stats st;
	unsigned waiting;
	char err[200];
	json_object *o;

	if (!d)
		return control_error("GenericError", "disk-qos: %s %u", why, req->disk);
	nd = *d;
	if (req->qos_given[0])
		nd.max_iops = req->qos[0];
	if (req->qos_given[1])
		nd.max_bw = req->qos[1];
	if (req->qos_given[2])
		nd.min_iops = req->qos[2];
	if (vmdef_disk_qos_check(&nd, "disk-qos", err, sizeof(err)))
		return control_error("GenericError", "%s", err);
	set = (struct blk_qos_limits){nd.max_iops, nd.max_bw, nd.min_iops};
	change = req->qos_given[0] || req->qos_given[1] || req->qos_given[2] ? &set : NULL;
	if (!req->lun)
		virtio_blk_qos(vd, change, &lim, &st, &waiting);
	else if (virtio_scsi_qos(vd, req->disk, change, &lim, &st, &waiting))
		return control_error("GenericError", "disk-qos: %s %u", why, req->disk);
	d->max_iops = lim.max_iops;
	d->max_bw = lim.max_bw;
	d->min_iops = lim.min_iops;
	o = json_object_new_object();
	json_object_object_add(o, req->lun ? "lun" : "disk", json_object_new_int((int)req->disk));
	json_object_object_add(o, "max_iops", json_object_new_int64((int64_t)lim.max_iops));
	json_object_object_add(o, "max_bandwidth", json_object_new_int64((int64_t)lim.max_bw));
	json_object_object_add(o, "min_iops", json_object_new_int64((int64_t)lim.min_iops));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)st.requests));
	json_object_object_add(o, "ios", json_object_new_int64((int64_t)st.ios));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)st.bytes));
	json_object_object_add(o, "throttled", json_object_new_int64((int64_t)st.throttled));
	json_object_object_add(o, "waiting", json_object_new_int64(waiting));
	json_object_object_add(o, "below_min_seconds",
			       json_object_new_int64((int64_t)st.below_min_seconds));
	json_object_object_add(o, "below_min", json_object_new_boolean(st.below_min));
	return control_reply(o);
}

/* The DVD drives and their media: {"drives": [{"drive", "lun", "medium", "tray",
 * "locked"}, ...]}, after inserting or ejecting one as req says (docs/keel-vmm.md). */
static char *control_dvd(struct vm *vm, const struct control_request *req, int *passed_fd)
{
	const struct machine_media_ops *ops = vm->media_ops;
	json_object *o, *drives;
	static struct machine_medium md;
	char err[400], path[CONTROL_MAX_PATH];
	unsigned n = ops ? ops->count(vm->media_opaque) : 0;

	if (!n)
		return control_error("GenericError", "dvd: the VM has no DVD drive");
	if (req->drive >= n)
		return control_error("GenericError", "dvd: the VM has %u DVD drive%s, no drive %u",
				     n, n == 1 ? "" : "s", req->drive);
	if (req->dvd == CONTROL_DVD_INSERT && req->passed && *passed_fd < 0)
		return control_error("GenericError", "dvd: no descriptor came with the request");
	if (req->dvd == CONTROL_DVD_INSERT && req->passed)
		snprintf(path, sizeof(path), "%s", req->dir); /* the name only */
	else if (req->dvd == CONTROL_DVD_INSERT && jail_path(req->dir, path, sizeof(path)))
		return control_error("GenericError", "dvd: %s is outside the worker's jail",
				     req->dir);
	if (req->dvd != CONTROL_DVD_LIST) {
		int fd = req->dvd == CONTROL_DVD_INSERT && req->passed ? *passed_fd : -1;

		if (fd >= 0)
			*passed_fd = -1; /* change takes it over, failing or not */
		if (ops->change(vm->media_opaque, req->drive,
				req->dvd == CONTROL_DVD_INSERT ? path : NULL, fd, err, sizeof(err)))
			return control_error("GenericError", "dvd: %s", err);
	}
	o = json_object_new_object();
	drives = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		json_object *d = json_object_new_object();

		ops->get(vm->media_opaque, i, &md);
		json_object_object_add(d, "drive", json_object_new_int((int)i));
		json_object_object_add(d, "lun", json_object_new_int((int)md.lun));
		json_object_object_add(d, "medium",
				       md.path[0] ? json_object_new_string(md.path) : NULL);
		json_object_object_add(d, "tray",
				       json_object_new_string(md.tray_open ? "open" : "closed"));
		json_object_object_add(d, "locked", json_object_new_boolean(md.locked));
		json_object_array_add(drives, d);
	}
	json_object_object_add(o, "drives", drives);
	return control_reply(o);
}

/* {"vcpus": TOTAL, "first": F, "count": K} with the KVM statistics fds of vCPUs F.. F+K-1
 * in out (keeld's heartbeat reads them: is the guest taking interrupts?). The worker keeps
 * its own; the reply carries copies. A vCPU without one (an older kernel) ends the run, so
 * K < TOTAL - F tells keeld to use its fallback. */
static char *control_vcpu_stats(struct vm *vm, unsigned first, int *out, size_t *nout)
{
	json_object *o = json_object_new_object();
	unsigned total = vm->cfg->def.cpus, k = 0;

	while (first + k < total && k < UNIX_MAX_FDS && vm->vcpus[first + k].stats_fd >= 0) {
		out[k] = vm->vcpus[first + k].stats_fd;
		k++;
	}
	*nout = k;
	json_object_object_add(o, "vcpus", json_object_new_int((int)total));
	json_object_object_add(o, "first", json_object_new_int((int)first));
	json_object_object_add(o, "count", json_object_new_int((int)k));
	return control_reply(o);
}

static void nic_emit(void *ctx, unsigned slot, const char *tap, const char *mac, bool removing)
{
	json_object *n = json_object_new_object();

	json_object_object_add(n, "slot", json_object_new_int((int)slot));
	json_object_object_add(n, "tap", json_object_new_string(tap));
	json_object_object_add(n, "mac", json_object_new_string(mac));
	json_object_object_add(n, "removing", json_object_new_boolean(removing));
	json_object_array_add(ctx, n);
}

/* nic-add, nic-remove, nic-list: hot plug (hotplug.c). nic-add takes exactly the npassed
 * descriptors the request says came with it: the tap's queues, one per queue pair
 * (passed[0..queues), "fd"), and then as many /dev/vhost-nets (passed[queues..2 * queues),
 * "vhost_fd"). Any other count is refused, taking none (the caller closes what is left in
 * passed). */
static char *control_nic(struct vm *vm, const struct control_request *req, int *passed,
			 size_t npassed)
{
	json_object *o;
	char err[256];
	unsigned slot = 0, q = req->queues,
		 want = ((unsigned)req->passed + (unsigned)req->vhost_fd) * req->queues;
	int r, taps[VMDEF_NET_QUEUES_MAX], vhosts[VMDEF_NET_QUEUES_MAX];

	if (req->cmd == CONTROL_NIC_LIST) {
		json_object *nics = json_object_new_array();

		hotplug_nic_list(vm, nic_emit, nics);
		o = json_object_new_object();
		json_object_object_add(o, "nics", nics);
		return control_reply(o);
	}
	if (req->cmd == CONTROL_NIC_REMOVE) {
		r = hotplug_nic_remove(vm, req->slot, req->mac, req->force, err, sizeof(err));
		return r ? control_error("GenericError", "nic-remove: %s", err)
			 : control_reply(NULL);
	}
	if (npassed != want)
		return control_error(
			"GenericError",
			"nic-add: %zu descriptor%s came with the request, which says %u "
			"(\"fd\":true: the tap's queues, one per queue pair; \"vhost_fd\":true: "
			"as many /dev/vhost-nets, after them): refused, nothing added",
			npassed, npassed == 1 ? "" : "s", want);
	/* hotplug_nic_add takes them over */
	for (unsigned k = 0; k < VMDEF_NET_QUEUES_MAX; k++) {
		taps[k] = req->passed && k < q ? passed[k] : -1;
		vhosts[k] = req->vhost_fd && k < q ? passed[q + k] : -1;
	}
	for (unsigned k = 0; k < want; k++)
		passed[k] = -1;
	slot = req->slot;
	r = hotplug_nic_add(vm, req->tap, req->mac, req->vhost, q, taps,
			    req->vhost_fd ? vhosts : NULL, &slot, err, sizeof(err));
	if (r)
		return control_error("GenericError", "nic-add: %s", err);
	o = json_object_new_object();
	json_object_object_add(o, "slot", json_object_new_int((int)slot));
	return control_reply(o);
}

/* Run one request line; returns the reply line (without newline) for the caller to free;
 * descriptors to send with it (the worker's own: not to be closed) in out_fds. */
static char *control_handle_line(struct vm *vm, const char *line, size_t len, int *passed,
				 size_t npassed, int *out_fds, size_t *nout)
{
	static struct control_request req;
	enum control_cmd cmd;
	const char *cls;
	char why[256]; /* the longest refusal: nic-add's usage, 174 characters */
	int r;

	if (control_parse_request(line, len, &req, &cls, why, sizeof(why)))
		return control_error(cls, "%s", why);
	cmd = req.cmd;
	switch (cmd) {
	case CONTROL_STATUS:
		return control_status(vm);
	case CONTROL_DEVICES:
		return control_devices(vm);
	case CONTROL_DVD:
		return control_dvd(vm, &req, &passed[0]);
	case CONTROL_NIC_ADD:
	case CONTROL_NIC_REMOVE:
	case CONTROL_NIC_LIST:
		return control_nic(vm, &req, passed, npassed);
	case CONTROL_VCPU_STATS:
		return control_vcpu_stats(vm, req.first, out_fds, nout);
	case CONTROL_DISK_QOS:
		return control_disk_qos(vm, &req);
	case CONTROL_LINK:
		if (req.mac[0] && hotplug_nic_index(vm, req.mac, &req.nic))
			return control_error("GenericError",
					     "link: the VM has no network adapter with MAC %s",
					     req.mac);
		if (!vm->nic_link[req.nic].fn)
			return control_error("GenericError",
					     "link: the VM has no network adapter %u", req.nic);
		vm->nic_link[req.nic].fn(vm->nic_link[req.nic].opaque, req.up);
		log_info("network adapter %u: link %s (the host's request)", req.nic,
			 req.up ? "up" : "down");
		return control_reply(NULL);
	case CONTROL_PAUSE:
		if (vm_is_paused(vm))
			return control_error("InvalidState", "VM is already paused");
		r = vm_pause(vm);
		break;
	case CONTROL_RESUME:
		if (!vm_is_paused(vm))
			return control_error("InvalidState", "VM is not paused");
		r = vm_resume(vm);
		break;
	case CONTROL_POWERDOWN:
		if (vm_is_paused(vm))
			return control_error("InvalidState",
					     "VM is paused: resume it to let it shut down");
		vm_power_button(vm);
		r = 0;
		break;
	case CONTROL_RESET:
		r = vm_reset(vm);
		break;
	case CONTROL_SAVE:
		return control_save(vm, req.dir);
	case CONTROL_RESTORE:
		return control_restore(vm, &req, passed);
#if defined(KEEL_TEST_HOOKS)
	case CONTROL_TEST_PARSE_EUIDS:
		return control_parse_euids();
#endif
	case CONTROL_QUIT:
	default:
		machine_request(&vm->machine, VM_EVENT_QUIT, 0, "quit through the control socket");
		r = 0;
		break;
	}
	if (r)
		return control_error("GenericError", "%s failed: %s", control_names[cmd],
				     cmd == CONTROL_PAUSE ? vm_pause_error(r) : strerror(-r));
	return control_reply(NULL);
}

static void control_drop_passed(struct control_client *cl)
{
	for (unsigned i = 0; i < CONTROL_PASSED_MAX; i++) {
		if (cl->passed[i] >= 0)
			close(cl->passed[i]);
		cl->passed[i] = -1;
	}
	cl->npassed = 0;
}

static void control_drop(struct control_client *cl)
{
	loop_del(cl->ctl->vm->loop, cl->fd);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
	control_drop_passed(cl);
}

/* Read what the client sent, and the descriptors that came with it (keeld passes the DVD
 * image for "dvd" so; a jailed worker opens nothing by name). Past CONTROL_PASSED_MAX, extra
 * descriptors are closed. */
static ssize_t control_recv(struct control_client *cl)
{
	int fds[UNIX_MAX_FDS];
	size_t nfd = 0, k = 0;
	ssize_t n = unix_recv_fds(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, fds,
				  UNIX_MAX_FDS, &nfd, MSG_DONTWAIT);

	cl->npassed += nfd;
	for (size_t i = 0; i < nfd; i++) {
		while (k < CONTROL_PASSED_MAX && cl->passed[k] >= 0)
			k++;
		if (k < CONTROL_PASSED_MAX)
			cl->passed[k] = fds[i];
		else
			close(fds[i]);
	}
	return n;
}

/* The reply line; fds (at most UNIX_MAX_FDS) go with its first bytes. */
static void control_send_line(struct control_client *cl, const char *s, const int *fds, size_t nfd)
{
	size_t len = strlen(s), off = 0;

	/* Replies are small; a client that does not read them is dropped, not waited on. */
	while (off <= len) {
		const char *p = off < len ? s + off : "\n";
		size_t n = off < len ? len - off : 1;
		ssize_t w = unix_send_fds(cl->fd, p, n, fds, nfd, MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			control_drop(cl);
			return;
		}
		nfd = 0; /* sent with the first bytes */
		off += (size_t)w;
		if (off == len + 1)
			break;
	}
}

static void control_client_cb(void *opaque, uint32_t events)
{
	struct control_client *cl = opaque;
	ssize_t n;
	char *nl;

	n = control_recv(cl);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		control_drop(cl);
		return;
	}
	cl->len += (size_t)n;
	while (cl->fd >= 0 && (nl = memchr(cl->buf, '\n', cl->len))) {
		size_t linelen = (size_t)(nl - cl->buf), nout = 0;
		int out_fds[UNIX_MAX_FDS];
		char *reply = linelen ? control_handle_line(cl->ctl->vm, cl->buf, linelen,
							    cl->passed, cl->npassed, out_fds, &nout)
				      : NULL;

		control_drop_passed(cl); /* a descriptor belongs to its request line */

		if (reply) {
			control_send_line(cl, reply, out_fds, nout);
			free(reply);
		}
		if (cl->fd < 0)
			return;
		memmove(cl->buf, nl + 1, cl->len - linelen - 1);
		cl->len -= linelen + 1;
	}
	if (cl->len == sizeof(cl->buf)) {
		char *reply = control_error("GenericError", "request longer than %d bytes",
					    CONTROL_MAX_LINE);

		if (reply) {
			control_send_line(cl, reply, NULL, 0);
			free(reply);
		}
		if (cl->fd >= 0)
			control_drop(cl);
	}
}

static void control_accept_cb(void *opaque, uint32_t events)
{
	struct control *c = opaque;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), i;

	if (fd < 0)
		return;
	for (i = 0; i < CONTROL_MAX_CLIENTS && c->clients[i].fd >= 0; i++)
		;
	if (i == CONTROL_MAX_CLIENTS ||
	    loop_add(c->vm->loop, fd, EPOLLIN, control_client_cb, &c->clients[i])) {
		log_warn("control: too many clients, refusing one");
		close(fd);
		return;
	}
	c->clients[i].fd = fd;
	for (unsigned k = 0; k < CONTROL_PASSED_MAX; k++)
		c->clients[i].passed[k] = -1;
	c->clients[i].npassed = 0;
	c->clients[i].len = 0;
}

int control_create(struct vm *vm, const char *path, struct control **out, char *err, size_t errlen)
{
	struct control *c;
	int i, r, fd = jail_listen(path, CONTROL_BACKLOG);

	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on control socket %s: %s", path,
			 fd == -EEXIST	     ? "a file that is not a socket is in the way"
			 : fd == -EADDRINUSE ? "another process is serving it"
					     : strerror(-fd));
		return fd;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->vm = vm;
	c->listen_fd = fd;
	for (i = 0; i < CONTROL_MAX_CLIENTS; i++)
		c->clients[i] = (struct control_client){.ctl = c, .fd = -1};
	c->path = strdup(path);
	r = c->path ? loop_add(vm->loop, c->listen_fd, EPOLLIN, control_accept_cb, c) : -ENOMEM;
	if (r) {
		snprintf(err, errlen, "cannot watch control socket: %s", strerror(-r));
		close(c->listen_fd);
		unlink(path);
		free(c->path);
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void control_destroy(struct control *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			close(c->clients[i].fd);
	close(c->listen_fd);
	unlink(c->path);
	free(c->path);
	free(c);
}
