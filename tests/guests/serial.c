/*
 * serial: output on COM1, then (with input=1) input: one line read by polling LSR.DR and
 * echoed upper-cased, one line read from the receive interrupt (IRQ 4 through the I/O APIC)
 * and echoed reversed. The runner feeds each line after the matching "ready" prompt.
 */
#include "lib/guest.h"

const char guest_name[] = "serial";

#define RX_VECTOR 0x24
#define LINE_MAX  128

static volatile char irq_line[LINE_MAX];
static volatile uint32_t irq_len;
static volatile bool irq_done;
static volatile uint32_t irq_count;

static void rx_isr(struct isr_frame *f)
{
	(void)f;
	irq_count++;
	while (serial_can_read()) {
		char c = (char)inb(COM1_BASE);
		if (irq_done)
			continue;
		if (c == '\n' || c == '\r') {
			if (irq_len)
				irq_done = true;
		} else if (irq_len < LINE_MAX - 1) {
			irq_line[irq_len++] = c;
		}
	}
	lapic_eoi();
}

static uint32_t read_line_poll(char *buf, uint32_t size)
{
	uint32_t n = 0;
	for (;;) {
		char c = serial_getc_poll();
		if (c == '\n' || c == '\r') {
			if (n)
				break;
			continue;
		}
		if (n < size - 1)
			buf[n++] = c;
	}
	buf[n] = '\0';
	return n;
}

void guest_main(void)
{
	guest_printf("serial: hello from the keel tiny guest on COM1\n");
	guest_printf("serial: 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n");
	if (!mb_arg_is("input", "1"))
		return;

	/* Polled input. */
	char line[LINE_MAX];
	guest_printf("serial: ready for a line (polled)\n");
	uint32_t n = read_line_poll(line, sizeof(line));
	for (uint32_t i = 0; i < n; i++)
		if (line[i] >= 'a' && line[i] <= 'z')
			line[i] = (char)(line[i] - 'a' + 'A');
	guest_printf("serial: polled line upper-cased: [%s]\n", line);

	/* Interrupt-driven input: ISA IRQ 4 -> (MADT) GSI -> I/O APIC -> vector 0x24. */
	struct acpi_madt_info madt;
	if (acpi_parse_madt(&madt))
		guest_fail("no usable MADT, cannot route IRQ 4");
	if (!madt.nioapics)
		guest_fail("the MADT lists no I/O APIC, cannot route IRQ 4");
	pic_remap_and_mask();
	lapic_set_base(madt.lapic_base);
	lapic_enable();
	ioapic_set_base(madt.ioapic_base, madt.ioapic_gsi_base);
	uint32_t gsi;
	bool level, active_low;
	acpi_isa_irq_route(&madt, COM1_IRQ, &gsi, &level, &active_low);
	idt_set_handler(RX_VECTOR, rx_isr);
	if (ioapic_route(gsi, RX_VECTOR, lapic_id(), level, active_low))
		guest_fail("cannot route IRQ 4 (GSI %u) through the I/O APIC", gsi);
	/* Drain anything stale, then enable the receive interrupt. */
	while (serial_can_read())
		(void)inb(COM1_BASE);
	serial_set_rx_irq(true);
	guest_printf("serial: ready for a line (irq 4 -> gsi %u -> vector 0x%02x)\n", gsi,
	             RX_VECTOR);
	irq_disable();
	while (!irq_done)
		irq_enable_and_halt(), irq_disable();
	serial_set_rx_irq(false);
	char rev[LINE_MAX];
	uint32_t len = irq_len;
	for (uint32_t i = 0; i < len; i++)
		rev[i] = irq_line[len - 1 - i];
	rev[len] = '\0';
	guest_printf("serial: irq line reversed: [%s] (%u interrupts)\n", rev, irq_count);
}
