/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel-vmm's own large buffers (a virtio-blk device's request slots and its source of zeros,
 * the UEFI variable store): anonymous memory keel maps itself and marks MADV_NOHUGEPAGE.
 * Through malloc, a buffer of 128 KiB or more is a mapping of its own that the kernel merges
 * with its anonymous neighbours; with transparent huge pages "always" (Debian's kernels), the
 * first touch of a 2 MiB-aligned range such a merged mapping covers whole brings in a 2 MiB
 * huge page, resident in the VMM's own memory for a few KiB used (bench/firmware saw 2 MiB of
 * one virtio-blk's slots and zeros, docs/BENCHMARKS.md). Marked, the buffer neither gets huge
 * pages nor merges with an unmarked neighbour; only the pages touched are resident. Thread
 * stacks do the same (vthread.h); guest RAM asks for huge pages (mem.c).
 */
#ifndef KEEL_VMM_DEVMEM_H
#define KEEL_VMM_DEVMEM_H

#include <stddef.h>

/* size bytes (rounded up to whole pages), zero-filled, page-aligned. NULL with errno set. */
void *devmem_alloc(size_t size);
/* Give back what devmem_alloc(size) returned (the same size); NULL does nothing. */
void devmem_free(void *p, size_t size);

#endif
