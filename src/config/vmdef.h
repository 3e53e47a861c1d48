/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one description of a VM (DESIGN.md habit 9): what keeld stores, what its API shows
 * and takes, the document keel-vmm runs (`keel-vmm --config FILE`, or its command line parsed
 * into the same structure) and what a saved state records. Pure data: no SQLite, no KVM, no
 * processes. Every limit and every check lives here, so that the API and the worker accept
 * exactly the same VMs. The document's format: docs/vm-config.md.
 */
#ifndef KEEL_CONFIG_VMDEF_H
#define KEEL_CONFIG_VMDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Every limit of a VM, in one place. */
#define VMDEF_NAME_MAX	  64
#define VMDEF_UUID_LEN	  36
#define VMDEF_MAC_LEN	  17
#define VMDEF_TAP_MAX	  15 /* IFNAMSIZ - 1 */
#define VMDEF_SWITCH_MAX  64 /* a virtual switch's name (docs/networking.md) */
#define VMDEF_VLAN_MAX	  4094
#define VMDEF_TRUNK_MAX	  127 /* a trunk's VLAN list, "10,20-30" (docs/networking.md) */
#define VMDEF_MAX_DISKS	  16
#define VMDEF_MAX_NICS	  8
#define VMDEF_CPUS_MAX	  255
#define VMDEF_MEM_MIN	  (2ULL << 20)
#define VMDEF_MEM_MAX	  (1ULL << 40)
#define VMDEF_PATH_MAX	  4095
#define VMDEF_CMDLINE_MAX 4095
#define VMDEF_NOTES_MAX	  4095
#define VMDEF_DEFAULT_MEM (512ULL << 20)
#define VMDEF_SERIAL_MAX  20 /* virtio-blk's device ID string */
#define VMDEF_MAX_LUNS	  8  /* disks and DVD drives on the virtio-scsi controller */
/* A network adapter's virtio-net queue pairs at most (nets[].queues; default: one per vCPU up
 * to this), docs/virtio.md. */
#define VMDEF_NET_QUEUES_MAX 8
/* Every PCI device a VM can have: disks, NICs, the virtio-console, virtio-rng, virtio-vsock
 * and the virtio-scsi controller. keel-vmm sizes its tables from this, so that a VM at every
 * limit at once really starts. */
#define VMDEF_MAX_PCI_DEVICES (VMDEF_MAX_DISKS + VMDEF_MAX_NICS + 4)
/* The tasks (threads) a jailed worker of a VM with cpus vCPUs may have: its RLIMIT_NPROC
 * (src/vmm/jail.c) and its cgroup's pids.max (src/daemon/vm_cgroup.h), docs/security.md. */
#define VMDEF_WORKER_TASKS(cpus) (256 + 2 * (uint64_t)(cpus))
/* The parents of all a VM's differencing disks keeld passes its worker as descriptors
 * (--fd disk.I.pJ, lun.I.pJ); a VM with longer chains does not start (docs/security.md). */
#define VMDEF_CHAIN_FDS_MAX 64
/* virtio-vsock: the guest's context ID (0-2 are the hypervisor, local and host; -1 is "any"),
 * and the longest host socket path, so that PATH_<port> (port up to 10 digits) still fits a
 * sockaddr_un (108 bytes with its NUL). */
#define VMDEF_VSOCK_CID_MIN	3
#define VMDEF_VSOCK_CID_MAX	0xfffffffeu
#define VMDEF_VSOCK_CID_DEFAULT 3
#define VMDEF_VSOCK_SOCKET_MAX	96
/* Guest-visible PCI slots on bus 0 that devices may take: 0 is the host bridge, 31 is kept
 * for the platform's LPC bridge (a Q35-compatible machine has it at 00:1f.0). */
#define VMDEF_PCI_SLOT_MIN 1
#define VMDEF_PCI_SLOT_MAX 30
/* The largest description document keel-vmm reads. */
#define VMDEF_DOCUMENT_MAX (1u << 20)
/* The configuration version this keeld writes: it gates features and only ever goes up. */
#define VMDEF_CONFIG_VERSION 1

/* How the VM boots: a kernel keel-vmm loads itself (direct boot), or firmware: SeaBIOS
 * (Hyper-V's Generation 1) or OVMF (Generation 2), Debian's files unless another is named. */
