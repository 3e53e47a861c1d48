/*
 * fw-cfg: QEMU's firmware configuration interface on ports 0x510 (16-bit selector) and 0x511
 * (data): signature "QEMU" (0x0000), CPU count (0x0005, u16) == cpus=N, RAM size (0x0003,
 * u64) == mem=BYTES.
 */
#include "lib/guest.h"

const char guest_name[] = "fw-cfg";

void guest_main(void)
{
	uint32_t want_cpus = (uint32_t)mb_arg_u64("cpus");
	uint64_t want_mem = mb_arg_u64("mem");

	char sig[5] = "";
	fwcfg_select(FW_CFG_SIGNATURE);
	fwcfg_read(sig, 4);
	for (int i = 0; i < 4; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			sig[i] = '?';
	guest_printf("fw-cfg: signature %s\n", sig);
	if (memcmp(sig, "QEMU", 4))
		guest_fail("signature (selector 0x0000) reads \"%s\", expected \"QEMU\"", sig);

	uint16_t cpus = fwcfg_read_u16(FW_CFG_NB_CPUS);
	guest_printf("fw-cfg: CPU count %u\n", cpus);
	uint64_t mem = fwcfg_read_u64(FW_CFG_RAM_SIZE);
	guest_printf("fw-cfg: RAM size %llu bytes\n", (unsigned long long)mem);
	if (cpus != want_cpus)
		guest_fail("CPU count (selector 0x0005) is %u, expected %u", cpus, want_cpus);
	if (mem != want_mem)
		guest_fail("RAM size (selector 0x0003) is %llu bytes, expected %llu",
		           (unsigned long long)mem, (unsigned long long)want_mem);
}
