/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot order handed to firmware (fw_cfg "bootorder", as QEMU's): one Open Firmware
 * device path per line, most preferred first, the last line ended by a NUL instead of a
 * newline. SeaBIOS matches them against the devices it finds and OVMF turns them into its
 * BootOrder variable. A virtio-blk disk in PCI slot S is "/pci@i0cf8/scsi@S/disk@0,0" (S in
 * hex), the path QEMU gives it; disks come in the VM's order.
 */
#ifndef KEEL_VMM_X86_BOOTORDER_H
#define KEEL_VMM_X86_BOOTORDER_H

#include <stddef.h>

#include "config/vmdef.h"

/* Room for every device's path. */
#define BOOTORDER_MAX (VMDEF_MAX_PCI_DEVICES * 40)

/* Write def's boot order into buf; returns its length with the NUL, 0 when there is no
 * bootable device (publish no file then: the firmware keeps its own order), or -ENOSPC. */
int bootorder_build(const struct vm_def *def, char *buf, size_t cap)
	__attribute__((warn_unused_result));

#endif