enum vm_firmware { VM_FIRMWARE_NONE, VM_FIRMWARE_BIOS, VM_FIRMWARE_UEFI };
#define VMDEF_SEABIOS_FILE   "/usr/share/seabios/bios-256k.bin"
#define VMDEF_SEABIOS_PKG    "seabios"
#define VMDEF_OVMF_CODE_FILE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define VMDEF_OVMF_VARS_FILE "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define VMDEF_OVMF_PKG	     "ovmf"

/*
 * The boot order handed to the firmware (docs/firmware.md): items, most preferred first, each
 * a class of devices ("dvd": the DVD drives; "disk": the virtio-blk disks, then the SCSI
 * disks; "net": the network adapters) or one device ("diskN": disks[N], "lunN": the SCSI
 * LUN N, "netN": nets[N]). A class takes its devices that an earlier item has not named.
 * Empty: "disk,dvd,net". Only for firmware VMs; each item at most once.
 */
enum vm_boot_kind {
	VM_BOOT_DVD,
	VM_BOOT_DISK,
	VM_BOOT_NET,
	VM_BOOT_DISK_N,
	VM_BOOT_LUN_N,
	VM_BOOT_NET_N
};
struct vm_boot_item {
	uint8_t kind; /* enum vm_boot_kind */
	uint8_t index;
};
/* Every distinct item: three classes and each device once. */
#define VMDEF_BOOT_MAX (3 + VMDEF_MAX_DISKS + VMDEF_MAX_LUNS + VMDEF_MAX_NICS)
/* One bootable device of the effective order: a virtio-blk disk, a SCSI LUN or an adapter. */
enum vm_boot_dev_kind { VM_BOOTDEV_DISK, VM_BOOTDEV_LUN, VM_BOOTDEV_NET };
struct vm_boot_dev {
	uint8_t kind; /* enum vm_boot_dev_kind */
	uint8_t index;
};
#define VMDEF_BOOT_DEVS_MAX (VMDEF_MAX_DISKS + VMDEF_MAX_LUNS + VMDEF_MAX_NICS)

/* Hyper-V's AutomaticStartAction and AutomaticStopAction. */
enum vm_start_action { VM_START_NOTHING, VM_START_IF_RUNNING, VM_START_ALWAYS };
enum vm_stop_action { VM_STOP_TURN_OFF, VM_STOP_SHUT_DOWN, VM_STOP_SAVE };

/*
 * pci_slot: the device's slot on PCI bus 0 as the guest sees it, assigned once
 * (vmdef_assign_slots) and then kept, so that adding or removing one device never renames
 * another in the guest or in a saved state. 0 means not assigned yet.
 */
/*
 * How a disk file is read: pinned when the disk is attached or created, kept with the disk
 * and never guessed from its contents at start (those are the guest's to write). AUTO only
 * in a request or on keel-vmm's command line: keeld pins it at attach (docs/keeld.md), and
 * keel-vmm takes it from the file's name (*.vhdx and *.avhdx are VHDX, anything else raw).
 */
enum vm_disk_format { VM_DISK_AUTO, VM_DISK_RAW, VM_DISK_VHDX };
/* How keel-vmm caches a disk's data (docs/vm-config.md): none (O_DIRECT), writeback (the
 * host's page cache, flush = fdatasync), unsafe (the page cache, the guest's flushes
 * ignored). */
enum vm_disk_cache { VM_DISK_CACHE_NONE, VM_DISK_CACHE_WRITEBACK, VM_DISK_CACHE_UNSAFE };

struct vm_disk {
	char *path;
	enum vm_disk_format format;
	enum vm_disk_cache cache;
	bool readonly;
	char serial[VMDEF_SERIAL_MAX + 1]; /* the guest's /sys/block/vdX/serial; may be empty */
	uint8_t pci_slot;
	/* Storage QoS (Set-VMHardDiskDrive -MaximumIOPS -MinimumIOPS; docs/vm-config.md): I/Os
	 * per second normalized to 8 KiB, bytes per second; 0: none. virtio-blk disks and disks
	 * on the SCSI controller (a bucket per LUN); not DVD drives. */
	uint64_t max_iops, max_bw, min_iops;
};

#define VMDEF_QOS_MAX_IOPS 1000000000ull /* Hyper-V's own bound */
#define VMDEF_QOS_MAX_BW   (1ull << 50)	 /* bytes per second: 1 PiB/s */

