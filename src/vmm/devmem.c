/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/devmem.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t page_round(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (size + page - 1) / page * page;
}

void *devmem_alloc(size_t size)
{
	size_t len;
	void *p;

	if (!size || size > SIZE_MAX / 2) {
		errno = EINVAL;
		return NULL;
	}
	len = page_round(size);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* The advice before any touch: not a huge page, not even once (a kernel without
	 * transparent huge pages refuses the advice, and gives none anyway). */
	(void)madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

void devmem_free(void *p, size_t size)
{
	if (p)
		munmap(p, page_round(size));
}
