/* SPDX-License-Identifier: Apache-2.0 */
#include "config/vmdef.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

#include "config/vmdef_device.h"
#include "config/vmdef_json.h"
#include "lib/agentproto.h"
#include "lib/clock.h"
#include "lib/error.h"
#include "lib/parse.h"
#include "lib/uuid.h"

static const char *const start_action_names[] = {"nothing", "start-if-running", "start"};
static const char *const firmware_names[] = {"none", "bios", "uefi"};

const char *vmdef_firmware_name(enum vm_firmware f)
{
	return (unsigned)f < 3 ? firmware_names[f] : "?";
}

unsigned vmdef_generation(const struct vm_def *def)
{
	return def->firmware == VM_FIRMWARE_BIOS ? 1 : def->firmware == VM_FIRMWARE_UEFI ? 2 : 0;
}

const char *vmdef_boot_source(const struct vm_def *def)
{
	return def->firmware == VM_FIRMWARE_BIOS   ? "Generation 1 (BIOS)"
	       : def->firmware == VM_FIRMWARE_UEFI ? "Generation 2 (UEFI)"
						   : "direct kernel boot";
}

void vmdef_firmware_missing(const struct vm_def *def, char *buf, size_t len)
{
	error_set(buf, len, "%s's firmware file %s is missing: install Debian's '%s' package",
		  vmdef_boot_source(def), vmdef_firmware_file(def),
		  def->firmware == VM_FIRMWARE_BIOS ? VMDEF_SEABIOS_PKG : VMDEF_OVMF_PKG);
}

void vmdef_vars_template_missing(char *buf, size_t len)
{
	error_set(buf, len,
		  "UEFI variable store template %s is missing: install Debian's '%s' package",
		  VMDEF_OVMF_VARS_FILE, VMDEF_OVMF_PKG);
}

const char *vmdef_firmware_file(const struct vm_def *def)
{
	if (def->firmware == VM_FIRMWARE_NONE)
		return NULL;
	if (def->firmware_file)
		return def->firmware_file;
	return def->firmware == VM_FIRMWARE_BIOS ? VMDEF_SEABIOS_FILE : VMDEF_OVMF_CODE_FILE;
}
unsigned vmdef_files(const struct vm_def *def, struct vmdef_file out[VMDEF_FILES_MAX])
{
	unsigned n = 0;

	if (def->kernel)
		out[n++] = (struct vmdef_file){"kernel", def->kernel, -1, false, true};
	else if (def->firmware_file)
		out[n++] =
			(struct vmdef_file){"firmware file", def->firmware_file, -1, false, true};
	if (def->initrd)
		out[n++] = (struct vmdef_file){"initrd", def->initrd, -1, false, true};
	for (unsigned i = 0; i < def->ndisks && i < VMDEF_MAX_DISKS; i++)
		out[n++] = (struct vmdef_file){"disk", def->disks[i].path, (int)i, false,
					       def->disks[i].readonly};
	for (unsigned i = 0; i < def->scsi.nluns && i < VMDEF_MAX_LUNS; i++) {
		const struct vm_lun *l = &def->scsi.luns[i];
		bool dvd = l->type == VM_LUN_DVD;

		if (l->disk.path)
			out[n++] =
				(struct vmdef_file){dvd ? "DVD image" : "disk", l->disk.path,
						    (int)(def->ndisks + i), dvd, l->disk.readonly};
	}
	return n;
}

static const char *const stop_action_names[] = {"turn-off", "shut-down", "save"};

/* Fields the API shows and keeld sets: a document carries them, a request may not. */
static const char *const readonly_fields[] = {"id", "created", "version", "revision"};
/* Runtime state the API shows next to the description: never part of one. */
static const char *const runtime_fields[] = {"state",	       "state_reason",	    "pid",
					     "console_socket", "parent_checkpoint", "damaged"};

void vmdef_init(struct vm_def *def)
{
	memset(def, 0, sizeof(*def));
	def->cpus = 1;
	def->memory = VMDEF_DEFAULT_MEM;
	def->start_action = VM_START_NOTHING;
	def->stop_action = VM_STOP_SHUT_DOWN;
	def->version = VMDEF_CONFIG_VERSION;
	def->rng.present = true;
}

