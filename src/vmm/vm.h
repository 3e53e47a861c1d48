/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One virtual machine: KVM objects, guest memory, buses, devices, vCPUs, and the events
 * that end or reset it. The main thread owns the VM's lifecycle (build, reset, teardown);
 * vCPU threads run guest code and dispatch exits to devices.
 */
#ifndef KEEL_VMM_VM_H
#define KEEL_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/kvm.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/x86/firmware.h"
#include "vmm/state.h"

struct loop;
struct chardev;
struct control;
struct snapshot;
struct vcpu;
struct pci_host;

/* What the vCPUs should be doing; changed only by the main thread. */
enum vm_run_target { VM_RUN, VM_PAUSE, VM_STOP };

/* One per PCI device at most, plus the platform's own (serial, PCI host, ...). */
#define VM_MAX_RESET_HOOKS  (VMDEF_MAX_PCI_DEVICES + 16)
#define VM_MAX_PAUSE_HOOKS  (VMDEF_MAX_PCI_DEVICES + 16)
#define VM_MAX_REPORT_HOOKS (VMDEF_MAX_PCI_DEVICES + 16)
#define VM_MAX_TEARDOWNS    (VMDEF_MAX_PCI_DEVICES + 16)

struct vm {
	struct machine machine; /* what the devices see of this VM (machine.h) */
	struct vm_config *cfg;	/* hot plug adds and removes adapters (hotplug.c) */
	struct kvm_sys kvm;
	_Atomic int vm_fd; /* replaced on reset while no vCPU runs */
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct kvm_cpuid2 *cpuid; /* KVM's supported set, read once */
	int kernel_fd;
	int initrd_fd;
	struct firmware fw; /* SeaBIOS or OVMF; kind VM_FIRMWARE_NONE for direct boot */
	struct loop *loop;

	struct vcpu *vcpus;
	unsigned nvcpus_started;

	/* run_lock protects target and parked; run_cond signals changes to either. */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	enum vm_run_target target;
	unsigned parked;

	/* The pending event: set once (compare-and-swap) by any thread, then read by the
	 * main thread after it sees event_fd. */
	_Atomic int event;
	int event_status;
	int event_fd;
	char event_detail[256];
	int signal_fd;
	int status_fd; /* jailed: the status file, opened before the jail; else -1 */

	/* The devices' hooks (machine.h), in the order they were added. */
	machine_reset_fn reset_fns[VM_MAX_RESET_HOOKS];
	void *reset_opaque[VM_MAX_RESET_HOOKS];
	unsigned nreset;
	machine_pause_fn pause_fns[VM_MAX_PAUSE_HOOKS];
	void *pause_opaque[VM_MAX_PAUSE_HOOKS];
	unsigned npause;
	machine_report_fn report_fns[VM_MAX_REPORT_HOOKS];
	void *report_opaque[VM_MAX_REPORT_HOOKS];
	unsigned nreport;
	machine_teardown_fn teardown_fns[VM_MAX_TEARDOWNS];
	void *teardown_opaque[VM_MAX_TEARDOWNS];
	unsigned nteardown;
	machine_button_fn power_button_fn;
	void *power_button_opaque;
	machine_gpe_fn gpe_fn; /* the GPE0 block (machine_set_gpe) */
	void *gpe_opaque;
	struct hotplug *hotplug;		   /* the PCI hot plug controller (hotplug.c) */
	const struct machine_media_ops *media_ops; /* the DVD drives (machine_set_media) */
	void *media_opaque;
	struct {
		machine_link_fn fn; /* NULL: no such adapter */
		void *opaque;
	} nic_link[VMDEF_MAX_NICS]; /* each network adapter's link (machine_set_nic_link) */
	struct virtio_dev *disk_dev[VMDEF_MAX_DISKS]; /* each disk's (machine_set_disk_dev) */
	struct virtio_dev *scsi_dev; /* the SCSI controller's (machine_set_scsi_dev) */
	bool devices_paused;

	struct chardev *serial_out; /* COM1's host side */
	struct control *control;
	struct pci_host *pci; /* PCI host bridge and the devices on it */
	int exit_status;

	struct state_registry state; /* saved-state sections, in load order (state.h) */
	struct snapshot *snapshot;   /* save and restore (snapshot.c) */
};

/* Build the VM (devices, memory, kernel) ready to start; err gets a one-line reason. */
int vm_create(struct vm *vm, struct vm_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Run until the VM ends; returns the process exit status. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Main thread only. vm_pause stops the vCPUs and quiesces the devices; when a device does
 * not quiesce (requests still in flight after VIRTIO_IDLE_WAIT_MS) it returns -EBUSY and
 * the VM carries on as before. vm_pause_error says so in words. */
int vm_pause(struct vm *vm) __attribute__((warn_unused_result));
const char *vm_pause_error(int r);
int vm_resume(struct vm *vm) __attribute__((warn_unused_result));
bool vm_is_paused(struct vm *vm);
/* Main thread only: each device's report lines (machine_add_report), handed to emit. */
void vm_report(struct vm *vm, void (*emit)(void *ctx, const char *line), void *ctx);
int vm_reset(struct vm *vm) __attribute__((warn_unused_result));
/* Replace the running (or paused) machine with the state saved in dir, then run it or keep
 * it paused. A state that does not fit is refused and the VM carries on as it was; a
 * failure after the old machine is gone ends the VM (status "error"). */
int vm_restore(struct vm *vm, const char *dir, bool paused, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void vm_power_button(struct vm *vm);
/* Main thread, vCPUs paused: drop a device's hooks (reset, pause, report, teardown), all
 * those with opaque obj, before it is destroyed while the VM runs on (hot unplug). */
void vm_forget_device(struct vm *vm, void *obj);

#endif
