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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/error.h"
#include "lib/parse.h"
#include "lib/uuid.h"

static const char *const start_action_names[] = {"nothing", "start-if-running", "start"};
static const char *const stop_action_names[] = {"turn-off", "shut-down", "save"};

/* Fields the API shows and keeld sets: a document carries them, a request may not. */
static const char *const readonly_fields[] = {"id", "created", "version", "revision"};
/* Runtime state the API shows next to the description: never part of one. */
static const char *const runtime_fields[] = {"state", "state_reason", "pid", "console_socket",
					     "parent_checkpoint"};

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
	for (unsigned i = 0; i < def->ndisks; i++)
		free(def->disks[i].path);
	def->kernel = def->initrd = def->cmdline = def->notes = NULL;
	def->ndisks = 0;
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
	int ret = 0;

	*dst = *src;
	dst->kernel = dst->initrd = dst->cmdline = dst->notes = NULL;
	dst->ndisks = 0;
	if (dup_opt(&dst->kernel, src->kernel) || dup_opt(&dst->initrd, src->initrd) ||
	    dup_opt(&dst->cmdline, src->cmdline) || dup_opt(&dst->notes, src->notes)) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < src->ndisks; i++) {
		dst->disks[i] = src->disks[i];
		if (dup_opt(&dst->disks[i].path, src->disks[i].path)) {
			ret = -ENOMEM;
			goto out;
		}
		dst->ndisks = i + 1;
	}
out:
	if (ret)
		vmdef_free(dst);
	return ret;
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

/* A JSON string with no embedded NUL and at most max bytes, or NULL with err set. */
static const char *get_str(json_object *v, const char *field, size_t max, char *err, size_t errlen)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		error_set(err, errlen, "field '%s' must be a string", field);
		return NULL;
	}
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v)) {
		error_set(err, errlen, "field '%s' contains a NUL character", field);
		return NULL;
	}
	if (strlen(s) > max) {
		error_set(err, errlen, "field '%s' is longer than %zu bytes", field, max);
		return NULL;
	}
	return s;
}