void vmdef_free(struct vm_def *def)
{
	free(def->kernel);
	free(def->initrd);
	free(def->cmdline);
	free(def->notes);
	free(def->firmware_file);
	free(def->nvram);
	def->kernel = def->initrd = def->cmdline = def->notes = NULL;
	def->firmware_file = def->nvram = NULL;
	for (size_t k = 0; k < vmdef_ndevices; k++)
		if (vmdef_devices[k]->free)
			vmdef_devices[k]->free(def);
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int vmdef_copy(struct vm_def *dst, const struct vm_def *src)
{
	size_t k;

	*dst = *src;
	dst->kernel = dst->initrd = dst->cmdline = dst->notes = NULL;
	dst->firmware_file = dst->nvram = NULL;
	if (dup_opt(&dst->kernel, src->kernel) || dup_opt(&dst->initrd, src->initrd) ||
	    dup_opt(&dst->cmdline, src->cmdline) || dup_opt(&dst->notes, src->notes) ||
	    dup_opt(&dst->firmware_file, src->firmware_file) || dup_opt(&dst->nvram, src->nvram))
		goto fail;
	for (k = 0; k < vmdef_ndevices; k++)
		if (vmdef_devices[k]->copy && vmdef_devices[k]->copy(dst, src))
			goto fail_kinds;
	return 0;
fail_kinds:
	/* The kinds copied so far own their allocations (k's copy leaves what it made freeable);
	 * the ones after k still point at src's. */
	for (size_t j = 0; j <= k; j++)
		if (vmdef_devices[j]->free)
			vmdef_devices[j]->free(dst);
fail:
	free(dst->kernel);
	free(dst->initrd);
	free(dst->cmdline);
	free(dst->notes);
	free(dst->firmware_file);
	free(dst->nvram);
	/* dst holds nothing now (no pointer into src's allocations): vmdef_free on it is a
	 * no-op, as callers that free on every path expect. */
	memset(dst, 0, sizeof(*dst));
	return -ENOMEM;
}

bool vmdef_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > VMDEF_NAME_MAX || name[0] == '-' || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

bool vmdef_mac_ok(const char *mac)
{
	int first;

	if (strlen(mac) != VMDEF_MAC_LEN)
		return false;
	for (int i = 0; i < VMDEF_MAC_LEN; i++) {
		if (i % 3 == 2) {
			if (mac[i] != ':')
				return false;
		} else if (parse_hex_digit(mac[i]) < 0) {
			return false;
		}
	}
	first = parse_hex_digit(mac[0]) * 16 + parse_hex_digit(mac[1]);
	return !(first & 1); /* a NIC address must be unicast */
}

int vmdef_mac_parse(const char *mac, uint8_t out[6])
{
	if (!vmdef_mac_ok(mac))
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(parse_hex_digit(mac[3 * i]) * 16 +
				   parse_hex_digit(mac[3 * i + 1]));
	return 0;
}

bool vmdef_tap_ok(const char *tap)
{
	size_t n = strlen(tap);

	if (n == 0 || n > VMDEF_TAP_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = tap[i];
		if (c <= ' ' || c == '/' || c == ':' || c == ',' || c == '=' || c == 0x7f)
			return false;
	}
	return strcmp(tap, ".") && strcmp(tap, "..");
}

int vmdef_gen_uuid(char out[VMDEF_UUID_LEN + 1])
{
	char text[UUID_STR_LEN];
	struct uuid u;
	int r = uuid_generate(&u);

	if (r)
		return r;
	uuid_format(&u, false, text);
	for (int i = 0; i <= VMDEF_UUID_LEN; i++) /* the API's ids are lower case */
		out[i] = (char)tolower((unsigned char)text[i]);
	return 0;
}

static const char *const mirror_names[] = {"none", "source", "destination"};

const char *vmdef_mirror_name(enum vm_mirror m)
{
	return (unsigned)m < sizeof(mirror_names) / sizeof(mirror_names[0]) ? mirror_names[m]
									    : "none";
}

int vmdef_mirror_parse(const char *s, enum vm_mirror *out)
{
	for (unsigned i = 0; i < sizeof(mirror_names) / sizeof(mirror_names[0]); i++)
		if (!strcmp(s, mirror_names[i])) {
			*out = (enum vm_mirror)i;
			return 0;
		}
	return -EINVAL;
}

static const char *const vhost_names[] = {"auto", "off", "on"};

const char *vmdef_vhost_name(enum vm_vhost v)
{
	return (unsigned)v < sizeof(vhost_names) / sizeof(vhost_names[0]) ? vhost_names[v] : "auto";
}

int vmdef_vhost_parse(const char *s, enum vm_vhost *out)
{
	for (unsigned i = 0; i < sizeof(vhost_names) / sizeof(vhost_names[0]); i++)
		if (!strcmp(s, vhost_names[i])) {
			*out = (enum vm_vhost)i;
			return 0;
		}
	return -EINVAL;
}

int vmdef_vlan_list(const char *s, void (*cb)(uint16_t lo, uint16_t hi, void *data), void *data)
{
	if (!*s || strlen(s) > VMDEF_TRUNK_MAX)
		return -EINVAL;
	while (*s) {
		unsigned long lo, hi;
		char *end;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		lo = hi = strtoul(s, &end, 10);
		if (*end == '-') {
			if (end[1] < '0' || end[1] > '9')
				return -EINVAL;
			hi = strtoul(end + 1, &end, 10);
		}
		if (lo < 1 || hi > VMDEF_VLAN_MAX || lo > hi || (*end && *end != ','))
			return -EINVAL;
		if (cb)
			cb((uint16_t)lo, (uint16_t)hi, data);
		s = *end ? end + 1 : end;
		if (*end && !*s)
			return -EINVAL; /* a trailing comma */
	}
	return 0;
}

struct vlan_bits {
	uint8_t on[(VMDEF_VLAN_MAX + 8) / 8];
};

static void vlan_mark(uint16_t lo, uint16_t hi, void *data)
{
	struct vlan_bits *b = data;

	for (unsigned v = lo; v <= hi; v++)
		b->on[v / 8] |= (uint8_t)(1u << (v % 8));
}

int vmdef_vlan_ranges(const char *s, uint16_t native, uint16_t *lo, uint16_t *hi, size_t max)
{
	struct vlan_bits b = {{0}};
	size_t n = 0;

	if (vmdef_vlan_list(s, vlan_mark, &b))
		return -EINVAL;
	for (unsigned v = 1; v <= VMDEF_VLAN_MAX; v++) {
		bool on = v != native && (b.on[v / 8] >> (v % 8) & 1);

		if (!on)
			continue;
		if (n && hi[n - 1] == v - 1) {
			hi[n - 1] = (uint16_t)v; /* joined to the range before */
			continue;
		}
		if (n == max)
			return -ENOSPC;
		lo[n] = hi[n] = (uint16_t)v;
		n++;
	}
	return (int)n;
}

bool vmdef_switch_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > VMDEF_SWITCH_MAX || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr(" ._-", name[i]))
			return false;
	return true;
}

