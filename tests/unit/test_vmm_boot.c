/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel loading: the Linux zero page (setup header, e820, command line, initrd, RSDP),
 * multiboot information (memory, map, command line, module), and the boot CPU state.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/mem.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)v);
	wr16(p + 2, (uint16_t)(v >> 16));
}

/* A minimal but well-formed 64-bit bzImage: 4 setup sectors, then payload bytes. */
#define FAKE_SETUP (5 * 512)
#define FAKE_PM	   8192

static uint8_t *fake_bzimage(size_t *len)
{
	uint8_t *k = calloc(1, FAKE_SETUP + FAKE_PM);
	size_t i;

	k[0x1f1] = 4;		 /* setup_sects */
	wr16(k + 0x1fe, 0xaa55); /* boot_flag */
	k[0x200] = 0xeb;	 /* jump */
	k[0x201] = 0x66;	 /* header ends at 0x268 */
	wr32(k + 0x202, 0x53726448);
	wr16(k + 0x206, 0x020f);     /* protocol 2.15 */
	k[0x211] = 0x01;	     /* LOADED_HIGH */
	wr32(k + 0x22c, 0x7fffffff); /* initrd_addr_max */
	wr32(k + 0x230, 0x200000);   /* kernel_alignment */
	wr16(k + 0x236, 0x0001);     /* XLF_KERNEL_64 */
	wr32(k + 0x238, 2047);	     /* cmdline_size */
	wr32(k + 0x258, 0x1000000);  /* pref_address 16 MiB */
	wr32(k + 0x25c, 0);
	wr32(k + 0x260, 0x800000); /* init_size 8 MiB */
	for (i = 0; i < FAKE_PM; i++)
		k[FAKE_SETUP + i] = (uint8_t)(i * 7);
	*len = FAKE_SETUP + FAKE_PM;
	return k;
}

static void test_bzimage(void **state)
{
	struct guest_mem mem;
	struct boot_entry e;
	struct boot_input in = {.cmdline = "console=ttyS0 quiet", .rsdp = 0xe0000};
	uint8_t initrd[5000], *bp;
	char err[256];
	size_t klen;
	uint8_t *k = fake_bzimage(&klen);
	uint32_t rd_addr;
	unsigned i;

	memset(initrd, 0xab, sizeof(initrd));
	in.kernel = k;
	in.kernel_size = klen;
	in.initrd = initrd;
	in.initrd_size = sizeof(initrd);
	assert_int_equal(mem_init(&mem, 64 << 20, false), 0);
	assert_int_equal(bzimage_load(&mem, &in, &e, err, sizeof(err)), 0);
	assert_int_equal(e.mode, BOOT_LONG64);
	assert_int_equal(e.rip, 0x100200);
	assert_int_equal(e.rsi, LAYOUT_BOOT_PARAMS);

	bp = mem_ptr(&mem, LAYOUT_BOOT_PARAMS, 4096);
	assert_non_null(bp);
	assert_int_equal(rd32(bp + 0x202), 0x53726448); /* the kernel's header was copied */
	assert_int_equal(bp[0x210], 0xff);		/* type_of_loader */
	assert_int_equal(rd32(bp + 0x228), LAYOUT_CMDLINE);
	assert_string_equal((char *)mem_ptr(&mem, LAYOUT_CMDLINE, 1), "console=ttyS0 quiet");
	assert_int_equal(rd64(bp + 0x070), 0xe0000); /* acpi_rsdp_addr */
	/* The payload sits at 1 MiB, byte for byte. */
	assert_memory_equal(mem_ptr(&mem, LAYOUT_KERNEL, FAKE_PM), k + FAKE_SETUP, FAKE_PM);
	/* initrd: page aligned, at the top of RAM, above where the kernel unpacks. */
	rd_addr = rd32(bp + 0x218);
	assert_int_equal(rd32(bp + 0x21c), sizeof(initrd));
	assert_int_equal(rd_addr & 0xfff, 0);
	assert_true(rd_addr + sizeof(initrd) <= (64u << 20));
	assert_true(rd_addr >= 0x1000000 + 0x800000);
	assert_memory_equal(mem_ptr(&mem, rd_addr, sizeof(initrd)), initrd, sizeof(initrd));
	/* e820: conventional memory, EBDA and BIOS reserved, RAM from 1 MiB to the end. */
	assert_int_equal(bp[0x1e8], 4);
	for (i = 0; i < 4; i++) {
		const uint8_t *ent = bp + 0x2d0 + i * 20;
		static const uint64_t want[4][3] = {
			{0, 0x9fc00, 1},
			{0x9fc00, 0x400, 2},
			{0xe0000, 0x20000, 2},
			{0x100000, (64 << 20) - 0x100000, 1},
		};

		assert_int_equal(rd64(ent), want[i][0]);
		assert_int_equal(rd64(ent + 8), want[i][1]);
		assert_int_equal(rd32(ent + 16), want[i][2]);
	}
	mem_free(&mem);
	free(k);
}

