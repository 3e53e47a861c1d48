/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fw_cfg as SeaBIOS and OVMF drive it: the fixed items (signature, DMA in the ID, the VM's
 * UUID), the file directory, DMA descriptors (select, read, skip, zero fill past the end,
 * writes and buffers outside RAM refused, the status written back), "etc/e820", the boot
 * order strings, and the ACPI tables run through the table-loader script the way firmware
 * runs it, ending in a valid RSDP -> XSDT -> FADT -> DSDT chain.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/le.h"
#include "vmm/bus.h"
#include "vmm/dev/pm.h"
#include "vmm/pci.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/acpi_loader.h"
#include "vmm/x86/bootorder.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/fw_cfg.h"
#include "vmm/x86/fw_cfg_content.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/smbios.h"

#define UUID_TEXT "12345678-9abc-def0-1122-334455667788"
#define DESC	  0x1000ull  /* where the tests put DMA descriptors */
#define BUF	  0x10000ull /* and the buffers */

static struct vm_def def = {.cpus = 3, .memory = 64 << 20, .uuid = UUID_TEXT};
static struct guest_mem mem;
static struct bus pio, mmio;
static struct machine m = {.def = &def, .mem = &mem, .pio = &pio, .mmio = &mmio};
static struct fw_cfg *f;
static const struct bus_ops no_ops;

static int setup(void **state)
{
	/* The chipset's movable ranges the ACPI tables follow (dev/pm.h, pci.h). */
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	if (bus_register_movable(&pio, PM_BLOCK_SIZE, &no_ops, NULL, PM_BUS_NAME) ||
	    bus_register_movable(&mmio, LAYOUT_PCI_ECAM_SIZE, &no_ops, NULL, PCI_ECAM_BUS_NAME))
		return -1;
	def.ndisks = 2;
	def.disks[0].pci_slot = 3;
	def.disks[1].pci_slot = 0x1e;
	if (mem_init(&mem, def.memory, def.firmware != VM_FIRMWARE_NONE))
		return -1;
	f = fw_cfg_new(&mem);
	if (!f || fw_cfg_content_add(f, &m) || fw_cfg_finish(f))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	fw_cfg_free(f);
	mem_free(&mem);
	return 0;
}

static void select_key(uint16_t key)
{
	fw_cfg_port_write(f, FW_CFG_PORT_SEL, 2, key);
}

static void read_bytes(void *out, size_t len)
{
	uint8_t *p = out;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)fw_cfg_port_read(f, FW_CFG_PORT_DATA, 1);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Write a descriptor at gpa and hand its address to the device as a guest does: the high
 * half (if any) to 0x514, the low half to 0x518, each as big-endian bytes. */
static uint32_t dma_at(uint64_t gpa, uint32_t control, uint32_t len, uint64_t addr)
{
	uint8_t d[16];

	for (int i = 0; i < 4; i++) {
		d[i] = (uint8_t)(control >> (24 - 8 * i));
		d[4 + i] = (uint8_t)(len >> (24 - 8 * i));
	}
	for (int i = 0; i < 8; i++)
		d[8 + i] = (uint8_t)(addr >> (56 - 8 * i));
	if (mem_ptr(&mem, gpa, 16))
		assert_int_equal(mem_write(&mem, gpa, d, 16), 0);
	if (gpa >> 32)
		fw_cfg_port_write(f, FW_CFG_PORT_DMA_HIGH, 4,
				  __builtin_bswap32((uint32_t)(gpa >> 32)));
	fw_cfg_port_write(f, FW_CFG_PORT_DMA_LOW, 4, __builtin_bswap32((uint32_t)gpa));
	if (!mem_ptr(&mem, gpa, 16))
		return 0xdeadbeef;
	assert_int_equal(mem_read(&mem, gpa, d, 4), 0);
	return be32(d);
}

static uint32_t dma(uint32_t control, uint32_t len, uint64_t addr)
{
	return dma_at(DESC, control, len, addr);
}