void vmdef_switch_tap(const char *mac, char out[VMDEF_TAP_MAX + 1])
{
	size_t o = 0;

	out[o++] = 'k';
	for (; *mac && o < VMDEF_TAP_MAX; mac++)
		if (*mac != ':')
			out[o++] = *mac;
	out[o] = '\0';
}

void vmdef_mac_format(const uint8_t mac[6], char out[VMDEF_MAC_LEN + 1])
{
	snprintf(out, VMDEF_MAC_LEN + 1, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
}

int vmdef_gen_mac(char out[VMDEF_MAC_LEN + 1])
{
	uint8_t b[6];

	if (getrandom(b + 1, 5, 0) != 5)
		return -EIO;
	b[0] = 0x02; /* locally administered (bit 1 set), unicast (bit 0 clear) */
	vmdef_mac_format(b, out);
	return 0;
}

const char *vmdef_start_action_name(enum vm_start_action a)
{
	return (unsigned)a < 3 ? start_action_names[a] : "?";
}

const char *vmdef_stop_action_name(enum vm_stop_action a)
{
	return (unsigned)a < 3 ? stop_action_names[a] : "?";
}

static bool uuid_text_ok(const char *s)
{
	if (strlen(s) != VMDEF_UUID_LEN)
		return false;
	for (int i = 0; i < VMDEF_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (parse_hex_digit(s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F')) {
			return false;
		}
	}
	return true;
}

/* The fields a document carries and a request may not set. */
static int apply_readonly_field(struct vm_def *def, const char *key, json_object *val, char *err,
				size_t errlen)
{
	int64_t x;
	const char *s;

	if (!strcmp(key, "id")) {
		s = vmdef_get_str(val, "id", VMDEF_UUID_LEN + 1, err, errlen);
		if (!s)
			return -EINVAL;
		if (!uuid_text_ok(s)) {
			error_set(err, errlen, "field 'id' must be a lower-case UUID, not '%s'", s);
			return -EINVAL;
		}
		strcpy(def->uuid, s);
		return 0;
	}
	if (!strcmp(key, "version")) {
		if (vmdef_get_int(val, "version", 1, VMDEF_CONFIG_VERSION, &x, err, errlen)) {
			error_set(err, errlen,
				  "configuration version %s is not one this keel knows (1 to %d): "
				  "use a newer keel",
				  json_object_to_json_string(val), VMDEF_CONFIG_VERSION);
			return -EINVAL;
		}
		def->version = (uint32_t)x;
		return 0;
	}
	if (!strcmp(key, "revision")) {
		if (vmdef_get_int(val, "revision", 0, INT64_MAX, &x, err, errlen))
			return -EINVAL;
		def->revision = (uint64_t)x;
		return 0;
	}
	/* "created": "YYYY-MM-DDTHH:MM:SSZ" or "" (not recorded). */
	s = vmdef_get_str(val, "created", 32, err, errlen);
	if (!s)
		return -EINVAL;
	if (*s) {
		struct tm tm = {0};
		const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);

		if (!end || *end) {
			error_set(err, errlen,
				  "field 'created' must be a UTC time such as "
				  "2026-12-05T10:00:00Z, not '%s'",
				  s);
			return -EINVAL;
		}
		def->created = (int64_t)timegm(&tm);
	} else {
		def->created = 0;
	}
	return 0;
}

/* "integration_disabled": the names of the integration services turned off. */
static int parse_integration(struct vm_def *def, json_object *val, char *err, size_t errlen)
{
	uint32_t off = 0;
	size_t n;

	if (val && !json_object_is_type(val, json_type_array)) {
		error_set(err, errlen,
			  "field 'integration_disabled' must be an array of service names");
		return -EINVAL;
	}
	n = val ? json_object_array_length(val) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(val, i);
		int s = json_object_is_type(e, json_type_string)
				? ap_service_by_name(json_object_get_string(e))
				: -EINVAL;

		if (s < 0) {
			error_set(err, errlen,
				  "field 'integration_disabled': item %zu is not a service "
				  "(heartbeat, "
				  "shutdown, time, kvp, exec, copy, freeze)",
				  i);
			return -EINVAL;
		}
		off |= 1u << s;
	}
	def->integration_off = off;
	return 0;
}

