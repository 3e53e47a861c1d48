/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/dev/cfi_flash.h"

#include <string.h>

/* The CFI query table's size in bytes (offsets 0x10 to 0x3c, then zeros). */
#define CFI_QUERY_SIZE 0x40

void cfi_flash_init(struct cfi_flash *f, uint8_t *data, size_t size, size_t block, bool readonly)
{
	*f = (struct cfi_flash){.data = data, .size = size, .block = block, .readonly = readonly};
	cfi_flash_reset(f);
}

void cfi_flash_reset(struct cfi_flash *f)
{
	f->mode = CFI_READ_ARRAY;
	f->status = 0;
	f->erase_block = 0;
}

bool cfi_flash_array_mode(const struct cfi_flash *f)
{
	return f->mode == CFI_READ_ARRAY;
}

bool cfi_flash_state_valid(const struct cfi_flash *f)
{
	return f->mode <= CFI_ERASE && f->erase_block < f->size / f->block &&
	       !(f->status & ~(CFI_STATUS_READY | CFI_STATUS_ERASE_ERR | CFI_STATUS_PROG_ERR |
			       CFI_STATUS_LOCKED));
}

static unsigned log2_of(size_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* The query table byte at off: "QRY", the Intel command set, timings, the chip's size and
 * its one erase region (as QEMU's pflash_cfi01 reports for a byte-wide chip). */
static uint8_t query_byte(const struct cfi_flash *f, uint64_t off)
{
	size_t blocks = f->size / f->block;

	switch (off) {
	case 0x10:
		return 'Q';
	case 0x11:
		return 'R';
	case 0x12:
		return 'Y';
	case 0x13:
		return 0x01; /* primary command set: Intel/Sharp extended */
	case 0x15:
		return 0x31; /* primary extended table at 0x31 */
	case 0x1b:
		return 0x45; /* Vcc min 4.5 V */
	case 0x1c:
		return 0x55; /* Vcc max 5.5 V */
	case 0x1f:
		return 0x07; /* typical byte program 2^7 us */
	case 0x21:
		return 0x0a; /* typical block erase 2^10 ms */
	case 0x23:
		return 0x04; /* maximum program 2^4 times typical */
	case 0x25:
		return 0x04; /* maximum erase 2^4 times typical */
	case 0x27:
		return (uint8_t)log2_of(f->size); /* device size 2^n bytes (rounded down) */
	case 0x28:
		return 0x02; /* interface: x8 and x16 asynchronous */
	case 0x2c:
		return 0x01; /* one erase block region */
	case 0x2d:
		return (uint8_t)(blocks - 1);
	case 0x2e:
		return (uint8_t)((blocks - 1) >> 8);
	case 0x2f:
		return (uint8_t)(f->block >> 8);
	case 0x30:
		return (uint8_t)(f->block >> 16);
	case 0x31:
		return 'P';
	case 0x32:
		return 'R';
	case 0x33:
		return 'I';
	case 0x34:
		return '1'; /* extended table version 1.0 */
	case 0x35:
		return '0';
	default:
		return 0;
	}
}

static uint8_t read_byte(const struct cfi_flash *f, uint64_t off)
{
	switch (f->mode) {
	case CFI_READ_ARRAY:
		return f->data[off];
	case CFI_READ_ID:
		return (off & 0xff) == 0 ? CFI_MANUFACTURER : (off & 0xff) == 1 ? CFI_DEVICE : 0;
	case CFI_QUERY:
		return off & 0xff ? query_byte(f, off & 0xff) : 0;
	default: /* status, and after a program or erase command */
		return f->status;
	}
}

uint64_t cfi_flash_read(const struct cfi_flash *f, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size && off + i < f->size; i++)
		v |= (uint64_t)read_byte(f, off + i) << (8 * i);
	return v;
}

static void program(struct cfi_flash *f, uint64_t off, unsigned size, uint64_t value)
{
	f->status |= CFI_STATUS_READY;
	if (f->readonly) {
		f->status |= CFI_STATUS_PROG_ERR | CFI_STATUS_LOCKED;
		return;
	}
	for (unsigned i = 0; i < size && off + i < f->size; i++) {
		uint8_t b = (uint8_t)(value >> (8 * i));

		if (f->data[off + i] != b) {
			f->data[off + i] = b;
			f->dirty = true;
		}
	}
}

static void erase(struct cfi_flash *f, uint64_t off, uint8_t cmd)
{
	size_t start;

	f->status |= CFI_STATUS_READY;
	if (cmd != CFI_CMD_ERASE_CONFIRM || off / f->block != f->erase_block) {
		f->status |= CFI_STATUS_ERASE_ERR | CFI_STATUS_PROG_ERR; /* sequence error */
		return;
	}
	if (f->readonly) {
		f->status |= CFI_STATUS_ERASE_ERR | CFI_STATUS_LOCKED;
		return;
	}
	start = f->erase_block * f->block;
	for (size_t i = 0; i < f->block; i++) {
		if (f->data[start + i] != 0xff) {
			f->data[start + i] = 0xff;
			f->dirty = true;
		}
	}
}

void cfi_flash_write(struct cfi_flash *f, uint64_t off, unsigned size, uint64_t value)
{
	uint8_t cmd = (uint8_t)value; /* a command is the low byte of any write */

	if (off >= f->size)
		return;
	switch (f->mode) {
	case CFI_PROGRAM:
		program(f, off, size, value);
		f->mode = CFI_READ_STATUS;
		return;
	case CFI_ERASE:
		erase(f, off, cmd);
		f->mode = CFI_READ_STATUS;
		return;
	default:
		break;
	}
	switch (cmd) {
	case CFI_CMD_PROGRAM:
	case CFI_CMD_PROGRAM_ALT:
		f->mode = CFI_PROGRAM;
		break;
	case CFI_CMD_ERASE:
		f->erase_block = off / f->block;
		f->mode = CFI_ERASE;
		break;
	case CFI_CMD_CLEAR_STATUS:
		f->status = 0;
		f->mode = CFI_READ_ARRAY;
		break;
	case CFI_CMD_READ_STATUS:
		f->mode = CFI_READ_STATUS;
		break;
	case CFI_CMD_READ_ID:
		f->mode = CFI_READ_ID;
		break;
	case CFI_CMD_QUERY:
		f->mode = CFI_QUERY;
		break;
	default: /* read array (0xff, 0x00) and every command this chip does not have */
		f->mode = CFI_READ_ARRAY;
		break;
	}
}
