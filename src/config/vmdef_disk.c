/* SPDX-License-Identifier: Apache-2.0 */
/* Disks in a VM description: the "disks" field (docs/vm-config.md), virtio-blk in keel-vmm. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmdef_cli.h"
#include "config/vmdef_device.h"
#include "config/vmdef_json.h"
#include "lib/error.h"
#include "lib/parse.h"

static const char *const format_names[] = {"auto", "raw", "vhdx"};
static const char *const cache_names[] = {"none", "writeback", "unsafe"};

const char *vmdef_disk_cache_name(enum vm_disk_cache c)
{
	return (unsigned)c < 3 ? cache_names[c] : "?";
}

int vmdef_disk_cache_parse(const char *s, enum vm_disk_cache *out)
{
	for (unsigned i = 0; i < 3; i++) {
		if (!strcmp(s, cache_names[i])) {
			*out = (enum vm_disk_cache)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *vmdef_disk_format_name(enum vm_disk_format f)
{
	return (unsigned)f < 3 ? format_names[f] : "?";
}

static unsigned disk_count(const struct vm_def *def)
{
	return def->ndisks;
}

static uint8_t *disk_slot(struct vm_def *def, unsigned i)
{
	return &def->disks[i].pci_slot;
}

int vmdef_disk_field(struct vm_disk *disk, const char *what, const char *key, json_object *val,
		     bool slot, char *err, size_t errlen)
{
	char field[48];
	const char *s;
	unsigned e;

	snprintf(field, sizeof(field), "%s.%s", what, key);
	if (!strcmp(key, "path"))
		return vmdef_get_path(val, field, false, &disk->path, err, errlen);
	if (!strcmp(key, "readonly"))
		return vmdef_get_bool(val, field, &disk->readonly, err, errlen);
	if (!strcmp(key, "format")) {
		if (vmdef_get_enum(val, field, format_names + 1, 2, &e, err, errlen))
			return -EINVAL;
		disk->format = (enum vm_disk_format)(e + 1);
		return 0;
	}
	if (!strcmp(key, "cache")) {
		if (vmdef_get_enum(val, field, cache_names, 3, &e, err, errlen))
			return -EINVAL;
		disk->cache = (enum vm_disk_cache)e;
		return 0;
	}
	if (!strcmp(key, "serial")) {
		s = vmdef_get_str(val, field, VMDEF_SERIAL_MAX, err, errlen);
		if (!s)
			return -EINVAL;
		strcpy(disk->serial, s); /* length checked by get_str */
		return 0;
	}
	if (slot && !strcmp(key, "pci_slot"))
		return vmdef_get_slot(val, field, &disk->pci_slot, err, errlen);
	if (!strcmp(key, "max_iops") || !strcmp(key, "min_iops") || !strcmp(key, "max_bandwidth")) {
		bool bw = key[4] == 'b';
		int64_t v;

		if (vmdef_get_int(val, field, 0,
				  (int64_t)(bw ? VMDEF_QOS_MAX_BW : VMDEF_QOS_MAX_IOPS), &v, err,
				  errlen))
			return -EINVAL;
		*(bw		  ? &disk->max_bw
		  : key[1] == 'a' ? &disk->max_iops
				  : &disk->min_iops) = (uint64_t)v;
		return 0;
	}
	return 1;
}

int vmdef_disk_qos_check(const struct vm_disk *d, const char *what, char *err, size_t errlen)
{
	if (d->max_iops > VMDEF_QOS_MAX_IOPS || d->min_iops > VMDEF_QOS_MAX_IOPS) {
		error_set(err, errlen, "%s: IOPS limits are at most %llu", what,
			  (unsigned long long)VMDEF_QOS_MAX_IOPS);
		return -EINVAL;
	}
	if (d->max_bw > VMDEF_QOS_MAX_BW) {
		error_set(err, errlen, "%s: max_bandwidth is at most %llu bytes per second", what,
			  (unsigned long long)VMDEF_QOS_MAX_BW);
		return -EINVAL;
	}
	if (d->max_iops && d->min_iops > d->max_iops) {
		error_set(err, errlen,
			  "%s: min_iops %llu is above max_iops %llu (the disk could never reach "
			  "its minimum)",
			  what, (unsigned long long)d->min_iops, (unsigned long long)d->max_iops);
		return -EINVAL;
	}
	return 0;
}

