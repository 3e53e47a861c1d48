/* SPDX-License-Identifier: Apache-2.0 */
/* The alignment that O_DIRECT needs on a file, as its file system reports it. */
#ifndef KEEL_LIB_DIO_ALIGN_H
#define KEEL_LIB_DIO_ALIGN_H

#include <stdint.h>

struct dio_align {
	uint32_t mem; /* buffer addresses and segment lengths */
	uint32_t off; /* file offsets and transfer lengths */
};

/*
 * statx(STATX_DIOALIGN) on fd. Returns 1 with *out filled when the file system says (0 in
 * both fields: direct I/O is not supported on this file), 0 when it does not say (a kernel
 * before 6.1 or a file system that does not report it: the caller assumes 512), -errno on
 * failure.
 */
int dio_align_of(int fd, struct dio_align *out);

#endif
