/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The only interface to KVM: a thin wrapper over its ioctls (like bhyve's libvmmapi).
 * No other file issues a KVM ioctl. Every function returns 0 or a negative errno.
 */
#ifndef KEEL_VMM_KVM_H
#define KEEL_VMM_KVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#define KVM_WUR __attribute__((warn_unused_result))

/* The system handle (/dev/kvm): opened once per process. */
struct kvm_sys {
	int fd;
	size_t run_size; /* size of each vCPU's shared kvm_run mapping */
	int max_vcpus;
};

/* /dev/kvm: given (an open descriptor, from --fd kvm=N; taken over) or, if -1, opened. */
int kvm_sys_open(struct kvm_sys *sys, int given, char *err, size_t errlen) KVM_WUR;
void kvm_sys_close(struct kvm_sys *sys);
/* The CPUID leaves KVM can offer guests. Caller frees. */
int kvm_sys_supported_cpuid(struct kvm_sys *sys, struct kvm_cpuid2 **out) KVM_WUR;

/* One VM file descriptor and its in-kernel devices. */
int kvm_vm_create(struct kvm_sys *sys, int *vm_fd) KVM_WUR;
int kvm_vm_set_memory(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva) KVM_WUR;
/* Read-only memory (firmware): reads come from hva, writes exit as MMIO. */
int kvm_vm_set_rom(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, const void *hva) KVM_WUR;
int kvm_vm_setup_x86(int vm_fd, uint64_t tss_addr, uint64_t identity_map_addr) KVM_WUR;
int kvm_vm_create_irqchip(int vm_fd) KVM_WUR;
int kvm_vm_create_pit(int vm_fd) KVM_WUR;
int kvm_vm_set_gsi_routing(int vm_fd, const struct kvm_irq_routing *routing) KVM_WUR;
int kvm_vm_irq_line(int vm_fd, uint32_t gsi, int level) KVM_WUR;
/* An eventfd that KVM signals on a guest write of len bytes (0: any length) at addr
 * (MMIO, or port I/O with pio set), instead of exiting to user space. */
int kvm_vm_ioeventfd(int vm_fd, uint64_t addr, uint32_t len, int fd, int pio, int deassign) KVM_WUR;
/* An eventfd whose signal injects the interrupt routed to gsi. */
int kvm_vm_irqfd(int vm_fd, uint32_t gsi, int fd, int deassign) KVM_WUR;

/* A vCPU: its fd and its mapped kvm_run. */
int kvm_vcpu_create(struct kvm_sys *sys, int vm_fd, unsigned id, int *vcpu_fd,
		    struct kvm_run **run) KVM_WUR;
void kvm_vcpu_destroy(struct kvm_sys *sys, int vcpu_fd, struct kvm_run *run);
/* The vCPU's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): a read-only fd, or -errno
 * (-ENOTTY on older kernels). keeld reads it to see whether the guest takes interrupts. */
int kvm_vcpu_stats_fd(int vcpu_fd) KVM_WUR;
/* Returns 0, or -EINTR when kicked, or another negative errno. */
int kvm_vcpu_run(int vcpu_fd) KVM_WUR;
int kvm_vcpu_get_regs(int vcpu_fd, struct kvm_regs *regs) KVM_WUR;
int kvm_vcpu_set_regs(int vcpu_fd, const struct kvm_regs *regs) KVM_WUR;
int kvm_vcpu_get_sregs(int vcpu_fd, struct kvm_sregs *sregs) KVM_WUR;
int kvm_vcpu_set_sregs(int vcpu_fd, const struct kvm_sregs *sregs) KVM_WUR;
int kvm_vcpu_set_fpu(int vcpu_fd, const struct kvm_fpu *fpu) KVM_WUR;
int kvm_vcpu_set_msrs(int vcpu_fd, const struct kvm_msrs *msrs) KVM_WUR;
int kvm_vcpu_set_cpuid(int vcpu_fd, const struct kvm_cpuid2 *cpuid) KVM_WUR;
int kvm_vcpu_get_lapic(int vcpu_fd, struct kvm_lapic_state *lapic) KVM_WUR;
int kvm_vcpu_set_lapic(int vcpu_fd, const struct kvm_lapic_state *lapic) KVM_WUR;

/* Saved state (snapshot.c): reading and writing the whole of a VM's KVM state. */
/* KVM_CHECK_EXTENSION on the system or a VM fd: the capability's value, 0 if absent. */
int kvm_check_extension(int fd, long cap);
/* Every MSR KVM can save and restore (KVM_GET_MSR_INDEX_LIST). Caller frees. */
int kvm_sys_msr_index_list(struct kvm_sys *sys, struct kvm_msr_list **out) KVM_WUR;
int kvm_vm_get_irqchip(int vm_fd, struct kvm_irqchip *chip) KVM_WUR;
int kvm_vm_set_irqchip(int vm_fd, const struct kvm_irqchip *chip) KVM_WUR;
int kvm_vm_get_pit2(int vm_fd, struct kvm_pit_state2 *pit) KVM_WUR;
int kvm_vm_set_pit2(int vm_fd, const struct kvm_pit_state2 *pit) KVM_WUR;
int kvm_vm_get_clock(int vm_fd, struct kvm_clock_data *clock) KVM_WUR;
int kvm_vm_set_clock(int vm_fd, const struct kvm_clock_data *clock) KVM_WUR;
/* Finish an exit's pending work (the I/O read data, MMIO) without running guest code:
 * KVM_RUN with immediate_exit set. Call with the vCPU parked, before reading its state. */
int kvm_vcpu_complete_io(int vcpu_fd, struct kvm_run *run) KVM_WUR;
int kvm_vcpu_get_fpu(int vcpu_fd, struct kvm_fpu *fpu) KVM_WUR;
/* size is the buffer's size: 4096 (KVM_GET_XSAVE) or KVM_CAP_XSAVE2's (KVM_GET_XSAVE2). */
int kvm_vcpu_get_xsave(int vcpu_fd, struct kvm_xsave *xsave, size_t size) KVM_WUR;
int kvm_vcpu_set_xsave(int vcpu_fd, const struct kvm_xsave *xsave) KVM_WUR;
int kvm_vcpu_get_xcrs(int vcpu_fd, struct kvm_xcrs *xcrs) KVM_WUR;
int kvm_vcpu_set_xcrs(int vcpu_fd, const struct kvm_xcrs *xcrs) KVM_WUR;
/* Returns how many of msrs->nmsrs were read (KVM stops at the first it cannot read). */
int kvm_vcpu_get_msrs(int vcpu_fd, struct kvm_msrs *msrs) KVM_WUR;
/* Like kvm_vcpu_set_msrs, but returns how many were set (stops at the first refused). */
int kvm_vcpu_set_msrs_count(int vcpu_fd, const struct kvm_msrs *msrs) KVM_WUR;
int kvm_vcpu_get_events(int vcpu_fd, struct kvm_vcpu_events *ev) KVM_WUR;
int kvm_vcpu_set_events(int vcpu_fd, const struct kvm_vcpu_events *ev) KVM_WUR;
int kvm_vcpu_get_mp_state(int vcpu_fd, struct kvm_mp_state *mp) KVM_WUR;
int kvm_vcpu_set_mp_state(int vcpu_fd, const struct kvm_mp_state *mp) KVM_WUR;
int kvm_vcpu_get_debugregs(int vcpu_fd, struct kvm_debugregs *dr) KVM_WUR;
int kvm_vcpu_set_debugregs(int vcpu_fd, const struct kvm_debugregs *dr) KVM_WUR;

#endif