static void test_bzimage_errors(void **state)
{
	struct guest_mem mem;
	struct boot_entry e;
	struct boot_input in = {.cmdline = ""};
	char err[256], longline[3000];
	size_t klen;
	uint8_t *k = fake_bzimage(&klen);
	static uint8_t big_initrd[41 << 20];

	in.kernel = k;
	in.kernel_size = klen;
	assert_int_equal(mem_init(&mem, 64 << 20, false), 0);

	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = 0;
	in.cmdline = longline;
	assert_int_equal(bzimage_load(&mem, &in, &e, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "at most 2047"));
	in.cmdline = "";

	in.initrd = big_initrd;
	in.initrd_size = sizeof(big_initrd);
	assert_int_equal(bzimage_load(&mem, &in, &e, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "memory too small"));
	in.initrd_size = 0;

	wr16(k + 0x236, 0); /* no 64-bit entry */
	assert_int_equal(bzimage_load(&mem, &in, &e, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "64-bit"));

	wr32(k + 0x202, 0); /* not a bzImage at all: leave it to other loaders */
	assert_int_equal(bzimage_load(&mem, &in, &e, err, sizeof(err)), -ENOEXEC);
	mem_free(&mem);

	/* 16 MiB is less than the 24 MiB this kernel needs to unpack. */
	wr32(k + 0x202, 0x53726448);
	wr16(k + 0x236, 1);
	assert_int_equal(mem_init(&mem, 16 << 20, false), 0);
	assert_int_equal(bzimage_load(&mem, &in, &e, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "needs 24 MiB"));
	mem_free(&mem);
	free(k);
}

static void test_e820_high_memory(void **state)
{
	struct guest_mem mem;
	struct e820_entry map[E820_MAX];
	unsigned n;

	assert_int_equal(mem_init(&mem, 5ull << 30, false), 0);
	assert_int_equal(mem.nregions, 2);
	assert_int_equal(mem_low_end(&mem), 3ull << 30);
	n = e820_build(&mem, map);
	assert_int_equal(n, 5);
	assert_int_equal(map[3].addr, 0x100000);
	assert_int_equal(map[3].size, (3ull << 30) - 0x100000);
	assert_int_equal(map[4].addr, 4ull << 30);
	assert_int_equal(map[4].size, 2ull << 30);
	assert_int_equal(map[4].type, E820_RAM);
	mem_free(&mem);
}

