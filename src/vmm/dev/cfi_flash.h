/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A CFI flash chip with the Intel/Sharp command set, one byte wide, as QEMU's
 * "cfi.pflash01" and as OVMF's QemuFlashFvbServicesRuntimeDxe drive it (docs/devices.md):
 * the guest writes a command byte anywhere in the chip, then reads or writes data.
 *   0xFF, 0x00  read array (reads give the contents)
 *   0x10, 0x40  program: the next write stores its bytes; then reads give the status
 *   0x20        block erase: the next write must be 0xD0 (confirm) in the same block, which
 *               fills the block with 0xFF; anything else is a sequence error (status 0x30)
 *   0x50        clear status, back to read array
 *   0x70        read status (0x80: ready, plus the error bits)
 *   0x90        read identifier (manufacturer at offset 0, device at 1)
 *   0x98        CFI query (the "QRY" table: size, one erase region of equal blocks)
 * Unknown commands leave the chip in read-array mode. A read-only chip (OVMF's code)
 * accepts the commands but changes nothing and reports a block-lock error. Pure state: no
 * locking, no I/O (x86/pflash.c is the device).
 */
#ifndef KEEL_VMM_DEV_CFI_FLASH_H
#define KEEL_VMM_DEV_CFI_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFI_CMD_READ_ARRAY    0xff
#define CFI_CMD_PROGRAM	      0x10
#define CFI_CMD_PROGRAM_ALT   0x40
#define CFI_CMD_ERASE	      0x20
#define CFI_CMD_ERASE_CONFIRM 0xd0
#define CFI_CMD_CLEAR_STATUS  0x50
#define CFI_CMD_READ_STATUS   0x70
#define CFI_CMD_READ_ID	      0x90
#define CFI_CMD_QUERY	      0x98

#define CFI_STATUS_READY      0x80
#define CFI_STATUS_ERASE_ERR  0x20
#define CFI_STATUS_PROG_ERR   0x10
#define CFI_STATUS_LOCKED     0x02
#define CFI_MANUFACTURER      0x89 /* Intel */
#define CFI_DEVICE	      0x18

enum cfi_mode {
	CFI_READ_ARRAY,
	CFI_READ_STATUS,
	CFI_READ_ID,
	CFI_QUERY,
	CFI_PROGRAM, /* the next write is data */
	CFI_ERASE,   /* the next write must confirm */
};

struct cfi_flash {
	uint8_t *data; /* size bytes, owned by the caller */
	size_t size;   /* a multiple of block */
	size_t block;  /* erase block size, a power of two */
	bool readonly;
	enum cfi_mode mode;
	uint8_t status;
	size_t erase_block; /* the block an erase in progress names */
	bool dirty;	    /* data changed since cfi_flash_clean */
};

/* A chip over data (size bytes, blocks of block bytes), in read-array mode. */
void cfi_flash_init(struct cfi_flash *f, uint8_t *data, size_t size, size_t block, bool readonly);
/* Power-on: read-array mode, status clear (the contents stay). */
void cfi_flash_reset(struct cfi_flash *f);
/* A guest access of size 1, 2, 4 or 8 bytes at off (callers keep [off, off + size) inside
 * the chip). */
uint64_t cfi_flash_read(const struct cfi_flash *f, uint64_t off, unsigned size);
void cfi_flash_write(struct cfi_flash *f, uint64_t off, unsigned size, uint64_t value);
/* Is the chip in read-array mode (so its contents may be mapped for direct reads)? */
bool cfi_flash_array_mode(const struct cfi_flash *f);
/* Are the registers (mode, status, erase block) a state this chip can be in? */
bool cfi_flash_state_valid(const struct cfi_flash *f);

#endif
