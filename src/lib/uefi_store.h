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
#include <sys/types.h>

#define UEFI_STORE_MIN_SIZE (64u << 10)
#define UEFI_STORE_MAX_SIZE (4u << 20)

/* NULL when buf (size bytes, the whole file) is a variable store, else why not (one line,
 * starting "not a UEFI variable store"). */
const char *uefi_store_check(const uint8_t *buf, size_t size);
/* The whole regular file at fd read into *data (malloc'd, *size bytes) and checked; shown
 * names it in err. 0, -EINVAL (not a store), -EIO or -ENOMEM. */
int uefi_store_read(int fd, const char *shown, uint8_t **data, size_t *size, char *err,
		    size_t errlen) __attribute__((warn_unused_result));
/* Replace name in dirfd with data crash-safely: a new file tmpname (never an existing one,
 * no link followed), fsync, rename over name, fsync of the directory. A crash at any moment
 * leaves the old store or the new one, whole. 0 or -errno. */
int uefi_store_write(int dirfd, const char *name, const char *tmpname, const uint8_t *data,
		     size_t size) __attribute__((warn_unused_result));
/* The same into the directory dir, made with mode when it does not exist (its parent must);
 * dir itself must not be a symbolic link. 0 or -errno. */
int uefi_store_write_in(const char *dir, mode_t mode, const char *name, const char *tmpname,
			const uint8_t *data, size_t size) __attribute__((warn_unused_result));

#endif