static int apply_field(struct vm_def *def, const char *key, json_object *val,
		       enum vmdef_json_kind kind, char *err, size_t errlen)
{
	int64_t x;
	unsigned e;
	int ret;

	for (size_t i = 0; i < sizeof(readonly_fields) / sizeof(readonly_fields[0]); i++) {
		if (strcmp(key, readonly_fields[i]))
			continue;
		if (kind == VMDEF_JSON_DOCUMENT)
			return apply_readonly_field(def, key, val, err, errlen);
		error_set(err, errlen, "field '%s' is read-only", key);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(runtime_fields) / sizeof(runtime_fields[0]); i++) {
		if (!strcmp(key, runtime_fields[i])) {
			error_set(err, errlen,
				  "field '%s' is the VM's runtime state, not part of its "
				  "description",
				  key);
			return -EINVAL;
		}
	}
	if (!strcmp(key, "name")) {
		const char *s = vmdef_get_str(val, "name", 256, err, errlen);
		if (!s)
			return -EINVAL;
		if (!vmdef_name_ok(s)) {
			error_set(err, errlen,
				  "invalid VM name '%s': use 1 to %d letters, digits, '.', '_' or "
				  "'-', "
				  "not starting with '.' or '-'",
				  s, VMDEF_NAME_MAX);
			return -EINVAL;
		}
		strcpy(def->name, s);
		return 0;
	}
	if (!strcmp(key, "cpus")) {
		ret = vmdef_get_int(val, "cpus", 1, VMDEF_CPUS_MAX, &x, err, errlen);
		if (!ret)
			def->cpus = (uint32_t)x;
		return ret;
	}
	if (!strcmp(key, "memory")) {
		ret = vmdef_get_int(val, "memory", (int64_t)VMDEF_MEM_MIN, (int64_t)VMDEF_MEM_MAX,
				    &x, err, errlen);
		if (ret)
			return ret;
		if (x % (1 << 20)) {
			error_set(err, errlen,
				  "field 'memory' must be a multiple of 1 MiB (1048576)");
			return -EINVAL;
		}
		def->memory = (uint64_t)x;
		return 0;
	}
	if (!strcmp(key, "kernel"))
		return vmdef_get_path(val, "kernel", false, &def->kernel, err, errlen);
	if (!strcmp(key, "initrd"))
		return vmdef_get_path(val, "initrd", true, &def->initrd, err, errlen);
	if (!strcmp(key, "cmdline"))
		return vmdef_get_text(val, "cmdline", VMDEF_CMDLINE_MAX, &def->cmdline, err,
				      errlen);
	if (!strcmp(key, "notes"))
		return vmdef_get_text(val, "notes", VMDEF_NOTES_MAX, &def->notes, err, errlen);
	if (!strcmp(key, "generation")) {
		if (!val) {
			def->firmware = VM_FIRMWARE_NONE;
			return 0;
		}
		ret = vmdef_get_int(val, key, 1, 2, &x, err, errlen);
		if (!ret)
			def->firmware = x == 1 ? VM_FIRMWARE_BIOS : VM_FIRMWARE_UEFI;
		return ret;
	}
	/* Documents written before 'generation' (saved states, checkpoints) said 'firmware':
	 * read as the generation it means (vmdef_apply_json refuses the two disagreeing). */
	if (!strcmp(key, "firmware") && kind == VMDEF_JSON_DOCUMENT) {
		ret = vmdef_get_enum(val, key, firmware_names, 3, &e, err, errlen);
		if (!ret)
			def->firmware = (enum vm_firmware)e;
		return ret;
	}
	if (!strcmp(key, "boot_order"))
		return vmdef_boot_parse_json(def, val, err, errlen);
	if (!strcmp(key, "boot_menu"))
		return vmdef_get_bool(val, "boot_menu", &def->boot_menu, err, errlen);
	if (!strcmp(key, "integration_disabled"))
		return parse_integration(def, val, err, errlen);
	if (!strcmp(key, "firmware_file"))
		return vmdef_get_path(val, "firmware_file", true, &def->firmware_file, err, errlen);
	if (!strcmp(key, "nvram"))
		return vmdef_get_path(val, "nvram", true, &def->nvram, err, errlen);
	for (size_t k = 0; k < vmdef_ndevices; k++)
		if (!strcmp(key, vmdef_devices[k]->field))
			return vmdef_devices[k]->parse(def, val, err, errlen);
	if (!strcmp(key, "debug_exit"))
		return vmdef_get_bool(val, "debug_exit", &def->debug_exit, err, errlen);
	if (!strcmp(key, "automatic_start_action")) {
		ret = vmdef_get_enum(val, key, start_action_names, 3, &e, err, errlen);
		if (!ret)
			def->start_action = (enum vm_start_action)e;
		return ret;
	}
	if (!strcmp(key, "automatic_stop_action")) {
		ret = vmdef_get_enum(val, key, stop_action_names, 3, &e, err, errlen);
		if (ret)
			return ret;
		def->stop_action = (enum vm_stop_action)e;
		return 0;
	}
	error_set(err, errlen, "unknown field '%s' in VM definition", key);
	return -EINVAL;
}

