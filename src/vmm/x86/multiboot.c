/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Multiboot v1 loader (the Multiboot Specification 0.6.96): ELF32 kernels or the a.out
 * kludge (header flag 16), the initrd as module 0, a memory map, the command line, and
 * the boot loader name. The kernel is entered in 32-bit protected mode, paging off,
 * EAX = 0x2BADB002, EBX = the info structure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/le.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

#define MB_HEADER_MAGIC	   0x1badb002u
#define MB_BOOT_MAGIC	   0x2badb002u
#define MB_SEARCH	   8192

#define MB_FLAG_PAGE_ALIGN 0x00000001u
#define MB_FLAG_MEMINFO	   0x00000002u
#define MB_FLAG_VIDEO	   0x00000004u
#define MB_FLAG_AOUT	   0x00010000u
#define MB_FLAGS_KNOWN	   (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO)

#define MBI_MEM		   (1u << 0)
#define MBI_CMDLINE	   (1u << 2)
#define MBI_MODS	   (1u << 3)
#define MBI_MMAP	   (1u << 6)
#define MBI_LOADER_NAME	   (1u << 9)

/* Offsets in the multiboot information structure. */
#define MBI_FLAGS      0
#define MBI_MEM_LOWER  4
#define MBI_MEM_UPPER  8
#define MBI_CMDLINE_P  16
#define MBI_MODS_COUNT 20
#define MBI_MODS_ADDR  24
#define MBI_MMAP_LEN   44
#define MBI_MMAP_ADDR  48
#define MBI_LOADER_P   64
#define MBI_SIZE       88

/* ELF32 */
#define EI_NIDENT 16
#define PT_LOAD	  1

/* Copy file bytes [off, off + filesz) to gpa and zero up to memsz, all checked. */
static int mb_place(const struct guest_mem *mem, const struct boot_input *in, uint64_t off,
		    uint64_t filesz, uint64_t gpa, uint64_t memsz, char *err, size_t errlen)
{
	uint8_t *dst;

	if (filesz > memsz || off > in->kernel_size || filesz > in->kernel_size - off) {
		snprintf(err, errlen, "multiboot kernel: a load segment lies outside the file");
		return -EINVAL;
	}
	if (gpa < LAYOUT_KERNEL) {
		snprintf(err, errlen,
			 "multiboot kernel: segment at 0x%llx is below 1 MiB, where keel-vmm keeps "
			 "the boot information",
			 (unsigned long long)gpa);
		return -EINVAL;
	}
	dst = mem_ptr(mem, gpa, memsz);
	if (!dst) {
		snprintf(err, errlen,
			 "multiboot kernel: segment 0x%llx-0x%llx is not in guest RAM (memory too "
			 "small?)",
			 (unsigned long long)gpa, (unsigned long long)(gpa + memsz));
		return -ENOMEM;
	}
	memcpy(dst, in->kernel + off, filesz);
	memset(dst + filesz, 0, memsz - filesz);
	return 0;
}

static int mb_load_elf(const struct guest_mem *mem, const struct boot_input *in, uint64_t *entry,
		       uint64_t *end, char *err, size_t errlen)
{
	const uint8_t *e = in->kernel;
	uint32_t phoff;
	uint16_t phentsize, phnum, i;
	int r, loaded = 0;

	if (in->kernel_size < 52 || memcmp(e,
					   "\x7f"
					   "ELF",
					   4)) {
		snprintf(err, errlen, "multiboot kernel is neither ELF nor marked a.out kludge");
		return -ENOEXEC;
	}
	if (e[4] != 1 || e[5] != 1 || le16_load(e + 18) != 3) {
		snprintf(err, errlen, "multiboot kernel must be a 32-bit little-endian i386 ELF");
		return -ENOEXEC;
	}
	*entry = le32_load(e + 24);
	phoff = le32_load(e + 28);
	phentsize = le16_load(e + 42);
	phnum = le16_load(e + 44);
	if (phentsize < 32 || phoff > in->kernel_size ||
	    (uint64_t)phnum * phentsize > in->kernel_size - phoff) {
		snprintf(err, errlen, "multiboot kernel: ELF program headers lie outside the file");
		return -EINVAL;
	}
	*end = 0;
	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = e + phoff + (uint64_t)i * phentsize;
		uint64_t paddr = le32_load(ph + 12), memsz = le32_load(ph + 20);

		if (le32_load(ph) != PT_LOAD || memsz == 0)
			continue;
		r = mb_place(mem, in, le32_load(ph + 4), le32_load(ph + 16), paddr, memsz, err,
			     errlen);
		if (r)
			return r;
		if (paddr + memsz > *end)
			*end = paddr + memsz;
		loaded++;
	}
	if (!loaded) {
		snprintf(err, errlen, "multiboot kernel: ELF has no loadable segment");
		return -EINVAL;
	}
	return 0;
}

