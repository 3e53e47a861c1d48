/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's boot order (the "boot_order" field, docs/vm-config.md and docs/firmware.md): the
 * words "dvd", "disk", "net", "diskN", "lunN" and "netN", their checks against the VM's
 * devices, and the effective order device by device that keel-vmm hands to the firmware
 * (vmm/x86/bootorder.c). Text from the user only: the guest never reaches this parser.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/vmdef.h"
#include "config/vmdef_json.h"
#include "lib/error.h"
#include "lib/parse.h"

#define BOOT_WORD_MAX 8 /* "disk15" and its NUL */

static const char *const class_words[] = {"dvd", "disk", "net"};
static const char *const device_words[] = {"disk", "lun", "net"};
static const unsigned device_max[] = {VMDEF_MAX_DISKS, VMDEF_MAX_LUNS, VMDEF_MAX_NICS};

static const struct vm_boot_item default_order[] = {
	{VM_BOOT_DISK, 0}, {VM_BOOT_DVD, 0}, {VM_BOOT_NET, 0}};

static void item_text(struct vm_boot_item it, char out[BOOT_WORD_MAX])
{
	if (it.kind <= VM_BOOT_NET)
		snprintf(out, BOOT_WORD_MAX, "%s", class_words[it.kind]);
	else
		snprintf(out, BOOT_WORD_MAX, "%s%u", device_words[it.kind - VM_BOOT_DISK_N],
			 it.index);
}

static int parse_word(const char *w, size_t n, struct vm_boot_item *out, char *err, size_t errlen)
{
	char word[BOOT_WORD_MAX];

	if (n && n < sizeof(word)) {
		memcpy(word, w, n);
		word[n] = '\0';
		for (unsigned k = 0; k < 3; k++) {
			size_t len = strlen(device_words[k]);
			uint64_t idx;

			if (!strcmp(word, class_words[k])) {
				*out = (struct vm_boot_item){.kind = (uint8_t)k};
				return 0;
			}
			if (!strncmp(word, device_words[k], len) && word[len] >= '0' &&
			    word[len] <= '9' &&
			    !parse_uint(word + len, 0, device_max[k] - 1, &idx)) {
				*out = (struct vm_boot_item){.kind = (uint8_t)(VM_BOOT_DISK_N + k),
							     .index = (uint8_t)idx};
				return 0;
			}
		}
	}
	error_set(err, errlen,
		  "boot order: '%.*s' is not a boot device: use dvd, disk, net, diskN (0-%d), "
		  "lunN (0-%d) or netN (0-%d)",
		  (int)(n > 32 ? 32 : n), w, VMDEF_MAX_DISKS - 1, VMDEF_MAX_LUNS - 1,
		  VMDEF_MAX_NICS - 1);
	return -EINVAL;
}

static int add_item(struct vm_boot_item *items, unsigned *n, struct vm_boot_item it, char *err,
		    size_t errlen)
{
	char w[BOOT_WORD_MAX];

	for (unsigned i = 0; i < *n; i++) {
		if (items[i].kind == it.kind && items[i].index == it.index) {
			item_text(it, w);
			error_set(err, errlen, "boot order: '%s' is named twice", w);
			return -EINVAL;
		}
	}
	if (*n >= VMDEF_BOOT_MAX) { /* unreachable: duplicates are refused first */
		error_set(err, errlen, "boot order: more than %d items", VMDEF_BOOT_MAX);
		return -EINVAL;
	}
	items[(*n)++] = it;
	return 0;
}

int vmdef_boot_parse(struct vm_def *def, const char *list, char *err, size_t errlen)
{
	struct vm_boot_item items[VMDEF_BOOT_MAX];
	unsigned n = 0;

	if (strcmp(list, "default") && list[0]) {
		for (const char *p = list;; p++) {
			const char *end = strchr(p, ',');
			size_t len = end ? (size_t)(end - p) : strlen(p);
			struct vm_boot_item it;

			if (parse_word(p, len, &it, err, errlen) ||
			    add_item(items, &n, it, err, errlen))
				return -EINVAL;
			if (!end)
				break;
			p = end;
		}
	}
	memcpy(def->boot_order, items, n * sizeof(items[0]));
	def->nboot = n;
	return 0;
}

int vmdef_boot_parse_json(struct vm_def *def, json_object *v, char *err, size_t errlen)
{
	struct vm_boot_item items[VMDEF_BOOT_MAX];
	unsigned n = 0;
	size_t len;

	if (v && !json_object_is_type(v, json_type_array)) {
		error_set(err, errlen,
			  "field 'boot_order' must be an array of strings such as [\"dvd\", "
			  "\"disk\"]");
		return -EINVAL;
	}
	len = v ? json_object_array_length(v) : 0;
	for (size_t i = 0; i < len; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		struct vm_boot_item it;
		const char *s;

		if (!json_object_is_type(e, json_type_string)) {
			error_set(err, errlen, "field 'boot_order': item %zu is not a string", i);
			return -EINVAL;
		}
		s = json_object_get_string(e);
		if (parse_word(s, strlen(s), &it, err, errlen) ||
		    add_item(items, &n, it, err, errlen))
			return -EINVAL;
	}
	memcpy(def->boot_order, items, n * sizeof(items[0]));
	def->nboot = n;
	return 0;
}

json_object *vmdef_boot_to_json(const struct vm_def *def)
{
	json_object *a = json_object_new_array();
	char w[BOOT_WORD_MAX];

	for (unsigned i = 0; a && i < def->nboot; i++) {
		item_text(def->boot_order[i], w);
		json_object_array_add(a, json_object_new_string(w));
	}
	return a;
}

