/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/fw_cfg_content.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "lib/le.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "vmm/bus.h"
#include "vmm/dev/pm.h"
#include "vmm/machine.h"
#include "vmm/pci.h"
#include "vmm/x86/acpi_loader.h"
#include "vmm/x86/acpi_pci.h"
#include "vmm/x86/bootorder.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/fw_cfg.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/smbios.h"

void fw_cfg_uuid_bytes(const char *text, uint8_t out[16])
{
	struct uuid u;

	memset(out, 0, 16);
	if (!text[0] || uuid_parse(text, &u))
		return;
	/* lib/uuid.h keeps Microsoft's layout: the first three fields little-endian. */
	for (unsigned i = 0; i < 4; i++)
		out[i] = u.b[3 - i];
	out[4] = u.b[5];
	out[5] = u.b[4];
	out[6] = u.b[7];
	out[7] = u.b[6];
	memcpy(out + 8, u.b + 8, 8);
}

static int add_le(struct fw_cfg *f, uint16_t key, uint64_t v, unsigned len)
{
	uint8_t b[8];

	le_store(b, v, len);
	return fw_cfg_add_item(f, key, b, len);
}

static int add_file_le(struct fw_cfg *f, const char *name, uint64_t v, unsigned len)
{
	uint8_t b[8];

	le_store(b, v, len);
	return fw_cfg_add_file(f, name, b, len);
}

static int add_e820(struct fw_cfg *f, const struct machine *m)
{
	struct e820_entry map[E820_MAX];
	unsigned n = e820_build_firmware(m->mem, map);
	uint8_t buf[E820_MAX * 20];

	/* Packed little-endian {u64 address, u64 length, u32 type}, as QEMU's. */
	for (unsigned i = 0; i < n; i++) {
		le64_store(buf + i * 20, map[i].addr);
		le64_store(buf + i * 20 + 8, map[i].size);
		le32_store(buf + i * 20 + 16, map[i].type);
	}
	return fw_cfg_add_file(f, "etc/e820", buf, n * 20);
}

/* The ACPI files, built for the chipset as it is programmed now: the PM block where PMBASE
 * put it and MCFG where PCIEXBAR put ECAM (keel's power-on places when they decode
 * nowhere). Sizes never change: only those addresses do. */
struct acpi_files {
	const struct machine *m;
	struct acpi_loader l;
};

static int acpi_files_build(struct acpi_files *a)
{
	const struct machine *m = a->m;
	uint64_t pm = bus_movable_base(m->pio, PM_BUS_NAME);
	uint64_t ecam = bus_movable_base(m->mmio, PCI_ECAM_BUS_NAME);
	struct acpi_pci pci;

	acpi_pci_layout(&pci, m->def, ecam != BUS_UNMAPPED ? ecam : LAYOUT_PCI_ECAM, m->phys_bits);
	return acpi_loader_build(&a->l, m->def->cpus, &pci,
				 pm != BUS_UNMAPPED ? (uint16_t)pm : PORT_PM_BASE);
}

static struct log_ratelimit acpi_rl = LOG_RATELIMIT_INIT(5000, 5);

static void acpi_files_refresh(void *opaque, struct fw_cfg *f)
{
	struct acpi_files *a = opaque;
	static struct acpi_loader old; /* under f's lock, as every refresh */
	int r;

	old = a->l;
	r = acpi_files_build(a);
	/* The same sizes unless the guest put ECAM where a 32-bit window vanishes (at 0xC0000000
	 * or within 256 MiB of the IOAPIC): then the tables keep their previous addresses. */
	if (r || a->l.tables_len != old.tables_len || a->l.script_len != old.script_len) {
		log_warn_ratelimited(
			&acpi_rl,
			"fw_cfg: ECAM at 0x%llx changes the ACPI tables' size; they keep "
			"the previous addresses",
			(unsigned long long)bus_movable_base(a->m->mmio, PCI_ECAM_BUS_NAME));
		a->l = old;
		return;
	}
	r = fw_cfg_update_file(f, ACPI_LOADER_TABLES, a->l.tables, (uint32_t)a->l.tables_len);
	r = r ?: fw_cfg_update_file(f, ACPI_LOADER_RSDP, a->l.rsdp, sizeof(a->l.rsdp));
	r = r ?: fw_cfg_update_file(f, ACPI_LOADER_SCRIPT, a->l.script, (uint32_t)a->l.script_len);
	if (r)
		log_warn_ratelimited(&acpi_rl, "fw_cfg: cannot refresh the ACPI files: %s",
				     strerror(-r));
}

