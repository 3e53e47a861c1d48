/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device models on the narrow machine interface (vmm/machine.h) alone: this test is the
 * machine. It implements every machine_* call itself (no struct vm, no KVM) and drives
 * platform devices made from the device table through their ports, checking what they ask
 * of the machine: interrupt lines, requests, hooks, the power button, state sections; and
 * the Q35 chipset's registers on the PCI host bridge, which move the ACPI PM block and the
 * ECAM window where the firmware puts them. And
 * the two device tables agree: each kind of device a description holds
 * (config/vmdef_device.h) has exactly one PCI model, in the same order.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/vmdef_device.h"
#include "vmm/bus.h"
#include "vmm/chardev.h"
#include "vmm/config.h"
#include "vmm/device.h"
#include "vmm/loop.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/pci.h"
#include "vmm/state.h"
#include "vmm/dev/cfi_flash.h"
#include "vmm/dev/pcihp_regs.h"
#include "vmm/dev/pm.h"
#include "vmm/x86/pflash.h"
#include "vmm/x86/q35.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/layout.h"

#define MAX_HOOKS 32

/* Everything the devices asked of the machine. */
static struct {
	int irq_level[24];
	unsigned irq_changes;
	enum vm_event event;
	char detail[256];
	machine_reset_fn reset[MAX_HOOKS];
	void *reset_opaque[MAX_HOOKS];
	unsigned nreset, npause, nreport, nteardown;
	machine_teardown_fn teardown[MAX_HOOKS];
	void *teardown_opaque[MAX_HOOKS];
	machine_button_fn button;
	void *button_opaque;
	machine_gpe_fn gpe;
	void *gpe_opaque;
	uint64_t rom_gpa, rom_size; /* the ROM window (machine_rom_window); size 0: none */
	const void *rom_hva;
	char sections[MAX_HOOKS][32];
	state_fn section_fn[MAX_HOOKS];
	void *section_opaque[MAX_HOOKS];
	unsigned nsections;
} fake;

void machine_request(struct machine *m, enum vm_event ev, int status, const char *fmt, ...)
{
	va_list ap;

	if (fake.event != VM_EVENT_NONE)
		return;
	fake.event = ev;
	va_start(ap, fmt);
	vsnprintf(fake.detail, sizeof(fake.detail), fmt, ap);
	va_end(ap);
}

void machine_set_irq(struct machine *m, unsigned gsi, int level)
{
	assert_true(gsi < 24);
	fake.irq_level[gsi] = level;
	fake.irq_changes++;
}

int machine_set_msi_routes(struct machine *m, const struct kvm_irq_routing_entry *extra,
			   unsigned nextra)
{
	return 0;
}

int machine_irqfd(struct machine *m, unsigned gsi, int fd, bool assign)
{
	return -ENODEV;
}

int machine_ioeventfd(struct machine *m, uint64_t addr, unsigned len, int fd, bool assign)
{
	return -ENODEV;
}

int machine_rom_window(struct machine *m, uint64_t gpa, uint64_t size, const void *hva)
{
	assert_true(gpa % 4096 == 0 && size % 4096 == 0 && (uintptr_t)hva % 4096 == 0);
	fake.rom_gpa = gpa;
	fake.rom_size = size;
	fake.rom_hva = hva;
	return 0;
}

bool machine_built(struct machine *m)
{
	return false;
}

int machine_add_reset_hook(struct machine *m, machine_reset_fn fn, void *opaque)
{
	if (fake.nreset == MAX_HOOKS)
		return -ENOSPC;
	fake.reset[fake.nreset] = fn;
	fake.reset_opaque[fake.nreset++] = opaque;
	return 0;
}

int machine_add_pause_hook(struct machine *m, machine_pause_fn fn, void *opaque)
{
	fake.npause++;
	return 0;
}

int machine_add_report(struct machine *m, machine_report_fn fn, void *opaque)
{
	fake.nreport++;
	return 0;
}

void machine_forget(struct machine *m, void *obj)
{
}

void machine_report_line(struct machine_report *r, const char *fmt, ...)
{
}

int machine_add_teardown(struct machine *m, machine_teardown_fn fn, void *opaque)
{
	if (fake.nteardown == MAX_HOOKS)
		return -ENOSPC;
	fake.teardown[fake.nteardown] = fn;
	fake.teardown_opaque[fake.nteardown++] = opaque;
	return 0;
}

int machine_set_media(struct machine *m, const struct machine_media_ops *ops, void *opaque)
{
	return 0;
}

int machine_set_nic_link(struct machine *m, unsigned i, machine_link_fn fn, void *opaque)
{
	return 0;
}

int machine_set_disk_dev(struct machine *m, unsigned i, struct virtio_dev *vd)
{
	return 0;
}

int machine_set_scsi_dev(struct machine *m, struct virtio_dev *vd)
{
	return 0;
}