void vmdef_boot_text(const struct vm_def *def, char *buf, size_t len)
{
	const struct vm_boot_item *items = def->nboot ? def->boot_order : default_order;
	unsigned n = def->nboot ? def->nboot : 3;
	size_t at = 0;
	char w[BOOT_WORD_MAX];

	if (len)
		buf[0] = '\0';
	for (unsigned i = 0; i < n && at < len; i++) {
		int k;

		item_text(items[i], w);
		k = snprintf(buf + at, len - at, "%s%s", i ? "," : "", w);
		if (k < 0)
			break;
		at += (size_t)k;
	}
}

static unsigned dvd_count(const struct vm_def *def, bool dvd)
{
	unsigned n = 0;

	for (unsigned i = 0; i < def->scsi.nluns; i++)
		n += (def->scsi.luns[i].type == VM_LUN_DVD) == dvd;
	return n;
}

int vmdef_boot_check(const struct vm_def *def, char *err, size_t errlen)
{
	char w[BOOT_WORD_MAX];

	if (def->nboot && def->firmware == VM_FIRMWARE_NONE) {
		error_set(err, errlen,
			  "VM '%s': a 'boot_order' is the firmware's; a VM that boots its kernel "
			  "directly has none",
			  def->name);
		return -EINVAL;
	}
	for (unsigned i = 0; i < def->nboot; i++) {
		struct vm_boot_item it = def->boot_order[i];
		bool have;

		switch (it.kind) {
		case VM_BOOT_DVD:
			have = dvd_count(def, true) > 0;
			break;
		case VM_BOOT_DISK:
			have = def->ndisks > 0 || dvd_count(def, false) > 0;
			break;
		case VM_BOOT_NET:
			have = def->nnics > 0;
			break;
		case VM_BOOT_DISK_N:
			have = it.index < def->ndisks;
			break;
		case VM_BOOT_LUN_N:
			have = it.index < def->scsi.nluns;
			break;
		default:
			have = it.index < def->nnics;
			break;
		}
		if (!have) {
			item_text(it, w);
			error_set(err, errlen,
				  "boot order: VM '%s' has no %s (its devices: %u disk%s, %u DVD "
				  "drive%s, %u SCSI LUN%s, %u network adapter%s)",
				  def->name,
				  it.kind == VM_BOOT_DVD    ? "DVD drive"
				  : it.kind == VM_BOOT_DISK ? "disk"
				  : it.kind == VM_BOOT_NET  ? "network adapter"
							    : w,
				  def->ndisks, def->ndisks == 1 ? "" : "s", dvd_count(def, true),
				  dvd_count(def, true) == 1 ? "" : "s", def->scsi.nluns,
				  def->scsi.nluns == 1 ? "" : "s", def->nnics,
				  def->nnics == 1 ? "" : "s");
			return -EINVAL;
		}
	}
	return 0;
}

static void add_dev(struct vm_boot_dev *out, unsigned *n, enum vm_boot_dev_kind kind,
		    unsigned index)
{
	for (unsigned i = 0; i < *n; i++)
		if (out[i].kind == kind && out[i].index == index)
			return;
	out[(*n)++] = (struct vm_boot_dev){.kind = (uint8_t)kind, .index = (uint8_t)index};
}

/* Each item's devices into out, those already there skipped. */
static void add_items(const struct vm_def *def, const struct vm_boot_item *items, unsigned nitems,
		      struct vm_boot_dev *out, unsigned *n)
{
	for (unsigned i = 0; i < nitems; i++) {
		struct vm_boot_item it = items[i];

		switch (it.kind) {
		case VM_BOOT_DVD:
		case VM_BOOT_DISK:
			if (it.kind == VM_BOOT_DISK)
				for (unsigned d = 0; d < def->ndisks; d++)
					add_dev(out, n, VM_BOOTDEV_DISK, d);
			for (unsigned l = 0; l < def->scsi.nluns; l++)
				if ((def->scsi.luns[l].type == VM_LUN_DVD) ==
				    (it.kind == VM_BOOT_DVD))
					add_dev(out, n, VM_BOOTDEV_LUN, l);
			break;
		case VM_BOOT_NET:
			for (unsigned d = 0; d < def->nnics; d++)
				add_dev(out, n, VM_BOOTDEV_NET, d);
			break;
		case VM_BOOT_DISK_N:
			if (it.index < def->ndisks)
				add_dev(out, n, VM_BOOTDEV_DISK, it.index);
			break;
		case VM_BOOT_LUN_N:
			if (it.index < def->scsi.nluns)
				add_dev(out, n, VM_BOOTDEV_LUN, it.index);
			break;
		default:
			if (it.index < def->nnics)
				add_dev(out, n, VM_BOOTDEV_NET, it.index);
			break;
		}
	}
}

unsigned vmdef_boot_devices(const struct vm_def *def, struct vm_boot_dev out[VMDEF_BOOT_DEVS_MAX])
{
	unsigned n = 0;

	/* The order's devices first, then every other one in the default order: OVMF drops a
	 * device the list leaves out (QemuBootOrderLib deletes its boot option) where SeaBIOS
	 * tries it after the others, so keel lists them all and both firmwares boot alike. */
	add_items(def, def->boot_order, def->nboot, out, &n);
	add_items(def, default_order, 3, out, &n);
	return n;
}
