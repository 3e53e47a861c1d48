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
#include "vmm/mem.h"
#include "vmm/state.h"

struct loop;
struct chardev;
struct control;
struct serial;
struct pm;
struct rtc;
struct snapshot;
struct vcpu;
struct pci_host;
struct virtio_devices;

/* Why the VM stopped running guest code. The first event wins. */
enum vm_event {
	VM_EVENT_NONE,
	VM_EVENT_POWEROFF,   /* ACPI S5 */
	VM_EVENT_RESET,	     /* guest reboot: CF9, i8042, ACPI reset register */
	VM_EVENT_DEBUG_EXIT, /* port 0xf4 with --debug-exit */
	VM_EVENT_CRASH,	     /* triple fault, KVM internal error, unhandled exit */
	VM_EVENT_QUIT,	     /* control socket quit, or Ctrl-A x on the console */
	VM_EVENT_SIGNAL,     /* SIGTERM, SIGINT or SIGHUP */
};

/* What the vCPUs should be doing; changed only by the main thread. */
enum vm_run_target { VM_RUN, VM_PAUSE, VM_STOP };

typedef void (*vm_reset_fn)(void *opaque);
/* pause true: stop taking work from the guest or the host and finish what is in flight,
 * before returning; false: carry on. */
/* Pause (quiesce: no new work, nothing in flight) or resume a device. Pausing returns 0 or
 * -EBUSY when the device did not quiesce in time (it is then resumed by the caller);
 * resuming cannot fail and returns 0. */
typedef int (*vm_pause_fn)(void *opaque, bool pause);
/* Logs a device's state for a crash report (vm_add_crash_report). */
typedef void (*vm_report_fn)(void *opaque);

/* One per PCI device at most, plus the platform's own (serial, PCI host, ...). */
#define VM_MAX_RESET_HOOKS  (VMDEF_MAX_PCI_DEVICES + 16)
#define VM_MAX_PAUSE_HOOKS  (VMDEF_MAX_PCI_DEVICES + 16)
#define VM_MAX_REPORT_HOOKS (VMDEF_MAX_PCI_DEVICES + 16)

struct vm {
	const struct vm_config *cfg;
	struct kvm_sys kvm;
	_Atomic int vm_fd; /* replaced on reset while no vCPU runs */
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct kvm_cpuid2 *cpuid; /* KVM's supported set, read once */
	int kernel_fd;
	int initrd_fd;
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

	vm_reset_fn reset_fns[VM_MAX_RESET_HOOKS];
	void *reset_opaque[VM_MAX_RESET_HOOKS];
	unsigned nreset;
	vm_pause_fn pause_fns[VM_MAX_PAUSE_HOOKS];
	void *pause_opaque[VM_MAX_PAUSE_HOOKS];
	unsigned npause;
	vm_report_fn report_fns[VM_MAX_REPORT_HOOKS];
	void *report_opaque[VM_MAX_REPORT_HOOKS];
	unsigned nreport;
	bool devices_paused;

	struct chardev *serial_out;
	struct serial *serial;
	struct pm *pm;
	struct rtc *rtc;
	struct control *control;
	struct pci_host *pci; /* PCI host bridge and the virtio devices on it */
	struct virtio_devices *virtio;
	int exit_status;

	struct state_registry state; /* saved-state sections, in load order (state.h) */
	struct snapshot *snapshot;   /* save and restore (snapshot.c) */
};

/* Build the VM (devices, memory, kernel) ready to start; err gets a one-line reason. */
int vm_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Run until the VM ends; returns the process exit status. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Any thread: raise an event that stops the VM (or resets it). */
void vm_request(struct vm *vm, enum vm_event ev, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Any thread: drive an interrupt line (GSI) to level. */
void vm_set_irq(struct vm *vm, unsigned gsi, int level);
/* Any thread: the platform's ISA/IOAPIC routes plus extra (MSI) routes, replacing the
 * whole GSI routing table (callers serialize). */
int vm_set_irq_routes(struct vm *vm, const struct kvm_irq_routing_entry *extra, unsigned nextra)
	__attribute__((warn_unused_result));
/* Device set-up: a function called before every boot, to put the device in reset state. */
int vm_add_reset_hook(struct vm *vm, vm_reset_fn fn, void *opaque)
	__attribute__((warn_unused_result));

/* Device set-up: a function called when the VM pauses (after its vCPUs stopped) and
 * resumes (before they start): devices quiesce while the VM is paused. */
int vm_add_pause_hook(struct vm *vm, vm_pause_fn fn, void *opaque)
	__attribute__((warn_unused_result));

/* Device set-up: a function that logs the device's state when the VM crashes (a few
 * lines, for the crash report; it may wait briefly for a lock, never indefinitely). */
int vm_add_crash_report(struct vm *vm, vm_report_fn fn, void *opaque)
	__attribute__((warn_unused_result));

/* Device set-up: the device's saved-state section; fn serves save, check and load
 * (docs/state.md). */
int vm_add_state_section(struct vm *vm, const char *name, uint32_t version, state_fn fn,
			 void *opaque) __attribute__((warn_unused_result));

/* Main thread only. vm_pause stops the vCPUs and quiesces the devices; when a device does
 * not quiesce (requests still in flight after VIRTIO_IDLE_WAIT_MS) it returns -EBUSY and
 * the VM carries on as before. vm_pause_error says so in words. */
int vm_pause(struct vm *vm) __attribute__((warn_unused_result));
const char *vm_pause_error(int r);
int vm_resume(struct vm *vm) __attribute__((warn_unused_result));
bool vm_is_paused(struct vm *vm);
int vm_reset(struct vm *vm) __attribute__((warn_unused_result));
/* Replace the running (or paused) machine with the state saved in dir, then run it or keep
 * it paused. A state that does not fit is refused and the VM carries on as it was; a
 * failure after the old machine is gone ends the VM (status "error"). */
int vm_restore(struct vm *vm, const char *dir, bool paused, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void vm_power_button(struct vm *vm);

#endif