int machine_set_power_button(struct machine *m, machine_button_fn fn, void *opaque)
{
	if (fake.button)
		return -EEXIST;
	fake.button = fn;
	fake.button_opaque = opaque;
	return 0;
}

int machine_set_gpe(struct machine *m, machine_gpe_fn fn, void *opaque)
{
	if (fake.gpe)
		return -EEXIST;
	fake.gpe = fn;
	fake.gpe_opaque = opaque;
	return 0;
}

void machine_raise_gpe(struct machine *m, unsigned bit)
{
	if (fake.gpe)
		fake.gpe(fake.gpe_opaque, bit);
}

int machine_add_state_section(struct machine *m, const char *name, uint32_t version, state_fn fn,
			      void *opaque)
{
	if (fake.nsections == MAX_HOOKS)
		return -ENOSPC;
	fake.section_fn[fake.nsections] = fn;
	fake.section_opaque[fake.nsections] = opaque;
	snprintf(fake.sections[fake.nsections++], sizeof(fake.sections[0]), "%s", name);
	return 0;
}

int machine_block_save(struct machine *m, const char *reason)
{
	return 0;
}

static struct vm_def def = {.cpus = 1, .memory = 64 << 20};
static struct bus pio, mmio;
static struct guest_mem mem; /* no RAM: fw_cfg's DMA finds none */
static struct machine machine;
static struct pci_host *pci;
static struct chardev *serial_out; /* COM1 with no host side ("off") */

/* One machine for the whole group (the platform devices live as long as their bus, as in a
 * VM); each test starts with no request pending. */
static int setup(void **state)
{
	static struct loop *loop;
	struct chardev_spec off = {CHARDEV_OFF, NULL};
	char err[256] = "";

	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	if (loop_create(&loop) || chardev_open(&off, loop, &serial_out, err, sizeof(err)))
		return -1;
	machine = (struct machine){.def = &def,
				   .mem = &mem,
				   .pio = &pio,
				   .mmio = &mmio,
				   .loop = loop,
				   .serial_out = serial_out};
	def.debug_exit = true;
	if (devices_create(&machine, DEVICE_BUS_PLATFORM, err, sizeof(err))) {
		fprintf(stderr, "platform devices: %s\n", err);
		return -1;
	}
	if (pci_host_create(&machine, &pci))
		return -1;
	machine.pci = pci;
	return 0;
}

static int teardown(void **state)
{
	while (fake.nteardown--)
		fake.teardown[fake.nteardown](fake.teardown_opaque[fake.nteardown]);
	pci_host_destroy(pci);
	chardev_close(serial_out);
	return 0;
}

/* Power-on state, as the machine resets its devices before a boot. */
static int reset(void **state)
{
	for (unsigned i = 0; i < fake.nreset; i++)
		fake.reset[i](fake.reset_opaque[i]);
	fake.event = VM_EVENT_NONE;
	fake.detail[0] = '\0';
	return 0;
}

static bool has_section(const char *name)
{
	for (unsigned i = 0; i < fake.nsections; i++)
		if (!strcmp(fake.sections[i], name))
			return true;
	return false;
}

/* Every platform device registered its saved state and reset hook through the machine, and
 * the ACPI PM took the power button. */
static void test_platform_hooks(void **state)
{
	assert_true(has_section("serial.3f8"));
	assert_true(has_section("rtc"));
	assert_true(has_section("pm"));
	assert_true(has_section("fw_cfg"));
	assert_true(fake.nreset >= 5);
	assert_non_null(fake.button);
	assert_int_equal(fake.event, VM_EVENT_NONE);
}

/* i8042 command 0xFE pulses the reset line: a reset request, nothing else. */
static void test_i8042_reset(void **state)
{
	bus_write(&pio, PORT_I8042_CMD, 1, 0xfe);
	assert_int_equal(fake.event, VM_EVENT_RESET);
	assert_non_null(strstr(fake.detail, "i8042"));
}

/* The power button raises the SCI once the guest enabled its event, and S5 powers off. */
static void test_pm_button_and_s5(void **state)
{
	uint64_t sts = 0;

	fake.button(fake.button_opaque);
	assert_int_equal(fake.irq_level[IRQ_SCI], 0); /* event not enabled yet */
	bus_write(&pio, PORT_PM1_EVT + 2, 2, 1u << 8);
	assert_int_equal(fake.irq_level[IRQ_SCI], 1);
	bus_read(&pio, PORT_PM1_EVT, 2, &sts);
	assert_true(sts & (1u << 8));
	bus_write(&pio, PORT_PM1_EVT, 2, 1u << 8); /* write one to clear */
	assert_int_equal(fake.irq_level[IRQ_SCI], 0);
	assert_int_equal(fake.event, VM_EVENT_NONE);
	bus_write(&pio, PORT_PM1_CNT, 2, (ACPI_S5_SLP_TYP << 10) | (1u << 13));
	assert_int_equal(fake.event, VM_EVENT_POWEROFF);
}

