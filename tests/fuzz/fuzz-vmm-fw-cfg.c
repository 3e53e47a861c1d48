/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: fw_cfg (vmm/x86/fw_cfg.c) driven through its ports as a guest
 * would, with DMA descriptors the input writes into guest RAM (any control word, length and
 * buffer address: in low RAM, in high RAM, straddling a region's end, or anywhere), the
 * descriptor address written in halves in any order, the selector and data port at any
 * width, resets, and the device's saved state saved and restored at any point. After each
 * transfer whose descriptor lies in RAM, its control word holds 0 or the error bit and
 * nothing else; AddressSanitizer sees any access outside guest RAM (two heap blocks).
 * Input: records of 16 bytes: an operation, a width, a 16-bit offset, and 12 bytes of
 * values.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fake_machine.h"
#include "lib/le.h"
#include "vmm/device.h"
#include "vmm/mem.h"
#include "vmm/x86/fw_cfg.h"
#include "vmm/x86/layout.h"

/* The model's class (listed in src/vmm/device_table.c): its state sections. */
extern const struct device_class fw_cfg_class;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HIGH_BASE (4ull << 30)

/* A write the input made to the DMA address's high half that no transfer consumed yet: the
 * next transfer's descriptor is then not where run_dma put it. */
static bool stale_high;

static struct machine *setup(void)
{
	static struct machine *m;

	if (!m) {
		m = fake_machine();
		void *obj = NULL;

		FAKE_CHECK(fw_cfg_create(m, &obj) == 0, "fw_cfg set-up");
		FAKE_CHECK(device_state_register(m, &fw_cfg_class, 0, obj) == 0,
			   "fw_cfg state section");
	}
	return m;
}

/* A guest address from a selector and a 32-bit value: in low RAM, in high RAM, near a
 * region's end, or as given (probably not RAM). */
static uint64_t gpa_of(uint8_t sel, uint32_t v)
{
	switch (sel & 3) {
	case 0:
		return v % FAKE_RAM_LOW;
	case 1:
		return HIGH_BASE + v % FAKE_RAM_HIGH;
	case 2:
		return (sel & 4 ? HIGH_BASE + FAKE_RAM_HIGH : FAKE_RAM_LOW) - (v & 0xff);
	default:
		return (uint64_t)v << (sel >> 3 & 0x1f);
	}
}

static void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Write a descriptor at gpa (if it is RAM), hand it over, and check the status. */
static void run_dma(struct machine *m, uint64_t gpa, uint32_t control, uint32_t len, uint64_t buf,
		    bool high_first)
{
	uint8_t d[16], *p = mem_ptr(m->mem, gpa, 16);

	be32_put(d, control);
	be32_put(d + 4, len);
	be32_put(d + 8, (uint32_t)(buf >> 32));
	be32_put(d + 12, (uint32_t)buf);
	if (p)
		memcpy(p, d, 16);
	if (high_first || gpa >> 32) {
		fake_pio_write(PORT_FW_CFG + FW_CFG_PORT_DMA_HIGH, 4,
			       __builtin_bswap32((uint32_t)(gpa >> 32)));
		stale_high = false;
	}
	fake_pio_write(PORT_FW_CFG + FW_CFG_PORT_DMA_LOW, 4, __builtin_bswap32((uint32_t)gpa));
	p = mem_ptr(m->mem, gpa, 16);
	if (stale_high)
		p = NULL; /* the device read a descriptor elsewhere */
	stale_high = false;
	if (p && !(buf <= gpa + 16 && buf + len > gpa && len)) {
		/* (A buffer over the descriptor itself may overwrite the status: allowed.) */
		uint32_t st =
			(uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];

		FAKE_CHECK(st == 0 || st == FW_CFG_DMA_ERROR, "DMA status 0x%x", st);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct machine *m = setup();

	fake_machine_reset();
	stale_high = false;
	for (; size >= 16; data += 16, size -= 16) {
		unsigned width = 1u << (data[1] & 3);
		uint16_t off = (uint16_t)(data[2] | data[3] << 8);
		uint32_t a = le32_load(data + 4), b = le32_load(data + 8), c = le32_load(data + 12);

		if (width == 8)
			width = 4;
		switch (data[0] % 8) {
		case 0: /* select */
			fake_pio_write(PORT_FW_CFG + FW_CFG_PORT_SEL, 2, a & 0xffff);
			break;
		case 1: /* read data, or any port of the device */
			fake_pio_read((uint16_t)(PORT_FW_CFG + off % FW_CFG_PORT_SPAN), width);
			break;
		case 2: /* a write to any port of the device */
			fake_pio_write((uint16_t)(PORT_FW_CFG + off % FW_CFG_PORT_SPAN), width, a);
			if (off % FW_CFG_PORT_SPAN == FW_CFG_PORT_DMA_HIGH && width == 4)
				stale_high = a != 0;
			if (off % FW_CFG_PORT_SPAN == FW_CFG_PORT_DMA_LOW && width == 4)
				stale_high = false;
			break;
		case 3: /* a DMA transfer: descriptor and buffer placed by the input */
		case 4:
			run_dma(m, gpa_of(data[1] >> 2, off * 16u), a,
				b & (data[1] & 0x80 ? ~0u : 0xffff),
				gpa_of((uint8_t)(c >> 24), c & 0xffffff), data[0] & 0x40);
			break;
		case 5: /* select a file by DMA and read it whole into low RAM */
			run_dma(m, 0,
				(FW_CFG_FILE_FIRST + (a & 15)) << 16 | FW_CFG_DMA_SELECT |
					FW_CFG_DMA_READ,
				b % (FAKE_RAM_LOW - 64), 64, false);
			break;
		case 6:
			fake_machine_save_restore();
			break;
		default:
			fake_machine_reset();
			stale_high = false;
			break;
		}
	}
	return 0;
}
