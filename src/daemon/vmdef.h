/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VM definitions: the model keeld stores and hands to keel-vmm, its JSON form in the API,
 * and its validation. Pure data: no SQLite, no processes. Every check that an API request
 * can fail lives here, so that the store only ever sees valid definitions.
 */
#ifndef KEEL_DAEMON_VMDEF_H
#define KEEL_DAEMON_VMDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define VMDEF_NAME_MAX	  64
#define VMDEF_UUID_LEN	  36
#define VMDEF_MAC_LEN	  17
#define VMDEF_TAP_MAX	  15 /* IFNAMSIZ - 1 */
#define VMDEF_MAX_DISKS	  16
#define VMDEF_MAX_NICS	  8
#define VMDEF_CPUS_MAX	  255
#define VMDEF_MEM_MIN	  (4ULL << 20)
#define VMDEF_MEM_MAX	  (1ULL << 40)
#define VMDEF_PATH_MAX	  4095
#define VMDEF_CMDLINE_MAX 4095
#define VMDEF_NOTES_MAX	  4095
#define VMDEF_DEFAULT_MEM (512ULL << 20)
/* The configuration version this keeld writes: it gates features and only ever goes up. */
#define VMDEF_CONFIG_VERSION 1

/* Hyper-V's AutomaticStartAction and AutomaticStopAction. */
enum vm_start_action { VM_START_NOTHING, VM_START_IF_RUNNING, VM_START_ALWAYS };
enum vm_stop_action { VM_STOP_TURN_OFF, VM_STOP_SHUT_DOWN, VM_STOP_SAVE };

struct vm_disk {
	char *path;
	bool readonly;
};

struct vm_nic {
	char tap[VMDEF_TAP_MAX + 1];
	char mac[VMDEF_MAC_LEN + 1]; /* "02:xx:xx:xx:xx:xx", generated once, then stable */
};

struct vm_def {
	char uuid[VMDEF_UUID_LEN + 1];
	char name[VMDEF_NAME_MAX + 1];
	uint32_t cpus;
	uint64_t memory; /* bytes, a multiple of 1 MiB */
	char *kernel;	 /* absolute paths; NULL when absent */
	char *initrd;
	char *cmdline;
	char *notes;
	struct vm_disk disks[VMDEF_MAX_DISKS];
	unsigned ndisks;
	struct vm_nic nics[VMDEF_MAX_NICS];
	unsigned nnics;
	enum vm_start_action start_action;
	enum vm_stop_action stop_action;
	int64_t created;   /* Unix time, seconds */
	uint32_t version;  /* configuration version (VMDEF_CONFIG_VERSION) */
	uint64_t revision; /* bumped by every change */
};

/* A definition with the defaults of `keel vm create` and no name, kernel or UUID. */
void vmdef_init(struct vm_def *def);
void vmdef_free(struct vm_def *def);
/* Deep copy; dst must not hold allocations. Returns 0 or -ENOMEM. */
int vmdef_copy(struct vm_def *dst, const struct vm_def *src) __attribute__((warn_unused_result));

/*
 * Apply a JSON object from the API onto def: every field present replaces the current
 * value. Unknown and read-only fields, wrong types and out-of-range values are refused
 * with a one-line message in err. NICs given without a MAC keep the MAC of the old NIC on
 * the same tap, if there was one, else have none yet (vmdef_assign_macs gives them one).
 * Returns 0, -EINVAL (bad input, err says why) or -ENOMEM. def is unchanged on error.
 */
int vmdef_apply_json(struct vm_def *def, json_object *obj, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Checks that need the whole definition or the file system: a name and a kernel are
 * present, files exist and are regular files (disks may be block devices), no disk or tap
 * appears twice. Returns 0 or -EINVAL with err set.
 */
int vmdef_validate(const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The first hardware setting that differs (needs the VM off to change), or NULL. */
const char *vmdef_hw_change(const struct vm_def *a, const struct vm_def *b);

/* The definition as the API shows it (without runtime state). NULL on allocation failure. */
json_object *vmdef_to_json(const struct vm_def *def);

bool vmdef_name_ok(const char *name);
bool vmdef_mac_ok(const char *mac);
/* A random (version 4) UUID and a random locally administered unicast MAC. */
int vmdef_gen_uuid(char out[VMDEF_UUID_LEN + 1]) __attribute__((warn_unused_result));
int vmdef_gen_mac(char out[VMDEF_MAC_LEN + 1]) __attribute__((warn_unused_result));

const char *vmdef_start_action_name(enum vm_start_action a);
const char *vmdef_stop_action_name(enum vm_stop_action a);

#endif
