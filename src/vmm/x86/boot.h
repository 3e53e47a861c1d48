/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel loading and the boot CPU's entry state. A loader (bzimage.c, multiboot.c) puts
 * the kernel and what it needs into guest memory and fills a boot_entry; boot_cpu_state()
 * turns that into the registers of vCPU 0.
 */
#ifndef KEEL_VMM_X86_BOOT_H
#define KEEL_VMM_X86_BOOT_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/mem.h"

enum boot_mode {
	BOOT_LONG64, /* Linux 64-bit boot protocol: long mode, identity paging, RSI = boot_params */
	BOOT_PROT32, /* multiboot: 32-bit protected mode, no paging, EAX = magic, EBX = info */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t rsi; /* BOOT_LONG64 */
	uint32_t eax; /* BOOT_PROT32 */
	uint32_t ebx; /* BOOT_PROT32 */
};

/* What a loader gets: file contents already read, and where the ACPI RSDP is. */
struct boot_input {
	const uint8_t *kernel;
	size_t kernel_size;
	const char *initrd_path; /* for the multiboot module string */
	const uint8_t *initrd;
	size_t initrd_size;
	const char *cmdline;
	uint64_t rsdp;
};

/*
 * Load a Linux bzImage. Returns 0, -ENOEXEC if this is not a bzImage (try another
 * loader), or another negative errno with a reason in err.
 */
int bzimage_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_entry *entry,
		 char *err, size_t errlen) __attribute__((warn_unused_result));
/* Load a multiboot v1 kernel; same return convention. */
int multiboot_load(const struct guest_mem *mem, const struct boot_input *in,
		   struct boot_entry *entry, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Write the boot GDT (and page tables for long mode) into guest memory and compute the
 * boot CPU's registers. */
int boot_cpu_state(const struct guest_mem *mem, const struct boot_entry *entry,
		   struct kvm_regs *regs, struct kvm_sregs *sregs)
	__attribute__((warn_unused_result));

#endif
