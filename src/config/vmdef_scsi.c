/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-scsi controller in a VM description: the "scsi" field (docs/vm-config.md),
 * null or {"pci_slot": N, "luns": [LUN, ...]}, each LUN {"type": "disk", "path": ..., and
 * the settings of a "disks" entry} or {"type": "dvd", "path": FILE or null (an empty
 * drive)}. A LUN's number is its index. The controller is there when it has a LUN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/vmdef_cli.h"
#include "config/vmdef_device.h"
#include "config/vmdef_json.h"
#include "lib/error.h"

static const char *const lun_types[] = {"disk", "dvd"};

static unsigned scsi_count(const struct vm_def *def)
{
	return def->scsi.nluns > 0;
}

static uint8_t *scsi_slot(struct vm_def *def, unsigned i)
{
	return &def->scsi.pci_slot;
}

static void luns_free(struct vm_lun *luns, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(luns[i].disk.path);
}

/* A DVD drive takes a path (or null) and nothing else; it is read-only and raw. */
static int parse_lun(struct vm_lun *lun, unsigned i, json_object *o, char *err, size_t errlen)
{
	json_object *t;
	char what[24];
	unsigned type;
	int ret;

	snprintf(what, sizeof(what), "scsi.luns[%u]", i);
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "type", &t)) {
		error_set(err, errlen, "%s must be an object with a \"type\" (disk or dvd)", what);
		return -EINVAL;
	}
	if (vmdef_get_enum(t, "scsi.luns[].type", lun_types, 2, &type, err, errlen))
		return -EINVAL;
	lun->type = (enum vm_lun_type)type;
	json_object_object_foreach(o, key, val)
	{
		if (!strcmp(key, "type"))
			continue;
		if (lun->type == VM_LUN_DVD) {
			if (strcmp(key, "path")) {
				error_set(err, errlen,
					  "unknown field '%s' in %s (a DVD drive has only a path)",
					  key, what);
				return -EINVAL;
			}
			ret = vmdef_get_path(val, "scsi.luns[].path", true, &lun->disk.path, err,
					     errlen);
			if (ret)
				return ret;
			continue;
		}
		ret = vmdef_disk_field(&lun->disk, what, key, val, false, err, errlen);
		if (ret < 0)
			return ret;
		if (ret) {
			error_set(err, errlen, "unknown field '%s' in %s", key, what);
			return -EINVAL;
		}
	}
	if (lun->type == VM_LUN_DVD) {
		lun->disk.readonly = true;
		lun->disk.format = VM_DISK_RAW;
	} else if (!lun->disk.path) {
		error_set(err, errlen, "%s (a disk) has no 'path'", what);
		return -EINVAL;
	}
	return vmdef_disk_qos_check(&lun->disk, what, err, errlen);
}

static int scsi_parse(struct vm_def *def, json_object *v, char *err, size_t errlen)
{
	struct vm_scsi tmp = {0};
	json_object *luns = NULL;
	size_t n;
	int ret = 0;

	if (json_object_is_type(v, json_type_null))
		goto done;
	if (!json_object_is_type(v, json_type_object)) {
		error_set(err, errlen, "field 'scsi' must be null or an object");
		return -EINVAL;
	}
	json_object_object_foreach(v, key, val)
	{
		if (!strcmp(key, "pci_slot")) {
			if (vmdef_get_slot(val, "scsi.pci_slot", &tmp.pci_slot, err, errlen))
				return -EINVAL;
		} else if (!strcmp(key, "luns") && json_object_is_type(val, json_type_array)) {
			luns = val;
		} else {
			if (!strcmp(key, "luns"))
				error_set(err, errlen, "field 'scsi.luns' must be an array");
			else
				error_set(err, errlen, "unknown field '%s' in scsi", key);
			return -EINVAL;
		}
	}
	n = luns ? json_object_array_length(luns) : 0;
	if (n > VMDEF_MAX_LUNS) {
		error_set(err, errlen, "the SCSI controller has at most %d LUNs, not %zu",
			  VMDEF_MAX_LUNS, n);
		return -EINVAL;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		tmp.nluns = (unsigned)i + 1;
		ret = parse_lun(&tmp.luns[i], (unsigned)i, json_object_array_get_idx(luns, i), err,
				errlen);
	}
	if (ret) {
		luns_free(tmp.luns, tmp.nluns);
		return ret;
	}
	if (!tmp.nluns)
		tmp.pci_slot = 0;
done:
	luns_free(def->scsi.luns, def->scsi.nluns);
	def->scsi = tmp;
	return 0;
}

