/*
 * smp: every CPU in the ACPI MADT comes up. The BSP copies a real-mode trampoline below
 * 1 MiB, sends INIT-SIPI-SIPI to each AP's APIC ID from the MADT, and each AP reaches 32-bit
 * protected mode, records its APIC ID, counts itself in atomically and wakes the BSP with an
 * IPI. Checks: checked-in count == MADT CPU count == fw_cfg CPU count == cpus=N argument,
 * APIC IDs unique and in the MADT, CPUID.01H initial APIC ID and CPUID.0BH x2APIC ID (when
 * present) == LAPIC ID on every CPU.
 */
#include "lib/guest.h"

const char guest_name[] = "smp";

extern char ap_tramp_start[], ap_tramp_end[], ap_tramp_gdt_desc[];
void guest_ap_main(void);

#define WAKE_VECTOR   0x50
#define TICK_VECTOR   0x40
#define TICK_COUNT    625000 /* x16 at KVM's 1 GHz APIC bus: 10 ms */
#define TIMEOUT_TICKS 800    /* 8 s */

static volatile uint32_t aps_in;      /* APs that checked in */
static volatile uint8_t ap_seen[256]; /* by APIC ID */
static volatile uint32_t duplicate_id = 0xffffffff;
static volatile uint32_t cpuid_mismatch = 0xffffffff; /* LAPIC ID << 8 | CPUID initial APIC ID */
static volatile uint32_t leafb_mismatch = 0xffffffff; /* LAPIC ID << 8 | CPUID.0BH x2APIC ID */
static volatile uint32_t ticks;
static volatile uint8_t bsp_apic_id;

static void tick_isr(struct isr_frame *f)
{
	ticks++;
	lapic_eoi();
}

static void wake_isr(struct isr_frame *f)
{
	lapic_eoi();
}

/* CPUID.01H:EBX[31:24], the initial APIC ID: must match the local APIC's ID register. */
static uint8_t cpuid_initial_apic_id(void)
{
	uint32_t a = 1, b, c = 0, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return (uint8_t)(b >> 24);
}

/* CPUID.0BH:EDX, the x2APIC ID, when leaf 0BH exists and is valid; -1 otherwise. */
static int64_t cpuid_x2apic_id(void)
{
	uint32_t r[4];
	cpuid(0, 0, r);
	if (r[0] < 0x0b)
		return -1;
	cpuid(0x0b, 0, r);
	if (!r[1])
		return -1;
	return r[3];
}

void guest_ap_main(void)
{
	idt_load();
	lapic_enable();
	uint8_t id = lapic_id();
	uint8_t initial = cpuid_initial_apic_id();
	if (initial != id)
		cpuid_mismatch = (uint32_t)id << 8 | initial;
	int64_t x2 = cpuid_x2apic_id();
	if (x2 >= 0 && x2 != id)
		leafb_mismatch = (uint32_t)id << 8 | (uint8_t)x2;
	if (__atomic_exchange_n(&ap_seen[id], 1, __ATOMIC_SEQ_CST))
		duplicate_id = id;
	__atomic_fetch_add(&aps_in, 1, __ATOMIC_SEQ_CST);
	(void)lapic_send_ipi(bsp_apic_id, WAKE_VECTOR); /* fixed delivery, edge */
	guest_halt_forever();
}

/* Sleep for n LAPIC timer ticks with interrupts enabled. */
static void sleep_ticks(uint32_t n)
{
	uint32_t until = ticks + n;
	irq_disable();
	while ((int32_t)(ticks - until) < 0)
		irq_enable_and_halt(), irq_disable();
}

static uint32_t pick_trampoline_page(uint32_t size)
{
	uint32_t top = mb.mem_lower ? mb.mem_lower * 1024 : 0x9f000;
	for (uint32_t page = 0x8000; page + 0x1000 <= top && page < 0x100000; page += 0x1000) {
		if (mb_region_in_use(page, 0x1000))
			continue;
		const uint8_t *p = (const uint8_t *)(uintptr_t)page;
		bool zero = true;
		for (uint32_t i = 0; i < size && zero; i++)
			zero = p[i] == 0;
		if (zero)
			return page;
	}
	return 0;
}

