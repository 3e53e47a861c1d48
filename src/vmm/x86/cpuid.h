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

#endif
