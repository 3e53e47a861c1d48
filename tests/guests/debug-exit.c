/* debug-exit: writes value=V (width=1|2|4 bytes) to port 0xf4; the VMM must exit (V<<1)|1. */
#include "lib/guest.h"

const char guest_name[] = "debug-exit";

void guest_main(void)
{
	uint64_t v = mb_arg_u64("value");
	uint64_t width = mb_arg_u64("width");
	guest_printf("debug-exit: writing %llu with a %llu-byte write to port 0xf4\n",
	             (unsigned long long)v, (unsigned long long)width);
	if (width == 1)
		outb(GUEST_EXIT_PORT, (uint8_t)v);
	else if (width == 2)
		outw(GUEST_EXIT_PORT, (uint16_t)v);
	else if (width == 4)
		outl(GUEST_EXIT_PORT, (uint32_t)v);
	else
		guest_fail("width=%llu is not 1, 2 or 4", (unsigned long long)width);
	guest_printf("debug-exit: FAIL: still running after the write to port 0xf4\n");
	guest_halt_forever();
}
