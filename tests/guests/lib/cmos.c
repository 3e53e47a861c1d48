/* Tiny guests: CMOS (RTC and NVRAM) through the index/data ports 0x70/0x71. */
#include "guest.h"

uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg & 0x7f);
	return inb(0x71);
}

void cmos_write(uint8_t reg, uint8_t v)
{
	outb(0x70, reg & 0x7f);
	outb(0x71, v);
}