static int mb_load_aout(const struct guest_mem *mem, const struct boot_input *in,
			const uint8_t *hdr, uint64_t hdr_off, uint64_t *entry, uint64_t *end,
			char *err, size_t errlen)
{
	uint64_t header_addr, load_addr, load_end, bss_end, off, filesz, memsz;

	/* The address fields follow the 12 bytes the header search checked: all 32 bytes
	 * must be in the file before any is read. */
	if (hdr_off + 32 > in->kernel_size) {
		snprintf(err, errlen, "multiboot kernel: a.out kludge header runs past the file");
		return -EINVAL;
	}
	header_addr = le32_load(hdr + 12);
	load_addr = le32_load(hdr + 16);
	load_end = le32_load(hdr + 20);
	bss_end = le32_load(hdr + 24);
	if (load_addr > header_addr || header_addr - load_addr > hdr_off) {
		snprintf(err, errlen, "multiboot kernel: a.out kludge addresses are inconsistent");
		return -EINVAL;
	}
	off = hdr_off - (header_addr - load_addr);
	filesz = load_end ? load_end - load_addr : in->kernel_size - off;
	if (load_end && load_end < load_addr) {
		snprintf(err, errlen, "multiboot kernel: load_end_addr is below load_addr");
		return -EINVAL;
	}
	memsz = filesz;
	if (bss_end) {
		if (bss_end < load_addr + filesz) {
			snprintf(err, errlen,
				 "multiboot kernel: bss_end_addr is below the image end");
			return -EINVAL;
		}
		memsz = bss_end - load_addr;
	}
	*entry = le32_load(hdr + 28);
	*end = load_addr + memsz;
	return mb_place(mem, in, off, filesz, load_addr, memsz, err, errlen);
}

int multiboot_load(const struct guest_mem *mem, const struct boot_input *in,
		   struct boot_entry *entry, char *err, size_t errlen)
{
	const uint8_t *hdr = NULL;
	uint8_t mbi[MBI_SIZE], mods[16], mmap[E820_MAX * 24];
	struct e820_entry map[E820_MAX];
	uint64_t off, rip, end, mod_start = 0, gpa, limit = in->kernel_size;
	uint32_t flags;
	size_t cmdlen = strlen(in->cmdline);
	unsigned n, i;
	int r;

	if (limit > MB_SEARCH)
		limit = MB_SEARCH;
	for (off = 0; off + 12 <= limit; off += 4) {
		const uint8_t *h = in->kernel + off;

		if (le32_load(h) == MB_HEADER_MAGIC &&
		    le32_load(h) + le32_load(h + 4) + le32_load(h + 8) == 0) {
			hdr = h;
			break;
		}
	}
	if (!hdr)
		return -ENOEXEC;
	flags = le32_load(hdr + 4);
	if (flags & MB_FLAG_VIDEO) {
		snprintf(err, errlen,
			 "multiboot kernel requires a video mode, which keel-vmm "
			 "does not provide (serial only)");
		return -ENOTSUP;
	}
	if (flags & 0xffff & ~MB_FLAGS_KNOWN) {
		snprintf(err, errlen,
			 "multiboot kernel requires features 0x%x that keel-vmm "
			 "does not know",
			 flags & 0xffff & ~MB_FLAGS_KNOWN);
		return -ENOTSUP;
	}
	if (flags & MB_FLAG_AOUT)
		r = mb_load_aout(mem, in, hdr, off, &rip, &end, err, errlen);
	else
		r = mb_load_elf(mem, in, &rip, &end, err, errlen);
	if (r)
		return r == -ENOEXEC ? -EINVAL : r;

