/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Linux bzImage loader, per the x86 boot protocol (Documentation/arch/x86/boot.rst):
 * the protected-mode kernel at 1 MiB, the zero page (boot_params) with the setup header,
 * e820 map, command line, initrd and RSDP, entered at the 64-bit entry point.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/le.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

/* Offsets in boot_params (the zero page) and in the setup header within it. */
#define BP_ACPI_RSDP_ADDR  0x070
#define BP_EXT_RAMDISK_IMG 0x0c0
#define BP_EXT_RAMDISK_SZ  0x0c4
#define BP_EXT_CMD_LINE	   0x0c8
#define BP_E820_ENTRIES	   0x1e8
#define BP_SETUP_SECTS	   0x1f1
#define BP_VID_MODE	   0x1fa
#define BP_BOOT_FLAG	   0x1fe
#define BP_JUMP		   0x200
#define BP_HEADER	   0x202
#define BP_VERSION	   0x206
#define BP_TYPE_OF_LOADER  0x210
#define BP_LOADFLAGS	   0x211
#define BP_RAMDISK_IMAGE   0x218
#define BP_RAMDISK_SIZE	   0x21c
#define BP_CMD_LINE_PTR	   0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGN	   0x230
#define BP_XLOADFLAGS	   0x236
#define BP_CMDLINE_SIZE	   0x238
#define BP_PREF_ADDRESS	   0x258
#define BP_INIT_SIZE	   0x260
#define BP_E820_TABLE	   0x2d0
#define BP_E820_MAX	   128
#define BP_SIZE		   4096

#define LOADED_HIGH	   0x01
#define XLF_KERNEL_64	   0x01
#define HDRS_MAGIC	   0x53726448u /* "HdrS" */