struct vm_disk_id vmdef_disk_id_at(unsigned k)
{
	return k < VMDEF_MAX_DISKS ? (struct vm_disk_id){false, k}
				   : (struct vm_disk_id){true, k - VMDEF_MAX_DISKS};
}

bool vmdef_disk_id_eq(struct vm_disk_id a, struct vm_disk_id b)
{
	return a.lun == b.lun && a.index == b.index;
}

struct vm_disk *vmdef_disk_of(const struct vm_def *def, struct vm_disk_id id)
{
	struct vm_def *d = (struct vm_def *)def; /* the caller's own: const in, const out */

	if (!id.lun)
		return id.index < d->ndisks ? &d->disks[id.index] : NULL;
	return id.index < d->scsi.nluns && d->scsi.luns[id.index].type == VM_LUN_DISK
		       ? &d->scsi.luns[id.index].disk
		       : NULL;
}

int vmdef_disk_id_parse(const char *s, struct vm_disk_id *id)
{
	unsigned long v;
	char *end;

	id->lun = !strncmp(s, "scsi:", 5);
	if (id->lun)
		s += 5;
	if (*s < '0' || *s > '9' || strlen(s) > 5)
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (*end)
		return -EINVAL;
	id->index = (unsigned)v;
	return 0;
}

void vmdef_disk_id_name(struct vm_disk_id id, char *buf, size_t len)
{
	snprintf(buf, len, "%s%u", id.lun ? "scsi:" : "", id.index);
}

void vmdef_disk_id_json(struct vm_disk_id id, json_object *o)
{
	json_object_object_add(o, id.lun ? "lun" : "disk", json_object_new_int((int)id.index));
}

void vmdef_disk_fields_json(const struct vm_disk *disk, json_object *d)
{
	json_object_object_add(d, "path", json_object_new_string(disk->path));
	if (disk->format != VM_DISK_AUTO)
		json_object_object_add(
			d, "format", json_object_new_string(vmdef_disk_format_name(disk->format)));
	json_object_object_add(d, "cache",
			       json_object_new_string(vmdef_disk_cache_name(disk->cache)));
	json_object_object_add(d, "readonly", json_object_new_boolean(disk->readonly));
	json_object_object_add(d, "serial", json_object_new_string(disk->serial));
}

void vmdef_disk_qos_json(const struct vm_disk *disk, json_object *d)
{
	if (disk->max_iops)
		json_object_object_add(d, "max_iops",
				       json_object_new_int64((int64_t)disk->max_iops));
	if (disk->max_bw)
		json_object_object_add(d, "max_bandwidth",
				       json_object_new_int64((int64_t)disk->max_bw));
	if (disk->min_iops)
		json_object_object_add(d, "min_iops",
				       json_object_new_int64((int64_t)disk->min_iops));
}

static int parse_disk(struct vm_disk *disk, size_t i, json_object *d, char *err, size_t errlen)
{
	char what[24];
	int ret;

	if (!json_object_is_type(d, json_type_object)) {
		error_set(err, errlen, "disks[%zu] must be an object", i);
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "disks[%zu]", i);
	json_object_object_foreach(d, key, val)
	{
		ret = vmdef_disk_field(disk, what, key, val, true, err, errlen);
		if (ret < 0)
			return ret;
		if (ret) {
			error_set(err, errlen, "unknown field '%s' in disks[%zu]", key, i);
			return -EINVAL;
		}
	}
	if (!disk->path) {
		error_set(err, errlen, "disks[%zu] has no 'path'", i);
		return -EINVAL;
	}
	return vmdef_disk_qos_check(disk, what, err, errlen);
}

static int disk_parse(struct vm_def *def, json_object *v, char *err, size_t errlen)
{
	struct vm_disk old[VMDEF_MAX_DISKS];
	unsigned nold = def->ndisks;
	size_t n;
	int ret = 0;

	if (!json_object_is_type(v, json_type_array)) {
		error_set(err, errlen, "field 'disks' must be an array");
		return -EINVAL;
	}
	n = json_object_array_length(v);
	if (n > VMDEF_MAX_DISKS) {
		error_set(err, errlen, "a VM has at most %d disks, not %zu", VMDEF_MAX_DISKS, n);
		return -EINVAL;
	}
	memcpy(old, def->disks, sizeof(old));
	def->ndisks = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		def->disks[i] = (struct vm_disk){0};
		def->ndisks = (unsigned)i + 1;
		ret = parse_disk(&def->disks[i], i, json_object_array_get_idx(v, i), err, errlen);
	}
	for (unsigned j = 0; j < nold; j++)
		free(old[j].path);
	return ret;
}

