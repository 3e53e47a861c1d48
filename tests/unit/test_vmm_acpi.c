/* SPDX-License-Identifier: Apache-2.0 */
/* ACPI tables: every checksum, the pointer chain RSDP -> XSDT/RSDT -> FADT -> DSDT/FACS,
 * the MADT's CPUs and interrupt overrides, and the FADT's PM and reset registers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/x86/acpi.h"
#include "vmm/x86/acpi_pci.h"
#include "vmm/x86/layout.h"

#define BASE 0xe0000ull

static uint8_t buf[ACPI_MAX_SIZE];

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* The table at a guest address, checked: in the buffer, signature, length, checksum. */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
	const uint8_t *t;

	assert_true(gpa >= BASE && gpa + 36 <= BASE + ACPI_MAX_SIZE);
	t = buf + (gpa - BASE);
	assert_memory_equal(t, sig, 4);
	assert_true(gpa + rd32(t + 4) <= BASE + ACPI_MAX_SIZE);
	assert_int_equal(acpi_checksum(t, rd32(t + 4)), 0);
	return t;
}

static void check_tables(unsigned ncpus)
{
	struct acpi_info info;
	const uint8_t *rsdp, *xsdt, *rsdt, *fadt, *dsdt, *madt, *facs, *e, *end;
	unsigned lapics = 0, ioapics = 0, found_iso0 = 0, found_sci = 0;

	assert_int_equal(acpi_build(buf, BASE, ncpus, &info), 0);
	assert_int_equal(info.rsdp & 15, 0);
	rsdp = buf + (info.rsdp - BASE);
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(rsdp, 20), 0);
	assert_int_equal(acpi_checksum(rsdp, 36), 0);
	assert_int_equal(rsdp[15], 2);

	xsdt = table(rd64(rsdp + 24), "XSDT");
	rsdt = table(rd32(rsdp + 16), "RSDT");
	assert_int_equal(rd32(xsdt + 4), 36 + 2 * 8);
	assert_int_equal(rd32(rsdt + 4), 36 + 2 * 4);
	fadt = table(rd64(xsdt + 36), "FACP");
	madt = table(rd64(xsdt + 44), "APIC");
	assert_int_equal(rd32(rsdt + 36), rd64(xsdt + 36));
	assert_int_equal(rd32(rsdt + 40), rd64(xsdt + 44));

	/* FADT: DSDT and FACS both ways, SCI, PM blocks, reset register. */
	assert_int_equal(rd32(fadt + 4), 276);
	dsdt = table(rd64(fadt + 140), "DSDT");
	assert_int_equal(rd32(fadt + 40), rd64(fadt + 140));
	assert_int_equal(rd32(fadt + 36), rd64(fadt + 132));
	facs = buf + (rd64(fadt + 132) - BASE);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(rd64(fadt + 132) & 63, 0);
	assert_int_equal(fadt[46], IRQ_SCI);
	assert_int_equal(rd32(fadt + 56), PORT_PM1_EVT);
	assert_int_equal(rd32(fadt + 64), PORT_PM1_CNT);
	assert_int_equal(rd32(fadt + 76), PORT_PM_TMR);
	assert_int_equal(fadt[88], 4);
	assert_int_equal(fadt[89], 2);
	assert_true(rd32(fadt + 112) & (1u << 10)); /* RESET_REG_SUP */
	assert_false(rd32(fadt + 112) & (1u << 4)); /* fixed power button present */
	assert_int_equal(fadt[116], 1);		    /* reset register in I/O space */
	assert_int_equal(rd64(fadt + 120), PORT_RESET);
	assert_int_equal(fadt[128], 6);
	assert_int_equal(rd64(fadt + 148 + 4), PORT_PM1_EVT); /* X_PM1a_EVT_BLK */
	assert_int_equal(rd64(fadt + 172 + 4), PORT_PM1_CNT);
	/* GPE0 (the PCI hot plug event): after the PM block's timer, status then enable. */
	assert_int_equal(rd32(fadt + 80), PORT_PM_BASE + 0x20);
	assert_int_equal(fadt[92], 16);
	assert_int_equal(rd64(fadt + 220 + 4), PORT_PM_BASE + 0x20);
	assert_int_equal(fadt[220 + 1], 128); /* bit width: the whole block */

	/* DSDT: Name(_S5, Package(4){5, 5, 0, 0}) */
	assert_non_null(memmem(dsdt + 36, rd32(dsdt + 4) - 36,
			       "\x08_S5_\x12\x08\x04\x0a\x05\x0a\x05\x00\x00", 14));

	/* MADT: a LAPIC per CPU with IDs 0..n-1, one IOAPIC, IRQ0 -> GSI2, the SCI level. */
	assert_int_equal(rd32(madt + 36), LAYOUT_LAPIC);
	end = madt + rd32(madt + 4);
	for (e = madt + 44; e < end; e += e[1]) {
		assert_true(e[1] >= 2 && e + e[1] <= end);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[3], lapics);
			assert_int_equal(rd32(e + 4) & 1, 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
			ioapics++;
			break;
		case 2:
			if (e[3] == 0 && rd32(e + 4) == 2)
				found_iso0 = 1;
			if (e[3] == IRQ_SCI && (e[8] & 0xf) == 0xd)
				found_sci = 1;
			break;
		}
	}
	assert_int_equal(e, end);
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
	assert_true(found_iso0);
	assert_true(found_sci);
}

static void test_one_cpu(void **state)
{
	check_tables(1);
}

static void test_many_cpus(void **state)
{
	check_tables(4);
	check_tables(255);
}

/* Hot plug AML: a device per hot-pluggable slot and no other, the controller's registers as
 * an operation region at its port, and \_GPE._E01 calling PCNT; without slots, none of it. */
static void test_hotplug_aml(void **state)
{
	static uint8_t aml[ACPI_PCI_AML_MAX];
	struct acpi_pci pci = {.ecam = 0xb0000000,
			       .ecam_size = 256 << 20,
			       .mmio32 = 0xc0000000,
			       .mmio32_size = 0x10000000,
			       .mmio64 = 1ull << 36,
			       .mmio64_size = 1ull << 34,
			       .hp_slots = 1u << 5 | 1u << 0x1e,
			       .hp_port = PORT_PCIHP};
	size_t n = acpi_pci_aml(aml, sizeof(aml), &pci);

	assert_true(n > 0);
	assert_non_null(memmem(aml, n, "S05_\x08_ADR\x0c\x00\x00\x05\x00", 14));
	assert_non_null(memmem(aml, n, "S1E_\x08_ADR\x0c\x00\x00\x1e\x00", 14));
	assert_null(memmem(aml, n, "S06_", 4));
	assert_non_null(memmem(aml, n, "\x5b\x80PCHP\x01\x0b\x00\xae\x0a\x10", 11));
	assert_non_null(memmem(aml, n, "_E01\x00\\\x2f\x03_SB_PCI0PCNT", 20));
	pci.hp_slots = 0;
	n = acpi_pci_aml(aml, sizeof(aml), &pci);
	assert_true(n > 0);
	assert_null(memmem(aml, n, "PCHP", 4));
	assert_null(memmem(aml, n, "_E01", 4));
	/* Every slot hot-pluggable still fits. */
	pci.hp_slots = 0x7ffffffeu;
	assert_true(acpi_pci_aml(aml, sizeof(aml), &pci) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_cpu),
		cmocka_unit_test(test_many_cpus),
		cmocka_unit_test(test_hotplug_aml),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