static bool slot_used(const struct vm_def *def, uint8_t slot)
{
	for (size_t k = 0; k < vmdef_ndevices; k++) {
		const struct vmdef_device_kind *kind = vmdef_devices[k];

		for (unsigned i = 0; i < kind->count(def); i++)
			if (*kind->slot((struct vm_def *)def, i) == slot)
				return true;
	}
	return false;
}

/* A device given without a slot keeps the one it had (a disk: the same file; an adapter:
 * the same tap; the console and rng: theirs), unless a device asked for that slot by name:
 * an explicit slot wins and the other device gets a free one (vmdef_assign_slots). */
static void keep_slots(struct vm_def *nd, const struct vm_def *old)
{
	for (size_t k = 0; k < vmdef_ndevices; k++) {
		const struct vmdef_device_kind *kind = vmdef_devices[k];

		for (unsigned i = 0; i < kind->count(nd); i++) {
			uint8_t *slot = kind->slot(nd, i);

			for (unsigned j = 0; j < kind->count(old) && !*slot; j++) {
				uint8_t was = *kind->slot((struct vm_def *)old, j);

				if (kind->same(nd, i, old, j) && was && !slot_used(nd, was))
					*slot = was;
			}
		}
	}
}

/* A document with the legacy 'firmware' and 'generation' both: they must say the same. */
static int legacy_firmware_agrees(json_object *obj, char *err, size_t errlen)
{
	json_object *f, *g;
	const char *fs;
	int gen;

	if (!json_object_object_get_ex(obj, "firmware", &f) ||
	    !json_object_object_get_ex(obj, "generation", &g))
		return 0;
	fs = json_object_is_type(f, json_type_string) ? json_object_get_string(f) : "";
	/* generation null: direct boot, firmware "none" */
	gen = !g ? 0 : json_object_is_type(g, json_type_int) ? json_object_get_int(g) : -1;
	if ((!strcmp(fs, "bios") && gen == 1) || (!strcmp(fs, "uefi") && gen == 2) ||
	    (!strcmp(fs, "none") && gen == 0))
		return 0;
	error_set(err, errlen,
		  "fields 'firmware' (the older name) and 'generation' disagree: give one");
	return -EINVAL;
}

int vmdef_apply_json(struct vm_def *def, json_object *obj, enum vmdef_json_kind kind, char *err,
		     size_t errlen)
{
	struct vm_def tmp;
	int ret;

	if (!json_object_is_type(obj, json_type_object)) {
		error_set(err, errlen, "the request body must be a JSON object");
		return -EINVAL;
	}
	if (kind == VMDEF_JSON_DOCUMENT) {
		ret = legacy_firmware_agrees(obj, err, errlen);
		if (ret)
			return ret;
	}
	ret = vmdef_copy(&tmp, def);
	if (ret)
		return ret;
	json_object_object_foreach(obj, key, val)
	{
		ret = apply_field(&tmp, key, val, kind, err, errlen);
		if (ret) {
			vmdef_free(&tmp);
			return ret;
		}
	}
	keep_slots(&tmp, def);
	ret = vmdef_assign_slots(&tmp, err, errlen);
	if (ret) {
		vmdef_free(&tmp);
		return ret;
	}
	vmdef_free(def);
	*def = tmp;
	return 0;
}

/* Every device slot in the description with what holds it, for the checks and messages. */
struct slot_user {
	uint8_t *slot;
	char what[32];
};

