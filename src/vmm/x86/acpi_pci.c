/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/acpi_pci.h"

#include <stdbool.h>
#include <string.h>

#include "config/vmdef.h"
#include "vmm/dev/pcihp_regs.h"
#include "vmm/pci.h"
#include "vmm/x86/layout.h"

void acpi_pci_layout(struct acpi_pci *pci, const struct vm_def *def, uint64_t ecam,
		     unsigned phys_bits)
{
	bool fw = def->firmware != VM_FIRMWARE_NONE;
	bool inside = ecam >= LAYOUT_PCI_MMIO32 && ecam < LAYOUT_PCI_MMIO32_END;
	uint64_t split = inside ? ecam : LAYOUT_PCI_MMIO32 + LAYOUT_PCI_MMIO32_SIZE;
	uint64_t hi = inside ? ecam + LAYOUT_PCIEXBAR_SIZE : split;

	if (hi > LAYOUT_PCI_MMIO32_END)
		hi = LAYOUT_PCI_MMIO32_END;
	*pci = (struct acpi_pci){
		.ecam = ecam,
		.ecam_size = LAYOUT_PCI_ECAM_SIZE,
		.mmio32 = LAYOUT_PCI_MMIO32,
		.mmio32_size = split - LAYOUT_PCI_MMIO32,
		.mmio32_hi = hi,
		.mmio32_hi_size = LAYOUT_PCI_MMIO32_END - hi,
		.mmio64 = pci_window64_base(def->memory, fw),
		.mmio64_size = pci_window64_end(def->memory, fw, phys_bits) -
			       pci_window64_base(def->memory, fw),
		.hp_slots = pcihp_slots(def),
		.hp_port = PORT_PCIHP,
	};
}

/* An AML byte stream under construction; overflow makes the result length 0. */
struct aml {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void aml_bytes(struct aml *a, const void *b, size_t n)
{
	if (a->overflow || n > a->cap - a->len) {
		a->overflow = true;
		return;
	}
	memcpy(a->p + a->len, b, n);
	a->len += n;
}

/* A string literal's bytes, without its NUL. */
#define aml_str(a, s) aml_bytes(a, s, sizeof(s) - 1)

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	while (n--) {
		aml_byte(a, (uint8_t)v);
		v >>= 8;
	}
}

/* Open a package-length object: its opcode bytes, then room for the longest PkgLength.
 * Returns where the body starts, for aml_close. */
static size_t aml_open(struct aml *a, const uint8_t *op, size_t oplen)
{
	static const uint8_t room[4];

	aml_bytes(a, op, oplen);
	aml_bytes(a, room, 4);
	return a->len;
}

