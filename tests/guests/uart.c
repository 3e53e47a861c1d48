/*
 * uart: the 16550A register behaviour Linux's 8250 driver probes before it will use COM1:
 * scratch register, divisor latch and LCR read-back, FIFO identification in IIR bits 7:6,
 * loopback (MCR bit 4: MSR mirrors the modem-control outputs, THR bytes come back in RBR and
 * do not leave the VM), and the transmitter-empty interrupt (IER bit 1): IIR reports it at
 * once while THR is empty, reading IIR clears it, and it reaches the CPU as IRQ 4.
 */
#include "lib/guest.h"

const char guest_name[] = "uart";

#define UART(r)      (COM1_BASE + (r))
#define RBR          0
#define THR          0
#define IER          1
#define IIR          2
#define FCR          2
#define LCR          3
#define MCR          4
#define LSR          5
#define MSR          6
#define SCR          7
#define IRQ_VECTOR   0x24
#define TICK_VECTOR  0x40
#define TICK_COUNT   625000 /* x16 at KVM's 1 GHz APIC bus: 10 ms */
#define TIMEOUT_TICK 100    /* 1 s */

static volatile uint32_t irqs, ticks;
static volatile uint8_t irq_iir;

static void uart_isr(struct isr_frame *f)
{
	irq_iir = inb(UART(IIR)); /* reading IIR acknowledges a THRE interrupt */
	irqs++;
	outb(UART(IER), 0);
	lapic_eoi();
}

static void tick_isr(struct isr_frame *f)
{
	ticks++;
	lapic_eoi();
}

static void expect8(const char *what, uint8_t got, uint8_t want)
{
	if (got != want)
		guest_fail("%s: read 0x%02x, expected 0x%02x", what, got, want);
}

