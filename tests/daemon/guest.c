/*
 * daemon-guest: the tiny guest of keeld's end-to-end tests. It prints a banner, then waits
 * with hlt, woken every 10 ms by the local APIC timer, and:
 *  - echoes each line typed on COM1 as "daemon-guest: echo [LINE]" (the console test);
 *    the line "poweroff" powers the VM off (ACPI S5), "crash" triple-faults it, "fill"
 *    writes a word into every page of its RAM above 16 MiB (so that a save has all of it
 *    to write) and "check" says whether every one of those words is still there; "spin"
 *    spins with interrupts off (a hung kernel whose vCPU still burns CPU) until the next
 *    byte on COM1, polled; "probe N" writes the 32-bit value N to the seccomp probe's port
 *    (test builds of keel-vmm only: a request that its vCPU thread, main loop or a device
 *    thread make a system call the seccomp filter forbids; vmm/dev/seccomp_probe.h) and
 *    says what the port reads afterwards (how many forbidden calls returned; all ones with
 *    no probe);
 *  - answers the ACPI power button (PM1 status bit 8, found through the FADT) by powering
 *    off through PM1a_CNT with the DSDT's \_S5 sleep type, as a Linux guest with acpid
 *    would, unless the command line says button=ignore (to test stop timeouts).
 */
#include "lib/guest.h"

const char guest_name[] = "daemon-guest";

#define TIMER_VECTOR	   0x40
#define PM1_PWRBTN	   (1u << 8)
#define PM1_CNT_SLP_EN	   (1u << 13)
#define LINE_MAX	   128
#define PORT_SECCOMP_PROBE 0x5ec /* src/vmm/dev/seccomp_probe.h */

static volatile uint32_t ticks;

static void timer_isr(struct isr_frame *f)
{
	(void)f;
	ticks++;
	lapic_eoi();
}

/* The S5 sleep type from the DSDT's \_S5 package: "_S5_" 0x12 PkgLength NumElements then
 * the first element as ByteConst (0x0a n), ZeroOp (0) or OneOp (1). -1 if not found. */
static int find_s5(const struct acpi_header *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt + sizeof(*dsdt);
	const uint8_t *end = (const uint8_t *)dsdt + dsdt->length;

	for (; p + 8 < end; p++) {
		if (memcmp(p, "_S5_", 4) || p[4] != 0x12)
			continue;
		const uint8_t *q = p + 5;
		q += 1 + (*q >> 6); /* PkgLength: the top two bits count extra bytes */
		q++;		    /* NumElements */
		if (q + 1 >= end)
			return -1;
		if (*q == 0x0a)
			return q[1];
		if (*q <= 1)
			return *q;
		return -1;
	}
	return -1;
}

static __attribute__((noreturn)) void poweroff(uint16_t pm1_cnt, int slp_typ)
{
	guest_printf("daemon-guest: powering off (S5, SLP_TYP %d)\n", slp_typ);
	outw(pm1_cnt, (uint16_t)((slp_typ << 10) | PM1_CNT_SLP_EN));
	/* A VMM may act on the write after the vCPU has gone on: wait here. */
	guest_halt_forever();
}

/* One word per 4 KiB page from 16 MiB to the top of RAM (below 4 GiB), each different and
 * never zero; check counts the pages whose word is not there. */
#define FILL_FROM (16u << 20)

static uint32_t fill_word(uint32_t page)
{
	return page * 2654435761u | 1u;
}

static void fill_memory(bool check)
{
	uint32_t top = 0x100000u + mb.mem_upper * 1024u, pages = 0, bad = 0;

	for (uint32_t a = FILL_FROM; a >= FILL_FROM && a + 4096u <= top; a += 4096u, pages++) {
		volatile uint32_t *w = (volatile uint32_t *)(uintptr_t)a;

		if (!check)
			*w = fill_word(a >> 12);
		else if (*w != fill_word(a >> 12))
			bad++;
	}
	if (check)
		guest_printf("daemon-guest: checked %u pages: %u differ\n", pages, bad);
	else
		guest_printf("daemon-guest: filled %u pages\n", pages);
}

/* Interrupts off, the vCPU busy: the timer's interrupts stay pending, none is taken. */
static void spin(void)
{
	guest_printf("daemon-guest: spinning with interrupts off\n");
	while (!serial_can_read())
		;
	guest_printf("daemon-guest: spin ended\n");
}

