/* Tiny guests: the 8259 PICs (remapped and masked), the local APIC and the I/O APIC. */
#include "guest.h"

static uint32_t lapic_base = LAPIC_DEFAULT_BASE;
static uint32_t ioapic_base = 0xfec00000u;
static uint32_t ioapic_gsi_base;

void pic_remap_and_mask(void)
{
	/* ICW1: edge, cascade, ICW4 follows. ICW2: vector base. ICW3: wiring. ICW4: 8086 mode. */
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, PIC_VECTOR_BASE);
	outb(0xa1, PIC_VECTOR_BASE + 8);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void lapic_set_base(uint32_t base)
{
	lapic_base = base;
}

uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(lapic_base + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(lapic_base + reg, v);
}

void lapic_enable(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x100 | LAPIC_SPURIOUS_VEC);
}

uint8_t lapic_id(void)
{
	return (uint8_t)(lapic_read(LAPIC_ID) >> 24);
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

int lapic_send_ipi(uint8_t dest_apic_id, uint32_t icr_low)
{
	lapic_write(LAPIC_ICR_HI, (uint32_t)dest_apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr_low);
	for (int i = 0; i < 100000; i++) {
		if (!(lapic_read(LAPIC_ICR_LO) & (1u << 12))) /* delivery status: idle */
			return 0;
		cpu_pause();
	}
	return -1;
}

void ioapic_set_base(uint32_t base, uint32_t gsi_base)
{
	ioapic_base = base;
	ioapic_gsi_base = gsi_base;
}

uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(ioapic_base, reg);
	return mmio_read32(ioapic_base + 0x10);
}

void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(ioapic_base, reg);
	mmio_write32(ioapic_base + 0x10, v);
}

static int ioapic_pin(uint32_t gsi, uint32_t *pin)
{
	uint32_t max = (ioapic_read(0x01) >> 16) & 0xff; /* version register: max redir entry */
	if (gsi < ioapic_gsi_base || gsi - ioapic_gsi_base > max) {
		guest_printf("%s: GSI %u is not on the I/O APIC at 0x%08x (GSIs %u-%u)\n",
		             guest_name, gsi, ioapic_base, ioapic_gsi_base, ioapic_gsi_base + max);
		return -1;
	}
	*pin = gsi - ioapic_gsi_base;
	return 0;
}

int ioapic_route(uint32_t gsi, uint8_t vector, uint8_t dest_apic_id, bool level, bool active_low)
{
	uint32_t pin;
	if (ioapic_pin(gsi, &pin))
		return -1;
	uint32_t lo = vector | (active_low ? 1u << 13 : 0) | (level ? 1u << 15 : 0);
	ioapic_write(0x10 + 2 * pin + 1, (uint32_t)dest_apic_id << 24);
	ioapic_write(0x10 + 2 * pin, lo); /* fixed delivery, physical destination, unmasked */
	return 0;
}

int ioapic_mask(uint32_t gsi)
{
	uint32_t pin;
	if (ioapic_pin(gsi, &pin))
		return -1;
	ioapic_write(0x10 + 2 * pin, 1u << 16);
	return 0;
}
