/*
 * reset: the guest resets the machine (method=i8042: command 0xFE to port 0x64; method=cf9:
 * 0x06 to port 0xCF9). A boot counter kept in CMOS NVRAM (bytes 0x7e marker, 0x7f count),
 * which survives a reset as on real hardware, tells the boots apart. With --no-reboot the VMM
 * must exit 0 after the first boot's reset; without, the second boot exits with 0x2b.
 */
#include "lib/guest.h"

const char guest_name[] = "reset";

#define NV_MARKER     0x7e
#define NV_COUNT      0x7f
#define MARKER        0x4b /* 'K' */
#define SECOND_BOOT_V 0x2b

void guest_main(void)
{
	bool kbd = mb_arg_is("method", "i8042");
	if (!kbd && !mb_arg_is("method", "cf9"))
		guest_fail("method= must be i8042 or cf9");
	uint8_t count = cmos_read(NV_MARKER) == MARKER ? cmos_read(NV_COUNT) : 0;
	count++;
	cmos_write(NV_MARKER, MARKER);
	cmos_write(NV_COUNT, count);
	if (cmos_read(NV_COUNT) != count)
		guest_fail("CMOS NVRAM byte 0x%02x does not keep the value written", NV_COUNT);
	guest_printf("reset: boot %u\n", count);
	if (count == 2) {
		cmos_write(NV_MARKER, 0);
		guest_printf("reset: second boot reached, exiting with 0x%02x\n", SECOND_BOOT_V);
		guest_exit(SECOND_BOOT_V);
	}
	if (count > 2)
		guest_fail("boot %u: the VM was reset more often than asked", count);

	if (kbd) {
		guest_printf("reset: resetting through the i8042 (command 0xfe to port 0x64)\n");
		for (int i = 0; i < 100000 && (inb(0x64) & 0x02); i++) /* input buffer full */
			cpu_pause();
		outb(0x64, 0xfe);
	} else {
		guest_printf("reset: resetting through the reset control register (0x06 to port "
		             "0xcf9)\n");
		outb(0xcf9, 0x06);
	}
	/* A VMM resets synchronously on the port write; allow a moment for asynchronous ones. */
	uint64_t t0 = rdtsc();
	for (uint32_t i = 0; i < 20000000 && rdtsc() - t0 < 3000000000ull; i++)
		cpu_pause();
	guest_fail("still running after the %s reset request",
	           kbd ? "i8042 (0xfe to port 0x64)" : "port 0xcf9 (0x06)");
}
