/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/acpi.h"

#include <errno.h>
#include <string.h>

#include "lib/le.h"
#include "vmm/dev/pm.h"
#include "vmm/x86/acpi_pci.h"
#include "vmm/x86/layout.h"

#define ACPI_HDR_SIZE 36
#define FADT_SIZE     276
#define FACS_SIZE     64

/* A table being written: cursor into the shared buffer. */
struct acpi_builder {
	uint8_t *buf;
	uint64_t base;
	size_t used;
};

static void put8(uint8_t *p, uint8_t v)
{
	*p = v;
}

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return sum;
}

/* Reserve len bytes aligned to align; returns the offset, or SIZE_MAX if full. */
static size_t acpi_alloc(struct acpi_builder *b, size_t len, size_t align)
{
	size_t off = (b->used + align - 1) & ~(align - 1);

	if (off + len > ACPI_MAX_SIZE)
		return SIZE_MAX;
	b->used = off + len;
	return off;
}

static void acpi_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	le32_store(t + 4, len);
	put8(t + 8, rev);
	memcpy(t + 10, "KEEL  ", 6);
	memcpy(t + 16, "KEELVMM ", 8);
	le32_store(t + 24, 1);
	memcpy(t + 28, "KEEL", 4);
	le32_store(t + 32, 1);
}

static void acpi_finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = (uint8_t)(0x100 - acpi_checksum(t, len));
}

/* Record a pointer field or a checksum of the buffer (room was counted at compile time). */
static void note_pointer(struct acpi_info *info, size_t off, uint8_t size)
{
	if (info->npointers < ACPI_MAX_POINTERS)
		info->pointers[info->npointers++] = (struct acpi_pointer){(uint32_t)off, size};
}

static void note_sum(struct acpi_info *info, size_t off, size_t start, size_t len)
{
	if (info->nsums < ACPI_MAX_CHECKSUMS)
		info->sums[info->nsums++] =
			(struct acpi_sum){(uint32_t)off, (uint32_t)start, (uint32_t)len};
}

/* A table finished at off: its checksum byte, over its whole length. */
static void note_table(struct acpi_info *info, const uint8_t *buf, size_t off)
{
	note_sum(info, off + 9, off, le32_load(buf + off + 4));
}

/* A Generic Address Structure for a port-I/O register. */
static void gas_io(uint8_t *p, uint16_t port, uint8_t bits)
{
	put8(p, 1); /* system I/O */
	put8(p + 1, bits);
	put8(p + 2, 0);
	put8(p + 3, bits == 8 ? 1 : bits == 16 ? 2 : 3); /* access size: byte/word/dword */
	le64_store(p + 4, port);
}

/*
 * DSDT AML: Name (_S5, Package (4) { 5, 5, 0, 0 }). The power button is the fixed-feature
 * one (PM1 status/enable bit 8), which needs no AML.
 */
/* clang-format off */
static const uint8_t dsdt_aml[] = {
	0x08, '_', 'S', '5', '_',                  /* NameOp "_S5_" */
	0x12, 0x08, 0x04,                          /* PackageOp, PkgLength 8, 4 elements */
	0x0a, ACPI_S5_SLP_TYP, 0x0a, ACPI_S5_SLP_TYP, /* BytePrefix 5, BytePrefix 5 */
	0x00, 0x00,                                /* Zero, Zero */
};
/* clang-format on */

#define FADT_F_WBINVD	     (1u << 0)
#define FADT_F_PROC_C1	     (1u << 2)
#define FADT_F_SLP_BUTTON    (1u << 5) /* no sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define BOOT_ARCH_NO_VGA     (1u << 2)
#define BOOT_ARCH_NO_ASPM    (1u << 4)