enum vm_mirror { VM_MIRROR_NONE, VM_MIRROR_SOURCE, VM_MIRROR_DESTINATION };
/* An adapter's data path (docs/virtio.md, "vhost-net"): the host kernel's vhost-net where the
 * host has it (auto), never (off: keel-vmm's own), or required (on: the start fails without). */
enum vm_vhost { VM_VHOST_AUTO, VM_VHOST_OFF, VM_VHOST_ON };

struct vm_nic {
	/* The tap: named by the user, or for an adapter on a switch keeld's, "k" and the MAC's
	 * twelve hex digits (vmdef_switch_tap), so that it is unique and stable. */
	char tap[VMDEF_TAP_MAX + 1];
	char sw[VMDEF_SWITCH_MAX + 1]; /* the virtual switch (keeld's), or "" */
	/* On a switch (Set-VMNetworkAdapterVlan, Set-VMNetworkAdapter): the access VLAN
	 * (1-4094; 0: untagged), and the guards, off by default but for MAC spoofing. */
	uint16_t vlan;
	bool mac_spoofing;   /* frames from another source MAC pass (else dropped) */
	bool dhcp_guard;     /* DHCP server replies from the VM are dropped */
	bool router_guard;   /* router advertisements and redirects from the VM are dropped */
	bool port_isolation; /* the port reaches only the switch's uplink and host, no other
				isolated port (the bridge port's `isolated` flag) */
	/* Trunk mode (instead of vlan): these VLANs pass tagged ("10,20-30"), native_vlan
	 * (1-4094, 0: 1) untagged. "" : no trunk. */
	char vlan_trunk[VMDEF_TRUNK_MAX + 1];
	uint16_t native_vlan;
	/* Maximum bandwidth in bits per second (0: none): out of the VM (what it sends) and in
	 * (what the switch sends it). */
	uint64_t bw_out, bw_in;
	/* Port mirroring (Set-VMNetworkAdapter -PortMirroring): a source's frames, both ways,
	 * are copied to every destination adapter on the same switch. */
	enum vm_mirror port_mirroring;
	/* virtio-net queue pairs (1 to VMDEF_NET_QUEUES_MAX, at most the VM's cpus); 0: one per
	 * vCPU (vmdef_nic_queues). */
	uint8_t queues;
	enum vm_vhost vhost;	     /* the data path: vhost-net or keel-vmm's own */
	char mac[VMDEF_MAC_LEN + 1]; /* "02:xx:xx:xx:xx:xx", generated once, then stable */
	uint8_t pci_slot;
};

/* A logical unit on the virtio-scsi controller (its LUN is its index): a disk, or a DVD
 * drive whose disk.path is the medium in it (NULL: empty), always read-only and raw. The
 * disk's pci_slot is unused (the controller has the slot). */
enum vm_lun_type { VM_LUN_DISK, VM_LUN_DVD };
struct vm_lun {
	enum vm_lun_type type;
	struct vm_disk disk;
};

/* The virtio-scsi controller: present when it has a LUN (the "scsi" field). */
struct vm_scsi {
	uint8_t pci_slot;
	struct vm_lun luns[VMDEF_MAX_LUNS];
	unsigned nluns;
};

/* A device the VM has at most one of (virtio-console, virtio-rng). */
struct vm_onedev {
	bool present;
	uint8_t pci_slot;
};

/* The virtio-vsock device (at most one): the guest's context ID. */
struct vm_vsock {
	bool present;
	uint32_t cid;
	uint8_t pci_slot;
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
	enum vm_firmware firmware; /* VM_FIRMWARE_NONE: boot kernel */
	char *firmware_file;	   /* NULL: Debian's (VMDEF_*_FILE) */
	char *nvram;		   /* UEFI's variable store; NULL: none (variables kept in RAM) */
	struct vm_boot_item boot_order[VMDEF_BOOT_MAX];
	unsigned nboot; /* 0: the default order, "disk,dvd,net" */
	/* The firmware's boot menu offered before it boots (SeaBIOS: "Press ESC for boot menu",
	 * OVMF: its front page countdown) for 3 s (vmm/x86/fw_cfg_content.h); false: none, as
	 * Hyper-V and QEMU by default. */
	bool boot_menu;
	struct vm_disk disks[VMDEF_MAX_DISKS];
	unsigned ndisks;
	struct vm_nic nics[VMDEF_MAX_NICS];
	unsigned nnics;
	struct vm_onedev console; /* virtio-console (the serial port is always there) */
	struct vm_onedev rng;	  /* virtio-rng: present unless turned off */
	struct vm_vsock vsock;	  /* virtio-vsock (docs/virtio.md) */
	struct vm_scsi scsi;	  /* virtio-scsi disks and DVD drives */
	/* The integration services (docs/integration-services.md) turned off: bit 1 << s for
	 * each AP_S_* service s (lib/agentproto.h); 0: all on. Their transport is vsock. */
	uint32_t integration_off;
	bool debug_exit; /* the test device on port 0xf4 (docs/keel-vmm.md) */
	enum vm_start_action start_action;
	enum vm_stop_action stop_action;
	int64_t created;   /* Unix time, seconds */
	uint32_t version;  /* configuration version (VMDEF_CONFIG_VERSION) */
	uint64_t revision; /* bumped by every change */
	/* keeld's store only: why this VM's stored description could not be read whole (a
	 * device row that does not parse, slots that do not fit); "" normally. Such a VM is
	 * listed and its worker supervised, but never started from this description. */
	char damaged[256];
};

