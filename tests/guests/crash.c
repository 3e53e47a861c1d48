/*
 * crash: load an empty IDT (limit 0) and raise an exception: how=ud2 (#UD) or how=int3 (#BP).
 * Delivery through the empty IDT faults, the double fault faults, the CPU shuts down (triple
 * fault) and keel-vmm must exit non-zero with one line naming the exit reason and the RIP
 * printed here. On hosts whose /dev/kvm emulates guest kernel code (no VT-x/AMD-V), KVM's
 * instruction emulator cannot emulate int3 in protected mode and reports an emulation failure
 * (KVM internal error) at the int3 instead; ud2 triple-faults on every host.
 */
#include "lib/guest.h"

const char guest_name[] = "crash";

extern char crash_ud2[], crash_int3[];

__attribute__((noinline)) static void crash(bool use_int3)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) empty = {0, 0};
	__asm__ volatile("lidt %0" : : "m"(empty));
	if (use_int3)
		__asm__ volatile(".globl crash_int3\ncrash_int3: int3");
	else
		__asm__ volatile(".globl crash_ud2\ncrash_ud2: ud2");
}

void guest_main(void)
{
	bool use_int3 = mb_arg_is("how", "int3");
	if (!use_int3 && !mb_arg_is("how", "ud2"))
		guest_fail("how= must be ud2 or int3");
	guest_printf("crash: executing %s at 0x%08x with an empty IDT\n", use_int3 ? "int3" : "ud2",
	             (uint32_t)(uintptr_t)(use_int3 ? crash_int3 : crash_ud2));
	crash(use_int3);
	guest_fail("still running after %s with an empty IDT", use_int3 ? "int3" : "ud2");
}