static void build_fadt(uint8_t *t, uint64_t facs, uint64_t dsdt, uint16_t pm)
{
	acpi_header(t, "FACP", FADT_SIZE, 6);
	le32_store(t + 36, (uint32_t)facs);
	le32_store(t + 40, (uint32_t)dsdt);
	le16_store(t + 46, IRQ_SCI);
	/* SMI_CMD = 0: ACPI is always enabled, there is no SMM to hand over from. */
	le32_store(t + 56, pm + PORT_PM1_EVT - PORT_PM_BASE);
	le32_store(t + 64, pm + PORT_PM1_CNT - PORT_PM_BASE);
	le32_store(t + 76, pm + PORT_PM_TMR - PORT_PM_BASE);
	le32_store(t + 80, pm + PM_GPE0_OFF); /* GPE0_BLK: status, then enable */
	put8(t + 88, 4);		      /* PM1_EVT_LEN: status and enable, 2 bytes each */
	put8(t + 89, 2);		      /* PM1_CNT_LEN */
	put8(t + 91, 4);		      /* PM_TMR_LEN */
	put8(t + 92, PM_GPE0_LEN);	      /* GPE0_BLK_LEN */
	le16_store(t + 96, 101);	      /* C2 latency > 100: no C2 */
	le16_store(t + 98, 1001);	      /* C3 latency > 1000: no C3 */
	put8(t + 108, 0x32);		      /* RTC century register */
	le16_store(t + 109, BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_ASPM);
	le32_store(t + 112,
		   FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP);
	gas_io(t + 116, PORT_RESET, 8);
	put8(t + 128, 0x06); /* reset value: CF9 full reset */
	put8(t + 131, 5);    /* FADT minor version: ACPI 6.5 */
	le64_store(t + 132, facs);
	le64_store(t + 140, dsdt);
	gas_io(t + 148, (uint16_t)(pm + PORT_PM1_EVT - PORT_PM_BASE), 32);
	gas_io(t + 172, (uint16_t)(pm + PORT_PM1_CNT - PORT_PM_BASE), 16);
	gas_io(t + 208, (uint16_t)(pm + PORT_PM_TMR - PORT_PM_BASE), 32);
	gas_io(t + 220, (uint16_t)(pm + PM_GPE0_OFF), 8 * PM_GPE0_LEN); /* X_GPE0_BLK */
	put8(t + 223, 1);						/* byte access */
	memcpy(t + 268, "KEELVMM\0", 8); /* hypervisor vendor identity */
	acpi_finish(t, FADT_SIZE);
}

static size_t build_madt(uint8_t *t, unsigned ncpus, int write)
{
	size_t off = ACPI_HDR_SIZE + 8;
	unsigned i;

	if (write) {
		le32_store(t + 36, (uint32_t)LAYOUT_LAPIC);
		le32_store(t + 40, 1); /* PCAT_COMPAT: dual 8259 PICs present */
	}
	for (i = 0; i < ncpus; i++, off += 8) {
		if (write) {
			put8(t + off, 0); /* processor local APIC */
			put8(t + off + 1, 8);
			put8(t + off + 2, (uint8_t)i); /* ACPI processor UID */
			put8(t + off + 3, (uint8_t)i); /* APIC ID */
			le32_store(t + off + 4, 1);    /* enabled */
		}
	}
	if (write) {
		put8(t + off, 1); /* I/O APIC */
		put8(t + off + 1, 12);
		put8(t + off + 2, 0); /* I/O APIC ID */
		put8(t + off + 3, 0);
		le32_store(t + off + 4, (uint32_t)LAYOUT_IOAPIC);
		le32_store(t + off + 8, 0); /* GSI base */
	}
	off += 12;
	if (write) {
		/* ISA IRQ 0 (the PIT) arrives at GSI 2, as on every PC since the IOAPIC. */
		put8(t + off, 2);
		put8(t + off + 1, 10);
		put8(t + off + 2, 0);
		put8(t + off + 3, 0);
		le32_store(t + off + 4, 2);
		le16_store(t + off + 8, 0);
		/* The SCI: active high, level triggered. */
		put8(t + off + 10, 2);
		put8(t + off + 11, 10);
		put8(t + off + 12, 0);
		put8(t + off + 13, IRQ_SCI);
		le32_store(t + off + 14, IRQ_SCI);
		le16_store(t + off + 18, 0x000d);
	}
	off += 20;
	if (write) {
		put8(t + off, 4); /* local APIC NMI: all processors, LINT1 */
		put8(t + off + 1, 6);
		put8(t + off + 2, 0xff);
		le16_store(t + off + 3, 0);
		put8(t + off + 5, 1);
	}
	off += 6;
	if (write) {
		acpi_header(t, "APIC", (uint32_t)off, 5);
		acpi_finish(t, (uint32_t)off);
	}
	return off;
}

int acpi_build(uint8_t *buf, uint64_t base, unsigned ncpus, struct acpi_info *info)
{
	return acpi_build_with_pci(buf, base, ncpus, NULL, info);
}

int acpi_build_with_pci(uint8_t *buf, uint64_t base, unsigned ncpus, const struct acpi_pci *pci,
			struct acpi_info *info)
{
	return acpi_build_platform(buf, base, ncpus, pci, PORT_PM_BASE, info);
}