static int disk_to_json(const struct vm_def *def, json_object **out)
{
	json_object *disks = json_object_new_array();

	for (unsigned i = 0; disks && i < def->ndisks; i++) {
		json_object *d = json_object_new_object();

		vmdef_disk_fields_json(&def->disks[i], d);
		if (def->disks[i].pci_slot)
			json_object_object_add(d, "pci_slot",
					       json_object_new_int(def->disks[i].pci_slot));
		vmdef_disk_qos_json(&def->disks[i], d);
		json_object_array_add(disks, d);
	}
	*out = disks;
	return disks ? 0 : -ENOMEM;
}

static bool disk_same(const struct vm_def *nd, unsigned i, const struct vm_def *old, unsigned j)
{
	return !strcmp(nd->disks[i].path, old->disks[j].path);
}

static int disk_check(const struct vm_def *def, char *err, size_t errlen)
{
	for (unsigned i = 0; i < def->ndisks; i++) {
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(def->disks[i].path, def->disks[j].path)) {
				error_set(err, errlen, "disk %s is attached twice",
					  def->disks[i].path);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int disk_validate(const struct vm_def *def, char *err, size_t errlen)
{
	for (unsigned i = 0; i < def->ndisks; i++)
		if (vmdef_check_file("disk", def->disks[i].path, true, !def->disks[i].readonly, err,
				     errlen))
			return -EINVAL;
	return 0;
}

static bool disk_hw_equal(const struct vm_def *a, unsigned i, const struct vm_def *b, unsigned j)
{
	const struct vm_disk *x = &a->disks[i], *y = &b->disks[j];

	return !strcmp(x->path, y->path) && x->format == y->format && x->cache == y->cache &&
	       x->readonly == y->readonly && !strcmp(x->serial, y->serial) &&
	       x->pci_slot == y->pci_slot;
}

/* The guest saw the disk's read-only flag and serial; its file may be another (a copy). */
static bool disk_guest_equal(const struct vm_def *saved, unsigned i, const struct vm_def *cur,
			     unsigned j, char *why, size_t len)
{
	const struct vm_disk *a = &saved->disks[i], *b = &cur->disks[j];

	if (a->readonly == b->readonly && !strcmp(a->serial, b->serial))
		return true;
	snprintf(why, len,
		 "the disk at PCI slot %u was saved%s with serial '%s'; its description has "
		 "it%s with serial '%s'",
		 a->pci_slot, a->readonly ? " read-only" : "", a->serial,
		 b->readonly ? " read-only" : "", b->serial);
	return false;
}

static int disk_copy(struct vm_def *dst, const struct vm_def *src)
{
	unsigned n = src->ndisks;

	dst->ndisks = 0; /* what disk_free frees, should a copy fail */
	for (unsigned i = 0; i < n; i++) {
		dst->disks[i].path = strdup(src->disks[i].path);
		if (!dst->disks[i].path)
			return -ENOMEM;
		dst->ndisks = i + 1;
	}
	return 0;
}

static void disk_free(struct vm_def *def)
{
	for (unsigned i = 0; i < def->ndisks; i++)
		free(def->disks[i].path);
	def->ndisks = 0;
}

/* keel-vmm's --disk (config/vmdef_cli.h). */
int vmdef_cli_disk(const char *s, struct vm_disk *d, bool *scsi, char *err, size_t errlen)
{
	char k[16], v[VMDEF_PATH_MAX + 1];
	const char *p = s;
	int too_long;

	memset(d, 0, sizeof(*d));
	*scsi = false;
	while ((p = vmdef_cli_next_kv(p, k, sizeof(k), v, sizeof(v), &too_long))) {
		if (too_long) {
			snprintf(err, errlen, "--disk %s: an option or value is too long", s);
			goto fail;
		}
		if (!strcmp(k, "path") && *v && !d->path) {
			d->path = strdup(v);
			if (!d->path) {
				snprintf(err, errlen, "--disk %s: out of memory", s);
				return -ENOMEM;
			}
		} else if (!strcmp(k, "readonly") && !vmdef_cli_on_off(v, &d->readonly)) {
		} else if (!strcmp(k, "format") && (!strcmp(v, "raw") || !strcmp(v, "vhdx"))) {
			d->format = !strcmp(v, "raw") ? VM_DISK_RAW : VM_DISK_VHDX;
		} else if (!strcmp(k, "cache") && !vmdef_disk_cache_parse(v, &d->cache)) {
		} else if (!strcmp(k, "slot") && !vmdef_cli_slot(v, &d->pci_slot)) {
		} else if (!strcmp(k, "bus") && (!strcmp(v, "virtio") || !strcmp(v, "scsi"))) {
			*scsi = !strcmp(v, "scsi");
		} else if ((!strcmp(k, "max-iops") || !strcmp(k, "min-iops")) &&
			   !parse_uint(v, 0, VMDEF_QOS_MAX_IOPS,
				       k[1] == 'a' ? &d->max_iops : &d->min_iops)) {
		} else if (!strcmp(k, "max-bandwidth") && !parse_size(v, 1, &d->max_bw) &&
			   d->max_bw <= VMDEF_QOS_MAX_BW) {
		} else if (!strcmp(k, "serial")) {
			if (strlen(v) > VMDEF_SERIAL_MAX) {
				snprintf(err, errlen, "--disk %s: serial is at most %d characters",
					 s, VMDEF_SERIAL_MAX);
				goto fail;
			}
			memcpy(d->serial, v, strlen(v) + 1); /* length checked above */
		} else {
			snprintf(err, errlen,
				 "--disk %s: expected path=FILE[,format=raw|vhdx][,readonly=on|off]"
				 "[,cache=none|writeback|unsafe][,serial=STRING][,slot=%d..%d]"
				 "[,bus=virtio|scsi][,max-iops=N][,min-iops=N][,max-bandwidth=BYTES"
				 "[K|M|G|T]] (a path with a comma needs --config)",
				 s, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX);
			goto fail;
		}
	}
	if (!d->path) {
		snprintf(err, errlen, "--disk %s: path=FILE is required", s);
		return -EINVAL;
	}
	if (*scsi && d->pci_slot) {
		snprintf(err, errlen,
			 "--disk %s: a disk on the SCSI bus has no PCI slot of its own (the "
			 "controller has one)",
			 s);
		goto fail;
	}
	if (vmdef_disk_qos_check(d, "--disk", err, errlen))
		goto fail;
	return 0;
fail:
	free(d->path);
	d->path = NULL;
	return -EINVAL;
}

static int disk_option(struct vm_def *def, struct vmdef_host *host, const char *arg, char *err,
		       size_t errlen)
{
	struct vm_disk d;
	bool scsi;
	int r = vmdef_cli_disk(arg, &d, &scsi, err, errlen);

	if (r)
		return r;
	if (scsi)
		return vmdef_cli_add_lun(def, VM_LUN_DISK, &d, err, errlen);
	if (def->ndisks == VMDEF_MAX_DISKS) {
		snprintf(err, errlen, "--disk: at most %d disks", VMDEF_MAX_DISKS);
		free(d.path);
		return -EINVAL;
	}
	def->disks[def->ndisks++] = d;
	return d.path[0] == '/'
		       ? 0
		       : vmdef_cli_set_path(&def->disks[def->ndisks - 1].path, d.path, err, errlen);
}

static const struct vmdef_option disk_options[] = {
	{"disk",
	 "path=FILE[,format=raw|vhdx][,readonly=on][,serial=S][,slot=N][,bus=scsi][,max-iops=N]"
	 "[,min-iops=N][,max-bandwidth=BYTES]",
	 "a disk, virtio-blk or on the SCSI controller (repeat for more)", false, disk_option},
	{0},
};

const struct vmdef_device_kind vmdef_disk_kind = {
	.field = "disks",
	.max = VMDEF_MAX_DISKS,
	.count = disk_count,
	.slot = disk_slot,
	.parse = disk_parse,
	.to_json = disk_to_json,
	.same = disk_same,
	.check = disk_check,
	.validate = disk_validate,
	.hw_equal = disk_hw_equal,
	.guest_equal = disk_guest_equal,
	.copy = disk_copy,
	.free = disk_free,
	.options = disk_options,
};
