/*
 * poweroff: ACPI S5 the way an OS does it: SLP_TYPa from the DSDT's \_S5 package, then
 * SLP_TYP | SLP_EN written to the FADT's PM1a control block. The VMM must exit 0.
 */
#include "lib/guest.h"

const char guest_name[] = "poweroff";

/* Decode one AML integer data object at p (ZeroOp, OneOp, BytePrefix, WordPrefix). */
static int aml_int(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
	if (p >= end)
		return -1;
	switch (p[0]) {
	case 0x00:
		*v = 0;
		return 0;
	case 0x01:
		*v = 1;
		return 0;
	case 0x0a:
		if (p + 2 > end)
			return -1;
		*v = p[1];
		return 0;
	case 0x0b:
		if (p + 3 > end)
			return -1;
		*v = (uint32_t)(p[1] | p[2] << 8);
		return 0;
	default:
		return -1;
	}
}

void guest_main(void)
{
	const struct acpi_header *fadt = acpi_find_table("FACP");
	if (!fadt)
		guest_fail("no valid FADT (FACP)");
	const uint8_t *f = (const uint8_t *)fadt;
	uint32_t dsdt32, pm1a_cnt;
	uint64_t xdsdt = 0;
	memcpy(&dsdt32, f + 40, 4);
	memcpy(&pm1a_cnt, f + 64, 4);
	if (fadt->length >= 148)
		memcpy(&xdsdt, f + 140, 8);
	if (!pm1a_cnt || pm1a_cnt > 0xffff)
		guest_fail("FADT PM1a_CNT_BLK is 0x%x, not an I/O port", pm1a_cnt);
	uint64_t da = xdsdt ? xdsdt : dsdt32;
	if (!da || da >= 0x100000000ull)
		guest_fail("FADT DSDT pointer 0x%llx is unusable", (unsigned long long)da);
	const struct acpi_header *dsdt = (const struct acpi_header *)(uintptr_t)da;
	if (memcmp(dsdt->signature, "DSDT", 4) || acpi_checksum(dsdt, dsdt->length))
		guest_fail("no valid DSDT at 0x%08x", (uint32_t)da);

	const uint8_t *p = (const uint8_t *)dsdt, *end = p + dsdt->length;
	const uint8_t *pkg = NULL;
	for (const uint8_t *q = p + sizeof(*dsdt); q + 6 <= end; q++) {
		if (q[0] != 0x08)
			continue;
		const uint8_t *n = q + 1 + (q[1] == '\\');
		if (n + 5 <= end && !memcmp(n, "_S5_", 4) && n[4] == 0x12) {
			pkg = n + 5;
			break;
		}
	}
	if (!pkg)
		guest_fail("the DSDT defines no \\_S5 package");
	/* PkgLength: bits 7-6 of the lead byte = count of following bytes. */
	uint32_t follow = pkg[0] >> 6;
	const uint8_t *elems = pkg + 1 + follow + 1; /* skip PkgLength and NumElements */
	uint32_t slp_typ;
	if (elems > end || aml_int(elems, end, &slp_typ) || slp_typ > 7)
		guest_fail("cannot decode SLP_TYPa from the \\_S5 package (byte 0x%02x)",
		           elems < end ? *elems : 0);
	uint16_t v = (uint16_t)(slp_typ << 10 | 1u << 13);
	guest_printf("poweroff: \\_S5 SLP_TYPa %u: writing 0x%04x to PM1a_CNT at port 0x%x\n",
	             slp_typ, v, pm1a_cnt);
	outw((uint16_t)pm1a_cnt, v);
	uint64_t t0 = rdtsc();
	for (uint32_t i = 0; i < 20000000 && rdtsc() - t0 < 3000000000ull; i++)
		cpu_pause();
	guest_fail("still running after writing 0x%04x to PM1a_CNT 0x%x", v, pm1a_cnt);
}
