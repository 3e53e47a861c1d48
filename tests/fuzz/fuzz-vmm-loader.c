/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel files are untrusted input: the bzImage and multiboot loaders must refuse or load
 * any file without touching memory outside the guest's, whatever its headers say.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "vmm/mem.h"
#include "vmm/x86/boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static const uint8_t initrd[4096] = {1, 2, 3};
	struct boot_input in = {
		.kernel = data,
		.kernel_size = size,
		.initrd = initrd,
		.initrd_size = size & 1 ? sizeof(initrd) : 0,
		.initrd_path = "initrd",
		.cmdline = "console=ttyS0",
		.rsdp = 0xe0000,
	};
	struct boot_entry entry;
	char err[256];
	int r;

	if (!mem.base && mem_init(&mem, 24 << 20, false))
		abort();
	r = bzimage_load(&mem, &in, &entry, err, sizeof(err));
	if (r == -ENOEXEC)
		r = multiboot_load(&mem, &in, &entry, err, sizeof(err));
	if (r == 0 && entry.mode != BOOT_LONG64 && entry.mode != BOOT_PROT32)
		abort();
	return 0;
}
