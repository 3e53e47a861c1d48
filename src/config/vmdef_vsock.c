/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio-vsock device: the "vsock" field (docs/vm-config.md), null (absent) or
 * {"cid": N, "pci_slot": N}. The guest's context ID is what the guest sees; the Unix socket
 * its host side listens on is the worker's wiring (keel-vmm --vsock socket=PATH, keeld:
 * vsock.sock in the VM's directory), not part of the description. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/vmdef_device.h"
#include "config/vmdef_json.h"
#include "lib/error.h"

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
};
