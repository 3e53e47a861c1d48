/* SPDX-License-Identifier: Apache-2.0 */
/* PCI configuration space logic (vmm/pci.c): header, BAR sizing and placement, capability
 * list, MSI-X table and pending bits, CONFIG_ADDRESS decoding; and the ACPI description. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "config/vmdef.h"
#include "vmm/mem.h"
#include "vmm/pci.h"
#include "vmm/pci_internal.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/acpi_pci.h"
#include "vmm/x86/layout.h"

struct map_log {
	unsigned calls;
	uint64_t addr;
	bool mapped;
};

static void log_map(void *opaque, unsigned bar, uint64_t addr, bool mapped)
{
	struct map_log *l = opaque;

	l->calls++;
	l->addr = addr;
	l->mapped = mapped;
}

static const struct pci_dev_ops map_ops = {.bar_map = log_map};

static void make_dev(struct pci_dev *d, struct map_log *l)
{
	memset(d, 0, sizeof(*d));
	pci_dev_init(d, 0x1af4, 0x1042, 0x018000, 1, 0x1af4, 0x1100);
	d->ops = &map_ops;
	d->opaque = l;
	d->name = "test";
	assert_int_equal(pci_dev_add_msix(d, 0, 3), 0);
	assert_int_equal(pci_dev_add_bar(d, 2, 0x4000, true), 0);
}

static void test_header(void **state)
{
	struct pci_dev d;
	struct map_log l = {0};
	uint8_t cap;

	make_dev(&d, &l);
	assert_int_equal(pci_cfg_read(&d, 0, 4), 0x10421af4);
	assert_int_equal(pci_cfg_read(&d, 8, 4), 0x01800001);
	assert_int_equal(pci_cfg_read(&d, 0x2c, 4), 0x11001af4);
	assert_true(pci_cfg_read(&d, 6, 2) & PCI_STATUS_CAP_LIST);
	cap = (uint8_t)pci_cfg_read(&d, PCI_CAP_PTR, 1);
	assert_int_equal(cap, 0x40);
	assert_int_equal(pci_cfg_read(&d, cap, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(pci_cfg_read(&d, cap + 2, 2), 2); /* 3 vectors */
	assert_int_equal(pci_cfg_read(&d, cap + 8, 4), PCI_MSIX_PBA_OFFSET);
	/* Read-only fields stay; command keeps only its writable bits. */
	pci_cfg_write(&d, 0, 4, 0xffffffff);
	assert_int_equal(pci_cfg_read(&d, 0, 4), 0x10421af4);
	pci_cfg_write(&d, PCI_COMMAND, 2, 0xffff);
	assert_int_equal(pci_cfg_read(&d, PCI_COMMAND, 2), 0x0407);
	pci_cfg_write(&d, PCI_INTERRUPT_LINE, 1, 11);
	assert_int_equal(pci_cfg_read(&d, PCI_INTERRUPT_LINE, 1), 11);
	assert_int_equal(pci_cfg_read(&d, PCI_INTERRUPT_PIN, 1), 0); /* MSI-X only */
	/* Out of range reads are zero, not a crash. */
	assert_int_equal(pci_cfg_read(&d, 0xfe, 4), 0);
	assert_int_equal(pci_cfg_read(&d, 0x400, 4), 0);
}

static void test_bar_sizing_and_mapping(void **state)
{
	struct pci_dev d;
	struct map_log l = {0};

	make_dev(&d, &l);
	/* BAR 2 is 64-bit, 16 KiB; BAR 4/5 and 1 are unimplemented. */
	pci_cfg_write(&d, 0x18, 4, 0xffffffff);
	pci_cfg_write(&d, 0x1c, 4, 0xffffffff);
	assert_int_equal(pci_cfg_read(&d, 0x18, 4), 0xffffc004);
	assert_int_equal(pci_cfg_read(&d, 0x1c, 4), 0xffffffff);
	pci_cfg_write(&d, 0x10, 4, 0xffffffff);
	assert_int_equal(pci_cfg_read(&d, 0x10, 4), 0xfffff000); /* MSI-X BAR: 4 KiB, 32-bit */
	pci_cfg_write(&d, 0x14, 4, 0xffffffff);
	assert_int_equal(pci_cfg_read(&d, 0x14, 4), 0);
	/* Place BAR 2 in the 32-bit window; no decoding until memory is enabled. */
	pci_cfg_write(&d, 0x18, 4, 0xd0000000);
	pci_cfg_write(&d, 0x1c, 4, 0);
	assert_int_equal(l.calls, 0);
	pci_cfg_write(&d, PCI_COMMAND, 2, PCI_CMD_MEM);
	assert_int_equal(l.calls, 1);
	assert_true(l.mapped);
	assert_int_equal(l.addr, 0xd0000000);
	/* Moving it unmaps the old place and maps the new one; byte writes merge. */
	pci_cfg_write(&d, 0x1b, 1, 0xd1);
	assert_int_equal(l.calls, 3);
	assert_true(l.mapped);
	assert_int_equal(l.addr, 0xd1000000);
	/* Outside every window (no host: the 32-bit window only) it does not decode. */
	pci_cfg_write(&d, 0x18, 4, 0x10000000);
	assert_int_equal(l.calls, 4);
	assert_false(l.mapped);
	/* A straddling write is ignored. */
	pci_cfg_write(&d, 0x1a, 4, 0x12345678);
	assert_int_equal(pci_cfg_read(&d, 0x18, 4), 0x10000004);
}

