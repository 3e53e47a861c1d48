/* SPDX-License-Identifier: Apache-2.0 */
/* CPUID topology: APIC IDs, core counts and the hypervisor bit, for Intel and AMD. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/x86/cpuid.h"

static struct kvm_cpuid2 *make(uint32_t vendor_ebx)
{
	static const struct kvm_cpuid_entry2 proto[] = {
		{.function = 0, .eax = 0x1f},
		{.function = 1, .ebx = 0x00000800, .edx = 0},
		{.function = 4, .index = 0, .eax = 0x121, .flags = 1},
		{.function = 4, .index = 1, .eax = 0x163, .flags = 1},
		{.function = 4, .index = 2, .eax = 0x0, .flags = 1},
		{.function = 0xb, .index = 0, .flags = 1},
		{.function = 0xb, .index = 1, .flags = 1},
		{.function = 0xb, .index = 2, .flags = 1},
		{.function = 0x80000001, .ecx = 0},
		{.function = 0x80000008, .ecx = 0x0000f0ff},
		{.function = 0x8000001e},
	};
	unsigned n = sizeof(proto) / sizeof(proto[0]);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

	c->nent = n;
	memcpy(c->entries, proto, sizeof(proto));
	c->entries[0].ebx = vendor_ebx;
	return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	fail_msg("leaf 0x%x.%u missing", fn, idx);
	return NULL;
}

static void test_intel_topology(void **state)
{
	struct kvm_cpuid2 *sup = make(0x756e6547 /* "Genu" */), *out = make(0);

	cpuid_for_vcpu(sup, 3, 6, out);
	assert_int_equal(leaf(out, 1, 0)->ebx >> 24, 3);	   /* APIC ID */
	assert_int_equal((leaf(out, 1, 0)->ebx >> 16) & 0xff, 8);  /* 6 rounded up to 2^3 */
	assert_int_equal((leaf(out, 1, 0)->ebx >> 8) & 0xff, 8);   /* CLFLUSH kept */
	assert_true(leaf(out, 1, 0)->ecx & (1u << 31));		   /* hypervisor */
	assert_true(leaf(out, 1, 0)->edx & (1u << 28));		   /* HTT */
	assert_int_equal(leaf(out, 4, 0)->eax >> 26, 7);	   /* cores per package - 1 */
	assert_int_equal((leaf(out, 4, 0)->eax >> 14) & 0xfff, 0); /* L1 private */
	assert_int_equal((leaf(out, 4, 1)->eax >> 14) & 0xfff, 7); /* L3 shared */
	assert_int_equal(leaf(out, 4, 2)->eax, 0);		   /* no more caches: untouched */
	assert_int_equal(leaf(out, 0xb, 0)->ebx, 1);
	assert_int_equal(leaf(out, 0xb, 0)->ecx, 0x100);
	assert_int_equal(leaf(out, 0xb, 1)->eax, 3);
	assert_int_equal(leaf(out, 0xb, 1)->ebx, 6);
	assert_int_equal(leaf(out, 0xb, 1)->ecx, 0x201);
	assert_int_equal(leaf(out, 0xb, 1)->edx, 3);		 /* x2APIC ID */
	assert_int_equal(leaf(out, 0xb, 2)->ecx, 2);		 /* invalid level */
	assert_int_equal(leaf(out, 0x80000008, 0)->ecx, 0xf0ff); /* AMD leaf untouched */
	free(sup);
	free(out);
}

static void test_amd_topology(void **state)
{
	struct kvm_cpuid2 *sup = make(0x68747541 /* "Auth" */), *out = make(0);

	cpuid_for_vcpu(sup, 2, 4, out);
	assert_int_equal(leaf(out, 1, 0)->ebx >> 24, 2);
	assert_true(leaf(out, 0x80000001, 0)->ecx & 2); /* CmpLegacy */
	assert_int_equal(leaf(out, 0x80000008, 0)->ecx & 0xff, 3);
	assert_int_equal((leaf(out, 0x80000008, 0)->ecx >> 12) & 0xf, 2);
	assert_int_equal(leaf(out, 0x8000001e, 0)->eax, 2);

	cpuid_for_vcpu(sup, 0, 1, out);
	assert_false(leaf(out, 0x80000001, 0)->ecx & 2);
	assert_false(leaf(out, 1, 0)->edx & (1u << 28));
	assert_int_equal(leaf(out, 0x80000008, 0)->ecx & 0xff, 0);
	free(sup);
	free(out);
}

static void test_tsc_deadline(void **state)
{
	struct kvm_cpuid2 *sup = make(0x68747541), *out = make(0);
	uint32_t ecx = leaf(sup, 1, 0)->ecx;

	cpuid_offer_tsc_deadline(sup);
	assert_int_equal(leaf(sup, 1, 0)->ecx, ecx | 1u << 24);
	assert_int_equal(leaf(sup, 0x80000001, 0)->ecx, 0); /* only leaf 1 */
	cpuid_for_vcpu(sup, 1, 2, out);			    /* kept for every vCPU */
	assert_true(leaf(out, 1, 0)->ecx & (1u << 24));
	free(sup);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intel_topology),
		cmocka_unit_test(test_amd_topology),
		cmocka_unit_test(test_tsc_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
