/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What keel publishes through fw_cfg (docs/devices.md): the VM's UUID (key 0x0002, in RFC
 * 4122 byte order), RAM size and CPU count, and the files SeaBIOS and OVMF read: "etc/e820"
 * (the RAM map), the ACPI tables through the table loader (acpi_loader.h), "bootorder"
 * (bootorder.h), the boot menu (key 0x000e, 1 with the VM's "boot_menu", else 0: both
 * SeaBIOS and OVMF show no menu; with it, "etc/boot-menu-wait": how long they offer it) and
 * "etc/sercon-port" (SeaBIOS prints its screen on COM1: keel has no display), SMBIOS
 * ("etc/smbios/smbios-tables" and "-anchor", smbios.h: the VM's UUID again), and
 * "opt/ovmf/X-PciMmio64Mb" (the size of OVMF's 64-bit PCI aperture, which keel decodes).
 */
#ifndef KEEL_VMM_X86_FW_CFG_CONTENT_H
#define KEEL_VMM_X86_FW_CFG_CONTENT_H

#include <stdint.h>

/* With the VM's "boot_menu": milliseconds SeaBIOS waits for Esc before booting (OVMF: its
 * front page countdown, in whole seconds). QEMU's "-boot menu=on" without a splash-time
 * leaves SeaBIOS's 2.5 s and OVMF's 3 s; one figure for both generations. */
#define FW_CFG_BOOT_MENU_WAIT_MS 3000

struct fw_cfg;
struct machine;

/* Add every item and file for the machine m (before fw_cfg_finish). Returns 0 or -errno. */
int fw_cfg_content_add(struct fw_cfg *f, const struct machine *m)
	__attribute__((warn_unused_result));

/* The VM's UUID ("" or the text form of vmdef.h) as the 16 bytes of fw_cfg key 0x0002:
 * RFC 4122 order (big-endian fields); all zero when there is none. */
void fw_cfg_uuid_bytes(const char *text, uint8_t out[16]);

#endif
