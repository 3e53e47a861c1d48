/* Tiny guests: find and validate ACPI tables (RSDP scan, XSDT/RSDT walk, MADT parse). */
#include "guest.h"

uint8_t acpi_checksum(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (uint32_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return sum;
}

const struct acpi_rsdp *acpi_find_rsdp(void)
{
	for (uint32_t a = 0xe0000; a < 0x100000; a += 16) {
		const struct acpi_rsdp *r = (const struct acpi_rsdp *)(uintptr_t)a;
		if (memcmp(r->signature, "RSD PTR ", 8))
			continue;
		if (acpi_checksum(r, 20)) {
			guest_printf("%s: RSDP at 0x%05x: bad checksum over the first 20 bytes\n",
			             guest_name, a);
			continue;
		}
		if (r->revision >= 2) {
			if (r->length < sizeof(*r) || r->length > 4096) {
				guest_printf("%s: RSDP at 0x%05x: bad length %u\n", guest_name, a,
				             r->length);
				continue;
			}
			if (acpi_checksum(r, r->length)) {
				guest_printf("%s: RSDP at 0x%05x: bad extended checksum\n",
				             guest_name, a);
				continue;
			}
		}
		return r;
	}
	return NULL;
}

/* Validate a table header at a physical address: below 4 GiB, sane length, checksum. */
static const struct acpi_header *table_at(uint64_t addr, const char *what)
{
	if (!addr || addr >= 0x100000000ull) {
		guest_printf("%s: %s pointer 0x%llx is null or above 4 GiB\n", guest_name, what,
		             (unsigned long long)addr);
		return NULL;
	}
	const struct acpi_header *h = (const struct acpi_header *)(uintptr_t)addr;
	if (h->length < sizeof(*h) || h->length > 16u << 20 || addr + h->length > 0x100000000ull) {
		guest_printf("%s: %s at 0x%llx: bad length %u\n", guest_name, what,
		             (unsigned long long)addr, h->length);
		return NULL;
	}
	if (acpi_checksum(h, h->length)) {
		guest_printf("%s: %s (%.4s) at 0x%llx, %u bytes: bad checksum\n", guest_name, what,
		             h->signature, (unsigned long long)addr, h->length);
		return NULL;
	}
	return h;
}

const struct acpi_header *acpi_root(bool *is_xsdt)
{
	const struct acpi_rsdp *r = acpi_find_rsdp();
	if (!r)
		return NULL;
	if (r->revision >= 2 && r->xsdt) {
		const struct acpi_header *x = table_at(r->xsdt, "XSDT");
		if (!x || memcmp(x->signature, "XSDT", 4))
			return NULL;
		*is_xsdt = true;
		return x;
	}
	const struct acpi_header *t = table_at(r->rsdt, "RSDT");
	if (!t || memcmp(t->signature, "RSDT", 4))
		return NULL;
	*is_xsdt = false;
	return t;
}

const struct acpi_header *acpi_find_table(const char sig[4])
{
	bool xsdt;
	const struct acpi_header *root = acpi_root(&xsdt);
	if (!root)
		return NULL;
	uint32_t esize = xsdt ? 8 : 4;
	uint32_t n = (root->length - (uint32_t)sizeof(*root)) / esize;
	const uint8_t *p = (const uint8_t *)root + sizeof(*root);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = 0;
		memcpy(&addr, p + i * esize, esize);
		if (!addr || addr >= 0x100000000ull)
			continue;
		const struct acpi_header *h = (const struct acpi_header *)(uintptr_t)addr;
		if (memcmp(h->signature, sig, 4))
			continue;
		return table_at(addr, sig);
	}
	return NULL;
}

int acpi_parse_madt(struct acpi_madt_info *m)
{
	const struct acpi_header *h = acpi_find_table("APIC");
	memset(m, 0, sizeof(*m));
	if (!h) {
		guest_printf("%s: no valid MADT (APIC) table\n", guest_name);
		return -1;
	}
	const uint8_t *t = (const uint8_t *)h;
	if (h->length < 44) {
		guest_printf("%s: MADT too short (%u bytes)\n", guest_name, h->length);
		return -1;
	}
	memcpy(&m->lapic_base, t + 36, 4);
	for (uint32_t off = 44; off + 2 <= h->length;) {
		uint8_t type = t[off], len = t[off + 1];
		if (len < 2 || off + len > h->length) {
			guest_printf("%s: MADT entry at offset %u has bad length %u\n", guest_name,
			             off, len);
			return -1;
		}
		const uint8_t *e = t + off;
		uint32_t flags, u32;
		switch (type) {
		case 0: /* processor local APIC */
			memcpy(&flags, e + 4, 4);
			if ((flags & 1) && m->ncpus < ACPI_MAX_CPUS)
				m->apic_ids[m->ncpus++] = e[3];
			break;
		case 1: /* I/O APIC */
			if (m->nioapics++ == 0) {
				memcpy(&m->ioapic_base, e + 4, 4);
				memcpy(&m->ioapic_gsi_base, e + 8, 4);
			}
			break;
		case 2: /* interrupt source override */
			if (m->niso < ACPI_MAX_ISO) {
				struct acpi_iso *s = &m->iso[m->niso++];
				s->bus = e[2];
				s->source_irq = e[3];
				memcpy(&s->gsi, e + 4, 4);
				memcpy(&s->flags, e + 8, 2);
			}
			break;
		case 5: { /* local APIC address override */
			uint64_t a;
			memcpy(&a, e + 4, 8);
			if (a < 0x100000000ull)
				m->lapic_base = (uint32_t)a;
			break;
		}
		case 9: /* processor local x2APIC */
			memcpy(&flags, e + 8, 4);
			memcpy(&u32, e + 4, 4);
			if ((flags & 1) && m->ncpus < ACPI_MAX_CPUS)
				m->apic_ids[m->ncpus++] = u32;
			break;
		default:
			break;
		}
		off += len;
	}
	return 0;
}

void acpi_isa_irq_route(const struct acpi_madt_info *m, uint8_t irq, uint32_t *gsi, bool *level,
                        bool *active_low)
{
	/* ISA defaults: identity mapping, edge-triggered, active high. */
	*gsi = irq;
	*level = false;
	*active_low = false;
	for (uint32_t i = 0; i < m->niso; i++) {
		const struct acpi_iso *s = &m->iso[i];
		if (s->bus != 0 || s->source_irq != irq)
			continue;
		*gsi = s->gsi;
		uint16_t pol = s->flags & 3, trig = (s->flags >> 2) & 3;
		*active_low = pol == 3;
		*level = trig == 3;
	}
}
