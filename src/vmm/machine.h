/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a device model may use of the machine it is plugged into (DESIGN.md habit 1). Device
 * files (dev/, virtio/, the PCI host bridge, fw_cfg) include this header and never vm.h: they
 * see the VM's description, guest memory, the two buses, the event loop, the PCI host, their
 * host-side back ends, and a handful of calls: interrupt lines, MSI routes, irqfds and
 * ioeventfds, hooks (reset, pause, crash report, teardown, power button), saved-state
 * sections and requests that end or reset the VM. vm.c implements it; the machine owns its
 * KVM objects, vCPUs and lifecycle, and no device reaches them except through these calls.
 */
#ifndef KEEL_VMM_MACHINE_H
#define KEEL_VMM_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"
#include "vmm/state.h"

struct firmware;

struct guest_mem;
struct bus;
struct loop;
struct pci_host;
struct chardev;
struct chardev_spec;
struct kvm_irq_routing_entry;

/* A VHDX disk's differencing chain as keeld passed it (--fd disk.I.pJ=N, lun.I.pJ=N): its
 * parents' descriptors, nearest first. A disk passed as a descriptor gets exactly these
 * parents (none: it has none); no parent is opened by path (docs/security.md). */
struct machine_chain {
	int fd[VMDEF_CHAIN_FDS_MAX];
	unsigned n;
};

struct machine {
	const struct vm_def *def; /* the VM's description (config/vmdef.h) */
	struct guest_mem *mem;
	struct bus *pio;
	struct bus *mmio;
	struct loop *loop;		    /* the main thread's event loop */
	struct pci_host *pci;		    /* bus 0: set before the PCI devices are created */
	struct chardev *serial_out;	    /* COM1's host side (--serial) */
	const struct chardev_spec *console; /* the virtio-console's host side (--console) */
	const int *disk_fds;		    /* each disk's passed descriptor (--fd disk.I), or -1 */
	/* each card's tap queues, attached by keeld (--fd net.I, net.I.qJ), or -1 */
	const int (*net_fds)[VMDEF_NET_QUEUES_MAX];
	/* each card's /dev/vhost-net per pair from keeld (--fd vhost.I, vhost.I.qJ), or -1 */
	const int (*vhost_fds)[VMDEF_NET_QUEUES_MAX];
	const char *vsock_socket; /* virtio-vsock's host side (--vsock socket=PATH) */
	const int *lun_fds;	  /* each SCSI LUN's file (--fd lun.I), or -1 */
	int nvram_dir_fd; /* the NVRAM file's directory (--fd nvram=N, 3 or above); else none */
	const struct machine_chain *disk_chains; /* each disk's parents (--fd disk.I.pJ) */
	const struct machine_chain *lun_chains;	 /* each SCSI LUN's (--fd lun.I.pJ) */
	uint64_t firmware_base; /* where the firmware image starts (it ends at 4 GiB); 0: none */
	const struct firmware *firmware; /* the image (x86/firmware.h); NULL: direct boot */
	bool firmware_debug;	/* --firmware-debug: port 0x402's output to stderr */
	unsigned phys_bits;	/* the guest's physical address width (CPUID), 0: not known */
};

/* Why the VM stops running guest code. The first request wins. */
enum vm_event {
	VM_EVENT_NONE,
	VM_EVENT_POWEROFF,   /* ACPI S5 */
	VM_EVENT_RESET,	     /* guest reboot: CF9, i8042, ACPI reset register */
	VM_EVENT_DEBUG_EXIT, /* port 0xf4 with --debug-exit */
	VM_EVENT_CRASH,	     /* triple fault, KVM internal error, unhandled exit */
	VM_EVENT_QUIT,	     /* control socket quit, or Ctrl-A x on the console */
	VM_EVENT_SIGNAL,     /* SIGTERM, SIGINT or SIGHUP */
};

