/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest memory: the map of RAM regions and THE guest-memory accessor. Every access to
 * guest memory by address goes through mem_ptr(), which checks the whole (gpa, len) range
 * for overflow and RAM backing (DESIGN.md habit 2).
 */
#ifndef KEEL_VMM_MEM_H
#define KEEL_VMM_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEM_MAX_REGIONS 2

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	uint64_t ram_size; /* total guest RAM */
	uint8_t *base;	   /* one host mapping of ram_size bytes */
	bool file_backed;  /* a saved memory file is mapped there (snapshot.c) */
	unsigned nregions;
	struct mem_region regions[MEM_MAX_REGIONS];
};

/* Guest RAM starts on a 2 MiB boundary of the host's address space, as QEMU's does: KVM maps
 * a guest 2 MiB page with one huge NPT/EPT entry only where the guest-physical and host
 * addresses agree modulo 2 MiB, and a memory slot whose start does not agree gets no huge
 * page at all. Linux before 6.7 places a large anonymous mapping on any page boundary. */
#define MEM_HUGE_ALIGN (2ull << 20)
/* An anonymous private mapping of ram_size bytes at a MEM_HUGE_ALIGN boundary (NULL and errno
 * on failure); munmap(p, ram_size) frees it. */
void *mem_map_aligned(uint64_t ram_size);
/* Lay out ram_size bytes around the 32-bit hole and map them (not yet touched); firmware:
 * the VM runs SeaBIOS or OVMF (mem_low_limit). */
int mem_init(struct guest_mem *mem, uint64_t ram_size, bool firmware)
	__attribute__((warn_unused_result));
void mem_free(struct guest_mem *mem);
/* Drop every page's contents (guest reset): the next touch reads zeros. */
int mem_discard(struct guest_mem *mem) __attribute__((warn_unused_result));
/* Restore: map a saved RAM image (the file's first ram_size bytes) copy-on-write over
 * guest memory; pages are read from the file when first touched, and the file never
 * changes. mem_discard() puts anonymous memory back. */
int mem_map_file(struct guest_mem *mem, int fd) __attribute__((warn_unused_result));

/* Host pointer to [gpa, gpa + len) if all of it is RAM in one region, else NULL. */
void *mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Copy to/from guest memory; -EFAULT when the range is not all RAM. */
int mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
	__attribute__((warn_unused_result));
int mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
	__attribute__((warn_unused_result));
/* End of the RAM that starts at 0 (below the 32-bit hole). */
uint64_t mem_low_end(const struct guest_mem *mem);

/* Where RAM that starts at 0 ends at most: 3 GiB for direct boot; for firmware VMs 2.75 GiB
 * when all RAM fits below it, else 2 GiB (the firmware's ECAM and BARs need the rest). */
uint64_t mem_low_limit(uint64_t ram_size, bool firmware);
/* Pure layout computation, for tests: fills regions (hva unset); returns the count. */
unsigned mem_layout(uint64_t ram_size, bool firmware, struct mem_region regions[MEM_MAX_REGIONS]);

#endif