static unsigned slot_users(struct vm_def *def, struct slot_user *u)
{
	unsigned n = 0;

	for (size_t k = 0; k < vmdef_ndevices; k++) {
		const struct vmdef_device_kind *kind = vmdef_devices[k];

		for (unsigned i = 0; i < kind->count(def); i++) {
			u[n].slot = kind->slot(def, i);
			if (kind->max == 1)
				snprintf(u[n++].what, sizeof(u->what), "%s", kind->field);
			else
				snprintf(u[n++].what, sizeof(u->what), "%s[%u]", kind->field, i);
		}
	}
	return n;
}

#define MAX_SLOT_USERS VMDEF_MAX_PCI_DEVICES

int vmdef_assign_slots(struct vm_def *def, char *err, size_t errlen)
{
	struct slot_user u[MAX_SLOT_USERS];
	bool used[VMDEF_PCI_SLOT_MAX + 1] = {false};
	unsigned n = slot_users(def, u), next = VMDEF_PCI_SLOT_MIN;

	for (unsigned i = 0; i < n; i++)
		if (*u[i].slot <= VMDEF_PCI_SLOT_MAX)
			used[*u[i].slot] = true;
	for (unsigned i = 0; i < n; i++) {
		if (*u[i].slot)
			continue;
		while (next <= VMDEF_PCI_SLOT_MAX && used[next])
			next++;
		if (next > VMDEF_PCI_SLOT_MAX) {
			error_set(err, errlen, "no free PCI slot for %s (slots %d to %d are taken)",
				  u[i].what, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX);
			return -ENOSPC;
		}
		*u[i].slot = (uint8_t)next;
		used[next] = true;
	}
	return 0;
}

