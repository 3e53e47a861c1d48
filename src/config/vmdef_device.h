/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kinds of device a VM description holds (disks, network adapters, the virtio-console,
 * virtio-rng): each kind is one file in src/config (vmdef_disk.c, vmdef_nic.c,
 * vmdef_onedev.c) with one const struct vmdef_device_kind, listed once in vmdef_devices[]
 * (vmdef_devices.c). vmdef.c is driven by that table for everything a device needs: its
 * JSON field (parse and write), its PCI slots, its checks, what may change while the VM
 * runs, what a saved state must match; keel-vmm's command line by its options. keel-vmm's device
 * class points at its kind (vmm/device.h). How to add one: docs/devices.md.
 */
#ifndef KEEL_CONFIG_VMDEF_DEVICE_H
#define KEEL_CONFIG_VMDEF_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config/vmdef.h"

struct vmdef_option;
struct vmdef_host;

struct vmdef_device_kind {
	const char *field; /* the document's field: "disks", "nets", "virtio_console", "rng" */
	unsigned max;	   /* at most this many; 1: the field is null or one object */
	/* How many the description has, and instance i's PCI slot (0: none yet). */
	unsigned (*count)(const struct vm_def *def);
	uint8_t *(*slot)(struct vm_def *def, unsigned i);
	/* Replace the kind's devices with the field's value v (vmdef_apply_json works on a copy
	 * and keeps the old description on error). 0, -EINVAL with err, or -ENOMEM. */
	int (*parse)(struct vm_def *def, json_object *v, char *err, size_t errlen);
	/* The field's value as the document writes it into *out (NULL: JSON null). 0 or
	 * -ENOMEM. */
	int (*to_json)(const struct vm_def *def, json_object **out);
	/* Is instance i of nd the device that was instance j of old (same file, same tap)? It
	 * then keeps old's slot when the request gives it none. */
	bool (*same)(const struct vm_def *nd, unsigned i, const struct vm_def *old, unsigned j);
	/* Optional: the checks within the kind (a file twice, a MAC twice); 0 or -EINVAL. */
	int (*check)(const struct vm_def *def, char *err, size_t errlen);
	/* Optional: keeld's checks of host files before it stores the description. */
	int (*validate)(const struct vm_def *def, char *err, size_t errlen);
	/* Instance i of a and of b are the same hardware (a change needs the VM off)? */
	bool (*hw_equal)(const struct vm_def *a, unsigned i, const struct vm_def *b, unsigned j);
	/* A saved state's instance i (saved) and the device now at its slot (cur, j) look the
	 * same to the guest? When not, why says what differs. */
	bool (*guest_equal)(const struct vm_def *saved, unsigned i, const struct vm_def *cur,
			    unsigned j, char *why, size_t len);
	/* Optional: the kind's allocations (copy: dst already holds src's bytes). */
	int (*copy)(struct vm_def *dst, const struct vm_def *src);
	void (*free)(struct vm_def *def);
	/* Optional: keel-vmm's command-line options for the kind (config/vmdef_cli.h), ended by
	 * one whose name is NULL; vmm/config.c's option table is built from every kind's. */
	const struct vmdef_option *options;
	/* Optional: once every option is read, reconcile the host side with the description:
	 * config_path is the --config file def was loaded from, or NULL when the options
	 * described the VM. 0, or -EINVAL with err. */
	int (*options_done)(struct vm_def *def, struct vmdef_host *host, const char *config_path,
			    char *err, size_t errlen);
};

extern const struct vmdef_device_kind vmdef_disk_kind, vmdef_nic_kind, vmdef_console_kind,
	vmdef_rng_kind, vmdef_vsock_kind, vmdef_scsi_kind;

/* One disk setting of a "disks" entry or a SCSI disk (path, format, cache, readonly, serial,
 * the QoS fields; pci_slot when slot is true, a "disks" entry), what names the object in
 * messages ("disks[2]"). Returns 0, 1 for a key that is not a disk setting, or -EINVAL with err
 * set. */
int vmdef_disk_field(struct vm_disk *disk, const char *what, const char *key, json_object *val,
		     bool slot, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The disk settings as a document writes them into the object d. */
void vmdef_disk_fields_json(const struct vm_disk *disk, json_object *d);
/* A disk's QoS fields (max_iops, max_bandwidth, min_iops; none when 0), and
 * their check: each within its bound, min_iops not above max_iops; what names the disk. */
void vmdef_disk_qos_json(const struct vm_disk *disk, json_object *d);
int vmdef_disk_qos_check(const struct vm_disk *d, const char *what, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* A disk with storage QoS: disks[index] (a virtio-blk disk), or the disk at LUN index of the
 * SCSI controller (lun). Named "N" and "scsi:L" (the API's disks/N and disks/scsi:L, keel vm
 * disk's DISK), in JSON {"disk": N} and {"lun": L}. */
struct vm_disk_id {
	bool lun;
	unsigned index;
};
/* Every disk a description may have, in order: ids k = 0 .. VMDEF_DISK_IDS - 1 are
 * disks[0..VMDEF_MAX_DISKS), then the SCSI LUNs. */
#define VMDEF_DISK_IDS (VMDEF_MAX_DISKS + VMDEF_MAX_LUNS)
struct vm_disk_id vmdef_disk_id_at(unsigned k);
bool vmdef_disk_id_eq(struct vm_disk_id a, struct vm_disk_id b);
/* The disk id names in def; NULL when def has none such (a DVD drive has no QoS). */
struct vm_disk *vmdef_disk_of(const struct vm_def *def, struct vm_disk_id id);
/* Parse "N" or "scsi:L" (digits only); -EINVAL for anything else. */
int vmdef_disk_id_parse(const char *s, struct vm_disk_id *id) __attribute__((warn_unused_result));
/* "N" or "scsi:L"; and the id as JSON fields into o ("disk" or "lun"). */
void vmdef_disk_id_name(struct vm_disk_id id, char *buf, size_t len);
void vmdef_disk_id_json(struct vm_disk_id id, json_object *o);

/* Instance i's PCI slot (0: none yet), read from a description the caller may not change. */
unsigned vmdef_device_slot(const struct vmdef_device_kind *k, const struct vm_def *def, unsigned i);

/* Every kind, in the order devices without a slot get theirs (vmdef_assign_slots). */
extern const struct vmdef_device_kind *const vmdef_devices[];
extern const size_t vmdef_ndevices;

#endif