static int get_path(json_object *v, const char *field, bool nullable, char **out, char *err,
		    size_t errlen)
{
	const char *s;

	if (!v || json_object_is_type(v, json_type_null)) {
		if (!nullable) {
			error_set(err, errlen, "field '%s' cannot be null", field);
			return -EINVAL;
		}
		free(*out);
		*out = NULL;
		return 0;
	}
	s = get_str(v, field, VMDEF_PATH_MAX, err, errlen);
	if (!s)
		return -EINVAL;
	if (s[0] != '/') {
		error_set(err, errlen, "field '%s' must be an absolute path, not '%s'", field, s);
		return -EINVAL;
	}
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int get_text(json_object *v, const char *field, size_t max, char **out, char *err,
		    size_t errlen)
{
	const char *s;

	if (json_object_is_type(v, json_type_null)) {
		free(*out);
		*out = NULL;
		return 0;
	}
	s = get_str(v, field, max, err, errlen);
	if (!s)
		return -EINVAL;
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int get_int(json_object *v, const char *field, int64_t min, int64_t max, int64_t *out,
		   char *err, size_t errlen)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int)) {
		error_set(err, errlen, "field '%s' must be an integer", field);
		return -EINVAL;
	}
	errno = 0;
	x = json_object_get_int64(v);
	/* json-c saturates out-of-range numbers at INT64_MIN/MAX and sets errno. */
	if (errno == ERANGE || x < min || x > max) {
		error_set(err, errlen, "field '%s' must be between %" PRId64 " and %" PRId64, field,
			  min, max);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int get_enum(json_object *v, const char *field, const char *const *names, unsigned n,
		    unsigned *out, char *err, size_t errlen)
{
	const char *s = get_str(v, field, 64, err, errlen);

	if (!s)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	error_set(err, errlen, "field '%s' must be one of %s%s%s%s%s, not '%s'", field, names[0],
		  n > 1 ? ", " : "", n > 1 ? names[1] : "", n > 2 ? ", " : "",
		  n > 2 ? names[2] : "", s);
	return -EINVAL;
}

static int get_slot(json_object *v, const char *field, uint8_t *out, char *err, size_t errlen)
{
	int64_t x;
	int ret = get_int(v, field, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX, &x, err, errlen);

	if (!ret)
		*out = (uint8_t)x;
	return ret;
}

static int parse_disk(struct vm_disk *disk, size_t i, json_object *d, char *err, size_t errlen)
{
	bool have_path = false;
	const char *s;
	int ret;

	if (!json_object_is_type(d, json_type_object)) {
		error_set(err, errlen, "disks[%zu] must be an object", i);
		return -EINVAL;
	}
	json_object_object_foreach(d, key, val)
	{
		if (!strcmp(key, "path")) {
			ret = get_path(val, "disks[].path", false, &disk->path, err, errlen);
			if (ret)
				return ret;
			have_path = true;
		} else if (!strcmp(key, "readonly")) {
			if (!json_object_is_type(val, json_type_boolean)) {
				error_set(err, errlen, "disks[%zu].readonly must be true or false",
					  i);
				return -EINVAL;
			}
			disk->readonly = json_object_get_boolean(val);
		} else if (!strcmp(key, "serial")) {
			s = get_str(val, "disks[].serial", VMDEF_SERIAL_MAX, err, errlen);
			if (!s)
				return -EINVAL;
			strcpy(disk->serial, s); /* length checked by get_str */
		} else if (!strcmp(key, "pci_slot")) {
			ret = get_slot(val, "disks[].pci_slot", &disk->pci_slot, err, errlen);
			if (ret)
				return ret;
		} else {
			error_set(err, errlen, "unknown field '%s' in disks[%zu]", key, i);
			return -EINVAL;
		}
	}
	if (!have_path) {
		error_set(err, errlen, "disks[%zu] has no 'path'", i);
		return -EINVAL;
	}
	return 0;
}

static int parse_disks(struct vm_def *def, json_object *v, char *err, size_t errlen)
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

static int parse_nics(struct vm_def *def, json_object *v, char *err, size_t errlen)
{
	struct vm_nic old[VMDEF_MAX_NICS];
	bool used[VMDEF_MAX_NICS] = {false};
	unsigned nold = def->nnics;
	size_t n;

	if (!json_object_is_type(v, json_type_array)) {
		error_set(err, errlen, "field 'nets' must be an array");
		return -EINVAL;
	}
	n = json_object_array_length(v);
	if (n > VMDEF_MAX_NICS) {
		error_set(err, errlen, "a VM has at most %d network adapters, not %zu",
			  VMDEF_MAX_NICS, n);
		return -EINVAL;
	}
	memcpy(old, def->nics, sizeof(old));
	def->nnics = 0;
	for (size_t i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(v, i);
		struct vm_nic *nic = &def->nics[i];
		const char *s;

		if (!json_object_is_type(d, json_type_object)) {
			error_set(err, errlen, "nets[%zu] must be an object", i);
			return -EINVAL;
		}
		memset(nic, 0, sizeof(*nic));
		json_object_object_foreach(d, key, val)
		{
			if (!strcmp(key, "tap")) {
				s = get_str(val, "nets[].tap", 64, err, errlen);
				if (!s)
					return -EINVAL;
				if (!vmdef_tap_ok(s)) {
					error_set(
						err, errlen,
						"nets[%zu].tap '%s' is not a valid interface name "
						"(1 to %d characters, no spaces, '/', ':', ',' or "
						"'=')",
						i, s, VMDEF_TAP_MAX);
					return -EINVAL;
				}
				strcpy(nic->tap, s);
			} else if (!strcmp(key, "mac")) {
				s = get_str(val, "nets[].mac", 64, err, errlen);
				if (!s)
					return -EINVAL;
				if (!vmdef_mac_ok(s)) {
					error_set(err, errlen,
						  "nets[%zu].mac '%s' is not a unicast MAC address "
						  "(xx:xx:xx:xx:xx:xx, first byte even)",
						  i, s);
					return -EINVAL;
				}
				strcpy(nic->mac, s);
			} else if (!strcmp(key, "pci_slot")) {
				if (get_slot(val, "nets[].pci_slot", &nic->pci_slot, err, errlen))
					return -EINVAL;
			} else if (!strcmp(key, "switch")) {
				error_set(err, errlen,
					  "nets[%zu]: virtual switches are not available in this "
					  "keeld; "
					  "connect the adapter to a tap device with 'tap'",
					  i);
				return -EINVAL;
			} else {
				error_set(err, errlen, "unknown field '%s' in nets[%zu]", key, i);
				return -EINVAL;
			}
		}
		if (!nic->tap[0]) {
			error_set(err, errlen, "nets[%zu] has no 'tap'", i);
			return -EINVAL;
		}
		def->nnics = i + 1;
	}
	/* Lowercase MACs so that uniqueness checks compare like with like. */
	for (unsigned i = 0; i < def->nnics; i++)
		for (char *p = def->nics[i].mac; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
	/* An adapter given without a MAC keeps the one it had on the same tap. */
	for (unsigned i = 0; i < def->nnics; i++) {
		if (def->nics[i].mac[0])
			continue;
		for (unsigned j = 0; j < nold; j++) {
			if (!used[j] && !strcmp(old[j].tap, def->nics[i].tap)) {
				bool taken = false;
				for (unsigned k = 0; k < def->nnics; k++)
					taken |= !strcmp(def->nics[k].mac, old[j].mac);
				if (taken)
					continue;
				strcpy(def->nics[i].mac, old[j].mac);
				used[j] = true;
				break;
			}
		}
	}
	return 0;
}

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
		if (get_slot(val, "pci_slot", &tmp.pci_slot, err, errlen))
			return -EINVAL;
	}
	*dev = tmp;
	return 0;
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
		s = get_str(val, "id", VMDEF_UUID_LEN + 1, err, errlen);
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
		if (get_int(val, "version", 1, VMDEF_CONFIG_VERSION, &x, err, errlen)) {
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
		if (get_int(val, "revision", 0, INT64_MAX, &x, err, errlen))
			return -EINVAL;
		def->revision = (uint64_t)x;
		return 0;
	}
	/* "created": "YYYY-MM-DDTHH:MM:SSZ" or "" (not recorded). */
	s = get_str(val, "created", 32, err, errlen);
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
		const char *s = get_str(val, "name", 256, err, errlen);
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
		ret = get_int(val, "cpus", 1, VMDEF_CPUS_MAX, &x, err, errlen);
		if (!ret)
			def->cpus = (uint32_t)x;
		return ret;
	}
	if (!strcmp(key, "memory")) {
		ret = get_int(val, "memory", (int64_t)VMDEF_MEM_MIN, (int64_t)VMDEF_MEM_MAX, &x,
			      err, errlen);
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
		return get_path(val, "kernel", false, &def->kernel, err, errlen);
	if (!strcmp(key, "initrd"))
		return get_path(val, "initrd", true, &def->initrd, err, errlen);
	if (!strcmp(key, "cmdline"))
		return get_text(val, "cmdline", VMDEF_CMDLINE_MAX, &def->cmdline, err, errlen);
	if (!strcmp(key, "notes"))
		return get_text(val, "notes", VMDEF_NOTES_MAX, &def->notes, err, errlen);
	if (!strcmp(key, "disks"))
		return parse_disks(def, val, err, errlen);
	if (!strcmp(key, "nets"))
		return parse_nics(def, val, err, errlen);
	if (!strcmp(key, "virtio_console"))
		return parse_onedev(&def->console, key, val, err, errlen);
	if (!strcmp(key, "rng"))
		return parse_onedev(&def->rng, key, val, err, errlen);
	if (!strcmp(key, "debug_exit")) {
		if (!json_object_is_type(val, json_type_boolean)) {
			error_set(err, errlen, "field 'debug_exit' must be true or false");
			return -EINVAL;
		}
		def->debug_exit = json_object_get_boolean(val);
		return 0;
	}
	if (!strcmp(key, "automatic_start_action")) {
		ret = get_enum(val, key, start_action_names, 3, &e, err, errlen);
		if (!ret)
			def->start_action = (enum vm_start_action)e;
		return ret;
	}
	if (!strcmp(key, "automatic_stop_action")) {
		ret = get_enum(val, key, stop_action_names, 3, &e, err, errlen);
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
	for (unsigned i = 0; i < def->ndisks; i++)
		if (def->disks[i].pci_slot == slot)
			return true;
	for (unsigned i = 0; i < def->nnics; i++)
		if (def->nics[i].pci_slot == slot)
			return true;
	return (def->console.present && def->console.pci_slot == slot) ||
	       (def->rng.present && def->rng.pci_slot == slot);
}

/* A device given without a slot keeps the one it had (a disk: the same file; an adapter:
 * the same tap; the console and rng: theirs), unless a device asked for that slot by name:
 * an explicit slot wins and the other device gets a free one (vmdef_assign_slots). */
static void keep_slots(struct vm_def *nd, const struct vm_def *old)
{
	for (unsigned i = 0; i < nd->ndisks; i++)
		for (unsigned j = 0; j < old->ndisks && !nd->disks[i].pci_slot; j++)
			if (!strcmp(old->disks[j].path, nd->disks[i].path) &&
			    old->disks[j].pci_slot && !slot_used(nd, old->disks[j].pci_slot))
				nd->disks[i].pci_slot = old->disks[j].pci_slot;
	for (unsigned i = 0; i < nd->nnics; i++)
		for (unsigned j = 0; j < old->nnics && !nd->nics[i].pci_slot; j++)
			if (!strcmp(old->nics[j].tap, nd->nics[i].tap) && old->nics[j].pci_slot &&
			    !slot_used(nd, old->nics[j].pci_slot))
				nd->nics[i].pci_slot = old->nics[j].pci_slot;
	if (nd->console.present && !nd->console.pci_slot && old->console.present &&
	    old->console.pci_slot && !slot_used(nd, old->console.pci_slot))
		nd->console.pci_slot = old->console.pci_slot;
	if (nd->rng.present && !nd->rng.pci_slot && old->rng.present && old->rng.pci_slot &&
	    !slot_used(nd, old->rng.pci_slot))
		nd->rng.pci_slot = old->rng.pci_slot;
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

static int check_file(const char *what, const char *path, bool allow_blk, bool need_write,
		      char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		error_set(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode) && !(allow_blk && S_ISBLK(st.st_mode))) {
		error_set(err, errlen, "%s %s is not a regular file%s", what, path,
			  allow_blk ? " or block device" : "");
		return -EINVAL;
	}
	if (access(path, need_write ? R_OK | W_OK : R_OK) < 0) {
		error_set(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -EINVAL;
	}
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

	for (unsigned i = 0; i < def->ndisks; i++) {
		u[n].slot = &def->disks[i].pci_slot;
		snprintf(u[n++].what, sizeof(u->what), "disks[%u]", i);
	}
	for (unsigned i = 0; i < def->nnics; i++) {
		u[n].slot = &def->nics[i].pci_slot;
		snprintf(u[n++].what, sizeof(u->what), "nets[%u]", i);
	}
	if (def->console.present) {
		u[n].slot = &def->console.pci_slot;
		snprintf(u[n++].what, sizeof(u->what), "virtio_console");
	}
	if (def->rng.present) {
		u[n].slot = &def->rng.pci_slot;
		snprintf(u[n++].what, sizeof(u->what), "rng");
	}
	return n;
}

#define MAX_SLOT_USERS (VMDEF_MAX_DISKS + VMDEF_MAX_NICS + 2)

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

	if (!def->kernel) {
		error_set(err, errlen,
			  "VM '%s' needs a 'kernel' (direct boot is the only boot "
			  "method for now)",
			  def->name);
		return -EINVAL;
	}
	for (unsigned i = 0; i < def->ndisks; i++) {
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(def->disks[i].path, def->disks[j].path)) {
				error_set(err, errlen, "disk %s is attached twice",
					  def->disks[i].path);
				return -EINVAL;
			}
		}
	}
	for (unsigned i = 0; i < def->nnics; i++) {
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(def->nics[i].tap, def->nics[j].tap)) {
				error_set(err, errlen, "tap %s is used by two network adapters",
					  def->nics[i].tap);
				return -EINVAL;
			}
			if (def->nics[i].mac[0] && !strcmp(def->nics[i].mac, def->nics[j].mac)) {
				error_set(err, errlen, "MAC %s is given to two network adapters",
					  def->nics[i].mac);
				return -EINVAL;
			}
		}
	}
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
	if (check_file("kernel", def->kernel, false, false, err, errlen))
		return -EINVAL;
	if (def->initrd && check_file("initrd", def->initrd, false, false, err, errlen))
		return -EINVAL;
	for (unsigned i = 0; i < def->ndisks; i++)
		if (check_file("disk", def->disks[i].path, true, !def->disks[i].readonly, err,
			       errlen))
			return -EINVAL;
	return 0;
}