/* A general-purpose event (the PCI hot plug controller's) raises the SCI only while the
 * guest enables it in GPE0_EN; GPE0_STS is write-one-to-clear; bits past 15 do nothing. */
static void test_pm_gpe(void **state)
{
	uint64_t v = 0;

	assert_non_null(fake.gpe);
	machine_raise_gpe(NULL, PCIHP_GPE);
	assert_int_equal(fake.irq_level[IRQ_SCI], 0);
	bus_read(&pio, PORT_PM_BASE + PM_GPE0_OFF, 1, &v);
	assert_int_equal(v, 1u << PCIHP_GPE);
	bus_write(&pio, PORT_PM_BASE + PM_GPE0_OFF + 8, 1, 1u << PCIHP_GPE); /* enable */
	assert_int_equal(fake.irq_level[IRQ_SCI], 1);
	bus_write(&pio, PORT_PM_BASE + PM_GPE0_OFF, 1, 1u << PCIHP_GPE); /* clear */
	assert_int_equal(fake.irq_level[IRQ_SCI], 0);
	machine_raise_gpe(NULL, 16);
	machine_raise_gpe(NULL, 1000);
	bus_read(&pio, PORT_PM_BASE + PM_GPE0_OFF, 4, &v);
	assert_int_equal(v, 0);
	assert_int_equal(fake.irq_level[IRQ_SCI], 0);
}

/* The hot plug registers: UP clears when read, an eject is honoured only for exactly one
 * slot whose removal is pending, and odd widths or offsets do nothing. */
static void test_pcihp_regs(void **state)
{
	struct pcihp_regs r = {.slots = 0x7ffffff0u, .up = 1u << 5, .down = 1u << 6 | 1u << 7};

	assert_int_equal(pcihp_regs_read(&r, PCIHP_SLOTS, 4), 0x7ffffff0u);
	assert_int_equal(pcihp_regs_read(&r, PCIHP_UP, 2), 0); /* not a dword: nothing */
	assert_int_equal(pcihp_regs_read(&r, PCIHP_UP, 4), 1u << 5);
	assert_int_equal(pcihp_regs_read(&r, PCIHP_UP, 4), 0);
	assert_int_equal(pcihp_regs_read(&r, PCIHP_DOWN, 4), 1u << 6 | 1u << 7);
	assert_int_equal(pcihp_regs_write(&r, PCIHP_EJECT, 4, 1u << 5), 0); /* not pending */
	assert_int_equal(pcihp_regs_write(&r, PCIHP_EJECT, 4, 3u << 6), 0); /* two bits */
	assert_int_equal(pcihp_regs_write(&r, PCIHP_EJECT, 4, 0), 0);
	assert_int_equal(pcihp_regs_write(&r, PCIHP_EJECT, 2, 1u << 6), 0);
	assert_int_equal(pcihp_regs_write(&r, PCIHP_UP, 4, 1u << 6), 0);
	assert_int_equal(pcihp_regs_write(&r, PCIHP_EJECT, 4, 1u << 6), 6);
	assert_int_equal(pcihp_regs_read(&r, PCIHP_DOWN, 4), 1u << 7);
	assert_int_equal(pcihp_regs_write(&r, PCIHP_EJECT, 4, 1u << 6), 0); /* once */
	assert_int_equal(pcihp_regs_read(&r, 0x10, 4), 0);
	assert_int_equal(pcihp_regs_read(&r, 0x03, 4), 0);
}

/* A guest's eject is kept for the host's teardown; a card removed by force meanwhile takes
 * that eject with it, so the next card hot-added at the slot is not torn down by it (the
 * host never asked for that one's removal). */
static void test_pcihp_eject_then_forced(void **state)
{
	struct pcihp_regs r = {.slots = 0x7ffffffeu, .down = 1u << 6 | 1u << 7};

	assert_int_equal(pcihp_regs_write(&r, PCIHP_EJECT, 4, 1u << 6), 6);
	assert_int_equal(pcihp_regs_write(&r, PCIHP_EJECT, 4, 1u << 7), 7);
	pcihp_regs_gone(&r, 6); /* removed by force before the host saw the eject */
	r.up |= 1u << 6;	/* and a new card added there */
	assert_int_equal(pcihp_regs_take_ejected(&r), 1u << 7);
	assert_int_equal(pcihp_regs_take_ejected(&r), 0);
	assert_int_equal(pcihp_regs_read(&r, PCIHP_UP, 4), 1u << 6);
	pcihp_regs_gone(&r, 40); /* out of range: nothing */
	assert_int_equal(r.down | r.up | r.ejected, 0);
}

/* A card taken off the bus (hot unplug) gives its MSI-X GSIs back: adding and removing one
 * again and again never runs out of them, and a card beside it keeps its own. */
static void msix_card(struct pci_dev *d, unsigned nvec, unsigned slot)
{
	memset(d, 0, sizeof(*d));
	pci_dev_init(d, 0x1af4, 0x1041, 0x020000, 1, 0x1af4, 0x1100);
	d->name = "card";
	assert_int_equal(pci_dev_add_msix(d, 0, nvec), 0);
	d->slot = slot;
	assert_int_equal(pci_dev_register(pci, d), 0);
}

