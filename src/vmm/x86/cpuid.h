/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CPUID a vCPU sees: KVM's supported set, with a coherent topology (one socket,
 * ncpus cores, one thread each; APIC ID = vCPU index) and the hypervisor bit.
 */
#ifndef KEEL_VMM_X86_CPUID_H
#define KEEL_VMM_X86_CPUID_H

#include <linux/kvm.h>

/* Copy supported into out (room for supported->nent entries) and fix it up for vCPU id. */
void cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned id, unsigned ncpus,
		    struct kvm_cpuid2 *out);

/* Offer the TSC-deadline mode of the local APIC's timer (leaf 1 ECX bit 24), which KVM
 * emulates with its in-kernel LAPIC (KVM_CAP_TSC_DEADLINE_TIMER) but leaves out of
 * KVM_GET_SUPPORTED_CPUID: the VMM says whether to offer it. */
void cpuid_offer_tsc_deadline(struct kvm_cpuid2 *c);

#endif
