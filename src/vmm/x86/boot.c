/* SPDX-License-Identifier: Apache-2.0 */
/* The boot CPU's entry state: a flat GDT, identity paging for long mode, registers. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "vmm/x86/boot.h"
#include "vmm/x86/layout.h"

/* Boot GDT: 0x08 32-bit code, 0x10 64-bit code (Linux's __BOOT_CS), 0x18 data
 * (__BOOT_DS), 0x20 TSS. Descriptor flags: access byte in bits 0-7, G/DB/L/AVL in 12-15. */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA   0x18
#define SEL_TSS	   0x20

static const uint16_t boot_gdt_flags[] = {0, 0xc09b, 0xa09b, 0xc093, 0x808b};

#define CR0_PE	 (1u << 0)
#define CR0_ET	 (1u << 4)
#define CR0_NE	 (1u << 5)
#define CR0_PG	 (1u << 31)
#define CR4_PAE	 (1u << 5)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (limit & 0x0000ffffu);
}

static struct kvm_segment segment(uint16_t sel)
{
	uint16_t f = boot_gdt_flags[sel >> 3];

	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = f & 0xf,
		.present = (f >> 7) & 1,
		.dpl = (f >> 5) & 3,
		.db = (f >> 14) & 1,
		.s = (f >> 4) & 1,
		.l = (f >> 13) & 1,
		.g = (f >> 15) & 1,
		.avl = (f >> 12) & 1,
	};
}

static int write_gdt(const struct guest_mem *mem)
{
	uint64_t gdt[sizeof(boot_gdt_flags) / sizeof(boot_gdt_flags[0])];
	size_t i;

	for (i = 0; i < sizeof(gdt) / sizeof(gdt[0]); i++)
		gdt[i] = i ? gdt_entry(boot_gdt_flags[i], 0, 0xfffff) : 0;
	return mem_write(mem, LAYOUT_GDT, gdt, sizeof(gdt));
}

/* Identity map of 0..4 GiB with 2 MiB pages: enough for the boot protocol's needs
 * (kernel, zero page, command line, initrd all live below 4 GiB). */
static int write_page_tables(const struct guest_mem *mem)
{
	uint64_t *pml4 = mem_ptr(mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = mem_ptr(mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = mem_ptr(mem, LAYOUT_PD, 4 * 4096);
	unsigned i;

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | 0x3; /* present, writable */
	for (i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096ull) | 0x3;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83; /* present, writable, 2 MiB page */
	return 0;
}

int boot_cpu_state(const struct guest_mem *mem, const struct boot_entry *entry,
		   struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	bool long_mode = entry->mode == BOOT_LONG64;
	struct kvm_segment data = segment(SEL_DATA);
	int r;

	r = write_gdt(mem);
	if (!r && long_mode)
		r = write_page_tables(mem);
	if (r)
		return r;

	sregs->cs = segment(long_mode ? SEL_CODE64 : SEL_CODE32);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = segment(SEL_TSS);
	sregs->tr.limit = 0x67;
	sregs->tr.g = 0;
	sregs->tr.s = 0;
	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = sizeof(boot_gdt_flags) / sizeof(boot_gdt_flags[0]) * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cr0 = CR0_PE | CR0_ET | CR0_NE | (long_mode ? CR0_PG : 0);
	sregs->cr3 = long_mode ? LAYOUT_PML4 : 0;
	sregs->cr4 = long_mode ? CR4_PAE : 0;
	sregs->efer = long_mode ? EFER_LME | EFER_LMA : 0;

	memset(regs, 0, sizeof(*regs));
	regs->rflags = 0x2;
	regs->rip = entry->rip;
	if (long_mode) {
		regs->rsi = entry->rsi;
	} else {
		regs->rax = entry->eax;
		regs->rbx = entry->ebx;
	}
	return 0;
}
