/*
 * The tiny-guest library: everything a test guest needs to talk to the VMM and to poke at the
 * platform. Guests are freestanding multiboot v1 kernels run in 32-bit protected mode, no
 * paging, flat segments, loaded at 1 MiB. Each guest defines guest_name and guest_main();
 * returning from guest_main() means the test passed.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* Debug-exit values (port 0xf4). keel-vmm and QEMU's isa-debug-exit end with (V << 1) | 1. */
#define GUEST_EXIT_PASS      0x10 /* status 33 */
#define GUEST_EXIT_FAIL      0x11 /* status 35: a check failed, the serial log says which */
#define GUEST_EXIT_EXCEPTION 0x12 /* status 37: an unexpected CPU exception or interrupt */
#define GUEST_EXIT_PORT      0xf4

/* Provided by each guest. */
extern const char guest_name[];
void guest_main(void);

/* ---- exit (exit.c) ---- */
__attribute__((noreturn)) void guest_exit(uint8_t value);
__attribute__((noreturn)) void guest_pass(void);
__attribute__((noreturn, format(printf, 1, 2))) void guest_fail(const char *fmt, ...);
__attribute__((noreturn)) void guest_halt_forever(void);

/* ---- strings and formatting (string.c, print.c) ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* Parse an unsigned decimal or 0x-prefixed hex number; the whole string must be consumed.
 * Returns 0 or -1. */
int guest_parse_u64(const char *s, uint64_t *out);
/* Unsigned 64-bit division by a 32-bit divisor without libgcc. */
uint64_t guest_udiv64(uint64_t n, uint32_t d, uint32_t *rem);
int guest_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
__attribute__((format(printf, 3, 4))) int guest_snprintf(char *buf, size_t size, const char *fmt,
                                                         ...);
/* Print to COM1. Every line of output should start with "<guest_name>: ". */
__attribute__((format(printf, 1, 2))) void guest_printf(const char *fmt, ...);
void guest_vprintf(const char *fmt, va_list ap);

/* ---- COM1 16550 UART at 0x3f8, IRQ 4 (serial.c) ---- */
#define COM1_BASE 0x3f8
#define COM1_IRQ  4
void serial_init(void);
void serial_putc(char c);
void serial_write(const char *s, size_t n);
bool serial_can_read(void);
char serial_getc_poll(void);
/* Enable or disable the "received data available" interrupt (IER bit 0). */
void serial_set_rx_irq(bool on);

/* ---- IDT and exceptions (idt.c, isr.S) ---- */
struct isr_frame {
	uint32_t edi, esi, ebp, esp_unused, ebx, edx, ecx, eax;
	uint32_t vector, error;
	uint32_t eip, cs, eflags;
};
typedef void (*isr_handler_t)(struct isr_frame *f);
void idt_init(void); /* build the IDT (BSP, once) and load it */
void idt_load(void); /* load the already built IDT (APs) */
void idt_set_handler(uint8_t vector, isr_handler_t fn);

/* ---- 8259 PIC, local APIC, I/O APIC (apic.c) ---- */
#define PIC_VECTOR_BASE 0x30 /* the 8259s are remapped here, away from the exceptions */
void pic_remap_and_mask(void);
#define LAPIC_DEFAULT_BASE 0xfee00000u
#define LAPIC_ID           0x020
#define LAPIC_VERSION      0x030
#define LAPIC_TPR          0x080
#define LAPIC_EOI          0x0b0
#define LAPIC_SVR          0x0f0
#define LAPIC_ESR          0x280
#define LAPIC_ICR_LO       0x300
#define LAPIC_ICR_HI       0x310
#define LAPIC_LVT_TIMER    0x320
#define LAPIC_LVT_LINT0    0x350
#define LAPIC_LVT_LINT1    0x360
#define LAPIC_LVT_ERROR    0x370
#define LAPIC_TIMER_INIT   0x380
#define LAPIC_TIMER_CUR    0x390
#define LAPIC_TIMER_DIV    0x3e0
#define LAPIC_SPURIOUS_VEC 0xff
void lapic_set_base(uint32_t base);
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
void lapic_enable(void); /* software-enable, TPR 0, spurious vector 0xff */
uint8_t lapic_id(void);
void lapic_eoi(void);
/* Send an IPI and wait until the local APIC reports it delivered. Returns 0 or -1. */
int lapic_send_ipi(uint8_t dest_apic_id, uint32_t icr_low);
void ioapic_set_base(uint32_t base, uint32_t gsi_base);
uint32_t ioapic_read(uint32_t reg);
void ioapic_write(uint32_t reg, uint32_t v);
/* Route a GSI to a vector on one CPU. level/active_low as the MADT says. */
int ioapic_route(uint32_t gsi, uint8_t vector, uint8_t dest_apic_id, bool level, bool active_low);
int ioapic_mask(uint32_t gsi);