/* Any thread: stop the VM (or reset it) for this reason; detail says why in words. */
void machine_request(struct machine *m, enum vm_event ev, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Any thread: drive an interrupt line (GSI) to level. */
void machine_set_irq(struct machine *m, unsigned gsi, int level);
/* Any thread: the platform's ISA/IOAPIC routes plus extra (MSI) routes, replacing the whole
 * GSI routing table (callers serialize). Returns 0 or -errno. */
int machine_set_msi_routes(struct machine *m, const struct kvm_irq_routing_entry *extra,
			   unsigned nextra) __attribute__((warn_unused_result));
/* Signal gsi when fd (an eventfd) is written (assign), or stop (!assign). -ENODEV when the
 * machine is not built yet (between vm_create's device set-up and its first build). */
int machine_irqfd(struct machine *m, unsigned gsi, int fd, bool assign)
	__attribute__((warn_unused_result));
/* Write fd (an eventfd) when the guest writes len bytes at MMIO address addr, instead of
 * exiting to the vCPU thread (assign), or stop (!assign). -ENODEV as above. */
int machine_ioeventfd(struct machine *m, uint64_t addr, unsigned len, int fd, bool assign)
	__attribute__((warn_unused_result));
/* Any thread: show size bytes at hva to the guest as read-only memory at gpa (guest reads
 * go straight to hva, writes still exit as MMIO to the bus), or take it away (size 0). The
 * machine has one such window (a device ROM in read mode: the UEFI variable flash); hva and
 * size are page-aligned. -ENODEV when the machine is not built: a machine built later has no
 * window until it is set again (the device's reset hook). */
int machine_rom_window(struct machine *m, uint64_t gpa, uint64_t size, const void *hva)
	__attribute__((warn_unused_result));
/* Has the machine been built (KVM VM, interrupt controllers)? Devices registered before the
 * first build are reset by it; those added later reset themselves. */
bool machine_built(struct machine *m);

/* Device set-up. Each returns 0 or -ENOSPC when the machine's table is full. */
/* Called before every boot and reset, vCPUs stopped: back to power-on state. */
typedef void (*machine_reset_fn)(void *opaque);
int machine_add_reset_hook(struct machine *m, machine_reset_fn fn, void *opaque)
	__attribute__((warn_unused_result));
/* Called when the VM pauses (after its vCPUs stopped; pause true: take no new work, finish
 * what is in flight) and resumes (pause false). Pausing returns 0 or -EBUSY when the device
 * did not quiesce in time (the machine resumes it again); resuming returns 0. */
typedef int (*machine_pause_fn)(void *opaque, bool pause);
int machine_add_pause_hook(struct machine *m, machine_pause_fn fn, void *opaque)
	__attribute__((warn_unused_result));
/* Describes the device's state in a few lines of text (machine_report_line), for the crash
 * report in the log and for the control command "devices"; it may wait briefly for a lock,
 * never indefinitely (a guest must not be able to hang or silence it). */
struct machine_report;
void machine_report_line(struct machine_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
typedef void (*machine_report_fn)(void *opaque, struct machine_report *r);
int machine_add_report(struct machine *m, machine_report_fn fn, void *opaque)
	__attribute__((warn_unused_result));
/* Drop the reset, pause and report hooks whose opaque is obj (a device freed: one whose
 * set-up failed after it added them, or one taken away). Its teardown stays. */
void machine_forget(struct machine *m, void *obj);
/* Frees the device when the VM is destroyed (vCPUs stopped, in reverse order of adding). */
typedef void (*machine_teardown_fn)(void *opaque);
int machine_add_teardown(struct machine *m, machine_teardown_fn fn, void *opaque)
	__attribute__((warn_unused_result));
/* The one device behind the power button that `keel vm stop` presses (ACPI PM); -EEXIST
 * when another device has it. */
typedef void (*machine_button_fn)(void *opaque);
int machine_set_power_button(struct machine *m, machine_button_fn fn, void *opaque)
	__attribute__((warn_unused_result));
/* The GPE0 block's owner (ACPI PM; -EEXIST when another device has it), and raising one of
 * its general-purpose events (bit 0-15) from any thread: the status bit is set and the SCI
 * raised while the guest enables it. Without an owner a raise does nothing. */
typedef void (*machine_gpe_fn)(void *opaque, unsigned bit);
int machine_set_gpe(struct machine *m, machine_gpe_fn fn, void *opaque)
	__attribute__((warn_unused_result));
void machine_raise_gpe(struct machine *m, unsigned bit);
/* The DVD drives whose media the host changes (the control command "dvd"): the one device
 * that has them (virtio-scsi); -EEXIST when another device has them. Called on the main
 * thread. */
struct machine_medium {
	unsigned lun;
	bool tray_open, locked;
	char path[4096]; /* "" when the drive is empty */
};
struct machine_media_ops {
	/* How many DVD drives; drive i's state into *out (i below the count). */
	unsigned (*count)(void *opaque);
	void (*get)(void *opaque, unsigned i, struct machine_medium *out);
	/* Put the ISO image path (NULL: eject) into drive i: the guest sees a media change.
	 * fd >= 0: the image is already open (taken over, also on failure), path names it. A
	 * file that is not an ISO image changes nothing. 0, or -errno with err set. */
	int (*change)(void *opaque, unsigned i, const char *path, int fd, char *err, size_t errlen);
};
int machine_set_media(struct machine *m, const struct machine_media_ops *ops, void *opaque)
	__attribute__((warn_unused_result));
/* Network adapter i's link state, which the host sets (the control command "link": keeld
 * takes the link down and up around moving the adapter to another switch). fn sets it and
 * tells the guest; -EEXIST when adapter i has one already, -EINVAL for i out of range.
 * Called on the main thread. */
typedef void (*machine_link_fn)(void *opaque, bool up);
int machine_set_nic_link(struct machine *m, unsigned i, machine_link_fn fn, void *opaque)
	__attribute__((warn_unused_result));
/* Disk i's virtio-blk device, for the control command "disk-qos" (virtio_blk_qos); -EEXIST
 * when disk i has one already, -EINVAL for i out of range. */
struct virtio_dev;
int machine_set_disk_dev(struct machine *m, unsigned i, struct virtio_dev *vd)
	__attribute__((warn_unused_result));
/* The virtio-scsi controller, for "disk-qos" on its LUNs (virtio_scsi_qos); -EEXIST when the
 * machine has one already. */
int machine_set_scsi_dev(struct machine *m, struct virtio_dev *vd)
	__attribute__((warn_unused_result));
/* The device's saved-state section; fn serves save, check and load (docs/state.md). */
int machine_add_state_section(struct machine *m, const char *name, uint32_t version, state_fn fn,
			      void *opaque) __attribute__((warn_unused_result));
/* A device with no saved state yet: saving this VM is refused with reason (docs/state.md). */
int machine_block_save(struct machine *m, const char *reason) __attribute__((warn_unused_result));

#endif