static int scsi_to_json(const struct vm_def *def, json_object **out)
{
	json_object *o, *luns;

	*out = NULL;
	if (!def->scsi.nluns)
		return 0;
	o = json_object_new_object();
	luns = json_object_new_array();
	if (!o || !luns) {
		json_object_put(o);
		json_object_put(luns);
		return -ENOMEM;
	}
	if (def->scsi.pci_slot)
		json_object_object_add(o, "pci_slot", json_object_new_int(def->scsi.pci_slot));
	for (unsigned i = 0; i < def->scsi.nluns; i++) {
		const struct vm_lun *l = &def->scsi.luns[i];
		json_object *d = json_object_new_object();

		json_object_object_add(d, "type", json_object_new_string(lun_types[l->type]));
		if (l->type == VM_LUN_DISK) {
			vmdef_disk_fields_json(&l->disk, d);
			vmdef_disk_qos_json(&l->disk, d);
		} else
			json_object_object_add(d, "path",
					       l->disk.path ? json_object_new_string(l->disk.path)
							    : NULL);
		json_object_array_add(luns, d);
	}
	json_object_object_add(o, "luns", luns);
	*out = o;
	return 0;
}

static bool scsi_same(const struct vm_def *nd, unsigned i, const struct vm_def *old, unsigned j)
{
	return true; /* one controller */
}