/* "probe N": N in decimal or 0x hex, written as one 32-bit value. */
static void probe(const char *arg)
{
	uint64_t v;

	if (guest_parse_u64(arg, &v) || v > 0xffffffffu) {
		guest_printf("daemon-guest: probe: '%s' is not a 32-bit number\n", arg);
		return;
	}
	guest_printf("daemon-guest: probe writes 0x%x\n", (uint32_t)v);
	outl(PORT_SECCOMP_PROBE, (uint32_t)v);
	guest_printf("daemon-guest: probe reads 0x%x\n", inl(PORT_SECCOMP_PROBE));
}

static __attribute__((noreturn)) void crash(void)
{
	static const struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) empty = {0, 0};

	guest_printf("daemon-guest: crashing (empty IDT, then int3: triple fault)\n");
	__asm__ volatile("lidt %0; int3" : : "m"(empty));
	guest_halt_forever();
}

void guest_main(void)
{
	const struct acpi_header *fadt = acpi_find_table("FACP");
	const struct acpi_header *dsdt = NULL;
	uint16_t pm1_evt = 0, pm1_cnt = 0;
	int slp_typ = -1;
	bool ignore_button = mb_arg_is("button", "ignore");
	char line[LINE_MAX];
	uint32_t n = 0;

	if (fadt && fadt->length >= 68) {
		const uint8_t *f = (const uint8_t *)fadt;
		uint32_t dsdt_addr;
		pm1_evt = (uint16_t)(f[56] | f[57] << 8);
		pm1_cnt = (uint16_t)(f[64] | f[65] << 8);
		memcpy(&dsdt_addr, f + 40, 4);
		if (dsdt_addr && !memcmp((const void *)(uintptr_t)dsdt_addr, "DSDT", 4))
			dsdt = (const struct acpi_header *)(uintptr_t)dsdt_addr;
		if (dsdt)
			slp_typ = find_s5(dsdt);
	}
	guest_printf("daemon-guest: up; cmdline [%s]; PM1 event 0x%x control 0x%x, S5 type %d%s\n",
		     mb.has_cmdline ? mb.cmdline : "", pm1_evt, pm1_cnt, slp_typ,
		     ignore_button ? "; ignoring the power button" : "");
	if (pm1_evt) {
		outw(pm1_evt, PM1_PWRBTN);		   /* clear a stale status */
		outw((uint16_t)(pm1_evt + 2), PM1_PWRBTN); /* PWRBTN_EN */
	}
	pic_remap_and_mask();
	lapic_enable();
	idt_set_handler(TIMER_VECTOR, timer_isr);
	lapic_write(LAPIC_TIMER_DIV, 0x3);			 /* divide by 16 */
	lapic_write(LAPIC_LVT_TIMER, TIMER_VECTOR | (1u << 17)); /* periodic */
	lapic_write(LAPIC_TIMER_INIT, 625000);			 /* 10 ms at a 1 GHz APIC bus */
	guest_printf("daemon-guest: ready for input\n");

	for (;;) {
		irq_disable();
		irq_enable_and_halt();
		irq_disable();
		while (serial_can_read()) {
			char c = (char)inb(COM1_BASE);
			if (c != '\n' && c != '\r') {
				if (n < LINE_MAX - 1)
					line[n++] = c;
				continue;
			}
			if (!n)
				continue;
			line[n] = '\0';
			n = 0;
			guest_printf("daemon-guest: echo [%s]\n", line);
			if (!strcmp(line, "poweroff") && pm1_cnt && slp_typ >= 0)
				poweroff(pm1_cnt, slp_typ);
			if (!strcmp(line, "crash"))
				crash();
			if (!strcmp(line, "spin"))
				spin(); /* irq_disable()d above */
			if (!strcmp(line, "fill") || !strcmp(line, "check"))
				fill_memory(!strcmp(line, "check"));
			if (!strncmp(line, "probe ", 6))
				probe(line + 6);
		}
		if (pm1_evt && (inw(pm1_evt) & PM1_PWRBTN)) {
			outw(pm1_evt, PM1_PWRBTN); /* write 1 to clear */
			guest_printf("daemon-guest: power button pressed%s\n",
				     ignore_button ? " (ignored)" : "");
			if (!ignore_button && pm1_cnt && slp_typ >= 0)
				poweroff(pm1_cnt, slp_typ);
		}
	}
}
