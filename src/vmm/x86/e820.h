/* SPDX-License-Identifier: Apache-2.0 */
/* The BIOS-style memory map (e820) that Linux and multiboot kernels are given. */
#ifndef KEEL_VMM_X86_E820_H
#define KEEL_VMM_X86_E820_H

#include <stdint.h>

#include "vmm/mem.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_MAX      8

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Fill map (room for E820_MAX) from the guest's RAM regions; returns the entry count. */
unsigned e820_build(const struct guest_mem *mem, struct e820_entry map[E820_MAX]);
/* The map firmware is given (fw_cfg "etc/e820", as QEMU's): every RAM region whole, from 0,
 * and KVM's private pages reserved; the firmware reserves its own areas below 1 MiB. */
unsigned e820_build_firmware(const struct guest_mem *mem, struct e820_entry map[E820_MAX]);

#endif
