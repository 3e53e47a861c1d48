/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/cpuid.h"

#include <stdbool.h>
#include <string.h>

/* Bits needed to number n things: ceil(log2(n)). */
static unsigned order(unsigned n)
{
	unsigned b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

static bool vendor_is_amd(const struct kvm_cpuid2 *c)
{
	unsigned i;

	for (i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 0) /* "AuthenticAMD" or "HygonGenuine": EBX "Auth"/"Hygo" */
			return e->ebx == 0x68747541 || e->ebx == 0x6f677948;
	}
	return false;
}

void cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned id, unsigned ncpus,
		    struct kvm_cpuid2 *out)
{
	unsigned core_bits = order(ncpus), i;
	bool amd = vendor_is_amd(supported);

	out->nent = supported->nent;
	memcpy(out->entries, supported->entries, supported->nent * sizeof(out->entries[0]));
	for (i = 0; i < out->nent; i++) {
		struct kvm_cpuid_entry2 *e = &out->entries[i];

		switch (e->function) {
		case 1:
			/* EBX: initial APIC ID, addressable logical processor IDs, CLFLUSH. */
			e->ebx = (e->ebx & 0xffff) | (1u << core_bits) << 16 | id << 24;
			if (ncpus > 1)
				e->edx |= 1u << 28; /* HTT: the EBX count is valid */
			e->ecx |= 1u << 31;	    /* running under a hypervisor */
			break;
		case 4:
			/* Deterministic cache parameters: cores per package; L1/L2 private
			 * to a core, L3 shared by all. */
			if ((e->eax & 0x1f) == 0)
				break;
			e->eax &= 0x3fff;
			e->eax |= ((1u << core_bits) - 1) << 26;
			if (((e->eax >> 5) & 7) >= 3)
				e->eax |= ((1u << core_bits) - 1) << 14;
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology: level 0 SMT (one thread), level 1 core. */
			e->edx = id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1u << 8 | 0;
			} else if (e->index == 1) {
				e->eax = core_bits;
				e->ebx = ncpus;
				e->ecx = 2u << 8 | 1;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		case 0x80000001:
			if (amd && ncpus > 1)
				e->ecx |= 1u << 1; /* CmpLegacy: multi-core */
			break;
		case 0x80000008:
			if (amd)
				e->ecx = (e->ecx & ~0xf0ffu) | core_bits << 12 | (ncpus - 1);
			break;
		case 0x8000001e:
			/* AMD topology extension: extended APIC ID, core ID, node 0. */
			e->eax = id;
			e->ebx = id & 0xff;
			e->ecx = 0;
			break;
		default:
			break;
		}
	}
}

void cpuid_offer_tsc_deadline(struct kvm_cpuid2 *c)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= 1u << 24;
}
