/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio-vsock device: the "vsock" field (docs/vm-config.md), null (absent) or
 * {"cid": N, "pci_slot": N}. The guest's context ID is what the guest sees; the Unix socket
 * its host side listens on is the worker's wiring (keel-vmm --vsock socket=PATH, keeld:
 * vsock.sock in the VM's directory), not part of the description. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/vmdef_cli.h"
#include "config/vmdef_device.h"
#include "config/vmdef_json.h"
#include "lib/error.h"
#include "lib/parse.h"

static unsigned vsock_count(const struct vm_def *def)
{
	return def->vsock.present;
}

static uint8_t *vsock_slot(struct vm_def *def, unsigned i)
{
	return &def->vsock.pci_slot;
}

static int vsock_parse(struct vm_def *def, json_object *v, char *err, size_t errlen)
{
	struct vm_vsock tmp = {.present = true, .cid = VMDEF_VSOCK_CID_DEFAULT};
	int64_t cid;

	if (json_object_is_type(v, json_type_null)) {
		def->vsock = (struct vm_vsock){0};
		return 0;
	}
	if (!json_object_is_type(v, json_type_object)) {
		error_set(err, errlen, "field 'vsock' must be null or an object");
		return -EINVAL;
	}
	json_object_object_foreach(v, key, val)
	{
		if (!strcmp(key, "cid")) {
			if (vmdef_get_int(val, "vsock.cid", VMDEF_VSOCK_CID_MIN,
					  VMDEF_VSOCK_CID_MAX, &cid, err, errlen))
				return -EINVAL;
			tmp.cid = (uint32_t)cid;
		} else if (!strcmp(key, "pci_slot")) {
			if (vmdef_get_slot(val, "vsock.pci_slot", &tmp.pci_slot, err, errlen))
				return -EINVAL;
		} else {
			error_set(err, errlen, "unknown field '%s' in vsock", key);
			return -EINVAL;
		}
	}
	def->vsock = tmp;
	return 0;
}

static int vsock_to_json(const struct vm_def *def, json_object **out)
{
	*out = NULL;
	if (!def->vsock.present)
		return 0;
	*out = json_object_new_object();
	if (!*out)
		return -ENOMEM;
	json_object_object_add(*out, "cid", json_object_new_int64(def->vsock.cid));
	if (def->vsock.pci_slot)
		json_object_object_add(*out, "pci_slot", json_object_new_int(def->vsock.pci_slot));
	return 0;
}

/* A description that did not come through vsock_parse (keeld's store) gets the same bound. */
static int vsock_check(const struct vm_def *def, char *err, size_t errlen)
{
	if (!def->vsock.present ||
	    (def->vsock.cid >= VMDEF_VSOCK_CID_MIN && def->vsock.cid <= VMDEF_VSOCK_CID_MAX))
		return 0;
	error_set(err, errlen, "vsock.cid %u: the guest's context ID must be from %d to %u",
		  def->vsock.cid, VMDEF_VSOCK_CID_MIN, VMDEF_VSOCK_CID_MAX);
	return -EINVAL;
}

static bool vsock_same(const struct vm_def *nd, unsigned i, const struct vm_def *old, unsigned j)
{
	return true;
}

static bool vsock_hw_equal(const struct vm_def *a, unsigned i, const struct vm_def *b, unsigned j)
{
	return a->vsock.present == b->vsock.present &&
	       (!a->vsock.present ||
		(a->vsock.pci_slot == b->vsock.pci_slot && a->vsock.cid == b->vsock.cid));
}

static bool vsock_guest_equal(const struct vm_def *saved, unsigned i, const struct vm_def *cur,
			      unsigned j, char *why, size_t len)
{
	if (saved->vsock.cid == cur->vsock.cid)
		return true;
	snprintf(why, len, "the virtio-vsock device had guest CID %u, it now has %u",
		 saved->vsock.cid, cur->vsock.cid);
	return false;
}

