/*
 * multiboot: the boot information matches the VM. Arguments: mem=BYTES (--memory),
 * initrd_size=N and initrd_fnv=H (module 0's length and FNV-1a checksum). Checks: flags,
 * mem_lower/mem_upper against the memory map, the map's RAM adds up to --memory, RAM above the
 * 32-bit MMIO hole continues at 4 GiB (touched through PAE paging), every RAM range is backed,
 * module 0 has the right bytes. The command line is printed for the runner to compare.
 */
#include "lib/guest.h"

const char guest_name[] = "multiboot";

#define MiB      (1ull << 20)
#define GiB      (1ull << 30)
#define FOUR_GiB (4ull << 30)
#define SLACK    (4 * MiB) /* RAM the VMM may keep back (legacy hole, firmware tables) */

static uint64_t pdpt[4] __attribute__((aligned(32)));
static uint64_t pd_low[512] __attribute__((aligned(4096)));
static uint64_t pd_win[512] __attribute__((aligned(4096)));

#define WINDOW 0xc0000000u /* virtual address of pd_win's first 2 MiB page */

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
	uint32_t h = 0x811c9dc5u;
	for (uint32_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

/* Write a pattern to a RAM dword below 4 GiB, read it back, restore the old value. */
static void touch_low(uint64_t addr, const char *what)
{
	volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)addr;
	uint32_t old = *p, pat = 0x5a5aa5a5u ^ (uint32_t)addr;
	*p = pat;
	uint32_t got = *p;
	*p = old;
	if (got != pat)
		guest_fail("%s: RAM at 0x%llx is not backed (wrote 0x%08x, read 0x%08x)", what,
		           (unsigned long long)addr, pat, got);
}

/*
 * PAE paging on and off. Hosts whose /dev/kvm emulates guest kernel code without VT-x/AMD-V
 * may refuse CR0.PG with #GP; the handler notes that and skips the instruction, and the test
 * reports that RAM above 4 GiB could not be touched instead of failing.
 */
extern char mb_pg_insn[], mb_pg_after[];
static volatile bool paging_refused;

static void gp_isr(struct isr_frame *f)
{
	if (f->eip != (uint32_t)(uintptr_t)mb_pg_insn)
		guest_fail("unexpected #GP, error code 0x%x, at eip 0x%08x", f->error, f->eip);
	paging_refused = true;
	f->eip = (uint32_t)(uintptr_t)mb_pg_after;
}

__attribute__((noinline)) static bool paging_on(void)
{
	uint32_t cr4;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr3" : : "r"((uint32_t)(uintptr_t)pdpt) : "memory");
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | (1u << 5)) : "memory");
	idt_set_handler(13, gp_isr);
	__asm__ volatile("mov %%cr0, %%eax\n\t"
	                 "or $0x80000000, %%eax\n\t"
	                 ".globl mb_pg_insn\n"
	                 "mb_pg_insn:\n\t"
	                 "mov %%eax, %%cr0\n"
	                 ".globl mb_pg_after\n"
	                 "mb_pg_after:"
	                 :
	                 :
	                 : "eax", "memory");
	idt_set_handler(13, NULL);
	return !paging_refused;
}

static void paging_off(void)
{
	uint32_t cr0, cr4;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0 & ~(1u << 31)) : "memory");
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4 & ~(1u << 5)) : "memory");
}

/* Map [base, base+2M) and [last, last+2M) above 4 GiB at WINDOW with PAE paging, write distinct
 * patterns at both ends, read them back, and check the writes did not land in low memory
 * (a VMM truncating addresses to 32 bits would alias 4 GiB onto 0). */