static int add_acpi(struct fw_cfg *f, const struct machine *m)
{
	struct acpi_files *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	a->m = m;
	r = acpi_files_build(a);
	r = r
		    ?: fw_cfg_add_file_refreshed(f, ACPI_LOADER_TABLES, a->l.tables,
						 (uint32_t)a->l.tables_len);
	r = r ?: fw_cfg_add_file_refreshed(f, ACPI_LOADER_RSDP, a->l.rsdp, sizeof(a->l.rsdp));
	r = r
		    ?: fw_cfg_add_file_refreshed(f, ACPI_LOADER_SCRIPT, a->l.script,
						 (uint32_t)a->l.script_len);
	fw_cfg_set_refresh(f, acpi_files_refresh, a); /* f frees a, also on failure */
	return r;
}

static int add_bootorder(struct fw_cfg *f, const struct machine *m)
{
	char buf[BOOTORDER_MAX];
	int n = bootorder_build(m->def, buf, sizeof(buf));

	if (n <= 0)
		return n;
	return fw_cfg_add_file(f, "bootorder", buf, (uint32_t)n);
}

static int add_smbios(struct fw_cfg *f, const struct machine *m)
{
	uint8_t tables[SMBIOS_TABLES_MAX], anchor[SMBIOS_ANCHOR_SIZE];
	size_t len = smbios_build(m->def, tables, anchor);
	int r;

	r = fw_cfg_add_file(f, "etc/smbios/smbios-tables", tables, (uint32_t)len);
	return r ?: fw_cfg_add_file(f, "etc/smbios/smbios-anchor", anchor, sizeof(anchor));
}

/* OVMF's 64-bit PCI aperture size, in MiB as text: the window keel decodes has room for it
 * (layout.h, whatever the default of the OVMF build). */
static int add_ovmf_mmio64(struct fw_cfg *f)
{
	char mb[24];
	int n = snprintf(mb, sizeof(mb), "%llu",
			 (unsigned long long)(LAYOUT_PCI_MMIO64_OVMF / MiB));

	return fw_cfg_add_file(f, "opt/ovmf/X-PciMmio64Mb", mb, (uint32_t)n);
}

int fw_cfg_content_add(struct fw_cfg *f, const struct machine *m)
{
	uint8_t uuid[16];
	int r;

	fw_cfg_uuid_bytes(m->def->uuid, uuid);
	r = fw_cfg_add_item(f, FW_CFG_UUID, uuid, sizeof(uuid));
	r = r ?: add_le(f, FW_CFG_RAM_SIZE, m->def->memory, 8);
	r = r ?: add_le(f, FW_CFG_NB_CPUS, m->def->cpus, 2);
	r = r ?: add_le(f, FW_CFG_MAX_CPUS, m->def->cpus, 2);
	r = r ?: add_e820(f, m);
	r = r ?: add_acpi(f, m);
	r = r ?: add_bootorder(f, m);
	/* Key 0x000e is what both firmwares ask (SeaBIOS as "etc/show-boot-menu", OVMF's
	 * GetFrontPageTimeoutFromQemu); without it they read zeros, which also means no menu. */
	r = r ?: add_le(f, FW_CFG_BOOT_MENU, m->def->boot_menu, 2);
	if (m->def->boot_menu)
		r = r ?: add_file_le(f, "etc/boot-menu-wait", FW_CFG_BOOT_MENU_WAIT_MS, 2);
	r = r ?: add_file_le(f, "etc/sercon-port", PORT_COM1, 2);
	r = r ?: add_ovmf_mmio64(f);
	r = r ?: add_smbios(f, m);
	return r;
}