void guest_main(void)
{
	/* Scratch register. */
	outb(UART(SCR), 0x5a);
	expect8("scratch register after writing 0x5a", inb(UART(SCR)), 0x5a);
	outb(UART(SCR), 0xa5);
	expect8("scratch register after writing 0xa5", inb(UART(SCR)), 0xa5);

	/* Divisor latch and LCR. */
	outb(UART(LCR), 0x80);
	outb(UART(0), 0x0c);
	outb(UART(1), 0x00);
	expect8("divisor latch low (DLAB=1) after writing 0x0c", inb(UART(0)), 0x0c);
	expect8("divisor latch high (DLAB=1) after writing 0x00", inb(UART(1)), 0x00);
	outb(UART(0), 0x01); /* back to 115200 */
	outb(UART(LCR), 0x03);
	expect8("LCR after writing 0x03", inb(UART(LCR)), 0x03);

	/* FIFO: a 16550A reports enabled FIFOs as IIR bits 7:6 = 11. */
	outb(UART(FCR), 0x07);
	uint8_t iir = inb(UART(IIR));
	if ((iir & 0xc0) != 0xc0)
		guest_fail("IIR 0x%02x after enabling the FIFO (FCR 0x07): bits 7:6 should be 11 "
		           "(16550A)",
		           iir);
	guest_printf("uart: scratch, divisor latch, LCR and FIFO identification ok (IIR 0x%02x)\n",
	             iir);

	/* Loopback: Linux writes MCR = LOOP | RTS | OUT2 and wants MSR[7:4] = DCD | CTS. */
	while (inb(UART(LSR)) & 0x01)
		(void)inb(UART(RBR));
	outb(UART(MCR), 0x10 | 0x0a);
	uint8_t msr = inb(UART(MSR)) & 0xf0;
	if (msr != 0x90) {
		outb(UART(MCR), 0x0b);
		guest_fail("loopback MCR 0x1a: MSR[7:4] is 0x%02x, expected 0x90 (DCD|CTS); Linux "
		           "would find no UART",
		           msr);
	}
	outb(UART(MCR), 0x10 | 0x05); /* DTR | OUT1 -> DSR | RI */
	msr = inb(UART(MSR)) & 0xf0;
	if (msr != 0x60) {
		outb(UART(MCR), 0x0b);
		guest_fail("loopback MCR 0x15: MSR[7:4] is 0x%02x, expected 0x60 (RI|DSR)", msr);
	}
	outb(UART(THR), 0xa7);
	uint8_t lsr = 0;
	for (int i = 0; i < 1000 && !((lsr = inb(UART(LSR))) & 0x01); i++)
		cpu_pause();
	uint8_t back = (lsr & 0x01) ? inb(UART(RBR)) : 0;
	outb(UART(MCR), 0x0b);
	if (!(lsr & 0x01))
		guest_fail("loopback: a byte written to THR did not arrive in RBR (LSR 0x%02x)",
		           lsr);
	if (back != 0xa7)
		guest_fail("loopback: wrote 0xa7 to THR, read 0x%02x from RBR", back);
	guest_printf("uart: loopback ok (MSR mirrors MCR, THR byte returned in RBR)\n");

	/* THRE interrupt, as Linux's startup code probes it (interrupts off at the CPU). */
	for (int i = 0; i < 100000 && !(inb(UART(LSR)) & 0x40); i++) /* TEMT */
		cpu_pause();
	irq_disable();
	outb(UART(IER), 0x02);
	uint8_t iir1 = inb(UART(IIR));
	outb(UART(IER), 0x00);
	outb(UART(IER), 0x02);
	uint8_t iir2 = inb(UART(IIR));
	uint8_t iir3 = inb(UART(IIR));
	outb(UART(IER), 0x00);
	if ((iir1 & 0x0f) != 0x02 || (iir2 & 0x0f) != 0x02)
		guest_fail(
		        "IER=0x02 with THR empty: IIR reads 0x%02x then (after IER off/on) 0x%02x, "
		        "expected the THRE interrupt (low nibble 0x2) both times",
		        iir1, iir2);
	if ((iir3 & 0x0f) != 0x01)
		guest_fail("THRE interrupt still pending after IIR was read (IIR 0x%02x, expected "
		           "low nibble 0x1)",
		           iir3);

	/* ...and delivered: IRQ 4 through the I/O APIC. */
	static struct acpi_madt_info madt;
	if (acpi_parse_madt(&madt) || !madt.nioapics)
		guest_fail("no usable MADT with an I/O APIC");
	pic_remap_and_mask();
	lapic_set_base(madt.lapic_base);
	lapic_enable();
	ioapic_set_base(madt.ioapic_base, madt.ioapic_gsi_base);
	uint32_t gsi;
	bool level, active_low;
	acpi_isa_irq_route(&madt, COM1_IRQ, &gsi, &level, &active_low);
	idt_set_handler(IRQ_VECTOR, uart_isr);
	idt_set_handler(TICK_VECTOR, tick_isr);
	if (ioapic_route(gsi, IRQ_VECTOR, lapic_id(), level, active_low))
		guest_fail("cannot route GSI %u", gsi);
	lapic_write(LAPIC_TIMER_DIV, 0x3);
	lapic_write(LAPIC_LVT_TIMER, TICK_VECTOR | (1u << 17));
	lapic_write(LAPIC_TIMER_INIT, TICK_COUNT);
	outb(UART(IER), 0x02);
	while (!irqs && ticks < TIMEOUT_TICK)
		irq_enable_and_halt(), irq_disable();
	lapic_write(LAPIC_TIMER_INIT, 0);
	irq_enable();
	outb(UART(IER), 0x00);
	if (!irqs)
		guest_fail("no IRQ 4 (GSI %u) within 1 s of enabling the THRE interrupt", gsi);
	if ((irq_iir & 0x0f) != 0x02)
		guest_fail("IRQ 4 arrived but IIR reads 0x%02x, expected the THRE interrupt (0x2)",
		           irq_iir);
	guest_printf("uart: THRE interrupt ok (IIR 0x%02x 0x%02x, IRQ 4 -> GSI %u delivered)\n",
	             iir1, irq_iir, gsi);
}
