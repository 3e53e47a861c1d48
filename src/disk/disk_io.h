/* SPDX-License-Identifier: Apache-2.0 */
/* Whole-buffer pread/pwrite that retry on EINTR and short transfers. Internal to src/disk. */
#ifndef KEEL_DISK_DISK_IO_H
#define KEEL_DISK_DISK_IO_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0, -errno, or -ENODATA if the file ends before off + len. */
int dio_pread(int fd, void *buf, size_t len, uint64_t off) __attribute__((warn_unused_result));
int dio_pwrite(int fd, const void *buf, size_t len, uint64_t off)
	__attribute__((warn_unused_result));
/* True if all len bytes are zero. */
_Bool dio_is_zero(const void *buf, size_t len);

#endif
