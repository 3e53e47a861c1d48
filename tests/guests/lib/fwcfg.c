/* Tiny guests: fw_cfg, QEMU's firmware configuration interface (legacy I/O ports). */
#include "guest.h"

void fwcfg_select(uint16_t key)
{
	outw(FW_CFG_PORT_SEL, key);
}

void fwcfg_read(void *buf, uint32_t len)
{
	uint8_t *p = buf;
	for (uint32_t i = 0; i < len; i++)
		p[i] = inb(FW_CFG_PORT_DATA);
}

bool fwcfg_present(void)
{
	char sig[4];
	fwcfg_select(FW_CFG_SIGNATURE);
	fwcfg_read(sig, sizeof(sig));
	return memcmp(sig, "QEMU", 4) == 0;
}

uint64_t fwcfg_read_u64(uint16_t key)
{
	uint8_t b[8];
	uint64_t v = 0;
	fwcfg_select(key);
	fwcfg_read(b, sizeof(b));
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

uint16_t fwcfg_read_u16(uint16_t key)
{
	uint8_t b[2];
	fwcfg_select(key);
	fwcfg_read(b, sizeof(b));
	return (uint16_t)(b[0] | (b[1] << 8));
}