static void touch_high(uint64_t base, uint64_t end)
{
	uint64_t last = (end - 2 * MiB) & ~(2 * MiB - 1);
	for (uint32_t i = 0; i < 512; i++)
		pd_low[i] = ((uint64_t)i << 21) | 0x83; /* present, writable, 2 MiB page */
	pd_win[0] = base | 0x83;
	pd_win[1] = last | 0x83;
	pdpt[0] = (uint32_t)(uintptr_t)pd_low | 1;
	pdpt[3] = (uint32_t)(uintptr_t)pd_win | 1;

	volatile uint32_t *low0 = (volatile uint32_t *)(uintptr_t)(base - FOUR_GiB);
	volatile uint32_t *low1 = (volatile uint32_t *)(uintptr_t)(last + 2 * MiB - 8 - FOUR_GiB);
	bool check_alias = last + 2 * MiB - FOUR_GiB <= GiB; /* identity map covers 1 GiB */
	uint32_t l0 = 0, l1 = 0;
	if (check_alias)
		l0 = *low0, l1 = *low1;

	if (!paging_on()) {
		paging_off();
		guest_printf("multiboot: RAM above 4 GiB not touched: this host refuses to enable "
		             "paging (#GP on CR0.PG, /dev/kvm without VT-x/AMD-V)\n");
		return;
	}
	volatile uint32_t *h0 = (volatile uint32_t *)(uintptr_t)WINDOW;
	volatile uint32_t *h1 = (volatile uint32_t *)(uintptr_t)(WINDOW + 4 * MiB - 8);
	*h0 = 0x4b45454cu; /* "KEEL" */
	*h1 = 0x48494748u; /* "HIGH" */
	uint32_t g0 = *h0, g1 = *h1;
	paging_off();

	if (g0 != 0x4b45454cu)
		guest_fail(
		        "RAM at 0x%llx (first page above 4 GiB) is not backed: wrote 0x4b45454c, "
		        "read 0x%08x",
		        (unsigned long long)base, g0);
	if (g1 != 0x48494748u)
		guest_fail(
		        "RAM at 0x%llx (end of RAM above 4 GiB) is not backed: wrote 0x48494748, "
		        "read 0x%08x",
		        (unsigned long long)(last + 2 * MiB - 8), g1);
	if (check_alias && (*low0 != l0 || *low1 != l1))
		guest_fail("writes above 4 GiB changed memory below 4 GiB (addresses truncated to "
		           "32 bits?)");
	guest_printf("multiboot: RAM above 4 GiB backed at 0x%llx and 0x%llx (PAE paging)\n",
	             (unsigned long long)base, (unsigned long long)(last + 2 * MiB - 8));
}

