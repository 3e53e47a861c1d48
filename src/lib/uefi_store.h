/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a UEFI variable store file is (docs/formats/nvram.md): the contents of OVMF's variable
 * flash as Debian's OVMF_VARS_4M.fd has them, a firmware volume ("_FVH") whose file system is
 * EFI_SYSTEM_NV_DATA_FV_GUID, holding a variable store header (authenticated or plain).
 * Checked by keeld before it hands a VM's store to its worker and by keel-vmm when it reads
 * one: the same check.
 */
#ifndef KEEL_LIB_UEFI_STORE_H
#define KEEL_LIB_UEFI_STORE_H

#include <stddef.h>
#include <stdint.h>

#define UEFI_STORE_MIN_SIZE (64u << 10)
#define UEFI_STORE_MAX_SIZE (4u << 20)

/* NULL when buf (size bytes, the whole file) is a variable store, else why not (one line,
 * starting "not a UEFI variable store"). */
const char *uefi_store_check(const uint8_t *buf, size_t size);

#endif