/* An ELF32 multiboot kernel: header in the first page, one PT_LOAD at 1 MiB + bss. */
static uint8_t *fake_multiboot_elf(size_t *len, uint32_t mbflags, uint32_t paddr)
{
	size_t size = 0x2000;
	uint8_t *e = calloc(1, size), *ph = e + 52, *mb = e + 0x1000;

	memcpy(e,
	       "\x7f"
	       "ELF",
	       4);
	e[4] = 1; /* 32-bit */
	e[5] = 1; /* little endian */
	e[6] = 1;
	wr16(e + 16, 2);	    /* ET_EXEC */
	wr16(e + 18, 3);	    /* EM_386 */
	wr32(e + 24, paddr + 0x10); /* entry */
	wr32(e + 28, 52);	    /* phoff */
	wr16(e + 42, 32);	    /* phentsize */
	wr16(e + 44, 1);	    /* phnum */
	wr32(ph, 1);		    /* PT_LOAD */
	wr32(ph + 4, 0x1000);
	wr32(ph + 12, paddr);
	wr32(ph + 16, 0x1000); /* filesz */
	wr32(ph + 20, 0x3000); /* memsz: 8 KiB of bss */
	wr32(mb, 0x1badb002);
	wr32(mb + 4, mbflags);
	wr32(mb + 8, (uint32_t) - (0x1badb002u + mbflags));
	memset(mb + 12, 0x5a, 0x1000 - 12);
	*len = size;
	return e;
}

static void test_multiboot(void **state)
{
	struct guest_mem mem;
	struct boot_entry e;
	uint8_t module[3000];
	struct boot_input in = {.cmdline = "cpus=2 hello",
				.initrd = module,
				.initrd_size = sizeof(module),
				.initrd_path = "mod.bin"};
	char err[256];
	size_t len;
	uint8_t *k = fake_multiboot_elf(&len, 0x3, 0x100000), *mbi, *mods, *bss;
	unsigned i;

	memset(module, 0x77, sizeof(module));
	in.kernel = k;
	in.kernel_size = len;
	assert_int_equal(mem_init(&mem, 32 << 20, false), 0);
	memset(mem_ptr(&mem, 0x101000, 0x2000), 0xee, 0x2000); /* bss must come back zeroed */
	assert_int_equal(multiboot_load(&mem, &in, &e, err, sizeof(err)), 0);
	assert_int_equal(e.mode, BOOT_PROT32);
	assert_int_equal(e.eax, 0x2badb002);
	assert_int_equal(e.rip, 0x100010);
	bss = mem_ptr(&mem, 0x101000, 0x2000);
	for (i = 0; i < 0x2000; i++)
		assert_int_equal(bss[i], 0);

	mbi = mem_ptr(&mem, e.ebx, 88);
	assert_int_equal(rd32(mbi) & 0x24d, 0x24d); /* mem, cmdline, mods, mmap, loader name */
	assert_int_equal(rd32(mbi + 4), 639);
	assert_int_equal(rd32(mbi + 8), (32 << 10) - 1024);
	assert_string_equal((char *)mem_ptr(&mem, rd32(mbi + 16), 1), "cpus=2 hello");
	assert_string_equal((char *)mem_ptr(&mem, rd32(mbi + 64), 1), "keel");
	assert_int_equal(rd32(mbi + 20), 1);
	mods = mem_ptr(&mem, rd32(mbi + 24), 16);
	assert_int_equal(rd32(mods) & 0xfff, 0);
	assert_true(rd32(mods) >= 0x103000); /* after the kernel's bss */
	assert_int_equal(rd32(mods + 4) - rd32(mods), sizeof(module));
	assert_memory_equal(mem_ptr(&mem, rd32(mods), sizeof(module)), module, sizeof(module));
	assert_string_equal((char *)mem_ptr(&mem, rd32(mods + 8), 1), "mod.bin");
	/* memory map: 4 entries of 24 bytes, the last is RAM from 1 MiB to 32 MiB */
	assert_int_equal(rd32(mbi + 44), 4 * 24);
	assert_int_equal(rd64(mem_ptr(&mem, rd32(mbi + 48) + 3 * 24 + 4, 8)), 0x100000);
	assert_int_equal(rd64(mem_ptr(&mem, rd32(mbi + 48) + 3 * 24 + 12, 8)),
			 (32 << 20) - 0x100000);
	mem_free(&mem);
	free(k);
}