/* The file's key and size from the directory, read over DMA; -1 if absent. */
static int find_file(const char *name, uint32_t *size)
{
	uint8_t dir[4 + FW_CFG_MAX_ITEMS * 64];
	uint32_t n;

	assert_int_equal(
		dma(FW_CFG_FILE_DIR << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, sizeof(dir), BUF),
		0);
	assert_int_equal(mem_read(&mem, BUF, dir, sizeof(dir)), 0);
	n = be32(dir);
	assert_true(n <= FW_CFG_MAX_ITEMS);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = dir + 4 + i * 64;

		if (!strncmp((const char *)e + 8, name, FW_CFG_NAME_MAX)) {
			*size = be32(e);
			return e[4] << 8 | e[5];
		}
	}
	return -1;
}

/* A whole file, read over DMA into a new buffer. */
static uint8_t *read_file(const char *name, uint32_t *size)
{
	int key = find_file(name, size);
	uint8_t *p;

	assert_true(key >= FW_CFG_FILE_FIRST);
	p = malloc(*size + 1);
	assert_non_null(p);
	assert_int_equal(dma((uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, *size, BUF),
			 0);
	assert_int_equal(mem_read(&mem, BUF, p, *size), 0);
	p[*size] = 0;
	return p;
}

static void test_fixed_items(void **state)
{
	char sig[4];
	uint8_t id[4], uuid[16], want[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
					     0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
	uint16_t cpus;

	select_key(FW_CFG_SIGNATURE);
	read_bytes(sig, 4);
	assert_memory_equal(sig, "QEMU", 4);
	select_key(FW_CFG_ID);
	read_bytes(id, 4);
	assert_int_equal(id[0], FW_CFG_VERSION | FW_CFG_VERSION_DMA);
	select_key(FW_CFG_UUID);
	read_bytes(uuid, 16);
	assert_memory_equal(uuid, want, 16);
	select_key(FW_CFG_NB_CPUS);
	read_bytes(&cpus, 2);
	assert_int_equal(cpus, 3);
	/* Past the end: zeros; the DMA ports read as "QEMU CFG". */
	select_key(FW_CFG_SIGNATURE);
	read_bytes(sig, 4);
	assert_int_equal(fw_cfg_port_read(f, FW_CFG_PORT_DATA, 1), 0);
	assert_int_equal(fw_cfg_port_read(f, FW_CFG_PORT_DMA_HIGH, 4), 0x554d4551); /* "QEMU" */
	assert_int_equal(fw_cfg_port_read(f, FW_CFG_PORT_DMA_LOW, 4), 0x47464320);  /* " CFG" */
	/* An unknown key selects nothing: zeros. */
	select_key(0x1234);
	assert_int_equal(fw_cfg_port_read(f, FW_CFG_PORT_DATA, 1), 0);
	/* No UUID: zeros. */
	fw_cfg_uuid_bytes("", uuid);
	memset(want, 0, 16);
	assert_memory_equal(uuid, want, 16);
}

static void test_directory(void **state)
{
	static const char *const names[] = {"bootorder",
					    "etc/acpi/rsdp",
					    "etc/acpi/tables",
					    "etc/e820",
					    "etc/sercon-port",
					    "etc/smbios/smbios-anchor",
					    "etc/smbios/smbios-tables",
					    "etc/table-loader",
					    "opt/ovmf/X-PciMmio64Mb"};
	uint8_t dir[4 + FW_CFG_MAX_ITEMS * 64];
	uint32_t size, n;
	uint16_t v;

	select_key(FW_CFG_FILE_DIR);
	read_bytes(dir, sizeof(dir));
	n = be32(dir);
	assert_int_equal(n, sizeof(names) / sizeof(names[0]));
	/* In name order, with keys from 0x20 up. */
	for (uint32_t i = 0; i < n; i++) {
		assert_string_equal((const char *)dir + 4 + i * 64 + 8, names[i]);
		assert_int_equal(dir[4 + i * 64 + 4] << 8 | dir[4 + i * 64 + 5],
				 FW_CFG_FILE_FIRST + i);
	}
	select_key((uint16_t)find_file("etc/sercon-port", &size));
	assert_int_equal(size, 2);
	read_bytes(&v, 2);
	assert_int_equal(v, PORT_COM1);
	assert_int_equal(find_file("etc/nothing", &size), -1);
	/* Items cannot be added once the directory is published. */
	assert_int_equal(fw_cfg_add_file(f, "late", "x", 1), -EBUSY);
}

/* The boot menu: off by default, as QEMU's (key 0x000e is 0 and there is no
 * "etc/boot-menu-wait": SeaBIOS and OVMF boot at once); the VM's "boot_menu" makes it 1 with
 * the wait. */
static void test_boot_menu(void **state)
{
	struct fw_cfg *off = f;
	uint32_t size;
	uint16_t v;

	select_key(FW_CFG_BOOT_MENU);
	v = 0xffff;
	read_bytes(&v, 2);
	assert_int_equal(v, 0);
	assert_int_equal(find_file("etc/boot-menu-wait", &size), -1);

	def.boot_menu = true;
	f = fw_cfg_new(&mem);
	assert_non_null(f);
	assert_int_equal(fw_cfg_content_add(f, &m), 0);
	assert_int_equal(fw_cfg_finish(f), 0);
	select_key(FW_CFG_BOOT_MENU);
	read_bytes(&v, 2);
	assert_int_equal(v, 1);
	select_key((uint16_t)find_file("etc/boot-menu-wait", &size));
	assert_int_equal(size, 2);
	read_bytes(&v, 2);
	assert_int_equal(v, FW_CFG_BOOT_MENU_WAIT_MS);
	fw_cfg_free(f);
	f = off;
	def.boot_menu = false;
}

static void test_dma(void **state)
{
	uint8_t b[8];

	/* Select and read part, then the rest with the position kept, then past the end. */
	memset(b, 0xaa, sizeof(b));
	assert_int_equal(mem_write(&mem, BUF, b, sizeof(b)), 0);
	assert_int_equal(dma(FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 2, BUF),
			 0);
	assert_int_equal(dma(FW_CFG_DMA_READ, 4, BUF + 2), 0);
	assert_int_equal(mem_read(&mem, BUF, b, sizeof(b)), 0);
	assert_memory_equal(b, "QEMU\0\0\xaa\xaa", 8);
	/* Skip moves the position without touching memory; the data port continues there. */
	assert_int_equal(dma(FW_CFG_UUID << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_SKIP, 15, 0), 0);
	assert_int_equal(fw_cfg_port_read(f, FW_CFG_PORT_DATA, 1), 0x88);
	/* Writes: every item is read-only. */
	assert_int_equal(dma(FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 4, BUF),
			 FW_CFG_DMA_ERROR);
	/* A buffer not in RAM, or wrapping around: an error, nothing written. */
	assert_int_equal(dma(FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4,
			     LAYOUT_PCI_MMIO32),
			 FW_CFG_DMA_ERROR);
	assert_int_equal(dma(FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 16,
			     UINT64_MAX - 4),
			 FW_CFG_DMA_ERROR);
	assert_int_equal(
		dma(FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, UINT32_MAX, BUF),
		FW_CFG_DMA_ERROR);
	/* A descriptor outside RAM, in the hole and above 4 GiB: ignored, no crash. */
	dma_at(LAYOUT_PCI_MMIO32 + 0x100, FW_CFG_DMA_READ, 4, BUF);
	dma_at(0x123456789000ull, FW_CFG_DMA_READ, 4, BUF);
	dma_at(def.memory - 8, FW_CFG_DMA_READ, 4, BUF);
	/* The high half does not stick: the next transfer's descriptor is below 4 GiB. */
	assert_int_equal(dma(FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, BUF),
			 0);
	/* No operation: nothing happens, success. */
	assert_int_equal(dma(0, 4, BUF), 0);
	/* Reset: nothing selected. */
	select_key(FW_CFG_SIGNATURE);
	fw_cfg_reset(f);
	assert_int_equal(fw_cfg_port_read(f, FW_CFG_PORT_DATA, 1), 0);
}

static void test_e820(void **state)
{
	uint32_t size;
	uint8_t *p = read_file("etc/e820", &size);

	/* 64 MiB of RAM from 0 in one piece, and KVM's private pages reserved. */
	assert_int_equal(size, 2 * 20);
	assert_int_equal(le64_load(p), 0);
	assert_int_equal(le64_load(p + 8), def.memory);
	assert_int_equal(le32_load(p + 16), E820_RAM);
	assert_int_equal(le64_load(p + 20), LAYOUT_IDENTITY_MAP);
	assert_int_equal(le64_load(p + 28), 0x4000);
	assert_int_equal(le32_load(p + 36), E820_RESERVED);
	free(p);
}

/* The SMBIOS string number n (1-based) of the structure at t. */
static const char *smbios_string(const uint8_t *t, unsigned n)
{
	const char *s = (const char *)t + t[1];

	while (n-- > 1)
		s += strlen(s) + 1;
	return s;
}

/* SMBIOS as the firmware reads it: a valid 2.8 entry point whose counts match the tables,
 * a System Information structure with the VM's UUID in SMBIOS's byte order (the first three
 * fields little-endian: dmidecode shows 12345678-9abc-def0-...), and the end structure. */
static void test_smbios(void **state)
{
	static const uint8_t want_uuid[16] = {0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde,
					      0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
	uint32_t asize, tsize;
	uint8_t *a = read_file("etc/smbios/smbios-anchor", &asize);
	uint8_t *t = read_file("etc/smbios/smbios-tables", &tsize);
	const uint8_t *end;

	assert_int_equal(asize, SMBIOS_ANCHOR_SIZE);
	assert_memory_equal(a, "_SM_", 4);
	assert_int_equal(acpi_checksum(a, asize), 0);
	assert_memory_equal(a + 16, "_DMI_", 5);
	assert_int_equal(acpi_checksum(a + 16, asize - 16), 0);
	assert_int_equal(le16_load(a + 22), tsize);
	assert_int_equal(le16_load(a + 28), 2);
	assert_int_equal(t[0], 1);
	assert_memory_equal(t + 8, want_uuid, 16);
	assert_string_equal(smbios_string(t, t[4]), SMBIOS_MANUFACTURER);
	assert_string_equal(smbios_string(t, t[5]), SMBIOS_PRODUCT);
	assert_string_equal(smbios_string(t, t[7]), UUID_TEXT);
	assert_string_equal(smbios_string(t, t[26]), SMBIOS_FAMILY);
	/* The structure after type 1's string set (which ends with two NULs) is type 127. */
	end = t + t[1];
	while (end[0] || end[1])
		end++;
	end += 2;
	assert_int_equal(end[0], 127);
	assert_int_equal(end + 6 - t, tsize); /* its 4 bytes and its empty string set */
	assert_true(le16_load(a + 8) >= (size_t)(end - t));
	free(a);
	free(t);
}

static void test_bootorder(void **state)
{
	char buf[BOOTORDER_MAX];
	struct vm_def none = {.ndisks = 0};
	uint32_t size;
	uint8_t *p = read_file("bootorder", &size);
	static const char want[] = "/pci@i0cf8/scsi@3/disk@0,0\n/pci@i0cf8/scsi@1e/disk@0,0";

	assert_int_equal(size, sizeof(want));
	assert_memory_equal(p, want, sizeof(want)); /* with its NUL */
	free(p);
	assert_int_equal(bootorder_build(&def, buf, sizeof(buf)), sizeof(want));
	assert_int_equal(bootorder_build(&none, buf, sizeof(buf)), 0);
	assert_int_equal(bootorder_build(&def, buf, 20), -ENOSPC);
	assert_int_equal(bootorder_build(&def, buf, sizeof(want) - 1), -ENOSPC);
	assert_int_equal(bootorder_build(&def, buf, sizeof(want)), sizeof(want));
}

/* The boot order's words and their Open Firmware paths, as QEMU names the same devices (the
 * paths SeaBIOS's glob matching and OVMF's QemuBootOrderLib parse): classes take their
 * devices in order, a device named before its class comes first, the default is
 * disk,dvd,net; refusals name the item. */
static void test_boot_order(void **state)
{
	struct vm_def d;
	char buf[BOOTORDER_MAX], err[256];
	json_object *j;
	static const char want_default[] = "/pci@i0cf8/scsi@2/disk@0,0\n"
					   "/pci@i0cf8/scsi@3/disk@0,0\n"
					   "/pci@i0cf8/scsi@7/channel@0/disk@0,1\n"
					   "/pci@i0cf8/scsi@7/channel@0/disk@0,0\n"
					   "/pci@i0cf8/scsi@7/channel@0/disk@0,2\n"
					   "/pci@i0cf8/ethernet@a";
	static const char want_order[] = "/pci@i0cf8/scsi@3/disk@0,0\n"
					 "/pci@i0cf8/scsi@7/channel@0/disk@0,0\n"
					 "/pci@i0cf8/scsi@7/channel@0/disk@0,2\n"
					 "/pci@i0cf8/ethernet@a\n"
					 "/pci@i0cf8/scsi@2/disk@0,0\n"
					 "/pci@i0cf8/scsi@7/channel@0/disk@0,1";
	static const char want_lun2[] = "/pci@i0cf8/scsi@7/channel@0/disk@0,2\n"
					"/pci@i0cf8/scsi@2/disk@0,0\n"
					"/pci@i0cf8/scsi@3/disk@0,0\n"
					"/pci@i0cf8/scsi@7/channel@0/disk@0,1\n"
					"/pci@i0cf8/scsi@7/channel@0/disk@0,0\n"
					"/pci@i0cf8/ethernet@a";
	static const char want_net[] = "/pci@i0cf8/ethernet@a\n"
				       "/pci@i0cf8/scsi@2/disk@0,0\n"
				       "/pci@i0cf8/scsi@3/disk@0,0\n"
				       "/pci@i0cf8/scsi@7/channel@0/disk@0,1\n"
				       "/pci@i0cf8/scsi@7/channel@0/disk@0,0\n"
				       "/pci@i0cf8/scsi@7/channel@0/disk@0,2";

	vmdef_init(&d);
	strcpy(d.name, "b");
	d.firmware = VM_FIRMWARE_UEFI;
	d.ndisks = 2;
	d.disks[0].pci_slot = 2;
	d.disks[1].pci_slot = 3;
	d.nnics = 1;
	d.nics[0].pci_slot = 10;
	d.scsi.pci_slot = 7;
	d.scsi.nluns = 3;
	d.scsi.luns[0].type = VM_LUN_DVD;
	d.scsi.luns[1].type = VM_LUN_DISK;
	d.scsi.luns[2].type = VM_LUN_DVD;
	assert_int_equal(bootorder_build(&d, buf, sizeof(buf)), sizeof(want_default));
	assert_string_equal(buf, want_default);
	vmdef_boot_text(&d, buf, sizeof(buf));
	assert_string_equal(buf, "disk,dvd,net");

	assert_int_equal(vmdef_boot_parse(&d, "disk1,dvd,net,disk", err, sizeof(err)), 0);
	assert_int_equal(vmdef_boot_check(&d, err, sizeof(err)), 0);
	assert_int_equal(bootorder_build(&d, buf, sizeof(buf)), sizeof(want_order));
	assert_string_equal(buf, want_order);
	vmdef_boot_text(&d, buf, sizeof(buf));
	assert_string_equal(buf, "disk1,dvd,net,disk");
	j = vmdef_boot_to_json(&d);
	assert_string_equal(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
			    "[\"disk1\",\"dvd\",\"net\",\"disk\"]");
	/* One device named: it first, then every other device in the default order (OVMF
	 * would drop a device the file leaves out). */
	assert_int_equal(vmdef_boot_parse(&d, "lun2", err, sizeof(err)), 0);
	assert_int_equal(bootorder_build(&d, buf, sizeof(buf)), sizeof(want_lun2));
	assert_string_equal(buf, want_lun2);
	assert_int_equal(vmdef_boot_parse(&d, "net", err, sizeof(err)), 0);
	assert_int_equal(bootorder_build(&d, buf, sizeof(buf)), sizeof(want_net));
	assert_string_equal(buf, want_net);
	assert_int_equal(vmdef_boot_parse_json(&d, j, err, sizeof(err)), 0);
	assert_int_equal(d.nboot, 4);
	json_object_put(j);

	/* Refused, and the order kept. */
	assert_int_equal(vmdef_boot_parse(&d, "disk,dvd,disk", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'disk' is named twice"));
	assert_int_equal(vmdef_boot_parse(&d, "dvd,,disk", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'' is not a boot device"));
	assert_int_equal(vmdef_boot_parse(&d, "floppy", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'floppy' is not a boot device"));
	assert_int_equal(vmdef_boot_parse(&d, "disk16", err, sizeof(err)), -EINVAL);
	assert_int_equal(vmdef_boot_parse(&d, "lun8", err, sizeof(err)), -EINVAL);
	assert_int_equal(vmdef_boot_parse(&d, "net-1", err, sizeof(err)), -EINVAL);
	assert_int_equal(d.nboot, 4);
	j = json_tokener_parse("[\"dvd\", 3]");
	assert_int_equal(vmdef_boot_parse_json(&d, j, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "item 1 is not a string"));
	json_object_put(j);
	/* Against the devices: a class or a device the VM does not have. */
	assert_int_equal(vmdef_boot_parse(&d, "net1", err, sizeof(err)), 0);
	assert_int_equal(vmdef_boot_check(&d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "VM 'b' has no net1"));
	d.nnics = 0;
	assert_int_equal(vmdef_boot_parse(&d, "disk,net", err, sizeof(err)), 0);
	assert_int_equal(vmdef_boot_check(&d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has no network adapter"));
	d.scsi.nluns = 0;
	assert_int_equal(vmdef_boot_parse(&d, "dvd", err, sizeof(err)), 0);
	assert_int_equal(vmdef_boot_check(&d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has no DVD drive"));
	assert_int_equal(vmdef_boot_parse(&d, "default", err, sizeof(err)), 0);
	assert_int_equal(d.nboot, 0);
	/* Direct kernel boot has no firmware to hand an order to. */
	d.firmware = VM_FIRMWARE_NONE;
	assert_int_equal(vmdef_boot_parse(&d, "disk", err, sizeof(err)), 0);
	assert_int_equal(vmdef_boot_check(&d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "boots its kernel directly"));
	d.ndisks = d.nnics = 0;
	vmdef_free(&d);
}

/* The loader script run as SeaBIOS runs it: files placed at addresses, pointers patched,
 * checksums computed (edk2's way: over the zeroed field). */
struct placed {
	const char *name;
	uint8_t *data;
	uint32_t size;
	uint64_t addr;
};

static struct placed *placed_file(struct placed *files, const uint8_t *name)
{
	for (unsigned i = 0; i < 2; i++)
		if (!strncmp(files[i].name, (const char *)name, ACPI_LOADER_FILE_MAX))
			return &files[i];
	fail_msg("the script names unknown file %.56s", name);
	return NULL;
}

static const uint8_t *at(struct placed *files, uint64_t addr, uint32_t len)
{
	for (unsigned i = 0; i < 2; i++)
		if (addr >= files[i].addr && addr + len <= files[i].addr + files[i].size)
			return files[i].data + (addr - files[i].addr);
	fail_msg("address 0x%llx (+%u) is in no file", (unsigned long long)addr, len);
	return NULL;
}

static void run_table_loader(uint16_t want_pm, uint64_t want_ecam)
{
	struct placed files[2] = {{.name = ACPI_LOADER_RSDP, .addr = 0xf5a40},
				  {.name = ACPI_LOADER_TABLES, .addr = 0x3ffd0000}};
	uint32_t size, i, nalloc = 0, nptr = 0, nsum = 0;
	uint8_t *script = read_file(ACPI_LOADER_SCRIPT, &size);
	const uint8_t *rsdp, *xsdt, *fadt, *dsdt, *facs;

	for (i = 0; i < 2; i++)
		files[i].data = read_file(files[i].name, &files[i].size);
	assert_int_equal(files[0].size, ACPI_RSDP_SIZE);
	assert_int_equal(size % ACPI_LOADER_ENTRY, 0);
	for (i = 0; i < size; i += ACPI_LOADER_ENTRY) {
		const uint8_t *e = script + i + 4;
		struct placed *p = placed_file(files, e);

		switch (le32_load(script + i)) {
		case ACPI_LOADER_ALLOCATE:
			/* Both allocated first; the RSDP in the F segment, the rest high. */
			assert_int_equal(nptr + nsum, 0);
			assert_int_equal(e[60], p == &files[0] ? ACPI_LOADER_ZONE_FSEG
							       : ACPI_LOADER_ZONE_HIGH);
			assert_int_equal(p->addr % le32_load(e + 56), 0);
			nalloc++;
			break;
		case ACPI_LOADER_ADD_POINTER: {
			struct placed *src = placed_file(files, e + 56);
			uint32_t off = le32_load(e + 112);
			uint8_t sz = e[116];

			assert_int_equal(nsum, 0); /* checksums come last */
			assert_true(sz == 4 || sz == 8);
			assert_true(off + sz <= p->size);
			assert_true(le_load(p->data + off, sz) < src->size);
			le_store(p->data + off, le_load(p->data + off, sz) + src->addr, sz);
			nptr++;
			break;
		}
		case ACPI_LOADER_ADD_CHECKSUM: {
			uint32_t off = le32_load(e + 56), start = le32_load(e + 60),
				 len = le32_load(e + 64);

			assert_true(start + len <= p->size && off >= start && off < start + len);
			assert_int_equal(p->data[off], 0);
			p->data[off] = (uint8_t)(0x100 - acpi_checksum(p->data + start, len));
			nsum++;
			break;
		}
		default:
			fail_msg("unknown command %u", le32_load(script + i));
		}
	}
	assert_int_equal(nalloc, 2);
	assert_true(nptr >= 6);
	assert_true(nsum >= 6);

	rsdp = files[0].data;
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(rsdp, 20), 0);
	assert_int_equal(acpi_checksum(rsdp, 36), 0);
	xsdt = at(files, le64_load(rsdp + 24), 36);
	assert_memory_equal(xsdt, "XSDT", 4);
	assert_int_equal(acpi_checksum(xsdt, le32_load(xsdt + 4)), 0);
	assert_memory_equal(at(files, le32_load(rsdp + 16), 36), "RSDT", 4);
	fadt = at(files, le64_load(xsdt + 36), 36);
	assert_memory_equal(fadt, "FACP", 4);
	assert_int_equal(acpi_checksum(fadt, le32_load(fadt + 4)), 0);
	dsdt = at(files, le64_load(fadt + 140), 36);
	assert_memory_equal(dsdt, "DSDT", 4);
	assert_int_equal(acpi_checksum(dsdt, le32_load(dsdt + 4)), 0);
	assert_ptr_equal(at(files, le32_load(fadt + 40), 36), dsdt);
	facs = at(files, le64_load(fadt + 132), 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal((le64_load(fadt + 132)) % 64, 0);
	/* The PM registers where the chipset's PMBASE puts them. */
	assert_int_equal(le32_load(fadt + 56), want_pm);
	assert_int_equal(le32_load(fadt + 64), want_pm + 4);
	assert_int_equal(le32_load(fadt + 76), want_pm + 8);
	assert_int_equal(le64_load(fadt + 172 + 4), want_pm + 4);
	/* Every table the XSDT lists is whole and sums to zero (MADT, MCFG); MCFG has ECAM
	 * where PCIEXBAR put it. */
	for (i = 36; i < le32_load(xsdt + 4); i += 8) {
		const uint8_t *t = at(files, le64_load(xsdt + i), 36);

		at(files, le64_load(xsdt + i), le32_load(t + 4));
		assert_int_equal(acpi_checksum(t, le32_load(t + 4)), 0);
		if (!memcmp(t, "MCFG", 4))
			assert_int_equal(le64_load(t + 44), want_ecam);
	}
	free(script);
	free(files[0].data);
	free(files[1].data);
}

static void test_table_loader(void **state)
{
	/* Nothing decoding: keel's power-on places. */
	run_table_loader(PORT_PM_BASE, LAYOUT_PCI_ECAM);
}

/* Firmware moved the PM block and ECAM before reading the tables (SeaBIOS's places): the
 * tables it reads say so. */
static void test_table_loader_follows_chipset(void **state)
{
	assert_int_equal(bus_move(&pio, PM_BUS_NAME, 0xb000), 0);
	assert_int_equal(bus_move(&mmio, PCI_ECAM_BUS_NAME, 0xb0000000), 0);
	run_table_loader(0xb000, 0xb0000000);
	assert_int_equal(bus_move(&pio, PM_BUS_NAME, BUS_UNMAPPED), 0);
	assert_int_equal(bus_move(&mmio, PCI_ECAM_BUS_NAME, BUS_UNMAPPED), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_items),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_boot_menu),
		cmocka_unit_test(test_dma),
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_bootorder),
		cmocka_unit_test(test_boot_order),
		cmocka_unit_test(test_table_loader),
		cmocka_unit_test(test_table_loader_follows_chipset),
		cmocka_unit_test(test_smbios),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
