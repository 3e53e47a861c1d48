/* Tiny guests: the IDT. Every vector has a stub (isr.S); unexpected ones end the test. */
#include "guest.h"

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t zero;
	uint8_t type_attr;
	uint16_t offset_hi;
} __attribute__((packed));

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

extern char isr_stubs[];
void isr_dispatch(struct isr_frame *f);

static struct idt_gate idt[256] __attribute__((aligned(8)));
static isr_handler_t handlers[256];

static const char *const exception_names[32] = {
        "#DE divide error",
        "#DB debug",
        "NMI",
        "#BP breakpoint",
        "#OF overflow",
        "#BR bound range",
        "#UD invalid opcode",
        "#NM device not available",
        "#DF double fault",
        "coprocessor segment overrun",
        "#TS invalid TSS",
        "#NP segment not present",
        "#SS stack fault",
        "#GP general protection",
        "#PF page fault",
        "reserved 15",
        "#MF x87 error",
        "#AC alignment check",
        "#MC machine check",
        "#XM SIMD error",
        "#VE virtualization",
        "#CP control protection",
        "reserved 22",
        "reserved 23",
        "reserved 24",
        "reserved 25",
        "reserved 26",
        "reserved 27",
        "#HV hypervisor injection",
        "#VC VMM communication",
        "#SX security",
        "reserved 31",
};

void isr_dispatch(struct isr_frame *f)
{
	uint32_t v = f->vector & 0xff;
	if (handlers[v]) {
		handlers[v](f);
		return;
	}
	if (v < 32) {
		uint32_t cr2 = 0;
		if (v == 14)
			__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
		guest_printf(
		        "%s: FAIL: unexpected exception %u (%s), error code 0x%x, at eip 0x%08x, "
		        "cr2 0x%08x, on APIC ID %u\n",
		        guest_name, v, exception_names[v], f->error, f->eip, cr2,
		        mmio_read32(LAPIC_DEFAULT_BASE + LAPIC_ID) >> 24);
	} else {
		guest_printf("%s: FAIL: unexpected interrupt on vector 0x%02x at eip 0x%08x (no "
		             "handler installed)\n",
		             guest_name, v, f->eip);
	}
	guest_exit(GUEST_EXIT_EXCEPTION);
}

void idt_load(void)
{
	struct idt_desc d = {sizeof(idt) - 1, (uint32_t)(uintptr_t)idt};
	__asm__ volatile("lidt %0" : : "m"(d));
}

void idt_init(void)
{
	for (int i = 0; i < 256; i++) {
		uint32_t addr = (uint32_t)(uintptr_t)(isr_stubs + 16 * i);
		idt[i].offset_lo = (uint16_t)addr;
		idt[i].selector = 0x08;
		idt[i].zero = 0;
		idt[i].type_attr = 0x8e; /* present, DPL 0, 32-bit interrupt gate */
		idt[i].offset_hi = (uint16_t)(addr >> 16);
	}
	idt_load();
}

void idt_set_handler(uint8_t vector, isr_handler_t fn)
{
	handlers[vector] = fn;
}