int vmdef_check(const struct vm_def *def, char *err, size_t errlen)
{
	struct slot_user u[MAX_SLOT_USERS];
	unsigned n = slot_users((struct vm_def *)def, u);

	if (!def->kernel && def->firmware == VM_FIRMWARE_NONE) {
		error_set(err, errlen,
			  "VM '%s' needs a 'kernel' (direct boot) or a 'generation' (1: BIOS, "
			  "2: UEFI) to boot",
			  def->name);
		return -EINVAL;
	}
	if (def->kernel && def->firmware != VM_FIRMWARE_NONE) {
		error_set(err, errlen,
			  "VM '%s' has both a 'kernel' and a 'generation': a VM boots its kernel "
			  "directly or through firmware, not both",
			  def->name);
		return -EINVAL;
	}
	if ((def->initrd || (def->cmdline && def->cmdline[0])) && !def->kernel) {
		error_set(err, errlen, "VM '%s': 'initrd' and 'cmdline' need a 'kernel'",
			  def->name);
		return -EINVAL;
	}
	if (def->firmware_file && def->firmware == VM_FIRMWARE_NONE) {
		error_set(err, errlen, "VM '%s': 'firmware_file' needs a 'generation'", def->name);
		return -EINVAL;
	}
	if (def->boot_menu && def->firmware == VM_FIRMWARE_NONE) {
		error_set(err, errlen,
			  "VM '%s': a 'boot_menu' is the firmware's; a VM that boots its kernel "
			  "directly has none",
			  def->name);
		return -EINVAL;
	}
	if (def->nvram && def->firmware != VM_FIRMWARE_UEFI) {
		error_set(err, errlen,
			  "VM '%s': an 'nvram' variable store is UEFI's (Generation 2); %s has "
			  "none",
			  def->name,
			  def->firmware == VM_FIRMWARE_BIOS ? "Generation 1 (BIOS)"
							    : "direct boot");
		return -EINVAL;
	}
	if (vmdef_boot_check(def, err, errlen))
		return -EINVAL;
	for (size_t k = 0; k < vmdef_ndevices; k++)
		if (vmdef_devices[k]->check && vmdef_devices[k]->check(def, err, errlen))
			return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (*u[i].slot < VMDEF_PCI_SLOT_MIN || *u[i].slot > VMDEF_PCI_SLOT_MAX) {
			error_set(err, errlen, "%s has no PCI slot from %d to %d", u[i].what,
				  VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX);
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (*u[i].slot == *u[j].slot) {
				error_set(err, errlen, "%s and %s both ask for PCI slot %u",
					  u[j].what, u[i].what, *u[i].slot);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int vmdef_validate(const struct vm_def *def, char *err, size_t errlen)
{
	if (!def->name[0]) {
		error_set(err, errlen, "a VM needs a 'name'");
		return -EINVAL;
	}
	if (vmdef_check(def, err, errlen))
		return -EINVAL;
	if (def->kernel && vmdef_check_file("kernel", def->kernel, false, false, err, errlen))
		return -EINVAL;
	if (def->firmware != VM_FIRMWARE_NONE) {
		const char *fw = vmdef_firmware_file(def);

		if (!def->firmware_file && access(fw, F_OK)) {
			char missing[256];

			vmdef_firmware_missing(def, missing, sizeof(missing));
			error_set(err, errlen, "VM '%s': %s", def->name, missing);
			return -EINVAL;
		}
		if (vmdef_check_file("firmware file", fw, false, false, err, errlen))
			return -EINVAL;
	}
	if (def->initrd && vmdef_check_file("initrd", def->initrd, false, false, err, errlen))
		return -EINVAL;
	for (size_t k = 0; k < vmdef_ndevices; k++)
		if (vmdef_devices[k]->validate && vmdef_devices[k]->validate(def, err, errlen))
			return -EINVAL;
	return 0;
}

const char *vmdef_hw_change(const struct vm_def *a, const struct vm_def *b)
{
	if (a->cpus != b->cpus)
		return "cpus";
	if (a->memory != b->memory)
		return "memory";
	if (a->firmware != b->firmware)
		return "generation";
	if (a->nboot != b->nboot ||
	    memcmp(a->boot_order, b->boot_order, a->nboot * sizeof(a->boot_order[0])))
		return "boot_order";
	if (a->boot_menu != b->boot_menu)
		return "boot_menu";
	for (size_t k = 0; k < vmdef_ndevices; k++) {
		const struct vmdef_device_kind *kind = vmdef_devices[k];
		unsigned n = kind->count(a);

		if (n != kind->count(b))
			return kind->field;
		for (unsigned i = 0; i < n; i++)
			if (!kind->hw_equal(a, i, b, i))
				return kind->field;
	}
	if (a->debug_exit != b->debug_exit)
		return "debug_exit";
	return NULL;
}

bool vmdef_guest_change(const struct vm_def *saved, const struct vm_def *cur, char *why, size_t len)
{
	if (saved->cpus != cur->cpus) {
		snprintf(why, len, "the VM was saved with %u vCPU%s, its description says %u",
			 saved->cpus, saved->cpus == 1 ? "" : "s", cur->cpus);
		return true;
	}
	if (saved->memory != cur->memory) {
		snprintf(why, len,
			 "the VM was saved with %lluM of memory, its description says %lluM",
			 (unsigned long long)(saved->memory >> 20),
			 (unsigned long long)(cur->memory >> 20));
		return true;
	}
	if (saved->firmware != cur->firmware) {
		snprintf(why, len, "the VM was saved with %s, its description says %s",
			 vmdef_boot_source(saved), vmdef_boot_source(cur));
		return true;
	}
	if (saved->debug_exit != cur->debug_exit) {
		snprintf(why, len,
			 "the VM was saved %s the debug-exit device, its description %s it",
			 saved->debug_exit ? "with" : "without", cur->debug_exit ? "has" : "lacks");
		return true;
	}
	/* Devices are what the guest found at each PCI slot: matched by slot, not list order. */
	for (size_t k = 0; k < vmdef_ndevices; k++) {
		const struct vmdef_device_kind *kind = vmdef_devices[k];
		unsigned ns = kind->count(saved), nc = kind->count(cur);

		if (ns != nc) {
			snprintf(
				why, len,
				"the VM was saved with %u device%s in '%s'; its description has %u",
				ns, ns == 1 ? "" : "s", kind->field, nc);
			return true;
		}
		for (unsigned i = 0; i < ns; i++) {
			uint8_t slot = *kind->slot((struct vm_def *)saved, i);
			unsigned j = 0;

			while (j < nc && *kind->slot((struct vm_def *)cur, j) != slot)
				j++;
			if (j == nc) {
				snprintf(why, len,
					 "the VM was saved with a device of '%s' at PCI slot %u; "
					 "its description has none there",
					 kind->field, slot);
				return true;
			}
			if (!kind->guest_equal(saved, i, cur, j, why, len))
				return true;
		}
	}
	return false;
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

json_object *vmdef_to_json(const struct vm_def *def)
{
	json_object *o = json_object_new_object();
	char created[CLOCK_UTC_LEN] = "";

	if (!o)
		return NULL;
	if (def->created) /* "": not recorded (keel-vmm's own VMs) */
		clock_utc_text((time_t)def->created, created);
	if (def->name[0]) /* keel-vmm runs nameless VMs; keeld's always have one */
		json_object_object_add(o, "name", json_object_new_string(def->name));
	if (def->uuid[0])
		json_object_object_add(o, "id", json_object_new_string(def->uuid));
	json_object_object_add(o, "version", json_object_new_int64(def->version));
	json_object_object_add(o, "revision", json_object_new_int64((int64_t)def->revision));
	json_object_object_add(o, "created", json_object_new_string(created));
	json_object_object_add(o, "cpus", json_object_new_int64(def->cpus));
	json_object_object_add(o, "memory", json_object_new_int64((int64_t)def->memory));
	if (def->kernel || def->firmware == VM_FIRMWARE_NONE) /* a firmware VM has none */
		json_object_object_add(o, "kernel", str_or_null(def->kernel));
	json_object_object_add(o, "initrd", str_or_null(def->initrd));
	json_object_object_add(o, "cmdline",
			       json_object_new_string(def->cmdline ? def->cmdline : ""));
	if (def->integration_off) { /* absent: every service on, as before the field */
		json_object *a = json_object_new_array();

		for (unsigned k = 0; a && k < AP_S_COUNT; k++)
			if (def->integration_off >> k & 1)
				json_object_array_add(a,
						      json_object_new_string(ap_service_name(k)));
		json_object_object_add(o, "integration_disabled", a);
	}
	if (def->firmware != VM_FIRMWARE_NONE) { /* absent: direct boot, as before firmware */
		json_object_object_add(
			o, "generation",
			json_object_new_int(def->firmware == VM_FIRMWARE_BIOS ? 1 : 2));
		json_object_object_add(o, "firmware_file", str_or_null(def->firmware_file));
		json_object_object_add(o, "nvram", str_or_null(def->nvram));
		json_object_object_add(o, "boot_order", vmdef_boot_to_json(def));
		json_object_object_add(o, "boot_menu", json_object_new_boolean(def->boot_menu));
	}
	for (size_t k = 0; k < vmdef_ndevices; k++) {
		json_object *v;

		if (vmdef_devices[k]->to_json(def, &v)) {
			json_object_put(o);
			return NULL;
		}
		json_object_object_add(o, vmdef_devices[k]->field, v);
	}
	json_object_object_add(o, "debug_exit", json_object_new_boolean(def->debug_exit));
	json_object_object_add(o, "notes", json_object_new_string(def->notes ? def->notes : ""));
	json_object_object_add(o, "automatic_start_action",
			       json_object_new_string(vmdef_start_action_name(def->start_action)));
	json_object_object_add(o, "automatic_stop_action",
			       json_object_new_string(vmdef_stop_action_name(def->stop_action)));
	return o;
}

int vmdef_load_file(const char *path, struct vm_def *def, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		ret = -errno;
		vmdef_init(def);
		error_set(err, errlen, "cannot open VM description %s: %s", path, strerror(errno));
		return ret;
	}
	ret = vmdef_load_fd(fd, path, def, err, errlen);
	close(fd);
	return ret;
}

int vmdef_load_fd(int fd, const char *path, struct vm_def *def, char *err, size_t errlen)
{
	json_tokener *tok = NULL;
	json_object *obj = NULL;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int ret = 0;

	vmdef_init(def);
	buf = malloc(VMDEF_DOCUMENT_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (len <= VMDEF_DOCUMENT_MAX &&
	       (n = read(fd, buf + len, VMDEF_DOCUMENT_MAX + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			error_set(err, errlen, "cannot read VM description %s: %s", path,
				  strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	if (len > VMDEF_DOCUMENT_MAX) {
		error_set(err, errlen, "VM description %s is larger than %u bytes", path,
			  VMDEF_DOCUMENT_MAX);
		ret = -EINVAL;
		goto out;
	}
	tok = json_tokener_new();
	if (!tok) {
		ret = -ENOMEM;
		goto out;
	}
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	if (!obj || json_tokener_get_parse_end(tok) != len) {
		enum json_tokener_error e = json_tokener_get_error(tok);

		error_set(err, errlen, "VM description %s is not one JSON object: %s at byte %zu",
			  path,
			  obj ? "text after the object"
			      : json_tokener_error_desc(e == json_tokener_continue
								? json_tokener_error_parse_eof
								: e),
			  json_tokener_get_parse_end(tok));
		ret = -EINVAL;
		goto out;
	}
	ret = vmdef_apply_json(def, obj, VMDEF_JSON_DOCUMENT, err, errlen);
	if (!ret)
		ret = vmdef_check(def, err, errlen);
	if (ret == -EINVAL) {
		char reason[512];

		snprintf(reason, sizeof(reason), "%s", err);
		error_set(err, errlen, "VM description %s: %s", path, reason);
	}
out:
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
	free(buf);
	return ret;
}

int vmdef_save_file(const struct vm_def *def, const char *path, char *err, size_t errlen)
{
	json_object *o = vmdef_to_json(def);
	char tmp[4096 + 8];
	const char *text;
	size_t len, off = 0;
	int fd = -1, ret = 0;

	if (!o)
		return -ENOMEM;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		ret = -ENAMETOOLONG;
		error_set(err, errlen, "cannot write VM description %s: path too long", path);
		goto out;
	}
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text) {
		ret = -ENOMEM;
		goto fail;
	}
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto fail;
		}
		off += (size_t)n;
	}
	errno = EIO; /* a short write sets none */
	if (write(fd, "\n", 1) != 1 || fsync(fd) < 0 || rename(tmp, path) < 0) {
		ret = -errno;
		goto fail;
	}
	goto out;
fail:
	error_set(err, errlen, "cannot write VM description %s: %s", path, strerror(-ret));
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	return ret;
}