/* No file twice: on two LUNs, or on a LUN and a virtio-blk disk. */
static int scsi_check(const struct vm_def *def, char *err, size_t errlen)
{
	for (unsigned i = 0; i < def->scsi.nluns; i++) {
		const char *p = def->scsi.luns[i].disk.path;

		for (unsigned j = 0; p && j < i; j++) {
			if (def->scsi.luns[j].disk.path &&
			    !strcmp(p, def->scsi.luns[j].disk.path)) {
				error_set(err, errlen, "%s is on SCSI LUNs %u and %u", p, j, i);
				return -EINVAL;
			}
		}
		for (unsigned j = 0; p && j < def->ndisks; j++) {
			if (!strcmp(p, def->disks[j].path)) {
				error_set(err, errlen, "%s is both a disk and SCSI LUN %u", p, i);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int scsi_validate(const struct vm_def *def, char *err, size_t errlen)
{
	for (unsigned i = 0; i < def->scsi.nluns; i++) {
		const struct vm_lun *l = &def->scsi.luns[i];

		if (l->disk.path &&
		    vmdef_check_file(l->type == VM_LUN_DVD ? "DVD image" : "disk", l->disk.path,
				     true, !l->disk.readonly, err, errlen))
			return -EINVAL;
		/* Whether a DVD image is ISO 9660 or UDF is checked by keeld on the file it
		 * opened through the image's storage pool (pools_open_def), never here by
		 * path. */
	}
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Everything, the DVD's medium too: keel-vmm changes a medium while the VM runs (its control
 * command "dvd"), but keeld does not pass such a change on to a running worker yet, so a
 * description must not claim one. */
static bool scsi_hw_equal(const struct vm_def *a, unsigned i, const struct vm_def *b, unsigned j)
{
	if (a->scsi.nluns != b->scsi.nluns || a->scsi.pci_slot != b->scsi.pci_slot)
		return false;
	for (unsigned k = 0; k < a->scsi.nluns; k++) {
		const struct vm_lun *x = &a->scsi.luns[k], *y = &b->scsi.luns[k];

		if (x->type != y->type ||
		    (x->type == VM_LUN_DVD && !str_eq(x->disk.path, y->disk.path)))
			return false;
		if (x->type == VM_LUN_DISK &&
		    (!str_eq(x->disk.path, y->disk.path) || x->disk.format != y->disk.format ||
		     x->disk.cache != y->disk.cache || x->disk.readonly != y->disk.readonly ||
		     strcmp(x->disk.serial, y->disk.serial)))
			return false;
	}
	return true;
}

unsigned vmdef_media_change(const struct vm_def *a, const struct vm_def *b)
{
	struct vm_def t = *b; /* b with a's media: read only, its allocations are b's */
	unsigned mask = 0, drive = 0;

	if (a->scsi.nluns != b->scsi.nluns)
		return 0;
	for (unsigned k = 0; k < a->scsi.nluns; k++) {
		const struct vm_lun *x = &a->scsi.luns[k], *y = &b->scsi.luns[k];

		if (x->type != y->type)
			return 0;
		if (x->type != VM_LUN_DVD)
			continue;
		if (!str_eq(x->disk.path, y->disk.path) && drive < 32) {
			mask |= 1u << drive;
			t.scsi.luns[k].disk.path = x->disk.path;
		}
		drive++;
	}
	return mask && !vmdef_hw_change(a, &t) ? mask : 0;
}

static bool scsi_guest_equal(const struct vm_def *saved, unsigned i, const struct vm_def *cur,
			     unsigned j, char *why, size_t len)
{
	if (saved->scsi.nluns != cur->scsi.nluns) {
		snprintf(why, len, "the SCSI controller was saved with %u LUNs; it has %u now",
			 saved->scsi.nluns, cur->scsi.nluns);
		return false;
	}
	for (unsigned k = 0; k < saved->scsi.nluns; k++) {
		const struct vm_lun *a = &saved->scsi.luns[k], *b = &cur->scsi.luns[k];

		if (a->type != b->type ||
		    (a->type == VM_LUN_DISK && (a->disk.readonly != b->disk.readonly ||
						strcmp(a->disk.serial, b->disk.serial)))) {
			snprintf(why, len,
				 "SCSI LUN %u was saved as a %s%s with serial '%s'; it is a %s%s "
				 "with serial '%s' now",
				 k, lun_types[a->type], a->disk.readonly ? " (read-only)" : "",
				 a->disk.serial, lun_types[b->type],
				 b->disk.readonly ? " (read-only)" : "", b->disk.serial);
			return false;
		}
	}
	return true;
}

static int scsi_copy(struct vm_def *dst, const struct vm_def *src)
{
	unsigned n = src->scsi.nluns;

	dst->scsi.nluns = 0; /* what scsi_free frees, should a copy fail */
	for (unsigned i = 0; i < n; i++) {
		dst->scsi.luns[i].disk.path = NULL;
		if (src->scsi.luns[i].disk.path) {
			dst->scsi.luns[i].disk.path = strdup(src->scsi.luns[i].disk.path);
			if (!dst->scsi.luns[i].disk.path)
				return -ENOMEM;
		}
		dst->scsi.nluns = i + 1;
	}
	return 0;
}

static void scsi_free(struct vm_def *def)
{
	luns_free(def->scsi.luns, def->scsi.nluns);
	def->scsi.nluns = 0;
}

/* keel-vmm's --dvd, and --disk ...,bus=scsi (config/vmdef_cli.h). */
int vmdef_cli_add_lun(struct vm_def *def, enum vm_lun_type type, struct vm_disk *d, char *err,
		      size_t errlen)
{
	struct vm_lun *l;

	if (def->scsi.nluns == VMDEF_MAX_LUNS) {
		snprintf(err, errlen,
			 "--%s: the SCSI controller has at most %d LUNs (disks and DVD "
			 "drives)",
			 type == VM_LUN_DVD ? "dvd" : "disk", VMDEF_MAX_LUNS);
		free(d->path);
		return -EINVAL;
	}
	l = &def->scsi.luns[def->scsi.nluns++];
	*l = (struct vm_lun){.type = type, .disk = *d};
	if (type == VM_LUN_DVD) {
		l->disk.readonly = true;
		l->disk.format = VM_DISK_RAW;
	}
	return l->disk.path && l->disk.path[0] != '/'
		       ? vmdef_cli_set_path(&l->disk.path, l->disk.path, err, errlen)
		       : 0;
}

static int dvd_option(struct vm_def *def, struct vmdef_host *host, const char *arg, char *err,
		      size_t errlen)
{
	struct vm_disk d = {0};

	if (!*arg) {
		snprintf(err, errlen, "--dvd: expected an ISO image, or none for an empty drive");
		return -EINVAL;
	}
	if (strcmp(arg, "none")) {
		d.path = strdup(arg);
		if (!d.path) {
			snprintf(err, errlen, "--dvd %s: out of memory", arg);
			return -ENOMEM;
		}
	}
	return vmdef_cli_add_lun(def, VM_LUN_DVD, &d, err, errlen);
}

static const struct vmdef_option scsi_options[] = {
	{"dvd", "FILE|none", "a DVD drive on the SCSI controller, with an ISO image or empty",
	 false, dvd_option},
	{0},
};

const struct vmdef_device_kind vmdef_scsi_kind = {
	.field = "scsi",
	.max = 1,
	.count = scsi_count,
	.slot = scsi_slot,
	.parse = scsi_parse,
	.to_json = scsi_to_json,
	.same = scsi_same,
	.check = scsi_check,
	.validate = scsi_validate,
	.hw_equal = scsi_hw_equal,
	.guest_equal = scsi_guest_equal,
	.copy = scsi_copy,
	.free = scsi_free,
	.options = scsi_options,
};
