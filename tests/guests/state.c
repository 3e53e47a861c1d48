/*
 * state: a guest that counts, for save and restore (run-guest.py saves it mid-way and
 * restores it in a new keel-vmm). It runs the PIT (100 Hz, through the I/O APIC) and the
 * local APIC timer (periodic), halts with interrupts enabled between ticks, and prints
 * one numbered line every PERIOD LAPIC ticks:
 *
 *     state: tick N pit P lapic L
 *
 * Every period it checks that
 *   - both timers tick (the irqchip, the PIT and the LAPIC timer still work): the PIT
 *     may miss a line on a loaded host, never 8 lines in a row (about 32 PIT periods),
 *   - general registers held across the halt kept their values (a pattern in EBX, ESI, EDI),
 *   - XMM0 still holds the 128-bit pattern loaded at start (FPU/SSE state),
 *   - the TSC moved forward (the clock moves on sanely).
 * After `ticks=` lines (default 40) it passes. Lines are numbered so that the host can check
 * that the output of the saved run and of the restored run join without a gap or repeat.
 */
#include "lib/guest.h"

const char guest_name[] = "state";

#define PIT_VECTOR   0x20
#define LAPIC_VECTOR 0x40
#define PIT_HZ	     100
#define PIT_DIVISOR  (1193182 / PIT_HZ)
#define LAPIC_COUNT  250000 /* x16 at KVM's 1 GHz APIC bus: 4 ms */
#define PERIOD	     10	    /* LAPIC ticks per line: 40 ms */

static volatile uint32_t pit_ticks, lapic_ticks;

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

static void spurious_isr(struct isr_frame *f)
{
}

/* Halt once with a pattern in three registers; 0 if they came back unchanged. */
static int halt_with_pattern(uint32_t pat)
{
	uint32_t b, s, d;

	__asm__ volatile("mov %3, %%ebx\n\t"
			 "mov %3, %%esi\n\t"
			 "not %%esi\n\t"
			 "mov %3, %%edi\n\t"
			 "rol $7, %%edi\n\t"
			 "sti\n\t"
			 "hlt\n\t"
			 "cli\n\t"
			 : "=&b"(b), "=&S"(s), "=&D"(d)
			 : "r"(pat)
			 : "memory");
	return b == pat && s == ~pat && d == ((pat << 7) | (pat >> 25)) ? 0 : -1;
}

static const uint32_t xmm_pattern[4] = {0x01234567u, 0x89abcdefu, 0xfedcba98u, 0x76543210u};

/* SSE on (CR4.OSFXSR), then XMM0 = the pattern. The guest's C code never uses SSE. */
static void xmm_load(void)
{
	uint32_t cr4;

	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr4 |= 1u << 9;
	__asm__ volatile("mov %0, %%cr4" ::"r"(cr4));
	__asm__ volatile("movdqu %0, %%xmm0" ::"m"(xmm_pattern) : "memory");
}

static void xmm_store(uint32_t out[4])
{
	__asm__ volatile("movdqu %%xmm0, %0" : "=m"(*(uint32_t(*)[4])out)::"memory");
}

void guest_main(void)
{
	static struct acpi_madt_info madt;
	uint32_t total = mb_arg("ticks") ? (uint32_t)mb_arg_u64("ticks") : 40;
	uint32_t line, pat = 0x13579bdfu, next = PERIOD, last_pit = 0, pit_stalls = 0, gsi, xmm[4];
	uint64_t tsc, last_tsc;
	bool level, active_low;

	if (acpi_parse_madt(&madt) || !madt.nioapics)
		guest_fail("no usable MADT with an I/O APIC");
	pic_remap_and_mask();
	lapic_set_base(madt.lapic_base);
	lapic_enable();
	ioapic_set_base(madt.ioapic_base, madt.ioapic_gsi_base);
	idt_set_handler(PIT_VECTOR, pit_isr);
	idt_set_handler(LAPIC_VECTOR, lapic_isr);
	idt_set_handler(LAPIC_SPURIOUS_VEC, spurious_isr);
	acpi_isa_irq_route(&madt, 0, &gsi, &level, &active_low);
	if (ioapic_route(gsi, PIT_VECTOR, lapic_id(), level, active_low))
		guest_fail("cannot route GSI %u", gsi);

	xmm_load();

	outb(0x43, 0x34); /* channel 0, lobyte/hibyte, rate generator */
	outb(0x40, PIT_DIVISOR & 0xff);
	outb(0x40, PIT_DIVISOR >> 8);
	lapic_write(LAPIC_TIMER_DIV, 0x3);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_VECTOR | (1u << 17));
	lapic_write(LAPIC_TIMER_INIT, LAPIC_COUNT);
	guest_printf("state: counting to %u, one line every %u LAPIC ticks\n", total, PERIOD);

	last_tsc = rdtsc();
	irq_disable();
	for (line = 1; line <= total; line++) {
		while (lapic_ticks < next) {
			pat = pat * 1103515245u + 12345u;
			if (halt_with_pattern(pat))
				guest_fail("registers changed across a halt before line %u", line);
		}
		next += PERIOD;
		xmm_store(xmm);
		if (memcmp(xmm, xmm_pattern, sizeof(xmm)))
			guest_fail(
				"XMM0 holds %08x %08x %08x %08x, not the pattern loaded at start",
				xmm[0], xmm[1], xmm[2], xmm[3]);
		tsc = rdtsc();
		if (tsc <= last_tsc)
			guest_fail("the TSC went from 0x%x%08x back to 0x%x%08x",
				   (uint32_t)(last_tsc >> 32), (uint32_t)last_tsc,
				   (uint32_t)(tsc >> 32), (uint32_t)tsc);
		last_tsc = tsc;
		if (pit_ticks != last_pit)
			pit_stalls = 0;
		else if (++pit_stalls == 8)
			guest_fail("no PIT tick during lines %u-%u (pit %u, lapic %u)", line - 7,
				   line, pit_ticks, lapic_ticks);
		last_pit = pit_ticks;
		guest_printf("state: tick %u pit %u lapic %u\n", line, pit_ticks, lapic_ticks);
	}
	lapic_write(LAPIC_TIMER_INIT, 0);
	lapic_write(LAPIC_LVT_TIMER, 1u << 16);
	(void)ioapic_mask(gsi);
}