int acpi_build_platform(uint8_t *buf, uint64_t base, unsigned ncpus, const struct acpi_pci *pci,
			uint16_t pm_base, struct acpi_info *info)
{
	struct acpi_builder b = {.buf = buf, .base = base, .used = 0};
	size_t rsdp, facs, dsdt, fadt, madt, rsdt, xsdt, madt_len, dsdt_len, mcfg = 0;
	uint64_t tables[3];
	uint8_t pci_aml[ACPI_PCI_AML_MAX];
	size_t pci_aml_len = 0;
	unsigned i, ntables = pci ? 3 : 2;

	memset(buf, 0, ACPI_MAX_SIZE);
	memset(info, 0, sizeof(*info));
	if (pci) {
		pci_aml_len = acpi_pci_aml(pci_aml, sizeof(pci_aml), pci);
		if (!pci_aml_len)
			return -ENOSPC;
	}
	dsdt_len = ACPI_HDR_SIZE + sizeof(dsdt_aml) + pci_aml_len;
	madt_len = build_madt(NULL, ncpus, 0);
	rsdp = acpi_alloc(&b, ACPI_RSDP_SIZE, 16);
	facs = acpi_alloc(&b, FACS_SIZE, 64);
	dsdt = acpi_alloc(&b, dsdt_len, 8);
	fadt = acpi_alloc(&b, FADT_SIZE, 8);
	madt = acpi_alloc(&b, madt_len, 8);
	if (pci)
		mcfg = acpi_alloc(&b, ACPI_MCFG_SIZE, 8);
	rsdt = acpi_alloc(&b, ACPI_HDR_SIZE + ntables * 4, 8);
	xsdt = acpi_alloc(&b, ACPI_HDR_SIZE + ntables * 8, 8);
	if (xsdt == SIZE_MAX || madt == SIZE_MAX || rsdt == SIZE_MAX || mcfg == SIZE_MAX)
		return -ENOSPC;

	memcpy(buf + facs, "FACS", 4);
	le32_store(buf + facs + 4, FACS_SIZE);
	put8(buf + facs + 32, 2); /* version */

	acpi_header(buf + dsdt, "DSDT", (uint32_t)dsdt_len, 2);
	memcpy(buf + dsdt + ACPI_HDR_SIZE, dsdt_aml, sizeof(dsdt_aml));
	if (pci_aml_len)
		memcpy(buf + dsdt + ACPI_HDR_SIZE + sizeof(dsdt_aml), pci_aml, pci_aml_len);
	acpi_finish(buf + dsdt, (uint32_t)dsdt_len);

	build_fadt(buf + fadt, base + facs, base + dsdt, pm_base);
	build_madt(buf + madt, ncpus, 1);
	/* The FADT's FIRMWARE_CTRL, DSDT, X_FIRMWARE_CTRL and X_DSDT. */
	note_pointer(info, fadt + 36, 4);
	note_pointer(info, fadt + 40, 4);
	note_pointer(info, fadt + 132, 8);
	note_pointer(info, fadt + 140, 8);
	note_table(info, buf, dsdt);
	note_table(info, buf, fadt);
	note_table(info, buf, madt);

	tables[0] = base + fadt;
	tables[1] = base + madt;
	if (pci) {
		acpi_header(buf + mcfg, "MCFG", ACPI_MCFG_SIZE, 1);
		acpi_pci_mcfg_body(buf + mcfg + ACPI_HDR_SIZE, pci);
		acpi_finish(buf + mcfg, ACPI_MCFG_SIZE);
		note_table(info, buf, mcfg);
		tables[2] = base + mcfg;
	}
	acpi_header(buf + rsdt, "RSDT", (uint32_t)(ACPI_HDR_SIZE + ntables * 4), 1);
	acpi_header(buf + xsdt, "XSDT", (uint32_t)(ACPI_HDR_SIZE + ntables * 8), 1);
	for (i = 0; i < ntables; i++) {
		le32_store(buf + rsdt + ACPI_HDR_SIZE + i * 4, (uint32_t)tables[i]);
		le64_store(buf + xsdt + ACPI_HDR_SIZE + i * 8, tables[i]);
		note_pointer(info, rsdt + ACPI_HDR_SIZE + i * 4, 4);
		note_pointer(info, xsdt + ACPI_HDR_SIZE + i * 8, 8);
	}
	acpi_finish(buf + rsdt, (uint32_t)(ACPI_HDR_SIZE + ntables * 4));
	acpi_finish(buf + xsdt, (uint32_t)(ACPI_HDR_SIZE + ntables * 8));
	note_table(info, buf, rsdt);
	note_table(info, buf, xsdt);

	memcpy(buf + rsdp, "RSD PTR ", 8);
	memcpy(buf + rsdp + 9, "KEEL  ", 6);
	put8(buf + rsdp + 15, 2); /* ACPI 2.0+ RSDP */
	le32_store(buf + rsdp + 16, (uint32_t)(base + rsdt));
	le32_store(buf + rsdp + 20, 36);
	le64_store(buf + rsdp + 24, base + xsdt);
	buf[rsdp + 8] = (uint8_t)(0x100 - acpi_checksum(buf + rsdp, 20));
	buf[rsdp + 32] = (uint8_t)(0x100 - acpi_checksum(buf + rsdp, 36));
	note_pointer(info, rsdp + 16, 4);
	note_pointer(info, rsdp + 24, 8);
	note_sum(info, rsdp + 8, rsdp, 20);
	note_sum(info, rsdp + 32, rsdp, ACPI_RSDP_SIZE);

	info->rsdp = base + rsdp;
	info->size = b.used;
	return 0;
}
