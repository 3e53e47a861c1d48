/* SPDX-License-Identifier: Apache-2.0 */
/* statx(2) through the kernel's own structure: glibc 2.36's struct statx (Debian 12) ends
 * before stx_dio_mem_align, so this file includes <linux/stat.h> and not <sys/stat.h>. */
#include "lib/dio_align.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int dio_align_of(int fd, struct dio_align *out)
{
	struct statx stx = {0};

	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0)
		return -errno;
	if (!(stx.stx_mask & STATX_DIOALIGN))
		return 0;
	out->mem = stx.stx_dio_mem_align;
	out->off = stx.stx_dio_offset_align;
	return 1;
}
