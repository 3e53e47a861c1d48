/* SPDX-License-Identifier: Apache-2.0 */
/* Raw images: creation and resize (I/O goes through raw_ops in disk.h). */
#ifndef KEEL_DISK_RAW_H
#define KEEL_DISK_RAW_H

#include <stdint.h>

#include "disk/disk.h"

/* A sparse file of `size` bytes; fails if it exists. */
int raw_create(const char *path, uint64_t size, struct disk_err *err)
	__attribute__((warn_unused_result));
/* Grows, or shrinks when every byte cut off is zero. */
int raw_resize(const char *path, uint64_t size, struct disk_err *err)
	__attribute__((warn_unused_result));

#endif