static void test_msix(void **state)
{
	struct pci_dev d;
	struct map_log l = {0};
	uint8_t cap;

	make_dev(&d, &l);
	cap = d.msix_cap;
	/* Entries start masked; the table takes address, data, control. */
	assert_int_equal(pci_msix_read(&d, 12, 4), 1);
	pci_msix_write(&d, 16, 4, 0xfee01000);
	pci_msix_write(&d, 24, 4, 0x45);
	assert_int_equal(pci_msix_read(&d, 16, 4), 0xfee01000);
	assert_int_equal(pci_msix_read(&d, 24, 4), 0x45);
	pci_msix_write(&d, 16, 8, 0x00000000fee02000ull);
	assert_int_equal(pci_msix_read(&d, 16, 8), 0x00000000fee02000ull);
	/* Beyond the table: ignored; the PBA is read-only. */
	pci_msix_write(&d, 48, 4, 0x1234);
	assert_int_equal(pci_msix_read(&d, 48, 4), 0);
	pci_msix_write(&d, PCI_MSIX_PBA_OFFSET, 8, ~0ull);
	assert_int_equal(pci_msix_read(&d, PCI_MSIX_PBA_OFFSET, 8), 0);
	/* Disabled: notifications are dropped. Enabled with the function masked: pending. */
	pci_msix_notify(&d, 1);
	assert_int_equal(pci_msix_read(&d, PCI_MSIX_PBA_OFFSET, 8), 0);
	pci_cfg_write(&d, cap + 2, 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	assert_int_equal(pci_cfg_read(&d, cap + 2, 2),
			 PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK | 2); /* size is read-only */
	pci_msix_notify(&d, 1);
	pci_msix_notify(&d, 7); /* out of range: ignored */
	assert_int_equal(pci_msix_read(&d, PCI_MSIX_PBA_OFFSET, 8), 2);
	/* Unmasking the function leaves vector 1 pending (its own mask bit is still set). */
	pci_cfg_write(&d, cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(pci_msix_read(&d, PCI_MSIX_PBA_OFFSET, 1), 2);
}

static void test_conf1_decode(void **state)
{
	unsigned slot, fn, reg;

	assert_true(pci_conf1_decode(0x80001810, 2, &slot, &fn, &reg));
	assert_int_equal(slot, 3);
	assert_int_equal(fn, 0);
	assert_int_equal(reg, 0x12);
	assert_true(pci_conf1_decode(0x8000fffc, 0, &slot, &fn, &reg));
	assert_int_equal(slot, 31);
	assert_int_equal(fn, 7);
	assert_int_equal(reg, 0xfc);
	assert_false(pci_conf1_decode(0x00001810, 0, &slot, &fn, &reg)); /* enable bit clear */
	assert_false(pci_conf1_decode(0x80011810, 0, &slot, &fn, &reg)); /* bus 1 */
}

static void test_acpi_tables(void **state)
{
	static uint8_t buf[ACPI_MAX_SIZE];
	const struct acpi_pci pci = {0xe0000000, 1 << 20,    0xc0000000,
				     0x20000000, 1ull << 32, 16ull << 30};
	struct acpi_info info;
	uint8_t aml[512];
	size_t n = acpi_pci_aml(aml, sizeof(aml), &pci), i;
	uint32_t xsdt, mcfg = 0, len;
	uint64_t ecam;

	assert_true(n > 100);
	assert_int_equal(acpi_pci_aml(aml, 40, &pci), 0); /* too small: refused, not overrun */
	assert_non_null(memmem(aml, n, "PCI0", 4));
	assert_non_null(memmem(aml, n, "\x0c\x41\xd0\x0a\x08", 5)); /* EisaId PNP0A08 */
	assert_non_null(memmem(aml, n, "\x0c\x41\xd0\x0c\x02", 5)); /* EisaId PNP0C02 */
	assert_int_equal(acpi_build_with_pci(buf, 0xe0000, 2, &pci, &info), 0);
	memcpy(&xsdt, buf + (info.rsdp - 0xe0000) + 24, 4);
	xsdt -= 0xe0000;
	memcpy(&len, buf + xsdt + 4, 4);
	assert_int_equal(len, 36 + 3 * 8);
	assert_int_equal(acpi_checksum(buf + xsdt, len), 0);
	for (i = 0; i < 3; i++) {
		uint32_t t;

		memcpy(&t, buf + xsdt + 36 + 8 * i, 4);
		if (!memcmp(buf + t - 0xe0000, "MCFG", 4))
			mcfg = t - 0xe0000;
	}
	assert_true(mcfg);
	assert_int_equal(acpi_checksum(buf + mcfg, ACPI_MCFG_SIZE), 0);
	memcpy(&ecam, buf + mcfg + 44, 8);
	assert_int_equal(ecam, 0xe0000000);
	assert_int_equal(buf[mcfg + 55], 0); /* end bus */
}

/* The windows the host decodes and ACPI describes hold both keel's BAR placement and the
 * firmware's: OVMF's 32-bit BARs above its 256 MiB ECAM window (0xF0000000) and its 32 GiB
 * 64-bit aperture at the next 32 GiB boundary; SeaBIOS's ECAM below the hole leaves one
 * contiguous 32-bit window. */
static void test_windows(void **state)
{
	struct vm_def def512 = {.memory = 512ull << 20};
	struct acpi_pci p;

	acpi_pci_layout(&p, &def512, 0xe0000000, 0);
	assert_int_equal(p.mmio32, 0xc0000000);
	assert_int_equal(p.mmio32 + p.mmio32_size, 0xe0000000);
	assert_int_equal(p.mmio32_hi, 0xf0000000);
	assert_int_equal(p.mmio32_hi + p.mmio32_hi_size, LAYOUT_PCI_MMIO32_END);
	assert_int_equal(p.mmio64, 4ull << 30);
	assert_int_equal(p.mmio64 + p.mmio64_size, 64ull << 30); /* OVMF's [32, 64) GiB */
	acpi_pci_layout(&p, &def512, 0xb0000000, 0);
	assert_int_equal(p.mmio32 + p.mmio32_size, p.mmio32_hi);
	assert_int_equal(p.mmio32_hi + p.mmio32_hi_size, LAYOUT_PCI_MMIO32_END);
	/* Large RAM: the 64-bit window still ends past keel's 16 GiB and OVMF's aperture. */
	assert_int_equal(pci_window64_end(40ull << 30, false, 0), 96ull << 30);
	assert_int_equal(pci_window64_base(40ull << 30, false), 41ull << 30);
}

/* Debian 12's OVMF (2022.11) trusts an AMD CPUID's 40 address bits and puts its 64-bit
 * aperture at [2^40 - 2^37, 2^40), ignoring X-PciMmio64Mb: in the lab it programmed the
 * virtio-blk's 64-bit BAR to 0xE000000000 (BAR 2 = 0x00000004, BAR 3 = 0xe0) and enabled
 * memory. The host must decode it there, and ACPI must describe it, or every read of the
 * virtio registers sees all ones and OVMF's VirtioBlkDxe gives up. */
static void test_ovmf_dynamic_window(void **state)
{
	struct vm_def fw = {.memory = 256ull << 20, .firmware = VM_FIRMWARE_UEFI};
	struct pci_host h = {0};
	struct pci_dev d;
	struct map_log l = {0};
	struct acpi_pci p;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 2 * sizeof(c->entries[0]));

	assert_non_null(c);
	h.win64_base = pci_window64_base(fw.memory, true);
	h.win64_size = pci_window64_end(fw.memory, true, 40) - h.win64_base;
	make_dev(&d, &l);
	d.host = &h;
	pci_cfg_write(&d, 0x18, 4, 0x0);
	pci_cfg_write(&d, 0x1c, 4, 0xe0);
	pci_cfg_write(&d, PCI_COMMAND, 2, 0x7);
	assert_int_equal(l.calls, 1);
	assert_true(l.mapped);
	assert_int_equal(l.addr, 0xe000000000ull);
	/* The last BAR below 2^40 decodes; one past it does not. */
	pci_cfg_write(&d, 0x18, 4, 0xffffc000);
	pci_cfg_write(&d, 0x1c, 4, 0xff);
	assert_true(l.mapped);
	assert_int_equal(l.addr, (1ull << 40) - 0x4000);
	pci_cfg_write(&d, 0x18, 4, 0);
	pci_cfg_write(&d, 0x1c, 4, 0x100);
	assert_false(l.mapped);
	/* ACPI's 64-bit window (fw_cfg's tables) holds OVMF's aperture too. */
	acpi_pci_layout(&p, &fw, 0xb0000000, 40);
	assert_int_equal(p.mmio64, 4ull << 30);
	assert_int_equal(p.mmio64 + p.mmio64_size, 1ull << 40);
	/* Wider CPUs: OVMF caps the width at 47 bits, and so does the window. */
	assert_int_equal(pci_window64_end(fw.memory, true, 48), 1ull << 47);
	assert_int_equal(pci_window64_end(fw.memory, true, 46), 1ull << 46);
	/* A narrow CPU: OVMF's classic 32 GiB aperture at 32 GiB bounds it. */
	assert_int_equal(pci_window64_end(fw.memory, true, 36), 64ull << 30);
	assert_int_equal(pci_window64_end(fw.memory, true, 0), 64ull << 30);
	/* Direct kernel boot: keel places the BARs, the window is as before. */
	assert_int_equal(pci_window64_end(fw.memory, false, 40), 64ull << 30);
	/* The width: leaf 0x80000008's PhysBits, whatever GuestPhysBits says (OVMF 2022.11
	 * reads PhysBits alone). */
	c->nent = 2;
	c->entries[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0x80000008};
	c->entries[1] = (struct kvm_cpuid_entry2){.function = 0x80000008, .eax = 0x3028};
	assert_int_equal(pci_guest_phys_bits(c), 40);
	c->entries[1].eax = 0x300034;
	assert_int_equal(pci_guest_phys_bits(c), 52);
	c->entries[1].eax = 0x340030;
	assert_int_equal(pci_guest_phys_bits(c), 48);
	c->nent = 1;
	assert_int_equal(pci_guest_phys_bits(c), 0);
	free(c);
}

/* A firmware VM's RAM never reaches SeaBIOS's ECAM (0xB0000000, 256 MiB) or its BAR window
 * above: all of it below 2.75 GiB when it fits, else 2 GiB low and the rest at 4 GiB (QEMU's
 * q35). Direct boot keeps its 3 GiB. */
/* Guest RAM on a 2 MiB boundary whatever the size and whatever the address space looks like
 * (sizes that are no multiple of 2 MiB get no THP alignment from any kernel; small mappings
 * between them leave the next free address on an odd page). */
static void test_ram_huge_aligned(void **state)
{
	static const uint64_t sizes[] = {(64ull << 20) + 4096, 16ull << 20, (2ull << 20) - 4096,
					 (256ull << 20) + 12288};
	(void)state;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *odd =
			mmap(NULL, 4096 * (i + 1), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct guest_mem mem;

		assert_true(odd != MAP_FAILED);
		assert_int_equal(mem_init(&mem, sizes[i], false), 0);
		assert_int_equal((uintptr_t)mem.base % MEM_HUGE_ALIGN, 0);
		((volatile uint8_t *)mem.base)[sizes[i] - 1] = 1; /* all of it is mapped */
		mem_free(&mem);
		munmap(odd, 4096 * (i + 1));
	}
}

static void test_firmware_low_ram(void **state)
{
	static const uint64_t sizes[] = {512ull << 20, 0xaff00000ull, 0xb0000000ull,
					 3ull << 30,   4ull << 30,    40ull << 30};
	struct mem_region r[MEM_MAX_REGIONS];
	unsigned i, n;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = mem_layout(sizes[i], true, r);
		assert_true(r[0].gpa == 0 && r[0].size <= 0xb0000000ull);
		assert_int_equal(r[0].size + (n > 1 ? r[1].size : 0), sizes[i]);
		if (n > 1) {
			assert_int_equal(r[0].size, 2ull << 30);
			assert_int_equal(r[1].gpa, 4ull << 30);
		}
	}
	assert_int_equal(mem_layout(0xaff00000ull, true, r), 1);
	assert_int_equal(mem_layout(4ull << 30, false, r), 2);
	assert_int_equal(r[0].size, 3ull << 30);
	assert_int_equal(pci_window64_base(4ull << 30, true), 6ull << 30);
	assert_int_equal(pci_window64_base(4ull << 30, false), 5ull << 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_bar_sizing_and_mapping),
		cmocka_unit_test(test_msix),
		cmocka_unit_test(test_conf1_decode),
		cmocka_unit_test(test_acpi_tables),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_ovmf_dynamic_window),
		cmocka_unit_test(test_firmware_low_ram),
		cmocka_unit_test(test_ram_huge_aligned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
