/* SPDX-License-Identifier: Apache-2.0 */
/* The devices a VM has at most one of: the "virtio_console" and "rng" fields
 * (docs/vm-config.md), each null (absent) or {"pci_slot": N}. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/vmdef_cli.h"
#include "config/vmdef_device.h"
#include "config/vmdef_json.h"
#include "lib/error.h"

/* "virtio_console" and "rng": null (no device) or {"pci_slot": N} (N may be left out). */
static int parse_onedev(struct vm_onedev *dev, const char *field, json_object *v, char *err,
			size_t errlen)
{
	struct vm_onedev tmp = {.present = true};

	if (json_object_is_type(v, json_type_null)) {
		*dev = (struct vm_onedev){0};
		return 0;
	}
	if (!json_object_is_type(v, json_type_object)) {
		error_set(err, errlen, "field '%s' must be null or an object", field);
		return -EINVAL;
	}
	json_object_object_foreach(v, key, val)
	{
		if (strcmp(key, "pci_slot")) {
			error_set(err, errlen, "unknown field '%s' in %s", key, field);
			return -EINVAL;
		}
		if (vmdef_get_slot(val, "pci_slot", &tmp.pci_slot, err, errlen))
			return -EINVAL;
	}
	*dev = tmp;
	return 0;
}

static int onedev_to_json(const struct vm_onedev *dev, json_object **out)
{
	*out = NULL;
	if (!dev->present)
		return 0;
	*out = json_object_new_object();
	if (!*out)
		return -ENOMEM;
	if (dev->pci_slot)
		json_object_object_add(*out, "pci_slot", json_object_new_int(dev->pci_slot));
	return 0;
}

static bool onedev_hw_equal(const struct vm_onedev *a, const struct vm_onedev *b)
{
	return a->present == b->present && (!a->present || a->pci_slot == b->pci_slot);
}

/* keel-vmm's --console: where the virtio-console goes on the host (config/vmdef_cli.h). */
static int console_option(struct vm_def *def, struct vmdef_host *host, const char *arg, char *err,
			  size_t errlen)
{
	if (vmdef_chardev_parse(arg, &host->console)) {
		snprintf(err, errlen, "--console %s: expected stdio, file:PATH, unix:PATH or off",
			 arg);
		return -EINVAL;
	}
	return 0;
}

/* Without --config, --console makes the device; with it, the file says whether there is one
 * and --console where it goes. */
static int console_options_done(struct vm_def *def, struct vmdef_host *host,
				const char *config_path, char *err, size_t errlen)
{
	if (!config_path) {
		def->console.present = host->console.kind != CHARDEV_OFF;
		return 0;
	}
	if (def->console.present && host->console.kind == CHARDEV_OFF) {
		snprintf(err, errlen,
			 "the VM has a virtio console: say where it goes with --console "
			 "stdio|file:PATH|unix:PATH");
		return -EINVAL;
	}
	if (!def->console.present && host->console.kind != CHARDEV_OFF) {
		snprintf(err, errlen, "--console: the VM described in %s has no virtio console",
			 config_path);
		return -EINVAL;
	}
	return 0;
}

static const struct vmdef_option console_options[] = {
	{"console", "stdio|file:PATH|unix:PATH|off",
	 "a virtio-console and where it goes (with --config too: where the file's goes)", true,
	 console_option},
	{0},
};

/* keel-vmm's --no-rng: a VM has virtio-rng unless told otherwise. */
static int no_rng_option(struct vm_def *def, struct vmdef_host *host, const char *arg, char *err,
			 size_t errlen)
{
	def->rng.present = false;
	return 0;
}

static const struct vmdef_option rng_options[] = {
	{"no-rng", NULL, "no virtio-rng (a VM has one by default)", false, no_rng_option},
	{0},
};

/* One kind per device: its field, where the description keeps it, and its keel-vmm options
 * and their check (NULL: none). */
#define ONEDEV_KIND(kind, member, fieldname, opts, done)                                           \
	static unsigned kind##_count(const struct vm_def *def)                                     \
	{                                                                                          \
		return def->member.present;                                                        \
	}                                                                                          \
	static uint8_t *kind##_slot(struct vm_def *def, unsigned i)                                \
	{                                                                                          \
		return &def->member.pci_slot;                                                      \
	}                                                                                          \
	static int kind##_parse(struct vm_def *def, json_object *v, char *err, size_t errlen)      \
	{                                                                                          \
		return parse_onedev(&def->member, fieldname, v, err, errlen);                      \
	}                                                                                          \
	static int kind##_to_json(const struct vm_def *def, json_object **out)                     \
	{                                                                                          \
		return onedev_to_json(&def->member, out);                                          \
	}                                                                                          \
	static bool kind##_same(const struct vm_def *nd, unsigned i, const struct vm_def *old,     \
				unsigned j)                                                        \
	{                                                                                          \
		return true;                                                                       \
	}                                                                                          \
	static bool kind##_hw_equal(const struct vm_def *a, unsigned i, const struct vm_def *b,    \
				    unsigned j)                                                    \
	{                                                                                          \
		return onedev_hw_equal(&a->member, &b->member);                                    \
	}                                                                                          \
	static bool kind##_guest_equal(const struct vm_def *saved, unsigned i,                     \
				       const struct vm_def *cur, unsigned j, char *why,            \
				       size_t len)                                                 \
	{                                                                                          \
		return true; /* no settings the guest sees beyond being there */                   \
	}                                                                                          \
	const struct vmdef_device_kind vmdef_##kind##_kind = {                                     \
		.field = fieldname,                                                                \
		.max = 1,                                                                          \
		.count = kind##_count,                                                             \
		.slot = kind##_slot,                                                               \
		.parse = kind##_parse,                                                             \
		.to_json = kind##_to_json,                                                         \
		.same = kind##_same,                                                               \
		.hw_equal = kind##_hw_equal,                                                       \
		.guest_equal = kind##_guest_equal,                                                 \
		.options = opts,                                                                   \
		.options_done = done,                                                              \
	}

ONEDEV_KIND(console, console, "virtio_console", console_options, console_options_done);
ONEDEV_KIND(rng, rng, "rng", rng_options, NULL);