static void test_pci_gsis_reused(void **state)
{
	static struct pci_dev a, b;
	uint32_t first;

	msix_card(&a, 3, 9);
	first = a.msix_gsi_base;
	for (unsigned i = 0; i < 2000; i++) {
		msix_card(&b, 5, 10);
		assert_int_equal(b.msix_gsi_base, first + 3);
		pci_dev_unregister(&b);
	}
	pci_dev_unregister(&a);
	/* Both gone: the next card gets the lowest GSIs again. */
	assert_int_equal(pci_dev_register(pci, &b), 0);
	assert_int_equal(b.msix_gsi_base, first);
	pci_dev_unregister(&b);
}

/* Hot-pluggable: 1 to 30 but the slots of devices that cannot be hot-removed (a disk's);
 * a network adapter's slot stays hot-pluggable. */
static void test_pcihp_slots(void **state)
{
	static struct vm_def hd = {.ndisks = 1, .nnics = 1};

	hd.disks[0].pci_slot = 3;
	hd.nics[0].pci_slot = 4;
	assert_int_equal(pcihp_slots(&hd), 0x7ffffffeu & ~(1u << 3));
}

static uint32_t cfg_read(unsigned slot, unsigned reg, unsigned size)
{
	uint64_t v = 0;

	bus_write(&pio, PORT_PCI_CONF1, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	bus_read(&pio, PORT_PCI_CONF1 + 4 + (reg & 3), size, &v);
	return (uint32_t)v;
}

static void cfg_write(unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
	bus_write(&pio, PORT_PCI_CONF1, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	bus_write(&pio, PORT_PCI_CONF1 + 4 + (reg & 3), size, v);
}

/* The chipset firmware looks for: a Q35 MCH at 00:00.0 and an ICH9 LPC (ISA) bridge at
 * 00:1f.0; SMRAM and ESMRAMC read-only (no SMM); PAM writable only in its defined bits. */
static void test_q35_identity(void **state)
{
	assert_int_equal(cfg_read(0, 0, 4), 0x29c08086);
	assert_int_equal(cfg_read(0, 8, 4) >> 8, 0x060000);
	assert_int_equal(cfg_read(Q35_LPC_SLOT, 0, 4), 0x29188086);
	assert_int_equal(cfg_read(Q35_LPC_SLOT, 8, 4) >> 8, 0x060100);
	cfg_write(0, Q35_MCH_SMRAM, 1, 0x4a);
	cfg_write(0, Q35_MCH_ESMRAMC, 1, 0x81);
	assert_int_equal(cfg_read(0, Q35_MCH_SMRAM, 1), Q35_SMRAM_DEFAULT);
	assert_int_equal(cfg_read(0, Q35_MCH_ESMRAMC, 1), Q35_ESMRAMC_DEFAULT);
	cfg_write(0, Q35_MCH_PAM0, 4, 0xffffffff);
	assert_int_equal(cfg_read(0, Q35_MCH_PAM0, 4), 0x33333330);
	/* RCBA and PMBASE keep their read-only bits. */
	cfg_write(Q35_LPC_SLOT, Q35_LPC_RCBA, 4, 0xffffffff);
	assert_int_equal(cfg_read(Q35_LPC_SLOT, Q35_LPC_RCBA, 4), 0xffffc001);
	cfg_write(Q35_LPC_SLOT, Q35_LPC_PMBASE, 4, 0);
	assert_int_equal(cfg_read(Q35_LPC_SLOT, Q35_LPC_PMBASE, 4), 1);
}

/* PMBASE and ACPI_EN place the PM block (SeaBIOS puts it at 0xb000, OVMF at 0x600); a
 * reset puts it back at 0x600. */
static void test_q35_pmbase(void **state)
{
	uint64_t v;

	assert_int_equal(cfg_read(Q35_LPC_SLOT, Q35_LPC_PMBASE, 4), PORT_PM_BASE | 1);
	assert_int_equal(cfg_read(Q35_LPC_SLOT, Q35_LPC_ACPI_CNTL, 1), Q35_LPC_ACPI_EN);
	cfg_write(Q35_LPC_SLOT, Q35_LPC_PMBASE, 4, 0xb07f); /* the low bits do not stick */
	assert_int_equal(cfg_read(Q35_LPC_SLOT, Q35_LPC_PMBASE, 4), 0xb001);
	assert_false(bus_read(&pio, PORT_PM1_CNT, 2, &v));
	assert_true(bus_read(&pio, 0xb004, 2, &v));
	assert_int_equal(v & 1, 1); /* SCI_EN: ACPI mode */
	/* ACPI_EN off: the block decodes nowhere. */
	cfg_write(Q35_LPC_SLOT, Q35_LPC_ACPI_CNTL, 1, 0);
	assert_false(bus_read(&pio, 0xb004, 2, &v));
	cfg_write(Q35_LPC_SLOT, Q35_LPC_ACPI_CNTL, 1, Q35_LPC_ACPI_EN);
	bus_write(&pio, 0xb004, 2, (ACPI_S5_SLP_TYP << 10) | (1u << 13));
	assert_int_equal(fake.event, VM_EVENT_POWEROFF);
	reset(state);
	assert_true(bus_read(&pio, PORT_PM1_CNT, 2, &v));
	assert_false(bus_read(&pio, 0xb004, 2, &v));
}

/* Is the MCH's configuration space at addr (ECAM's bus 0, device 0)? The PCI windows
 * claim much of the hole, so elsewhere a read may be claimed and give all ones. */
static bool mch_at(uint64_t addr)
{
	uint64_t v = 0;

	return bus_read(&mmio, addr, 4, &v) && v == 0x29c08086;
}

/* PCIEXBAR places ECAM (SeaBIOS: 0xb0000000, OVMF: 0xe0000000), each length decoding at
 * its alignment, the reserved length and a clear enable bit nowhere; reset restores it. */
static void test_q35_pciexbar(void **state)
{
	uint64_t v;

	assert_true(bus_read(&mmio, LAYOUT_PCI_ECAM, 4, &v));
	assert_int_equal(v, 0x29c08086);
	cfg_write(0, Q35_MCH_PCIEXBAR, 4, 0xb0000001);
	assert_false(mch_at(LAYOUT_PCI_ECAM));
	assert_true(bus_read(&mmio, 0xb0000000 + (Q35_LPC_SLOT << 15), 4, &v));
	assert_int_equal(v, 0x29188086);
	cfg_write(0, Q35_MCH_PCIEXBAR, 4, 0xb4000000 | Q35_PCIEXBAR_LEN_64 | 1);
	assert_true(bus_read(&mmio, 0xb4000000, 4, &v));
	cfg_write(0, Q35_MCH_PCIEXBAR, 4, 0xb4000000 | Q35_PCIEXBAR_LEN_128 | 1);
	assert_true(bus_read(&mmio, 0xb0000000, 4, &v)); /* bit 26 is not a base bit */
	cfg_write(0, Q35_MCH_PCIEXBAR, 4, 0xb0000000 | 0x6 | 1);
	assert_false(mch_at(0xb0000000));
	cfg_write(0, Q35_MCH_PCIEXBAR + 4, 4, 0xffffffff); /* base bits 35:32 only */
	assert_int_equal(cfg_read(0, Q35_MCH_PCIEXBAR + 4, 4), 0xf);
	cfg_write(0, Q35_MCH_PCIEXBAR, 4, 0xb0000000);
	assert_false(mch_at(0xfb0000000ull));
	reset(state);
	assert_true(bus_read(&mmio, LAYOUT_PCI_ECAM, 4, &v));
	assert_int_equal(v, 0x29c08086);
}

/* OVMF's shutdown writes SLP_TYP 0 (QEMU's Q35 soft-off); another sleep type is no
 * power-off. */
static void test_pm_slp_typ(void **state)
{
	bus_write(&pio, PORT_PM1_CNT, 2, (1u << 10) | (1u << 13));
	assert_int_equal(fake.event, VM_EVENT_NONE);
	bus_write(&pio, PORT_PM1_CNT, 2, 1u << 13);
	assert_int_equal(fake.event, VM_EVENT_POWEROFF);
}

extern const struct device_class pflash_class;

static struct state_registry section_reg;

/* Save the last section registered under name alone, as version (an older keel-vmm's save
 * when below the section's own); the caller frees *buf. */
static void section_save(const char *name, uint32_t version, uint8_t **buf, size_t *len)
{
	char err[256] = "";
	int i;

	memset(&section_reg, 0, sizeof(section_reg));
	for (i = (int)fake.nsections - 1; i >= 0 && strcmp(fake.sections[i], name); i--)
		;
	assert_true(i >= 0);
	assert_int_equal(state_register(&section_reg, name, version, fake.section_fn[i],
					fake.section_opaque[i]),
			 0);
	assert_int_equal(state_save(&section_reg, buf, len, err, sizeof(err)), 0);
}

/* Check and load what section_save wrote: 0 or the load's error. */
static int section_load(const uint8_t *buf, size_t len)
{
	static struct state_file f;
	char err[256] = "";
	int r;

	assert_int_equal(state_parse(buf, len, &f, err, sizeof(err)), 0);
	r = state_load(&section_reg, &f, STATE_CHECK, err, sizeof(err));
	r = r ?: state_load(&section_reg, &f, STATE_LOAD, err, sizeof(err));
	if (r)
		fprintf(stderr, "%s\n", err);
	return r;
}

/* Save a section and load it back: 0 or the load's error. */
static int section_roundtrip(const char *name)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	section_save(name, 1, &buf, &len);
	r = section_load(buf, len);
	free(buf);
	return r;
}

/* The ACPI PM's section: version 2 brings GPE0 back (a hot plug event the guest has not
 * handled, its SCI); a version 1 save (before hot plug) still loads, GPE0 at power-on. */
static void test_pm_state_versions(void **state)
{
	uint64_t v = 0;
	uint8_t *buf = NULL;
	size_t len = 0;

	bus_write(&pio, PORT_PM1_EVT + 2, 2, 1u << 8); /* PM1: the power button enabled */
	bus_write(&pio, PORT_PM_BASE + PM_GPE0_OFF + 8, 1, 1u << PCIHP_GPE);
	machine_raise_gpe(NULL, PCIHP_GPE);
	assert_int_equal(fake.irq_level[IRQ_SCI], 1);
	section_save("pm", 2, &buf, &len);
	reset(NULL);
	assert_int_equal(section_load(buf, len), 0);
	free(buf);
	bus_read(&pio, PORT_PM_BASE + PM_GPE0_OFF, 1, &v);
	assert_int_equal(v, 1u << PCIHP_GPE);
	bus_read(&pio, PORT_PM_BASE + PM_GPE0_OFF + 8, 1, &v);
	assert_int_equal(v, 1u << PCIHP_GPE);

	section_save("pm", 1, &buf, &len);
	reset(NULL);
	assert_int_equal(section_load(buf, len), 0);
	free(buf);
	bus_read(&pio, PORT_PM1_EVT + 2, 2, &v);
	assert_int_equal(v, 1u << 8);
	bus_read(&pio, PORT_PM_BASE + PM_GPE0_OFF, 2, &v);
	assert_int_equal(v, 0);
	bus_read(&pio, PORT_PM_BASE + PM_GPE0_OFF + 8, 2, &v);
	assert_int_equal(v, 0);
}

static void stop_loop(void *opaque, uint32_t events)
{
	loop_stop(opaque);
}

/* Run the machine's loop for ms milliseconds. */
static void run_loop_ms(unsigned ms)
{
	struct itimerspec when = {.it_value = {0, (long)ms * 1000000}};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	assert_true(fd >= 0);
	assert_int_equal(timerfd_settime(fd, 0, &when, NULL), 0);
	assert_int_equal(loop_add(machine.loop, fd, EPOLLIN, stop_loop, machine.loop), 0);
	assert_int_equal(loop_run(machine.loop), 0);
	loop_del(machine.loop, fd);
	close(fd);
}

/* A keyboard reset is acknowledged, then its self test passes (0xAA) once the guest has read
 * the acknowledgement: what OVMF's PS/2 driver waits for. Other keyboard bytes: one ack. */
static void test_i8042_keyboard_reset(void **state)
{
	uint64_t v = 0;

	bus_write(&pio, PORT_I8042_DATA, 1, 0xff);
	bus_read(&pio, PORT_I8042_CMD, 1, &v);
	assert_true(v & 1);
	bus_read(&pio, PORT_I8042_DATA, 1, &v);
	assert_int_equal(v, 0xfa);
	bus_read(&pio, PORT_I8042_CMD, 1, &v);
	assert_true(v & 1);
	assert_int_equal(section_roundtrip("i8042"), 0);
	bus_read(&pio, PORT_I8042_DATA, 1, &v);
	assert_int_equal(v, 0xaa);
	bus_read(&pio, PORT_I8042_CMD, 1, &v);
	assert_false(v & 1);
	bus_write(&pio, PORT_I8042_DATA, 1, 0xf4);
	bus_read(&pio, PORT_I8042_DATA, 1, &v);
	assert_int_equal(v, 0xfa);
	bus_read(&pio, PORT_I8042_CMD, 1, &v);
	assert_false(v & 1);
	assert_int_equal(fake.event, VM_EVENT_NONE);
}

/* OVMF's variable flash on the machine: created from Debian's template into a new NVRAM
 * file, just below the firmware's code; a byte OVMF programs reaches the file when the
 * device is torn down (the main loop's save is the same call). */
static void test_pflash(void **state)
{
	static const char tmpl[] = VMDEF_OVMF_VARS_FILE;
	char dir[] = "/tmp/keel-pflash-XXXXXX", path[64], err[256] = "";
	struct vm_def d = def;
	struct machine m2 = machine;
	uint64_t base = 0xffc84000ull - 0x84000, v = 0;
	unsigned before = fake.nteardown, resets = fake.nreset, off = 0x1000, saves = 0;
	ino_t ino = 0;
	static uint8_t block0[PFLASH_BLOCK];
	struct stat st0;
	struct bus_range gone;
	void *obj = NULL;
	uint8_t old, b;
	FILE *fp;

	if (access(tmpl, R_OK)) {
		/* The template is Debian's ovmf package, which scripts/setup.sh installs. */
		fail_msg("%s is missing: run scripts/setup.sh (package ovmf)", tmpl);
	}
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vars.fd", dir);
	d.firmware = VM_FIRMWARE_UEFI;
	d.nvram = path;
	m2.def = &d;
	m2.firmware_base = 0xffc84000ull; /* Debian's OVMF_CODE_4M.fd: 0x37c000 bytes */
	assert_int_equal(pflash_class.count(&m2), 1);
	assert_int_equal(pflash_class.create(&m2, 0, &obj, err, sizeof(err)), 0);
	assert_int_equal(device_state_register(&m2, &pflash_class, 0, obj), 0);
	assert_int_equal(access(path, R_OK), 0);
	/* Built (its reset hook), the store in read-array mode is guest memory: a read-only
	 * window over the store's contents, where the guest reads without exiting. */
	fake.rom_size = 0;
	fake.reset[resets](fake.reset_opaque[resets]);
	assert_int_equal(fake.rom_gpa, base);
	assert_int_equal(fake.rom_size, 0x84000);
	assert_memory_equal((const uint8_t *)fake.rom_hva + 40, "_FVH", 4);
	assert_true(bus_read(&mmio, base + 40, 4, &v));
	assert_memory_equal(&v, "_FVH", 4);
	bus_read(&mmio, base + off, 1, &v);
	old = (uint8_t)v;
	/* A command takes the window away before the guest reads again (its status, not the
	 * array); back in read-array mode it is there again, with the programmed byte. */
	bus_write(&mmio, base + off, 1, CFI_CMD_PROGRAM);
	assert_int_equal(fake.rom_size, 0);
	bus_write(&mmio, base + off, 1, (uint8_t)~old);
	assert_int_equal(fake.rom_size, 0);
	bus_read(&mmio, base + off, 1, &v);
	assert_int_equal((uint8_t)v, CFI_STATUS_READY);
	bus_write(&mmio, base + off, 1, CFI_CMD_READ_ARRAY);
	assert_int_equal(fake.rom_size, 0x84000);
	assert_int_equal(((const uint8_t *)fake.rom_hva)[off], (uint8_t)~old);
	bus_read(&mmio, base + off, 1, &v);
	assert_int_equal((uint8_t)v, (uint8_t)~old);
	bus_write(&mmio, base, 1, CFI_CMD_READ_STATUS);
	assert_int_equal(fake.rom_size, 0);
	bus_write(&mmio, base, 1, CFI_CMD_CLEAR_STATUS);
	assert_int_equal(fake.rom_size, 0x84000);
	/* A guest programming in a loop: the main loop saves the store (a new file each time)
	 * at most once per interval, not after every program (20 in 400 ms). */
	assert_int_equal(stat(path, &st0), 0);
	ino = st0.st_ino;
	for (unsigned i = 0; i < 20; i++) {
		struct stat st;

		bus_write(&mmio, base + off + 1, 1, CFI_CMD_PROGRAM);
		bus_write(&mmio, base + off + 1, 1, i);
		bus_write(&mmio, base + off + 1, 1, CFI_CMD_READ_ARRAY);
		run_loop_ms(20);
		assert_int_equal(stat(path, &st), 0);
		if (st.st_ino != ino)
			saves++;
		ino = st.st_ino;
	}
	assert_true(saves >= 1 && saves <= 4);
	/* The guest erases the block with the volume header: a save of the VM still restores
	 * (the store's contents are the guest's; OVMF rewrites a header it finds invalid). */
	for (unsigned i = 0; i < PFLASH_BLOCK; i++) {
		bus_read(&mmio, base + i, 1, &v);
		block0[i] = (uint8_t)v;
	}
	bus_write(&mmio, base, 1, CFI_CMD_ERASE);
	bus_write(&mmio, base, 1, CFI_CMD_ERASE_CONFIRM);
	bus_write(&mmio, base, 1, CFI_CMD_READ_ARRAY);
	bus_read(&mmio, base + 40, 4, &v);
	assert_int_equal((uint32_t)v, 0xffffffffu);
	assert_int_equal(section_roundtrip("pflash"), 0);
	for (unsigned i = 0; i < PFLASH_BLOCK; i++) {
		bus_write(&mmio, base + i, 1, CFI_CMD_PROGRAM);
		bus_write(&mmio, base + i, 1, block0[i]);
	}
	bus_write(&mmio, base, 1, CFI_CMD_READ_ARRAY);
	bus_write(&mmio, base + off + 1, 1, CFI_CMD_PROGRAM);
	bus_write(&mmio, base + off + 1, 1, 0xff);
	bus_write(&mmio, base + off + 1, 1, CFI_CMD_READ_ARRAY);
	/* Tear the device down (it registered exactly one teardown): the store is saved. */
	assert_int_equal(fake.nteardown, before + 1);
	fake.nteardown--;
	fake.teardown[fake.nteardown](fake.teardown_opaque[fake.nteardown]);
	fake.nreset = resets; /* the device is gone from this machine */
	assert_int_equal(bus_unregister(&mmio, base, &gone), 0);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, off, SEEK_SET), 0);
	assert_int_equal(fread(&b, 1, 1, fp), 1);
	fclose(fp);
	assert_int_equal(b, (uint8_t)~old);
	/* Firmware and store must fit in the top 16 MiB (a 16 MiB firmware leaves no room). */
	m2.firmware_base = 0xff000000ull;
	assert_int_equal(pflash_class.create(&m2, 0, &obj, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "together exceed"));
	m2.firmware_base = 0xffc84000ull;
	/* A file that is not a variable store is refused, with the reason. */
	fp = fopen(path, "wb");
	assert_non_null(fp);
	for (unsigned i = 0; i < 0x84000; i++)
		fputc(0, fp);
	fclose(fp);
	assert_int_equal(pflash_class.create(&m2, 0, &obj, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a UEFI variable store"));
	unlink(path);
	rmdir(dir);
}

/* The debug-exit port asks the machine to end with (value << 1) | 1. */
static void test_debug_exit(void **state)
{
	bus_write(&pio, PORT_DEBUG_EXIT, 1, 0x21);
	assert_int_equal(fake.event, VM_EVENT_DEBUG_EXIT);
}

/* Each kind of device in the description has exactly one PCI model, in the table's order
 * (the order devices without a slot get theirs). */
static void test_tables_agree(void **state)
{
	size_t n;
	const struct device_class *const *t = device_table(DEVICE_BUS_PCI, &n);
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (!t[i]->config)
			continue;
		assert_true(k < vmdef_ndevices);
		assert_ptr_equal(t[i]->config, vmdef_devices[k]);
		k++;
	}
	assert_int_equal(k, vmdef_ndevices);
	t = device_table(DEVICE_BUS_PLATFORM, &n);
	for (size_t i = 0; i < n; i++)
		assert_null(t[i]->config);
}

