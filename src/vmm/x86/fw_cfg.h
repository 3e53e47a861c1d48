/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU's firmware configuration interface, traditional (non-DMA) form: select an item by
 * writing its key to port 0x510, read it byte by byte from 0x511. Keys are QEMU's.
 */
#ifndef KEEL_VMM_X86_FW_CFG_H
#define KEEL_VMM_X86_FW_CFG_H

#include <stdint.h>

#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_ID	 0x0001
#define FW_CFG_UUID	 0x0002
#define FW_CFG_RAM_SIZE	 0x0003
#define FW_CFG_NB_CPUS	 0x0005
#define FW_CFG_MAX_CPUS	 0x000f
#define FW_CFG_FILE_DIR	 0x0019

struct machine;

int fw_cfg_create(struct machine *m) __attribute__((warn_unused_result));

#endif