static void test_multiboot_errors(void **state)
{
	struct guest_mem mem;
	struct boot_entry e;
	struct boot_input in = {.cmdline = ""};
	char err[256];
	size_t len;
	uint8_t *k;

	assert_int_equal(mem_init(&mem, 8 << 20, false), 0);
	k = fake_multiboot_elf(&len, 0x4, 0x100000); /* wants a video mode */
	in.kernel = k;
	in.kernel_size = len;
	assert_int_equal(multiboot_load(&mem, &in, &e, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "video"));
	free(k);

	k = fake_multiboot_elf(&len, 0, 0x8000); /* would overwrite the boot information */
	in.kernel = k;
	assert_int_equal(multiboot_load(&mem, &in, &e, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "below 1 MiB"));
	free(k);

	k = fake_multiboot_elf(&len, 0, 0x7ff000); /* runs past the end of RAM */
	in.kernel = k;
	assert_int_equal(multiboot_load(&mem, &in, &e, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "not in guest RAM"));
	wr32(k + 52 + 4, 0xfffff000); /* p_offset beyond the file */
	wr32(k + 52 + 12, 0x100000);
	assert_int_equal(multiboot_load(&mem, &in, &e, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "outside the file"));
	free(k);

	/* An a.out kludge header cut off after its first 12 bytes (found by fuzz-vmm-loader:
	 * the address fields were read before the length check). */
	{
		uint8_t cut[16] = {0};

		wr32(cut + 4, 0x1badb002);
		wr32(cut + 8, 0x00010000);
		wr32(cut + 12, (uint32_t) - (0x1badb002u + 0x00010000u));
		in.kernel = cut + 4;
		in.kernel_size = 12;
		assert_int_equal(multiboot_load(&mem, &in, &e, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "runs past the file"));
	}

	in.kernel = (const uint8_t *)"no header here";
	in.kernel_size = 14;
	assert_int_equal(multiboot_load(&mem, &in, &e, err, sizeof(err)), -ENOEXEC);
	mem_free(&mem);
}

static void test_boot_cpu_state(void **state)
{
	struct guest_mem mem;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct boot_entry lm = {.mode = BOOT_LONG64, .rip = 0x100200, .rsi = 0x7000};
	struct boot_entry pm = {
		.mode = BOOT_PROT32, .rip = 0x100010, .eax = 0x2badb002, .ebx = 0x8000};
	uint64_t *pd;

	assert_int_equal(mem_init(&mem, 16 << 20, false), 0);
	memset(&sregs, 0, sizeof(sregs));
	assert_int_equal(boot_cpu_state(&mem, &lm, &regs, &sregs), 0);
	assert_int_equal(regs.rip, 0x100200);
	assert_int_equal(regs.rsi, 0x7000);
	assert_int_equal(regs.rflags, 2);
	assert_int_equal(sregs.cs.selector, 0x10); /* __BOOT_CS */
	assert_int_equal(sregs.ds.selector, 0x18); /* __BOOT_DS */
	assert_int_equal(sregs.cs.l, 1);
	assert_int_equal(sregs.efer & 0x500, 0x500);
	assert_true(sregs.cr0 & 0x80000001u);
	assert_int_equal(sregs.cr3, LAYOUT_PML4);
	pd = mem_ptr(&mem, LAYOUT_PD, 4 * 4096);
	assert_int_equal(pd[0], 0x83);
	assert_int_equal(pd[1], 0x200083);
	assert_int_equal(pd[2047], (2047ull << 21) | 0x83); /* the last 2 MiB below 4 GiB */

	memset(&sregs, 0, sizeof(sregs));
	assert_int_equal(boot_cpu_state(&mem, &pm, &regs, &sregs), 0);
	assert_int_equal(regs.rax, 0x2badb002);
	assert_int_equal(regs.rbx, 0x8000);
	assert_int_equal(sregs.cs.db, 1);
	assert_int_equal(sregs.cs.l, 0);
	assert_int_equal(sregs.cr0 & 0x80000001u, 1); /* protected, not paged */
	assert_int_equal(sregs.efer, 0);
	mem_free(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage),		 cmocka_unit_test(test_bzimage_errors),
		cmocka_unit_test(test_e820_high_memory), cmocka_unit_test(test_multiboot),
		cmocka_unit_test(test_multiboot_errors), cmocka_unit_test(test_boot_cpu_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