/* Every model's saved-state sections are in its table entry: each complete, a PCI model's
 * first named as the model (its sections are "NAME.SS", by the slot the description keeps
 * for it, so adding or removing another device renames none), and no name used twice. */
/* A PCI device with no slot in the description (devices_create) is refused before it is
 * made: its state sections are named by its slot, and 0 would give two devices one name. */
static void test_pci_device_without_slot(void **state)
{
	struct vm_def d = {.cpus = 1, .memory = 64 << 20};
	struct machine m = {.def = &d};
	char err[256] = "";

	d.rng.present = true; /* pci_slot 0: vmdef_assign_slots not run */
	assert_int_equal(devices_create(&m, DEVICE_BUS_PCI, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has no PCI slot"));
}

static void test_state_sections_in_table(void **state)
{
	const char *names[32];
	size_t nnames = 0;

	for (int bus = DEVICE_BUS_PLATFORM; bus <= DEVICE_BUS_PCI; bus++) {
		size_t n;
		const struct device_class *const *t = device_table(bus, &n);

		for (size_t i = 0; i < n; i++) {
			const struct device_class *c = t[i];

			if (bus == DEVICE_BUS_PCI)
				assert_string_equal(c->state[0].name, c->name);
			for (size_t k = 0; k < DEVICE_STATES && c->state[k].name; k++) {
				assert_true(c->state[k].version >= 1);
				assert_non_null(c->state[k].fn);
				for (size_t j = 0; j < nnames; j++)
					assert_string_not_equal(names[j], c->state[k].name);
				assert_true(nnames < sizeof(names) / sizeof(names[0]));
				names[nnames++] = c->state[k].name;
			}
		}
	}
	/* The platform's, as saved states have always named them. */
	for (size_t j = 0; j < 6; j++) {
		static const char *const want[] = {"serial.3f8", "i8042",  "rtc",
						   "pm",	 "fw_cfg", "pflash"};

		assert_string_equal(names[j], want[j]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_platform_hooks, reset),
		cmocka_unit_test_setup(test_i8042_reset, reset),
		cmocka_unit_test_setup(test_i8042_keyboard_reset, reset),
		cmocka_unit_test_setup(test_pm_button_and_s5, reset),
		cmocka_unit_test_setup(test_debug_exit, reset),
		cmocka_unit_test_setup(test_pm_slp_typ, reset),
		cmocka_unit_test_setup(test_pm_gpe, reset),
		cmocka_unit_test_setup(test_pm_state_versions, reset),
		cmocka_unit_test(test_pcihp_regs),
		cmocka_unit_test(test_pcihp_eject_then_forced),
		cmocka_unit_test(test_pci_gsis_reused),
		cmocka_unit_test(test_pcihp_slots),
		cmocka_unit_test_setup(test_pflash, reset),
		cmocka_unit_test_setup(test_q35_identity, reset),
		cmocka_unit_test_setup(test_q35_pmbase, reset),
		cmocka_unit_test_setup(test_q35_pciexbar, reset),
		cmocka_unit_test(test_tables_agree),
		cmocka_unit_test(test_state_sections_in_table),
		cmocka_unit_test(test_pci_device_without_slot),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
