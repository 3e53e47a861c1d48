/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/mem.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/x86/layout.h"

uint64_t mem_low_limit(uint64_t ram_size, bool firmware)
{
	if (!firmware)
		return LAYOUT_HOLE_START;
	/* QEMU's q35 rule, which both firmwares assume: SeaBIOS puts ECAM at 0xB0000000 and
	 * its BAR window above it, so RAM that does not fit below 2.75 GiB ends at 2 GiB. */
	return ram_size >= LAYOUT_FW_HOLE_START ? LAYOUT_FW_LOW_SPLIT : LAYOUT_FW_HOLE_START;
}

unsigned mem_layout(uint64_t ram_size, bool firmware, struct mem_region regions[MEM_MAX_REGIONS])
{
	uint64_t lim = mem_low_limit(ram_size, firmware);
	uint64_t low = ram_size < lim ? ram_size : lim;

	regions[0] = (struct mem_region){.gpa = 0, .size = low};
	if (ram_size <= low)
		return 1;
	regions[1] = (struct mem_region){.gpa = LAYOUT_HIGH_RAM, .size = ram_size - low};
	return 2;
}

void *mem_map_aligned(uint64_t ram_size)
{
	uint8_t *p, *a;
	uintptr_t mis;

	if (ram_size > UINT64_MAX - MEM_HUGE_ALIGN) {
		errno = ENOMEM;
		return NULL;
	}
	p = mmap(NULL, ram_size + MEM_HUGE_ALIGN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	mis = (uintptr_t)p % MEM_HUGE_ALIGN;
	a = mis ? p + (MEM_HUGE_ALIGN - mis) : p;
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + ram_size + MEM_HUGE_ALIGN > a + ram_size)
		munmap(a + ram_size, (size_t)(p + ram_size + MEM_HUGE_ALIGN - (a + ram_size)));
	return a;
}

int mem_init(struct guest_mem *mem, uint64_t ram_size, bool firmware)
{
	uint64_t off = 0;
	void *p;
	unsigned i;

	memset(mem, 0, sizeof(*mem));
	p = mem_map_aligned(ram_size);
	if (!p)
		return -errno;
	/* Transparent huge pages cut EPT/NPT misses; harmless if THP is off. */
	(void)madvise(p, ram_size, MADV_HUGEPAGE);
	mem->base = p;
	mem->ram_size = ram_size;
	mem->nregions = mem_layout(ram_size, firmware, mem->regions);
	for (i = 0; i < mem->nregions; i++) {
		mem->regions[i].hva = mem->base + off;
		off += mem->regions[i].size;
	}
	return 0;
}

void mem_free(struct guest_mem *mem)
{
	if (mem->base)
		munmap(mem->base, mem->ram_size);
	memset(mem, 0, sizeof(*mem));
}

int mem_discard(struct guest_mem *mem)
{
	void *p;

	if (mem->file_backed) {
		/* MADV_DONTNEED would bring back the file's pages: map zeros again instead. */
		p = mmap(mem->base, mem->ram_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		(void)madvise(p, mem->ram_size, MADV_HUGEPAGE);
		mem->file_backed = false;
		return 0;
	}
	return madvise(mem->base, mem->ram_size, MADV_DONTNEED) ? -errno : 0;
}

int mem_map_file(struct guest_mem *mem, int fd)
{
	void *p = mmap(mem->base, mem->ram_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	mem->file_backed = true;
	return 0;
}

void *mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	unsigned i;

	for (i = 0; i < mem->nregions; i++) {
		const struct mem_region *r = &mem->regions[i];

		/* Written so that no sum can overflow: gpa - r->gpa only when gpa >= r->gpa. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = mem_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = mem_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

uint64_t mem_low_end(const struct guest_mem *mem)
{
	return mem->regions[0].size;
}
