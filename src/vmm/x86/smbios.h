/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SMBIOS for firmware (docs/devices.md): the tables QEMU hands SeaBIOS and OVMF through
 * fw_cfg ("etc/smbios/smbios-tables", "etc/smbios/smbios-anchor"), which they install where
 * operating systems find them. keel's: a System Information structure (type 1) with the
 * VM's UUID, which is what Linux shows as /sys/class/dmi/id/product_uuid and cloud-init and
 * Windows read as the machine's identity, and the end-of-table structure (type 127). The
 * firmware adds its own BIOS Information (type 0). The anchor is an SMBIOS 2.8 entry point
 * (32-bit, "_SM_"), its table address left for the firmware to fill in.
 */
#ifndef KEEL_VMM_X86_SMBIOS_H
#define KEEL_VMM_X86_SMBIOS_H

#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"

#define SMBIOS_ANCHOR_SIZE  31
#define SMBIOS_TABLES_MAX   256
#define SMBIOS_MANUFACTURER "keel"
#define SMBIOS_PRODUCT	    "keel virtual machine"
#define SMBIOS_FAMILY	    "Virtual Machine"

/* Build def's tables into tables (SMBIOS_TABLES_MAX bytes) and the entry point; returns the
 * tables' length. */
size_t smbios_build(const struct vm_def *def, uint8_t tables[SMBIOS_TABLES_MAX],
		    uint8_t anchor[SMBIOS_ANCHOR_SIZE]);

#endif
