/*
 * timer: interrupts are delivered with interrupts enabled while the CPU halts.
 * 1. The PIT (8254 channel 0, rate generator at 100 Hz) on ISA IRQ 0, routed as the MADT
 *    says (an interrupt source override IRQ 0 -> GSI 2 on PC platforms) through the I/O APIC
 *    to vector 0x20; the 8259s are remapped and fully masked so only the I/O APIC path counts.
 * 2. The local APIC timer, periodic, vector 0x40.
 * 3. The local APIC timer in TSC-deadline mode (CPUID 1 ECX bit 24, which the VMM offers where
 *    KVM emulates it): one interrupt per deadline written to IA32_TSC_DEADLINE, each at or
 *    after the TSC value written; a deadline written as 0 disarms.
 */
#include "lib/guest.h"

const char guest_name[] = "timer";

#define PIT_VECTOR   0x20
#define LAPIC_VECTOR 0x40
#define WANT_TICKS   5
#define PIT_HZ       100
#define PIT_DIVISOR  (1193182 / PIT_HZ)
#define LAPIC_COUNT  250000 /* x16 at KVM's 1 GHz APIC bus: 4 ms */
#define MAX_HALTS    100000 /* a bound on wakeups, so a storm of other interrupts ends */
#define MSR_TSC_DEADLINE 0x6e0
#define DEADLINE_TSC	 4000000ull /* TSC ticks from now to each deadline (ms at GHz rates) */

static volatile uint32_t pit_ticks, lapic_ticks, halts;
static volatile uint64_t deadline, early; /* the deadline armed; interrupts taken before it */

static void pit_isr(struct isr_frame *f)
{
	pit_ticks++;
	lapic_eoi();
}

static void lapic_isr(struct isr_frame *f)
{
	lapic_ticks++;
	lapic_eoi();
}

/* TSC-deadline mode: each interrupt comes at or after its deadline; the next is armed here
 * until WANT_TICKS came. */
static void deadline_isr(struct isr_frame *f)
{
	if (rdtsc() < deadline)
		early++;
	if (++lapic_ticks < WANT_TICKS) {
		deadline = rdtsc() + DEADLINE_TSC;
		wrmsr(MSR_TSC_DEADLINE, deadline);
	}
	lapic_eoi();
}

static void spurious_isr(struct isr_frame *f)
{
	/* Spurious APIC interrupts need no EOI. */
}

static void wait_ticks(volatile uint32_t *counter, const char *what)
{
	guest_printf("timer: waiting for %u %s ticks (hlt with interrupts enabled)\n", WANT_TICKS,
	             what);
	irq_disable();
	while (*counter < WANT_TICKS && halts < MAX_HALTS) {
		halts++;
		irq_enable_and_halt();
		irq_disable();
	}
	if (*counter < WANT_TICKS)
		guest_fail("only %u %s ticks after %u wakeups from hlt", *counter, what, halts);
}