/* Write the PkgLength (which counts its own bytes) and close the gap left for it. */
static void aml_close(struct aml *a, size_t start)
{
	size_t body, total = 0, n, i;
	uint8_t *pl;

	if (a->overflow)
		return;
	body = a->len - start;
	for (n = 1; n <= 4; n++) {
		total = body + n;
		if (n == 1 ? total < 0x40 : total < (1ull << (4 + 8 * (n - 1))))
			break;
	}
	if (n > 4) {
		a->overflow = true;
		return;
	}
	pl = a->p + start - 4;
	memmove(pl + n, a->p + start, body);
	if (n == 1) {
		pl[0] = (uint8_t)total;
	} else {
		pl[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (i = 1; i < n; i++)
			pl[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	a->len = start - 4 + n + body;
}

/* Name (SEG, EisaId ("PNPxxxx")) */
static void aml_name_eisaid(struct aml *a, const char seg[4], const char *id)
{
	uint16_t v = (uint16_t)(((id[0] - 0x40) & 0x1f) << 10 | ((id[1] - 0x40) & 0x1f) << 5 |
				((id[2] - 0x40) & 0x1f));
	uint16_t prod = 0;
	unsigned i;

	for (i = 3; i < 7; i++)
		prod = (uint16_t)(prod << 4 |
				  (id[i] <= '9' ? id[i] - '0' : (id[i] | 0x20) - 'a' + 10));
	aml_byte(a, 0x08); /* NameOp */
	aml_bytes(a, seg, 4);
	aml_byte(a, 0x0c); /* DWordPrefix: the EISA ID, stored big-endian */
	aml_byte(a, (uint8_t)(v >> 8));
	aml_byte(a, (uint8_t)v);
	aml_byte(a, (uint8_t)(prod >> 8));
	aml_byte(a, (uint8_t)prod);
}

/* Name (SEG, n) for a small integer. */
static void aml_name_int(struct aml *a, const char seg[4], uint8_t n)
{
	aml_byte(a, 0x08);
	aml_bytes(a, seg, 4);
	if (n <= 1) {
		aml_byte(a, n); /* ZeroOp, OneOp */
	} else {
		aml_byte(a, 0x0a);
		aml_byte(a, n);
	}
}

/* Word address space descriptor (bus numbers or I/O ports), producer, fixed min and max. */
static void res_word(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	aml_byte(a, 0x88);
	aml_le(a, 13, 2);
	aml_byte(a, type);
	aml_byte(a, 0x0c); /* MinFixed, MaxFixed, positive decode, producer */
	aml_byte(a, tflags);
	aml_le(a, 0, 2); /* granularity */
	aml_le(a, min, 2);
	aml_le(a, max, 2);
	aml_le(a, 0, 2); /* translation */
	aml_le(a, (uint32_t)max - min + 1, 2);
}

static void res_dword_mem(struct aml *a, uint64_t base, uint64_t size)
{
	aml_byte(a, 0x87);
	aml_le(a, 23, 2);
	aml_byte(a, 0); /* memory */
	aml_byte(a, 0x0c);
	aml_byte(a, 0x01); /* read-write, non-cacheable */
	aml_le(a, 0, 4);
	aml_le(a, base, 4);
	aml_le(a, base + size - 1, 4);
	aml_le(a, 0, 4);
	aml_le(a, size, 4);
}

static void res_qword_mem(struct aml *a, uint64_t base, uint64_t size)
{
	aml_byte(a, 0x8a);
	aml_le(a, 43, 2);
	aml_byte(a, 0);
	aml_byte(a, 0x0c);
	aml_byte(a, 0x01);
	aml_le(a, 0, 8);
	aml_le(a, base, 8);
	aml_le(a, base + size - 1, 8);
	aml_le(a, 0, 8);
	aml_le(a, size, 8);
}

/* Name (_CRS, ResourceTemplate () {...}) around the descriptors fill() emits. */
static void aml_crs(struct aml *a, void (*fill)(struct aml *, const struct acpi_pci *),
		    const struct acpi_pci *pci)
{
	static const uint8_t op[] = {0x08, '_', 'C', 'R', 'S', 0x11}; /* NameOp, BufferOp */
	struct aml probe = {0};
	size_t start;

	/* The buffer's size comes first: measure the descriptors on a scratch stream. */
	uint8_t scratch[256];

	probe.p = scratch;
	probe.cap = sizeof(scratch);
	fill(&probe, pci);
	aml_byte(&probe, 0x79); /* EndTag */
	aml_byte(&probe, 0);
	if (probe.overflow) {
		a->overflow = true;
		return;
	}
	start = aml_open(a, op, sizeof(op));
	aml_byte(a, 0x0b); /* WordPrefix: BufferSize */
	aml_le(a, probe.len, 2);
	aml_bytes(a, scratch, probe.len);
	aml_close(a, start);
}

static void pci0_resources(struct aml *a, const struct acpi_pci *pci)
{
	static const uint8_t conf1[] = {0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08};

	res_word(a, 2, 0, 0, (uint16_t)(pci->ecam_size / MiB - 1)); /* bus numbers */
	aml_bytes(a, conf1, sizeof(conf1));			    /* IO (0xcf8, 8) */
	res_word(a, 1, 0x03, 0x0000, 0x0cf7);			    /* I/O, entire range */
	res_word(a, 1, 0x03, 0x0d00, 0xffff);
	if (pci->mmio32_size)
		res_dword_mem(a, pci->mmio32, pci->mmio32_size);
	if (pci->mmio32_hi_size)
		res_dword_mem(a, pci->mmio32_hi, pci->mmio32_hi_size);
	res_qword_mem(a, pci->mmio64, pci->mmio64_size);
}

static void ecam_resources(struct aml *a, const struct acpi_pci *pci)
{
	aml_byte(a, 0x86); /* Memory32Fixed, read-write */
	aml_le(a, 9, 2);
	aml_byte(a, 1);
	aml_le(a, pci->ecam, 4);
	aml_le(a, pci->ecam_size, 4);
}

static void hp_resources(struct aml *a, const struct acpi_pci *pci)
{
	aml_byte(a, 0x47); /* IO (Decode16, port, port, 1, PCIHP_SIZE) */
	aml_byte(a, 0x01);
	aml_le(a, pci->hp_port, 2);
	aml_le(a, pci->hp_port, 2);
	aml_byte(a, 1);
	aml_byte(a, PCIHP_SIZE);
}

/* "Sxx_": slot s's device. */
static void hp_slot_name(char name[4], unsigned s)
{
	static const char hex[] = "0123456789ABCDEF";

	name[0] = 'S';
	name[1] = hex[s >> 4];
	name[2] = hex[s & 15];
	name[3] = '_';
}

/* Inside \_SB.PCI0: the controller's registers, PCEJ (eject slot Arg0), one device per
 * hot-pluggable slot, and PCNT, which the GPE runs: Notify each slot UP or DOWN reports. */
static void hp_aml(struct aml *a, const struct acpi_pci *pci)
{
	static const uint8_t region[] = {0x5b, 0x80, 'P', 'C', 'H', 'P', 0x01 /* SystemIO */};
	static const uint8_t field_op[] = {0x5b, 0x81};
	static const uint8_t method_op[] = {0x14};
	static const uint8_t dev_op[] = {0x5b, 0x82};
	static const uint8_t if_op[] = {0xa0};
	size_t f, m, d, i;
	unsigned s;

	aml_bytes(a, region, sizeof(region));
	aml_byte(a, 0x0b); /* WordPrefix: the port */
	aml_le(a, pci->hp_port, 2);
	aml_byte(a, 0x0a); /* BytePrefix: the length */
	aml_byte(a, PCIHP_SIZE);
	/* Field (PCHP, DWordAcc, NoLock, WriteAsZeros) { PCIU, 32, PCID, 32, B0EJ, 32 } */
	f = aml_open(a, field_op, sizeof(field_op));
	aml_bytes(a, "PCHP", 4);
	aml_byte(a, 0x43);
	aml_str(a, "PCIU\x20PCID\x20"
		   "B0EJ\x20");
	aml_close(a, f);
	/* Method (PCEJ, 1) { B0EJ = 1 << Arg0 } */
	m = aml_open(a, method_op, sizeof(method_op));
	aml_str(a, "PCEJ\x01");
	aml_str(a, "\x70\x79\x01\x68\x00"
		   "B0EJ"); /* Store (ShiftLeft (One, Arg0), B0EJ) */
	aml_close(a, m);
	for (s = 1; s < 32; s++) {
		char name[4];

		if (!(pci->hp_slots & 1u << s))
			continue;
		hp_slot_name(name, s);
		d = aml_open(a, dev_op, sizeof(dev_op));
		aml_bytes(a, name, 4);
		aml_str(a, "\x08_ADR\x0c");
		aml_le(a, (uint32_t)s << 16, 4);
		aml_name_int(a, "_SUN", (uint8_t)s);
		m = aml_open(a, method_op, sizeof(method_op));
		aml_str(a, "_EJ0\x01PCEJ\x0a"); /* Method (_EJ0, 1) { PCEJ (s) } */
		aml_byte(a, (uint8_t)s);
		aml_close(a, m);
		aml_close(a, d);
	}
	/* Method (PCNT) { Local0 = PCIU; Local1 = PCID; If (Local0 & bit) { Notify (Sxx, 1) }
	 * If (Local1 & bit) { Notify (Sxx, 3) } ... } */
	m = aml_open(a, method_op, sizeof(method_op));
	aml_str(a, "PCNT\x00\x70PCIU\x60\x70PCID\x61");
	for (s = 1; s < 32; s++) {
		char name[4];

		if (!(pci->hp_slots & 1u << s))
			continue;
		hp_slot_name(name, s);
		for (i = 0; i < 2; i++) {
			f = aml_open(a, if_op, sizeof(if_op));
			aml_byte(a, 0x7b); /* And (LocalN, bit, ) */
			aml_byte(a, (uint8_t)(0x60 + i));
			aml_byte(a, 0x0c);
			aml_le(a, 1u << s, 4);
			aml_byte(a, 0x00);
			aml_byte(a, 0x86); /* Notify (Sxx, 1 or 3) */
			aml_bytes(a, name, 4);
			aml_byte(a, 0x0a);
			aml_byte(a, i ? 3 : 1);
			aml_close(a, f);
		}
	}
	aml_close(a, m);
	/* Device (PHPR): the registers' ports, reserved. */
	d = aml_open(a, dev_op, sizeof(dev_op));
	aml_bytes(a, "PHPR", 4);
	aml_name_eisaid(a, "_HID", "PNP0A06");
	aml_name_int(a, "_UID", 2);
	aml_crs(a, hp_resources, pci);
	aml_close(a, d);
}

size_t acpi_pci_aml(uint8_t *buf, size_t cap, const struct acpi_pci *pci)
{
	static const uint8_t scope_op[] = {0x10};
	static const uint8_t sb[] = {'\\', '_', 'S', 'B', '_'};
	static const uint8_t pci0_op[] = {0x5b, 0x82};
	struct aml a = {.p = buf, .cap = cap};
	size_t scope, dev;

	scope = aml_open(&a, scope_op, sizeof(scope_op));
	aml_bytes(&a, sb, sizeof(sb));

	dev = aml_open(&a, pci0_op, sizeof(pci0_op));
	aml_bytes(&a, "PCI0", 4);
	aml_name_eisaid(&a, "_HID", "PNP0A08"); /* PCI Express root bridge */
	aml_name_eisaid(&a, "_CID", "PNP0A03"); /* PCI root bridge */
	aml_name_int(&a, "_ADR", 0);
	aml_name_int(&a, "_SEG", 0);
	aml_name_int(&a, "_UID", 0);
	aml_name_int(&a, "_BBN", 0);
	aml_crs(&a, pci0_resources, pci);
	if (pci->hp_slots)
		hp_aml(&a, pci);
	aml_close(&a, dev);

	dev = aml_open(&a, pci0_op, sizeof(pci0_op));
	aml_bytes(&a, "MRES", 4);
	aml_name_eisaid(&a, "_HID", "PNP0C02"); /* motherboard resources: the ECAM */
	aml_name_int(&a, "_UID", 1);
	aml_crs(&a, ecam_resources, pci);
	aml_close(&a, dev);

	aml_close(&a, scope);
	if (pci->hp_slots) {
		/* Scope (\_GPE) { Method (_E01) { \_SB.PCI0.PCNT () } } */
		scope = aml_open(&a, scope_op, sizeof(scope_op));
		aml_str(&a, "\\_GPE");
		dev = aml_open(&a, (const uint8_t[]){0x14}, 1);
		aml_str(&a, "_E01\x00\\\x2f\x03_SB_PCI0PCNT");
		aml_close(&a, dev);
		aml_close(&a, scope);
	}
	return a.overflow ? 0 : a.len;
}

void acpi_pci_mcfg_body(uint8_t *body, const struct acpi_pci *pci)
{
	unsigned i;

	memset(body, 0, ACPI_MCFG_SIZE - 36);
	for (i = 0; i < 8; i++) /* after 8 reserved bytes: one allocation */
		body[8 + i] = (uint8_t)(pci->ecam >> (8 * i));
	body[16] = 0; /* segment 0 */
	body[17] = 0;
	body[18] = 0;					/* start bus */
	body[19] = (uint8_t)(pci->ecam_size / MiB - 1); /* end bus */
}
