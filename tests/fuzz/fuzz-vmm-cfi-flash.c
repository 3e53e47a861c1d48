/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: any sequence of reads and writes, of any width, anywhere in
 * OVMF's variable flash (vmm/dev/cfi_flash.c), on a writable and a read-only chip, with
 * resets. After each write the chip's registers are a valid state, and its contents changed
 * only as the command set allows: the bytes of a program (the write after 0x10/0x40), or a
 * whole block filled with 0xFF (an erase confirmed in the block it named); a read-only chip
 * never changes. In read-array mode every read gives the contents, byte for byte: the
 * device (x86/pflash.c) then maps the store as read-only guest memory instead of serving
 * reads, which is right only while this holds; a write that leaves read-array mode is what
 * takes the mapping away. Input: byte 0 bit 0: read-only chip; then records of 8 bytes:
 * operation and width, a 16-bit offset, a 32-bit value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/le.h"
#include "vmm/dev/cfi_flash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SIZE  (32u << 10)
#define BLOCK 4096u

static uint8_t store[SIZE], before[SIZE];

static void check(bool cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "cfi flash: %s\n", what);
		abort();
	}
}

/* The change from before to store is one the last write could make. */
static void check_change(const struct cfi_flash *f, enum cfi_mode mode, size_t erase_block,
			 uint64_t off, unsigned width)
{
	for (size_t i = 0; i < SIZE; i++) {
		bool in_write = i >= off && i < off + width;
		bool in_erase = i / BLOCK == erase_block;

		if (store[i] == before[i])
			continue;
		check(!f->readonly, "a read-only chip changed");
		check((mode == CFI_PROGRAM && in_write) ||
			      (mode == CFI_ERASE && in_erase && store[i] == 0xff),
		      "contents changed outside a program or a confirmed erase");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfi_flash f;

	if (size < 1)
		return 0;
	for (size_t i = 0; i < SIZE; i++)
		store[i] = (uint8_t)(i ^ (i >> 8));
	cfi_flash_init(&f, store, SIZE, BLOCK, data[0] & 1);
	for (data++, size--; size >= 8; data += 8, size -= 8) {
		unsigned width = 1u << (data[0] >> 4 & 3);
		uint64_t off = le16_load(data + 2) % SIZE;
		uint32_t v = le32_load(data + 4);
		enum cfi_mode mode = f.mode;
		size_t erase_block = f.erase_block;

		if (off + width > SIZE)
			off = SIZE - width; /* the device keeps accesses inside the chip */
		switch (data[0] & 3) {
		case 0: {
			uint64_t got = cfi_flash_read(&f, off, width), want = 0;

			memcpy(&want, store + off, width); /* x86: little-endian, as the guest */
			check(!cfi_flash_array_mode(&f) || got == want,
			      "a read in read-array mode does not give the contents (the store is "
			      "mapped as memory then)");
			check(cfi_flash_array_mode(&f) == (f.mode == CFI_READ_ARRAY),
			      "read-array mode misreported");
			break;
		}
		case 1:
		case 2:
			memcpy(before, store, SIZE);
			cfi_flash_write(&f, off, width, data[1] & 1 ? v : data[1]);
			check_change(&f, mode, erase_block, off, width);
			break;
		default:
			cfi_flash_reset(&f);
			check(cfi_flash_array_mode(&f), "not in read-array mode after reset");
			break;
		}
		check(cfi_flash_state_valid(&f), "registers out of range");
	}
	return 0;
}