/* With reboot=1: after boot 1 passes, reset through the i8042 and bring every AP up again on
 * boot 2 (the VMM must reset all vCPUs, not only the BSP). CMOS NVRAM 0x7c/0x7d count boots. */
#define NV_MARKER 0x7c
#define NV_COUNT  0x7d
#define MARKER    0x53 /* 'S' */

static uint8_t next_boot(void)
{
	uint8_t count = cmos_read(NV_MARKER) == MARKER ? cmos_read(NV_COUNT) : 0;
	count++;
	cmos_write(NV_MARKER, MARKER);
	cmos_write(NV_COUNT, count);
	return count;
}

static void check_cpus(uint32_t want);

void guest_main(void)
{
	uint32_t want = (uint32_t)mb_arg_u64("cpus");
	if (!mb_arg_is("reboot", "1")) {
		check_cpus(want);
		return;
	}
	uint8_t boot = next_boot();
	guest_printf("smp: boot %u\n", boot);
	if (boot > 2)
		guest_fail("boot %u: the VM was reset more often than asked", boot);
	check_cpus(want);
	if (boot == 2) {
		cmos_write(NV_MARKER, 0);
		return;
	}
	guest_printf("smp: boot 1 passed, resetting through the i8042\n");
	for (int i = 0; i < 100000 && (inb(0x64) & 0x02); i++)
		cpu_pause();
	outb(0x64, 0xfe);
	uint64_t t0 = rdtsc();
	for (uint32_t i = 0; i < 20000000 && rdtsc() - t0 < 3000000000ull; i++)
		cpu_pause();
	guest_fail("still running after the i8042 reset command (0xfe to port 0x64)");
}