void guest_main(void)
{
	static struct acpi_madt_info madt;
	if (acpi_parse_madt(&madt))
		guest_fail("no usable MADT");
	if (!madt.nioapics)
		guest_fail("the MADT lists no I/O APIC");
	pic_remap_and_mask();
	lapic_set_base(madt.lapic_base);
	lapic_enable();
	ioapic_set_base(madt.ioapic_base, madt.ioapic_gsi_base);
	idt_set_handler(PIT_VECTOR, pit_isr);
	idt_set_handler(LAPIC_VECTOR, lapic_isr);
	idt_set_handler(LAPIC_SPURIOUS_VEC, spurious_isr);

	/* PIT through the I/O APIC. */
	uint32_t gsi;
	bool level, active_low;
	acpi_isa_irq_route(&madt, 0, &gsi, &level, &active_low);
	guest_printf("timer: PIT IRQ 0 -> GSI %u (%s, %s) on the I/O APIC at 0x%08x\n", gsi,
	             level ? "level" : "edge", active_low ? "active low" : "active high",
	             madt.ioapic_base);
	if (ioapic_route(gsi, PIT_VECTOR, lapic_id(), level, active_low))
		guest_fail("cannot route GSI %u", gsi);
	outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 (rate generator), binary */
	outb(0x40, PIT_DIVISOR & 0xff);
	outb(0x40, PIT_DIVISOR >> 8);
	wait_ticks(&pit_ticks, "PIT");
	(void)ioapic_mask(gsi);
	outb(0x43, 0x30); /* channel 0, mode 0, count never reloaded: one last edge at most */
	outb(0x40, 0);
	outb(0x40, 0);
	guest_printf("timer: %u PIT ticks on vector 0x%02x after %u halts\n", pit_ticks, PIT_VECTOR,
	             halts);

	/* Local APIC timer, periodic. */
	halts = 0;
	lapic_write(LAPIC_TIMER_DIV, 0x3); /* divide by 16 */
	lapic_write(LAPIC_LVT_TIMER, LAPIC_VECTOR | (1u << 17));
	lapic_write(LAPIC_TIMER_INIT, LAPIC_COUNT);
	wait_ticks(&lapic_ticks, "LAPIC timer");
	lapic_write(LAPIC_TIMER_INIT, 0);
	lapic_write(LAPIC_LVT_TIMER, 1u << 16);
	guest_printf("timer: %u LAPIC timer ticks on vector 0x%02x after %u halts\n", lapic_ticks,
	             LAPIC_VECTOR, halts);

	/* Local APIC timer, TSC-deadline mode. */
	uint32_t id[4];
	cpuid(1, 0, id);
	if (!(id[2] & (1u << 24)))
		guest_fail("CPUID 1 ECX 0x%08x: no TSC-deadline timer offered", id[2]);
	halts = 0;
	lapic_ticks = 0;
	idt_set_handler(LAPIC_VECTOR, deadline_isr);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_VECTOR | (2u << 17));
	deadline = rdtsc() + DEADLINE_TSC;
	wrmsr(MSR_TSC_DEADLINE, deadline);
	wait_ticks(&lapic_ticks, "TSC-deadline");
	if (early)
		guest_fail("%u TSC-deadline interrupts came before their deadline", (unsigned)early);
	/* Disarmed by a deadline of 0: a deadline armed ahead and then written as 0 never comes.
	 * The last interrupt above armed none, so one is armed here first (read back: the LVT is
	 * in TSC-deadline mode), and the wait runs past it. No timing assumed: a try whose disarm
	 * did not land before its deadline (the vCPU held up in between) proves nothing and is
	 * made again, a bounded number of times. */
	uint32_t seen = lapic_ticks, tries = 0;
	uint64_t armed, back;
	for (;;) {
		armed = rdtsc() + 4 * DEADLINE_TSC;
		deadline = armed;
		wrmsr(MSR_TSC_DEADLINE, armed);
		back = rdmsr(MSR_TSC_DEADLINE);
		wrmsr(MSR_TSC_DEADLINE, 0);
		if (rdtsc() < armed) {
			/* Read back before its deadline: armed (0 once it fired). */
			if (back != armed)
				guest_fail("IA32_TSC_DEADLINE reads 0x%llx after writing 0x%llx",
					   (unsigned long long)back, (unsigned long long)armed);
			break;
		}
		if (++tries == 100)
			guest_fail("no TSC-deadline disarm landed before its deadline in %u tries",
				   tries);
		/* Too late: its interrupt may be pending; take it before the next try. */
		irq_enable();
		while (rdtsc() < armed + DEADLINE_TSC)
			__asm__ volatile("pause");
		irq_disable();
		seen = lapic_ticks;
	}
	if (rdmsr(MSR_TSC_DEADLINE) != 0)
		guest_fail("IA32_TSC_DEADLINE reads 0x%llx after writing 0",
			   (unsigned long long)rdmsr(MSR_TSC_DEADLINE));
	irq_enable();
	while (rdtsc() < armed + 4 * DEADLINE_TSC)
		__asm__ volatile("pause");
	irq_disable();
	if (lapic_ticks != seen)
		guest_fail("a TSC-deadline interrupt after the deadline was disarmed");
	lapic_write(LAPIC_LVT_TIMER, 1u << 16);
	guest_printf("timer: %u TSC-deadline interrupts on vector 0x%02x after %u halts, none early, "
		     "none once disarmed\n",
		     lapic_ticks, LAPIC_VECTOR, halts);
}
