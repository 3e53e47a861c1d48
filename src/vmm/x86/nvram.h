/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's UEFI variable store file (docs/formats/nvram.md): the contents of OVMF's variable
 * flash, byte for byte as Debian's OVMF_VARS_4M.fd is (a firmware volume: "_FVH" at offset
 * 40). Created from the template when missing. Every save writes a new file beside it and
 * renames it over the old one, with fsync before and after, so a crash at any moment leaves
 * either the old store or the new one, whole. The directory is opened once, so saves work
 * from inside the jail.
 */
#ifndef KEEL_VMM_X86_NVRAM_H
#define KEEL_VMM_X86_NVRAM_H

#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define NVRAM_FVH_OFFSET 40 /* EFI_FIRMWARE_VOLUME_HEADER.Signature */
/* How a store is opened for reading: O_NONBLOCK, so a FIFO is refused instead of waited on. */
#define NVRAM_READ_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK)

struct nvram {
	int dirfd;
	char name[NAME_MAX + 1];    /* the store's name in its directory */
	char tmpname[NAME_MAX + 6]; /* the new file (name.new) written before the rename */
};

/* Is buf (size bytes) a variable store keel can use? NULL, or why not. */
const char *nvram_check(const uint8_t *buf, size_t size);
/* Open path's directory and read the store into *data (malloc'd, *size bytes), creating it
 * from template (same checks) when it does not exist. dirfd: path's directory, already open
 * (keeld's --fd nvram=N; taken over), or -1 to open it. Errors are one line naming the file. */
int nvram_open(struct nvram *n, const char *path, int dirfd, const char *template, uint8_t **data,
	       size_t *size, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Replace the store with data, crash-safely (uefi_store_write). Data that fails nvram_check
 * is not written (-EINVAL): the last good store stays, so a guest cannot make its VM
 * unstartable. Returns 0 or -errno. */
int nvram_save(const struct nvram *n, const uint8_t *data, size_t size)
	__attribute__((warn_unused_result));
void nvram_close(struct nvram *n);
/* The template alone into *data (a VM without a store: its variables live in memory only).
 * Errors are one line naming the file; -ENOENT when it is missing. */
int nvram_read_template(const char *template, uint8_t **data, size_t *size, char *err,
			size_t errlen) __attribute__((warn_unused_result));
/* A jailed worker, while root: open template (a host file, outside the jail) for nvram_open
 * or nvram_read_template to take (jail_prep.h). */
void nvram_prepare(const char *template);
/* The same with the template keeld opened (--fd vars). */
void nvram_give(const char *template, int fd);

#endif