/* A definition with the defaults of `keel vm create` and no name, kernel or UUID. */
void vmdef_init(struct vm_def *def);
void vmdef_free(struct vm_def *def);
/* Deep copy; dst must not hold allocations. Returns 0 or -ENOMEM, and then dst holds nothing
 * (all zero: vmdef_free on it does nothing). */
int vmdef_copy(struct vm_def *dst, const struct vm_def *src) __attribute__((warn_unused_result));

/*
 * What a JSON object is: an API request (create or change: the read-only fields id,
 * created, version and revision are refused) or a whole description document (keel-vmm
 * --config, saved states: they are taken and checked). Runtime state (state, pid, ...) is
 * refused by both.
 */
enum vmdef_json_kind { VMDEF_JSON_REQUEST, VMDEF_JSON_DOCUMENT };

/*
 * Apply a JSON object onto def: every field present replaces the current value. Unknown
 * fields, wrong types and out-of-range values are refused with a one-line message in err.
 * NICs given without a MAC keep the MAC of the old NIC on the same tap, if there was one,
 * else have none yet (keeld gives them one). Disks and NICs given without a PCI slot keep the
 * slot of the old one with the same path or tap; devices still without one get the lowest
 * free slot (vmdef_assign_slots). Returns 0, -EINVAL (bad input, err says why) or -ENOMEM.
 * def is unchanged on error.
 */
int vmdef_apply_json(struct vm_def *def, json_object *obj, enum vmdef_json_kind kind, char *err,
		     size_t errlen) __attribute__((warn_unused_result));

/*
 * Read a description document (docs/vm-config.md) from a file into def (initialised here):
 * at most VMDEF_DOCUMENT_MAX bytes, one JSON object, then vmdef_check. Returns 0, -EINVAL
 * (err says what and where), -ENOMEM or -errno of the read.
 */
