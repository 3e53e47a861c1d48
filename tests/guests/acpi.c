/*
 * acpi: the ACPI tables a guest OS needs are present and valid: RSDP (0xE0000-0xFFFFF, both
 * checksums), XSDT (RSDT only tolerated under vmm=qemu, whose PC machine has no XSDT), MADT
 * with cpus=N enabled CPUs, an I/O APIC and the override ISA IRQ 0 -> GSI 2, FADT pointing at
 * a valid DSDT with a power-off path, and a DSDT that defines \_S5.
 */
#include "lib/guest.h"

const char guest_name[] = "acpi";

static bool has_s5(const struct acpi_header *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt;
	for (uint32_t i = sizeof(*dsdt); i + 6 <= dsdt->length; i++) {
		if (p[i] != 0x08) /* NameOp */
			continue;
		uint32_t j = i + 1;
		if (p[j] == '\\')
			j++;
		if (j + 5 <= dsdt->length && !memcmp(p + j, "_S5_", 4) && p[j + 4] == 0x12)
			return true; /* Name (_S5, Package ...) */
	}
	return false;
}

void guest_main(void)
{
	uint32_t want_cpus = (uint32_t)mb_arg_u64("cpus");
	bool qemu = mb_arg_is("vmm", "qemu");

	const struct acpi_rsdp *rsdp = acpi_find_rsdp();
	if (!rsdp)
		guest_fail("no RSDP with a valid checksum in 0xE0000-0xFFFFF");
	guest_printf("acpi: RSDP at 0x%05x revision %u OEM '%.6s' RSDT 0x%08x XSDT 0x%llx\n",
	             (uint32_t)(uintptr_t)rsdp, rsdp->revision, rsdp->oem_id, rsdp->rsdt,
	             rsdp->revision >= 2 ? (unsigned long long)rsdp->xsdt : 0ull);
	bool is_xsdt;
	const struct acpi_header *root = acpi_root(&is_xsdt);
	if (!root)
		guest_fail("the RSDP's %s is missing or invalid",
		           rsdp->revision >= 2 && rsdp->xsdt ? "XSDT" : "RSDT");
	if (!is_xsdt && !qemu)
		guest_fail("no XSDT: RSDP revision %u, XSDT address 0x%llx (revision 2 with an "
		           "XSDT expected)",
		           rsdp->revision,
		           rsdp->revision >= 2 ? (unsigned long long)rsdp->xsdt : 0ull);

	char sigs[128] = "";
	uint32_t ns = 0, esize = is_xsdt ? 8 : 4;
	uint32_t nent = (root->length - (uint32_t)sizeof(*root)) / esize;
	for (uint32_t i = 0; i < nent; i++) {
		uint64_t a = 0;
		memcpy(&a, (const uint8_t *)root + sizeof(*root) + i * esize, esize);
		const char *sig = a && a < 0x100000000ull
		                          ? ((const struct acpi_header *)(uintptr_t)a)->signature
		                          : "????";
		ns += (uint32_t)guest_snprintf(sigs + ns, sizeof(sigs) - ns, " %.4s", sig);
		if (ns >= sizeof(sigs))
			ns = sizeof(sigs) - 1;
	}
	guest_printf("acpi: %s at 0x%08x, %u entries:%s\n", is_xsdt ? "XSDT" : "RSDT",
	             (uint32_t)(uintptr_t)root, nent, sigs);

	static struct acpi_madt_info madt;
	if (acpi_parse_madt(&madt))
		guest_fail("no valid MADT");
	bool iso0 = false;
	for (uint32_t i = 0; i < madt.niso; i++)
		iso0 |= madt.iso[i].bus == 0 && madt.iso[i].source_irq == 0 && madt.iso[i].gsi == 2;
	guest_printf("acpi: MADT: LAPIC 0x%08x, %u CPUs, %u I/O APIC(s) (first at 0x%08x GSI base "
	             "%u), %u overrides%s\n",
	             madt.lapic_base, madt.ncpus, madt.nioapics, madt.ioapic_base,
	             madt.ioapic_gsi_base, madt.niso, iso0 ? ", ISA IRQ 0 -> GSI 2" : "");
	if (madt.ncpus != want_cpus)
		guest_fail("the MADT lists %u enabled CPUs, expected %u", madt.ncpus, want_cpus);
	if (!madt.nioapics)
		guest_fail("the MADT lists no I/O APIC");
	if (!iso0)
		guest_fail("the MADT has no interrupt source override ISA IRQ 0 -> GSI 2 (the PIT "
		           "is wired to I/O APIC pin 2 on PC platforms)");

	const struct acpi_header *fadt = acpi_find_table("FACP");
	if (!fadt)
		guest_fail("no valid FADT (FACP)");
	const uint8_t *f = (const uint8_t *)fadt;
	if (fadt->length < 116)
		guest_fail("FADT is %u bytes, too short for ACPI 2.0+ (116)", fadt->length);
	uint32_t dsdt32, pm1a_cnt, flags;
	uint64_t xdsdt = 0, sleep_ctl = 0;
	memcpy(&dsdt32, f + 40, 4);
	memcpy(&pm1a_cnt, f + 64, 4);
	memcpy(&flags, f + 112, 4);
	if (fadt->length >= 148)
		memcpy(&xdsdt, f + 140, 8);
	if (fadt->length >= 256)
		memcpy(&sleep_ctl, f + 248, 8); /* SLEEP_CONTROL_REG GAS address */
	bool hw_reduced = flags & (1u << 20);
	guest_printf("acpi: FADT revision %u, %u bytes: DSDT 0x%08x X_DSDT 0x%llx PM1a_CNT 0x%x "
	             "%s\n",
	             fadt->revision, fadt->length, dsdt32, (unsigned long long)xdsdt, pm1a_cnt,
	             hw_reduced ? "hardware-reduced" : "");
	if (!dsdt32 && !xdsdt)
		guest_fail("the FADT points at no DSDT (DSDT and X_DSDT are 0)");
	if (dsdt32 && xdsdt && dsdt32 != xdsdt)
		guest_fail("the FADT's DSDT 0x%08x and X_DSDT 0x%llx disagree", dsdt32,
		           (unsigned long long)xdsdt);
	if (!pm1a_cnt && !(hw_reduced && sleep_ctl))
		guest_fail("the FADT has no PM1a control block (nor a hardware-reduced sleep "
		           "control register): the guest cannot power off");
	uint64_t da = xdsdt ? xdsdt : dsdt32;
	if (da >= 0x100000000ull)
		guest_fail("DSDT at 0x%llx is above 4 GiB", (unsigned long long)da);
	const struct acpi_header *dsdt = (const struct acpi_header *)(uintptr_t)da;
	if (memcmp(dsdt->signature, "DSDT", 4))
		guest_fail("the FADT's DSDT pointer 0x%08x leads to signature '%.4s'", (uint32_t)da,
		           dsdt->signature);
	if (dsdt->length < sizeof(*dsdt) || dsdt->length > (4u << 20))
		guest_fail("DSDT length %u is invalid", dsdt->length);
	if (acpi_checksum(dsdt, dsdt->length))
		guest_fail("DSDT at 0x%08x (%u bytes) has a bad checksum", (uint32_t)da,
		           dsdt->length);
	if (!has_s5(dsdt))
		guest_fail("DSDT at 0x%08x (%u bytes) defines no \\_S5 package", (uint32_t)da,
		           dsdt->length);
	guest_printf("acpi: DSDT at 0x%08x (%u bytes, checksum ok) has \\_S5\n", (uint32_t)da,
	             dsdt->length);
}