void guest_main(void)
{
	uint64_t mem = mb_arg_u64("mem");
	uint32_t isize = (uint32_t)mb_arg_u64("initrd_size");
	uint32_t ifnv = (uint32_t)mb_arg_u64("initrd_fnv");

	guest_printf("multiboot: cmdline [%s]\n", mb.cmdline);
	guest_printf("multiboot: flags 0x%x mem_lower %u KiB mem_upper %u KiB, info at 0x%x\n",
	             mb.flags, mb.mem_lower, mb.mem_upper, mb.info_addr);
	if (!mb.has_cmdline)
		guest_fail("flags bit 2 (cmdline) not set or cmdline pointer 0");
	if (mb.cmdline_len >= sizeof(mb.cmdline))
		guest_fail("cmdline is %u bytes, longer than expected", mb.cmdline_len);
	if (!(mb.flags & (1u << 0)))
		guest_fail("flags bit 0 (mem_lower/mem_upper) not set");
	if (!(mb.flags & (1u << 6)))
		guest_fail("flags bit 6 (memory map) not set");
	if (!(mb.flags & (1u << 3)))
		guest_fail("flags bit 3 (modules) not set");
	if (mb.mmap_truncated)
		guest_fail("more than %u memory map entries", MB_MAX_MMAP);

	uint64_t ram = 0, ram_high = 0, high_base = 0, high_end = 0, upper_end = 0;
	for (uint32_t i = 0; i < mb.nmmap; i++) {
		const struct mb_mmap_entry *e = &mb.mmap[i];
		guest_printf("multiboot: mmap 0x%010llx-0x%010llx type %u\n",
		             (unsigned long long)e->base, (unsigned long long)(e->base + e->len),
		             e->type);
		if (e->len == 0 || e->base + e->len < e->base)
			guest_fail("mmap entry %u (0x%llx, length 0x%llx) is empty or wraps", i,
			           (unsigned long long)e->base, (unsigned long long)e->len);
		for (uint32_t j = 0; j < i; j++) {
			const struct mb_mmap_entry *o = &mb.mmap[j];
			if (e->base < o->base + o->len && o->base < e->base + e->len)
				guest_fail("mmap entries %u and %u overlap", j, i);
		}
		if (e->type != 1)
			continue;
		ram += e->len;
		if (e->base <= MiB && e->base + e->len > MiB)
			upper_end = e->base + e->len;
		if (e->base < FOUR_GiB && e->base + e->len > 0xfec00000ull)
			guest_fail("mmap RAM 0x%llx-0x%llx overlaps the I/O APIC/LAPIC/BIOS area "
			           "below 4 GiB",
			           (unsigned long long)e->base,
			           (unsigned long long)(e->base + e->len));
		if (e->base >= FOUR_GiB) {
			ram_high += e->len;
			if (!high_base || e->base < high_base)
				high_base = e->base;
			if (e->base + e->len > high_end)
				high_end = e->base + e->len;
		}
	}
	guest_printf("multiboot: mmap RAM %llu KiB in total (%llu KiB above 4 GiB), --memory "
	             "%llu KiB\n",
	             (unsigned long long)(ram >> 10), (unsigned long long)(ram_high >> 10),
	             (unsigned long long)(mem >> 10));

	if (mb.mem_lower < 512 || mb.mem_lower > 640)
		guest_fail("mem_lower is %u KiB, expected 512-640", mb.mem_lower);
	if (!upper_end)
		guest_fail("no RAM region in the memory map covers 1 MiB");
	if ((uint64_t)mb.mem_upper * 1024 != upper_end - MiB)
		guest_fail("mem_upper is %u KiB but the memory map's RAM at 1 MiB ends at 0x%llx "
		           "(%llu KiB above 1 MiB)",
		           mb.mem_upper, (unsigned long long)upper_end,
		           (unsigned long long)((upper_end - MiB) >> 10));
	if (ram > mem || ram + SLACK < mem)
		guest_fail("the memory map has %llu KiB of RAM, --memory is %llu KiB",
		           (unsigned long long)(ram >> 10), (unsigned long long)(mem >> 10));
	if (mem > 3 * GiB + 512 * MiB && !ram_high)
		guest_fail("--memory is %llu MiB but the memory map has no RAM above 4 GiB",
		           (unsigned long long)(mem >> 20));
	if (ram_high && high_base != FOUR_GiB)
		guest_fail("RAM above the MMIO hole starts at 0x%llx, expected 4 GiB",
		           (unsigned long long)high_base);

	for (uint32_t i = 0; i < mb.nmmap; i++) {
		const struct mb_mmap_entry *e = &mb.mmap[i];
		if (e->type == 1 && e->base + e->len <= FOUR_GiB) {
			touch_low(e->base + e->len - 4, "end of a RAM range");
			if (e->base >= MiB && !mb_region_in_use((uint32_t)e->base, 4))
				touch_low(e->base, "start of a RAM range");
		}
	}
	if (ram_high)
		touch_high(high_base, high_end);

	if (mb.nmods < 1)
		guest_fail("mods_count is 0, expected the --initrd module");
	const struct mb_module *m = &mb.mods[0];
	uint32_t len = m->end - m->start;
	guest_printf("multiboot: module 0 at 0x%08x-0x%08x, %u bytes, string '%s'\n", m->start,
	             m->end, len, m->string);
	if (m->end < m->start || len != isize)
		guest_fail("module 0 is 0x%08x-0x%08x (%d bytes), expected %u bytes", m->start,
		           m->end, (int)(m->end - m->start), isize);
	if (m->start & 0xfff)
		guest_fail("module 0 at 0x%08x is not page-aligned (header flag bit 0 asks for it)",
		           m->start);
	if (m->start < (uint32_t)(uintptr_t)__kernel_end &&
	    (uint32_t)(uintptr_t)__kernel_start < m->end)
		guest_fail("module 0 overlaps the kernel image 0x%08x-0x%08x",
		           (uint32_t)(uintptr_t)__kernel_start, (uint32_t)(uintptr_t)__kernel_end);
	uint32_t h = fnv1a((const uint8_t *)(uintptr_t)m->start, len);
	if (h != ifnv)
		guest_fail("module 0 FNV-1a is 0x%08x, expected 0x%08x (wrong bytes)", h, ifnv);
	guest_printf("multiboot: module 0 FNV-1a 0x%08x, checksum ok\n", h);
}
