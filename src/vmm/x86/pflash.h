/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OVMF's variable store as QEMU's second pflash chip (docs/devices.md): a CFI flash chip
 * (dev/cfi_flash.h) just below the firmware's code, which ends at 4 GiB, holding the VM's
 * NVRAM file (x86/nvram.h) or, without one, a copy of the template that lives as long as
 * the process. In read-array mode the store is a read-only memory slot, so the guest's reads
 * do not exit (as with QEMU's pflash); its writes do, and a command that leaves read-array
 * mode takes the slot away until the chip is back in read-array mode: status, ID, query
 * reads, programs and erases go through the CFI state machine (MMIO). When the guest finishes
 * a program or erase and returns the chip to read-array mode, the main thread writes the
 * store back to the file. Saved state: section "pflash" (the chip's registers and
 * contents).
 */
#ifndef KEEL_VMM_X86_PFLASH_H
#define KEEL_VMM_X86_PFLASH_H

#define PFLASH_BLOCK 4096 /* OVMF's PcdOvmfFirmwareBlockSize */

#endif