int vmdef_load_file(const char *path, struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The same from a descriptor open for reading (not closed here), named path in messages:
 * for a caller that opened the file under its own rules (keeld's import, through a pool). */
int vmdef_load_fd(int fd, const char *path, struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Write def as a document: to PATH.tmp, fsync, rename over PATH. Returns 0 or -errno. */
int vmdef_save_file(const struct vm_def *def, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Give every device without a PCI slot the lowest free one, in a fixed order (disks, NICs,
 * console, rng), so that a description without slots gets the layout keel always had.
 * Returns 0 or -ENOSPC (err says so).
 */
int vmdef_assign_slots(struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * The checks that need the whole description but no file system: a kernel is given, no
 * disk or tap appears twice, no MAC twice, every PCI slot is in range and used once.
 * Returns 0 or -EINVAL with err set.
 */
int vmdef_check(const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * keeld's checks before it stores a definition: a name is given, vmdef_check passes, the
 * VM boots a kernel (keeld does not run firmware VMs yet), and the files exist and are
 * regular files (disks may be block devices). Returns 0 or -EINVAL with err set.
 */
int vmdef_validate(const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The first hardware setting that differs (needs the VM off to change), or NULL. */
const char *vmdef_hw_change(const struct vm_def *a, const struct vm_def *b);
/* Does b differ from a in the media of DVD drives and in no other hardware setting? Then
 * the drives (bit i: the ith DVD drive, counting DVD drives only) whose medium differs,
 * which a running worker changes (its control command "dvd"); else 0. */
unsigned vmdef_media_change(const struct vm_def *a, const struct vm_def *b);
/* Does b differ from a only in where adapters on switches are connected (their switch,
 * VLANs, guards, isolation, bandwidth), each the same adapter (MAC, PCI slot)? Then the
 * adapters (bit i: nets[i]) that move, which keeld re-plumbs on a running VM (Hyper-V's
 * Connect-VMNetworkAdapter); else 0. */
unsigned vmdef_net_move_change(const struct vm_def *a, const struct vm_def *b);
/* Does b differ from a only in adapters taken out (*removed, bit i: a's nets[i]) or added
 * after the others (*added, bit j: b's nets[j]), one or the other, the rest the same
 * adapters (MAC) in the same order, unchanged? Then keeld hot-plugs them on a running VM
 * (Add- and Remove-VMNetworkAdapter); an adapter replaced by another (another MAC) is not
 * one of those. */
bool vmdef_net_hotplug_change(const struct vm_def *a, const struct vm_def *b, unsigned *removed,
			      unsigned *added);
/* Does a saved state's description (saved) differ from cur in what the guest saw: vCPUs,
 * memory, and each device at its PCI slot? When so, why says what in words. Host-side
 * wiring (disk files, taps, kernel files) may differ: a checkpoint moves disks onto
 * differencing children, a VM's taps may be renamed. */
bool vmdef_guest_change(const struct vm_def *saved, const struct vm_def *cur, char *why,
			size_t len);

/* The description as a document, which is also what the API shows (without runtime
 * state). NULL on allocation failure. */
json_object *vmdef_to_json(const struct vm_def *def);

bool vmdef_name_ok(const char *name);
bool vmdef_mac_ok(const char *mac);
/* The queue pairs adapter i has: its queues, or one per vCPU up to VMDEF_NET_QUEUES_MAX. */
unsigned vmdef_nic_queues(const struct vm_def *def, unsigned i);
/* "xx:xx:xx:xx:xx:xx" (unicast, vmdef_mac_ok) into 6 bytes. Returns 0 or -EINVAL. */
int vmdef_mac_parse(const char *mac, uint8_t out[6]) __attribute__((warn_unused_result));
/* 6 bytes as "xx:xx:xx:xx:xx:xx" (lower case, the form the description keeps). */
void vmdef_mac_format(const uint8_t mac[6], char out[VMDEF_MAC_LEN + 1]);
bool vmdef_tap_ok(const char *tap);
/* A switch's name: 1 to VMDEF_SWITCH_MAX letters, digits, spaces, '.', '_' or '-', starting
 * with a letter or digit ("Default Switch"). */
bool vmdef_switch_name_ok(const char *name);
/* A trunk's VLAN list, "N[-M](,N[-M])*" with 1 <= N <= M <= 4094: each range to cb (when not
 * NULL). 0, or -EINVAL for a malformed list. */
int vmdef_vlan_list(const char *s, void (*cb)(uint16_t lo, uint16_t hi, void *data), void *data);
/* The VLANs a trunk (list s, native VLAN native) carries tagged, as ranges in order, up to
 * max in lo[] and hi[]: duplicates and overlaps joined, the native VLAN left out (it passes
 * untagged). Their number, -EINVAL for a malformed list, -ENOSPC for more than max. */
int vmdef_vlan_ranges(const char *s, uint16_t native, uint16_t *lo, uint16_t *hi, size_t max)
	__attribute__((warn_unused_result));
/* "none", "source" or "destination" (port_mirroring's JSON, the CLI's port-mirroring=), and
 * back: 0 or -EINVAL. */
const char *vmdef_mirror_name(enum vm_mirror m);
int vmdef_mirror_parse(const char *s, enum vm_mirror *out) __attribute__((warn_unused_result));
/* "auto", "off", "on" and back (-EINVAL for another word). */
const char *vmdef_vhost_name(enum vm_vhost v);
int vmdef_vhost_parse(const char *s, enum vm_vhost *out) __attribute__((warn_unused_result));
/* The tap of an adapter on a switch: "k" and the twelve hex digits of its MAC (set). */
void vmdef_switch_tap(const char *mac, char out[VMDEF_TAP_MAX + 1]);
/* A random (version 4) UUID and a random locally administered unicast MAC. */
int vmdef_gen_uuid(char out[VMDEF_UUID_LEN + 1]) __attribute__((warn_unused_result));
/* The firmware file the VM runs (its own, or Debian's for its kind); NULL for none. */
const char *vmdef_firmware_file(const struct vm_def *def);
/* One host file a VM description names that must come from a storage pool (vmdef_files). */
struct vmdef_file {
	const char *what; /* "kernel", "firmware file", "initrd", "disk", "DVD image" */
	const char *path;
	int slot; /* its disk: disks[slot], or scsi.luns[slot - ndisks]; -1 for none */
	bool dvd; /* a DVD drive's medium (an ISO image, read-only raw) */
	bool rdonly;
};
#define VMDEF_FILES_MAX (2 + VMDEF_MAX_DISKS + VMDEF_MAX_LUNS)
/*
 * Every host file def names that comes from a storage pool, in one fixed order: its kernel,
 * or its own firmware file when it boots firmware; its initrd; its virtio-blk disks; its SCSI
 * LUNs' disks and DVD media (an empty drive has none). Debian's firmware and the UEFI variable
 * store (in the VM's own directory) are not pool files. The one list keeld checks at attach,
 * adopts at an upgrade and counts before deleting a pool. Returns how many.
 */
unsigned vmdef_files(const struct vm_def *def, struct vmdef_file out[VMDEF_FILES_MAX]);
/* "bios", "uefi" or "none". */
const char *vmdef_firmware_name(enum vm_firmware f);
int vmdef_gen_mac(char out[VMDEF_MAC_LEN + 1]) __attribute__((warn_unused_result));

const char *vmdef_start_action_name(enum vm_start_action a);
/* "raw", "vhdx" ("auto" for VM_DISK_AUTO). */
const char *vmdef_disk_format_name(enum vm_disk_format f);
const char *vmdef_disk_cache_name(enum vm_disk_cache c);
/* "none", "writeback" or "unsafe"; -EINVAL for anything else. */
int vmdef_disk_cache_parse(const char *s, enum vm_disk_cache *out)
	__attribute__((warn_unused_result));
const char *vmdef_stop_action_name(enum vm_stop_action a);

/* A VM's Hyper-V generation: 1 (SeaBIOS), 2 (OVMF), 0 for direct kernel boot. */
unsigned vmdef_generation(const struct vm_def *def);
/* "Generation 1 (BIOS)", "Generation 2 (UEFI)" or "direct kernel boot". */
const char *vmdef_boot_source(const struct vm_def *def);
/* The one line for a firmware VM whose Debian firmware file is missing, naming the package
 * to install: "Generation 2 (UEFI)'s firmware file /usr/share/OVMF/OVMF_CODE_4M.fd is
 * missing: install Debian's 'ovmf' package" (seabios for Generation 1). keeld's checks and
 * keel-vmm all say it so (docs/firmware.md). */
void vmdef_firmware_missing(const struct vm_def *def, char *buf, size_t len);
/* The one line for a Generation 2 VM when Debian's UEFI variable store template (what a new
 * store is made from) is missing: "UEFI variable store template
 * /usr/share/OVMF/OVMF_VARS_4M.fd is missing: install Debian's 'ovmf' package". keeld (a
 * VM's first store) and keel-vmm (a VM without a store file) both say it so. */
void vmdef_vars_template_missing(char *buf, size_t len);

/* The boot order (vmdef_boot.c). "dvd,disk,lun1" into def's boot order (replacing it):
 * items as above, separated by commas; "" or "default" clears it. Checks the words and
 * duplicates only (vmdef_boot_check checks them against the devices). 0 or -EINVAL. */
int vmdef_boot_parse(struct vm_def *def, const char *list, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The "boot_order" field: an array of item strings. 0, -EINVAL or -ENOMEM. */
int vmdef_boot_parse_json(struct vm_def *def, json_object *v, char *err, size_t errlen)
	__attribute__((warn_unused_result));
json_object *vmdef_boot_to_json(const struct vm_def *def);
/* Every item names a device class the VM has or a device it has, the VM boots firmware
 * when there is an order. 0 or -EINVAL with err naming the item. */
int vmdef_boot_check(const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The effective order, device by device, into out; returns how many. Devices no item names
 * follow the named ones in the default order (disk, dvd, net): every device is listed. */
unsigned vmdef_boot_devices(const struct vm_def *def, struct vm_boot_dev out[VMDEF_BOOT_DEVS_MAX]);
/* The order as text ("disk,dvd,net"), the default's when empty. */
void vmdef_boot_text(const struct vm_def *def, char *buf, size_t len);

#endif /* KEEL_CONFIG_VMDEF_H */
