/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot order handed to firmware (fw_cfg "bootorder", as QEMU's): one Open Firmware
 * device path per line, most preferred first, the last line ended by a NUL instead of a
 * newline. SeaBIOS matches them against the devices it finds and OVMF turns them into its
 * BootOrder variable (OvmfPkg's QemuBootOrderLib). The paths are the ones QEMU gives the same
 * devices, which both firmwares parse (S: the PCI slot in hex):
 *   virtio-blk disk          /pci@i0cf8/scsi@S/disk@0,0
 *   virtio-scsi LUN L        /pci@i0cf8/scsi@S/channel@0/disk@0,L  (target 0; disk or DVD)
 *   virtio-net adapter       /pci@i0cf8/ethernet@S
 * in the VM's boot order (vmdef_boot_devices: "disk,dvd,net" unless the VM says otherwise).
 */
#ifndef KEEL_VMM_X86_BOOTORDER_H
#define KEEL_VMM_X86_BOOTORDER_H

#include <stddef.h>

#include "config/vmdef.h"

/* Room for every device's path. */
#define BOOTORDER_MAX (VMDEF_BOOT_DEVS_MAX * 48)

/* Write def's boot order into buf; returns its length with the NUL, 0 when there is no
 * bootable device (publish no file then: the firmware keeps its own order), or -ENOSPC. */
int bootorder_build(const struct vm_def *def, char *buf, size_t cap)
	__attribute__((warn_unused_result));

#endif