int bzimage_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_entry *entry,
		 char *err, size_t errlen)
{
	const uint8_t *k = in->kernel;
	uint8_t bp[BP_SIZE];
	struct e820_entry map[E820_MAX];
	uint64_t setup_size, pm_size, low_end = mem_low_end(mem), kernel_end, initrd_addr = 0;
	uint64_t pref, init_size, align, decompress_end, cmdline_len, cmdline_max;
	uint32_t initrd_max;
	uint16_t version;
	unsigned n, i, hdr_end;

	if (in->kernel_size < BP_HEADER + 4 + 0x70 || le32_load(k + BP_HEADER) != HDRS_MAGIC ||
	    le16_load(k + BP_BOOT_FLAG) != 0xaa55)
		return -ENOEXEC;
	version = le16_load(k + BP_VERSION);
	if (version < 0x020c || !(k[BP_LOADFLAGS] & LOADED_HIGH) ||
	    !(le16_load(k + BP_XLOADFLAGS) & XLF_KERNEL_64)) {
		snprintf(err, errlen,
			 "Linux kernel with boot protocol %u.%02u has no 64-bit entry point "
			 "(keel-vmm needs a 64-bit bzImage, boot protocol 2.12 or later)",
			 version >> 8, version & 0xff);
		return -ENOTSUP;
	}
	setup_size = ((uint64_t)(k[BP_SETUP_SECTS] ? k[BP_SETUP_SECTS] : 4) + 1) * 512;
	if (setup_size >= in->kernel_size) {
		snprintf(err, errlen,
			 "truncated bzImage: setup (%llu bytes) is larger than the file",
			 (unsigned long long)setup_size);
		return -EINVAL;
	}
	pm_size = in->kernel_size - setup_size;
	pref = le64_load(k + BP_PREF_ADDRESS);
	init_size = le32_load(k + BP_INIT_SIZE);
	align = le32_load(k + BP_KERNEL_ALIGN);
	if (align == 0 || (align & (align - 1)))
		align = 2 * MiB;

	/* Where the kernel decompresses itself: its load address aligned up, but not below
	 * its preferred address (arch/x86/boot/compressed/head_64.S). */
	decompress_end = (LAYOUT_KERNEL + align - 1) & ~(align - 1);
	if (decompress_end < pref)
		decompress_end = pref;
	decompress_end += init_size;
	kernel_end = LAYOUT_KERNEL + pm_size;
	if (kernel_end < decompress_end)
		kernel_end = decompress_end;
	if (kernel_end > low_end) {
		snprintf(err, errlen,
			 "memory too small: this kernel needs %llu MiB below the 3 GiB hole to "
			 "unpack, the VM has %llu MiB there",
			 (unsigned long long)((kernel_end + MiB - 1) / MiB),
			 (unsigned long long)(low_end / MiB));
		return -ENOMEM;
	}

	cmdline_max = le32_load(k + BP_CMDLINE_SIZE);
	if (cmdline_max > LAYOUT_CMDLINE_MAX - 1)
		cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	cmdline_len = strlen(in->cmdline);
	if (cmdline_len > cmdline_max) {
		snprintf(err, errlen, "command line is %llu bytes, this kernel takes at most %llu",
			 (unsigned long long)cmdline_len, (unsigned long long)cmdline_max);
		return -E2BIG;
	}

	if (in->initrd_size) {
		initrd_max = le32_load(k + BP_INITRD_ADDR_MAX);
		uint64_t top = low_end;

		if (initrd_max && (uint64_t)initrd_max + 1 < top)
			top = (uint64_t)initrd_max + 1;
		if (in->initrd_size > top || ((top - in->initrd_size) & ~0xfffull) < kernel_end) {
			snprintf(err, errlen,
				 "memory too small: kernel and initrd (%llu MiB) do not fit below "
				 "%llu MiB",
				 (unsigned long long)((kernel_end + in->initrd_size) / MiB + 1),
				 (unsigned long long)(top / MiB));
			return -ENOMEM;
		}
		initrd_addr = (top - in->initrd_size) & ~0xfffull;
	}

	/* The zero page: the kernel's own setup header, then what the loader fills in. */
	memset(bp, 0, sizeof(bp));
	hdr_end = BP_JUMP + 2 + k[BP_JUMP + 1];
	if (hdr_end > in->kernel_size || hdr_end > BP_E820_TABLE)
		hdr_end = BP_E820_TABLE; /* never reached by sane kernels; stay in bounds */
	memcpy(bp + BP_SETUP_SECTS, k + BP_SETUP_SECTS, hdr_end - BP_SETUP_SECTS);
	bp[BP_TYPE_OF_LOADER] = 0xff; /* undefined loader */
	le16_store(bp + BP_VID_MODE, 0xffff);
	le32_store(bp + BP_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	le32_store(bp + BP_EXT_CMD_LINE, 0);
	le32_store(bp + BP_RAMDISK_IMAGE, (uint32_t)initrd_addr);
	le32_store(bp + BP_RAMDISK_SIZE, (uint32_t)in->initrd_size);
	le32_store(bp + BP_EXT_RAMDISK_IMG, (uint32_t)(initrd_addr >> 32));
	le32_store(bp + BP_EXT_RAMDISK_SZ, (uint32_t)((uint64_t)in->initrd_size >> 32));
	le64_store(bp + BP_ACPI_RSDP_ADDR, in->rsdp);
	n = e820_build(mem, map);
	if (n > BP_E820_MAX)
		n = BP_E820_MAX;
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * 20;

		le64_store(e, map[i].addr);
		le64_store(e + 8, map[i].size);
		le32_store(e + 16, map[i].type);
	}

	if (mem_write(mem, LAYOUT_BOOT_PARAMS, bp, sizeof(bp)) ||
	    mem_write(mem, LAYOUT_CMDLINE, in->cmdline, cmdline_len + 1) ||
	    mem_write(mem, LAYOUT_KERNEL, k + setup_size, pm_size) ||
	    (in->initrd_size && mem_write(mem, initrd_addr, in->initrd, in->initrd_size))) {
		snprintf(err, errlen, "memory too small to load the kernel");
		return -ENOMEM;
	}
	*entry = (struct boot_entry){
		.mode = BOOT_LONG64,
		.rip = LAYOUT_KERNEL + 0x200, /* startup_64 */
		.rsi = LAYOUT_BOOT_PARAMS,
	};
	return 0;
}