static void check_cpus(uint32_t want)
{

	if (!fwcfg_present())
		guest_fail("fw_cfg signature is not \"QEMU\" at ports 0x510/0x511");
	uint32_t fw_cpus = fwcfg_read_u16(FW_CFG_NB_CPUS);

	static struct acpi_madt_info madt;
	if (acpi_parse_madt(&madt))
		guest_fail("no usable MADT");
	lapic_set_base(madt.lapic_base);
	lapic_enable();
	bsp_apic_id = lapic_id();
	if (cpuid_initial_apic_id() != bsp_apic_id)
		guest_fail("BSP: CPUID.01H initial APIC ID %u differs from its LAPIC ID %u",
		           cpuid_initial_apic_id(), bsp_apic_id);
	int64_t bsp_x2 = cpuid_x2apic_id();
	if (bsp_x2 >= 0 && bsp_x2 != bsp_apic_id)
		guest_fail("BSP: CPUID.0BH x2APIC ID %lld differs from its LAPIC ID %u",
		           (long long)bsp_x2, bsp_apic_id);

	char ids[256];
	uint32_t n = 0;
	bool bsp_listed = false;
	for (uint32_t i = 0; i < madt.ncpus; i++) {
		n += (uint32_t)guest_snprintf(ids + n, sizeof(ids) - n, "%s%u", i ? " " : "",
		                              madt.apic_ids[i]);
		if (n >= sizeof(ids))
			n = sizeof(ids) - 1;
		bsp_listed |= madt.apic_ids[i] == bsp_apic_id;
	}
	guest_printf("smp: MADT lists %u CPUs (APIC IDs: %s), fw_cfg says %u, cpus=%u, BSP APIC "
	             "ID %u\n",
	             madt.ncpus, ids, fw_cpus, want, bsp_apic_id);
	if (madt.ncpus != want)
		guest_fail("expected %u CPUs (cpus=%u), the MADT lists %u", want, want, madt.ncpus);
	if (fw_cpus != want)
		guest_fail("expected %u CPUs (cpus=%u), fw_cfg CPU count (0x0005) says %u", want,
		           want, fw_cpus);
	if (!bsp_listed)
		guest_fail("the BSP's APIC ID %u is not in the MADT", bsp_apic_id);

	/* A periodic LAPIC timer bounds every wait; IPIs from the APs wake us early. */
	idt_set_handler(TICK_VECTOR, tick_isr);
	idt_set_handler(WAKE_VECTOR, wake_isr);
	pic_remap_and_mask();
	lapic_write(LAPIC_TIMER_DIV, 0x3);                      /* divide by 16 */
	lapic_write(LAPIC_LVT_TIMER, TICK_VECTOR | (1u << 17)); /* periodic */
	lapic_write(LAPIC_TIMER_INIT, TICK_COUNT);

	if (want > 1) {
		uint32_t size = (uint32_t)(ap_tramp_end - ap_tramp_start);
		uint32_t page = pick_trampoline_page(size);
		if (!page)
			guest_fail("no free page below 1 MiB for the AP trampoline");
		memcpy((void *)(uintptr_t)page, ap_tramp_start, size);
		__asm__ volatile(
		        "sgdt %0"
		        : "=m"(*(char(*)[6])(
		                uintptr_t)(page + (uint32_t)(ap_tramp_gdt_desc - ap_tramp_start))));
		guest_printf("smp: trampoline at 0x%05x (%u bytes), starting %u APs\n", page, size,
		             want - 1);
		for (uint32_t i = 0; i < madt.ncpus; i++) {
			uint8_t id = (uint8_t)madt.apic_ids[i];
			if (id == bsp_apic_id)
				continue;
			/* INIT assert (level), INIT de-assert, then two start-up IPIs. */
			if (lapic_send_ipi(id, 0x00004500) || lapic_send_ipi(id, 0x00008500))
				guest_fail("INIT IPI to APIC ID %u was not delivered", id);
			sleep_ticks(1);
			for (int s = 0; s < 2; s++) {
				if (lapic_send_ipi(id, 0x00004600 | (page >> 12)))
					guest_fail("SIPI to APIC ID %u was not delivered", id);
				sleep_ticks(1);
			}
		}
		uint32_t deadline = ticks + TIMEOUT_TICKS;
		irq_disable();
		while (aps_in < want - 1 && (int32_t)(ticks - deadline) < 0)
			irq_enable_and_halt(), irq_disable();
		irq_enable();
	}
	lapic_write(LAPIC_TIMER_INIT, 0);

	uint32_t in = 1 + aps_in;
	n = 0;
	ids[0] = '\0';
	char missing[256] = "";
	uint32_t nm = 0;
	for (uint32_t i = 0; i < madt.ncpus; i++) {
		uint32_t id = madt.apic_ids[i];
		bool seen = id == bsp_apic_id || (id < 256 && ap_seen[id]);
		if (seen)
			n += (uint32_t)guest_snprintf(ids + n, sizeof(ids) - n, "%s%u",
			                              n ? " " : "", id);
		else
			nm += (uint32_t)guest_snprintf(missing + nm, sizeof(missing) - nm, "%s%u",
			                               nm ? " " : "", id);
		if (n >= sizeof(ids))
			n = sizeof(ids) - 1;
		if (nm >= sizeof(missing))
			nm = sizeof(missing) - 1;
	}
	guest_printf("smp: %u of %u CPUs checked in (APIC IDs: %s)\n", in, want, ids);
	if (duplicate_id != 0xffffffff)
		guest_fail("APIC ID %u checked in twice (two vCPUs share an APIC ID)",
		           duplicate_id);
	if (leafb_mismatch != 0xffffffff)
		guest_fail("an AP's CPUID.0BH x2APIC ID %u differs from its LAPIC ID %u",
		           leafb_mismatch & 0xff, leafb_mismatch >> 8);
	if (cpuid_mismatch != 0xffffffff)
		guest_fail("an AP's CPUID.01H initial APIC ID %u differs from its LAPIC ID %u",
		           cpuid_mismatch & 0xff, cpuid_mismatch >> 8);
	if (in != want)
		guest_fail("expected %u CPUs, %u checked in (missing APIC IDs: %s)", want, in,
		           missing);
	for (uint32_t id = 0; id < 256; id++) {
		if (!ap_seen[id])
			continue;
		bool listed = false;
		for (uint32_t i = 0; i < madt.ncpus; i++)
			listed |= madt.apic_ids[i] == id;
		if (!listed)
			guest_fail("a CPU with APIC ID %u checked in but the MADT does not list it",
			           id);
	}
}