	/* The command line lives where Linux's does; the info structure, module list,
	 * memory map and loader name below 1 MiB at LAYOUT_MBI. */
	if (cmdlen >= LAYOUT_CMDLINE_MAX) {
		snprintf(err, errlen, "command line is %zu bytes, at most %llu fit", cmdlen,
			 (unsigned long long)LAYOUT_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	memset(mbi, 0, sizeof(mbi));
	n = e820_build(mem, map);
	for (i = 0; i < n; i++) {
		le32_store(mmap + i * 24, 20);
		le64_store(mmap + i * 24 + 4, map[i].addr);
		le64_store(mmap + i * 24 + 12, map[i].size);
		le32_store(mmap + i * 24 + 20, map[i].type);
	}
	flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME;
	le32_store(mbi + MBI_MEM_LOWER, (uint32_t)(LAYOUT_EBDA / KiB));
	le32_store(mbi + MBI_MEM_UPPER, (uint32_t)((mem_low_end(mem) - LAYOUT_KERNEL) / KiB));
	le32_store(mbi + MBI_CMDLINE_P, (uint32_t)LAYOUT_CMDLINE);

	gpa = LAYOUT_MBI + MBI_SIZE;
	le32_store(mbi + MBI_MMAP_ADDR, (uint32_t)gpa);
	le32_store(mbi + MBI_MMAP_LEN, n * 24);
	r = mem_write(mem, gpa, mmap, n * 24);
	gpa += n * 24;
	le32_store(mbi + MBI_LOADER_P, (uint32_t)gpa);
	r = r ?: mem_write(mem, gpa, "keel", 5);
	gpa += 8;

	if (in->initrd_size) {
		const char *name = in->initrd_path ? in->initrd_path : "";
		size_t namelen = strlen(name);

		mod_start = (end + 0xfff) & ~0xfffull;
		if (mod_start + in->initrd_size > mem_low_end(mem)) {
			snprintf(err, errlen,
				 "memory too small for the kernel and module (%zu bytes)",
				 in->initrd_size);
			return -ENOMEM;
		}
		if (gpa + 16 + namelen + 1 > LAYOUT_MBI_END)
			namelen = LAYOUT_MBI_END - gpa - 16 - 1;
		le32_store(mods, (uint32_t)mod_start);
		le32_store(mods + 4, (uint32_t)(mod_start + in->initrd_size));
		le32_store(mods + 8, (uint32_t)(gpa + 16));
		le32_store(mods + 12, 0);
		flags |= MBI_MODS;
		le32_store(mbi + MBI_MODS_COUNT, 1);
		le32_store(mbi + MBI_MODS_ADDR, (uint32_t)gpa);
		r = r ?: mem_write(mem, gpa, mods, sizeof(mods));
		r = r ?: mem_write(mem, gpa + 16, name, namelen);
		r = r ?: mem_write(mem, gpa + 16 + namelen, "", 1);
		r = r ?: mem_write(mem, mod_start, in->initrd, in->initrd_size);
	}
	le32_store(mbi + MBI_FLAGS, flags);
	r = r ?: mem_write(mem, LAYOUT_MBI, mbi, sizeof(mbi));
	r = r ?: mem_write(mem, LAYOUT_CMDLINE, in->cmdline, cmdlen + 1);
	if (r) {
		snprintf(err, errlen, "memory too small for the multiboot information");
		return r;
	}
	*entry = (struct boot_entry){
		.mode = BOOT_PROT32,
		.rip = rip,
		.eax = MB_BOOT_MAGIC,
		.ebx = (uint32_t)LAYOUT_MBI,
	};
	return 0;
}
