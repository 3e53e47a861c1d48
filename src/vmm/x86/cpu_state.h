/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The saved state of one vCPU, section "cpu.N" (docs/state.md): general and segment
 * registers, FPU or XSAVE area, XCRs, LAPIC, every MSR this KVM saves, pending events, MP
 * state, debug registers. Read whole before anything is written, checked against what this
 * host's KVM can restore, and written in the order QEMU and Firecracker use.
 */
#ifndef KEEL_VMM_X86_CPU_STATE_H
#define KEEL_VMM_X86_CPU_STATE_H

#include <linux/kvm.h>

struct vm;
struct state_io;

/* One vCPU's section: opaque of cpu_state_section. msrs: the MSRs this KVM saves and
 * restores (KVM_GET_MSR_INDEX_LIST), NULL without KVM (fuzzing). */
struct cpu_state_ctx {
	struct vm *vm;
	const struct kvm_msr_list *msrs;
	unsigned id;
};

/* The section function (state.h's state_fn) of vCPU ((struct cpu_state_ctx *)opaque)->id. */
int cpu_state_section(struct state_io *io, void *opaque);

#endif