/* keel-vmm's --vsock and --vsock-socket (config/vmdef_cli.h): where the host side listens. */
int vmdef_cli_vsock(const char *s, uint32_t *cid, char socket[VMDEF_VSOCK_SOCKET_MAX + 1],
		    char *err, size_t errlen)
{
	char k[16], v[VMDEF_PATH_MAX + 1];
	const char *p = s;
	uint64_t x;
	int too_long;

	*cid = 0;
	socket[0] = 0;
	while ((p = vmdef_cli_next_kv(p, k, sizeof(k), v, sizeof(v), &too_long))) {
		if (too_long) {
			snprintf(err, errlen, "--vsock %s: an option or value is too long", s);
			return -EINVAL;
		}
		if (socket[0]) {
			/* Whatever follows socket=PATH was part of the path: a path is never split
			 * (nor a second socket= taken in its place). */
			snprintf(err, errlen,
				 "--vsock %s: the socket path cannot contain a comma (and comes "
				 "last); pass such a path whole with --vsock-socket=PATH",
				 s);
			return -EINVAL;
		}
		if (!strcmp(k, "cid") &&
		    !parse_uint(v, VMDEF_VSOCK_CID_MIN, VMDEF_VSOCK_CID_MAX, &x)) {
			*cid = (uint32_t)x;
		} else if (!strcmp(k, "socket") && *v) {
			if (vmdef_cli_abs_path(v, socket, VMDEF_VSOCK_SOCKET_MAX + 1)) {
				snprintf(err, errlen,
					 "--vsock: the socket's absolute path must be at most %d "
					 "bytes (PATH_<port> must fit a Unix socket address): %s",
					 VMDEF_VSOCK_SOCKET_MAX, v);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen,
				 "--vsock %s: expected [cid=N,]socket=PATH with N the guest's "
				 "context ID (%d to %u)",
				 s, VMDEF_VSOCK_CID_MIN, VMDEF_VSOCK_CID_MAX);
			return -EINVAL;
		}
	}
	if (!socket[0]) {
		snprintf(err, errlen, "--vsock %s: socket=PATH is required", s);
		return -EINVAL;
	}
	return 0;
}

static int vsock_option(struct vm_def *def, struct vmdef_host *host, const char *arg, char *err,
			size_t errlen)
{
	return vmdef_cli_vsock(arg, &host->vsock_cid, host->vsock_socket, err, errlen);
}

static int vsock_socket_option(struct vm_def *def, struct vmdef_host *host, const char *arg,
			       char *err, size_t errlen)
{
	if (!*arg || vmdef_cli_abs_path(arg, host->vsock_socket, VMDEF_VSOCK_SOCKET_MAX + 1)) {
		snprintf(err, errlen,
			 "--vsock-socket: the socket's absolute path must be 1 to %d bytes "
			 "(PATH_<port> must fit a Unix socket address): %s",
			 VMDEF_VSOCK_SOCKET_MAX, arg);
		return -EINVAL;
	}
	return 0;
}

/* Without --config the options make the device; with it, they must match the file's. */
static int vsock_options_done(struct vm_def *def, struct vmdef_host *host, const char *config_path,
			      char *err, size_t errlen)
{
	if (!config_path) {
		if (host->vsock_socket[0])
			def->vsock = (struct vm_vsock){
				.present = true,
				.cid = host->vsock_cid ? host->vsock_cid : VMDEF_VSOCK_CID_DEFAULT};
		return 0;
	}
	if (def->vsock.present && !host->vsock_socket[0]) {
		snprintf(err, errlen,
			 "the VM has a virtio-vsock device: say where its host side "
			 "listens with --vsock socket=PATH");
		return -EINVAL;
	}
	if (!def->vsock.present && host->vsock_socket[0]) {
		snprintf(err, errlen, "--vsock: the VM described in %s has no virtio-vsock device",
			 config_path);
		return -EINVAL;
	}
	if (host->vsock_cid && host->vsock_cid != def->vsock.cid) {
		snprintf(err, errlen,
			 "--vsock cid=%u: the VM described in %s has guest CID %u (leave "
			 "cid= out with --config)",
			 host->vsock_cid, config_path, def->vsock.cid);
		return -EINVAL;
	}
	return 0;
}

static const struct vmdef_option vsock_options[] = {
	{"vsock", "[cid=N,]socket=PATH",
	 "a virtio-vsock device; its host side listens on PATH_<port> (with --config too)", true,
	 vsock_option},
	{"vsock-socket", "PATH",
	 "--vsock socket=PATH with PATH given whole (it may contain a comma; with --config too)",
	 true, vsock_socket_option},
	{0},
};

const struct vmdef_device_kind vmdef_vsock_kind = {
	.field = "vsock",
	.max = 1,
	.count = vsock_count,
	.slot = vsock_slot,
	.parse = vsock_parse,
	.to_json = vsock_to_json,
	.check = vsock_check,
	.same = vsock_same,
	.hw_equal = vsock_hw_equal,
	.guest_equal = vsock_guest_equal,
	.options = vsock_options,
	.options_done = vsock_options_done,
};