static bool onedev_equal(const struct vm_onedev *a, const struct vm_onedev *b)
{
	return a->present == b->present && (!a->present || a->pci_slot == b->pci_slot);
}

const char *vmdef_hw_change(const struct vm_def *a, const struct vm_def *b)
{
	if (a->cpus != b->cpus)
		return "cpus";
	if (a->memory != b->memory)
		return "memory";
	if (a->ndisks != b->ndisks)
		return "disks";
	for (unsigned i = 0; i < a->ndisks; i++)
		if (strcmp(a->disks[i].path, b->disks[i].path) ||
		    a->disks[i].readonly != b->disks[i].readonly ||
		    strcmp(a->disks[i].serial, b->disks[i].serial) ||
		    a->disks[i].pci_slot != b->disks[i].pci_slot)
			return "disks";
	if (a->nnics != b->nnics)
		return "nets";
	for (unsigned i = 0; i < a->nnics; i++)
		if (strcmp(a->nics[i].tap, b->nics[i].tap) ||
		    strcmp(a->nics[i].mac, b->nics[i].mac) ||
		    a->nics[i].pci_slot != b->nics[i].pci_slot)
			return "nets";
	if (!onedev_equal(&a->console, &b->console))
		return "virtio_console";
	if (!onedev_equal(&a->rng, &b->rng))
		return "rng";
	if (a->debug_exit != b->debug_exit)
		return "debug_exit";
	return NULL;
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *onedev_to_json(const struct vm_onedev *dev)
{
	json_object *o;

	if (!dev->present)
		return NULL;
	o = json_object_new_object();
	if (o && dev->pci_slot)
		json_object_object_add(o, "pci_slot", json_object_new_int(dev->pci_slot));
	return o;
}

json_object *vmdef_to_json(const struct vm_def *def)
{
	json_object *o = json_object_new_object();
	json_object *disks = json_object_new_array();
	json_object *nets = json_object_new_array();
	char created[CLOCK_UTC_LEN] = "";

	if (!o || !disks || !nets) {
		json_object_put(o);
		json_object_put(disks);
		json_object_put(nets);
		return NULL;
	}
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
	json_object_object_add(o, "kernel", str_or_null(def->kernel));
	json_object_object_add(o, "initrd", str_or_null(def->initrd));
	json_object_object_add(o, "cmdline",
			       json_object_new_string(def->cmdline ? def->cmdline : ""));
	for (unsigned i = 0; i < def->ndisks; i++) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "path", json_object_new_string(def->disks[i].path));
		json_object_object_add(d, "readonly",
				       json_object_new_boolean(def->disks[i].readonly));
		json_object_object_add(d, "serial", json_object_new_string(def->disks[i].serial));
		if (def->disks[i].pci_slot)
			json_object_object_add(d, "pci_slot",
					       json_object_new_int(def->disks[i].pci_slot));
		json_object_array_add(disks, d);
	}
	json_object_object_add(o, "disks", disks);
	for (unsigned i = 0; i < def->nnics; i++) {
		json_object *n = json_object_new_object();
		json_object_object_add(n, "tap", json_object_new_string(def->nics[i].tap));
		if (def->nics[i].mac[0]) /* keel-vmm derives one from the tap's name */
			json_object_object_add(n, "mac", json_object_new_string(def->nics[i].mac));
		if (def->nics[i].pci_slot)
			json_object_object_add(n, "pci_slot",
					       json_object_new_int(def->nics[i].pci_slot));
		json_object_array_add(nets, n);
	}
	json_object_object_add(o, "nets", nets);
	json_object_object_add(o, "virtio_console", onedev_to_json(&def->console));
	json_object_object_add(o, "rng", onedev_to_json(&def->rng));
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
	json_tokener *tok = NULL;
	json_object *obj = NULL;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, ret = 0;

	vmdef_init(def);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		error_set(err, errlen, "cannot open VM description %s: %s", path, strerror(errno));
		return ret;
	}
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
	close(fd);
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