/* ---- ACPI (acpi.c) ---- */
struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

#define ACPI_MAX_CPUS 256
#define ACPI_MAX_ISO  16
struct acpi_iso {
	uint8_t bus, source_irq;
	uint32_t gsi;
	uint16_t flags;
};
struct acpi_madt_info {
	uint32_t lapic_base;
	uint32_t ncpus;                   /* enabled processor entries */
	uint32_t apic_ids[ACPI_MAX_CPUS]; /* their APIC IDs, in MADT order */
	uint32_t nioapics;
	uint32_t ioapic_base, ioapic_gsi_base; /* the first I/O APIC */
	uint32_t niso;
	struct acpi_iso iso[ACPI_MAX_ISO];
};

uint8_t acpi_checksum(const void *p, uint32_t len);
/* Find and validate the RSDP (0xE0000-0xFFFFF); NULL if none. */
const struct acpi_rsdp *acpi_find_rsdp(void);
/* The root table (XSDT when the RSDP has one, else RSDT), validated; NULL if none.
 * *is_xsdt says which. */
const struct acpi_header *acpi_root(bool *is_xsdt);
/* Find table SIG through the root table; validates its checksum. NULL if absent.
 * On a bad checksum or a table above 4 GiB, prints why and returns NULL. */
const struct acpi_header *acpi_find_table(const char sig[4]);
/* Parse the MADT. Returns 0, or -1 after printing why. */
int acpi_parse_madt(struct acpi_madt_info *out);
/* The GSI, polarity and trigger an ISA IRQ arrives on, per the MADT overrides. */
void acpi_isa_irq_route(const struct acpi_madt_info *m, uint8_t irq, uint32_t *gsi, bool *level,
                        bool *active_low);

/* ---- fw_cfg, QEMU's selector interface on ports 0x510/0x511 (fwcfg.c) ---- */
#define FW_CFG_PORT_SEL  0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_RAM_SIZE  0x0003
#define FW_CFG_NB_CPUS   0x0005
void fwcfg_select(uint16_t key);
void fwcfg_read(void *buf, uint32_t len);
bool fwcfg_present(void); /* signature reads "QEMU" */
uint64_t fwcfg_read_u64(uint16_t key);
uint16_t fwcfg_read_u16(uint16_t key);

/* ---- CMOS/RTC on ports 0x70/0x71 (cmos.c) ---- */
uint8_t cmos_read(uint8_t reg);
void cmos_write(uint8_t reg, uint8_t v);

/* ---- multiboot v1 boot information, copied at entry (mb.c) ---- */
#define MB_BOOT_MAGIC 0x2badb002u
#define MB_MAX_MMAP   32
#define MB_MAX_MODS   4
struct mb_mmap_entry {
	uint64_t base, len;
	uint32_t type;
};
struct mb_module {
	uint32_t start, end;
	char string[128];
};
struct mb_copy {
	uint32_t magic;
	uint32_t info_addr;
	uint32_t flags;
	uint32_t mem_lower, mem_upper; /* KiB, valid with flag bit 0 */
	bool has_cmdline;
	uint32_t cmdline_addr, cmdline_len;
	char cmdline[1024];
	uint32_t nmmap;
	uint32_t mmap_addr, mmap_length;
	bool mmap_truncated;
	struct mb_mmap_entry mmap[MB_MAX_MMAP];
	uint32_t nmods;
	uint32_t mods_addr;
	struct mb_module mods[MB_MAX_MODS];
};
extern struct mb_copy mb;
/* Value of key=value on the command line, NULL if absent. */
const char *mb_arg(const char *key);
/* Numeric argument; fails the test with a clear message if absent or malformed. */
uint64_t mb_arg_u64(const char *key);
bool mb_arg_is(const char *key, const char *value);
/* Does [addr, addr+len) overlap memory the loader gave us (info, cmdline, mmap, modules) or
 * this kernel's image? */
bool mb_region_in_use(uint32_t addr, uint32_t len);

/* Kernel image bounds from the linker script. */
extern char __kernel_start[], __kernel_end[];

#endif
