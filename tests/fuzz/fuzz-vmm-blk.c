/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk request parsing and execution (vmm/virtio/blk.c) on chains the walker accepted
 * from guest-controlled rings, against a 1 MiB raw disk in memory. Input: byte 0: bit 0
 * read-only disk; the rest is guest RAM (64 KiB: descriptors at 0, avail ring at 0x4000,
 * used ring at 0x6000; queue size 16, indirect negotiated). Every request must complete
 * (status byte, used length within the chain) or be refused, never crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/config.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/queue.h"

#define RAM (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vq_chain chain;

static struct virtio_blk *open_disk(bool ro)
{
	static struct virtio_blk *disks[2];
	static char path[64];
	struct vm_disk spec = {.path = path, .readonly = ro, .serial = "fuzz"};
	char err[256];
	int fd;

	if (disks[ro])
		return disks[ro];
	log_init("fuzz-vmm-blk", LOG_ERROR);
	fd = memfd_create("fuzz-disk", 0);
	if (fd < 0 || ftruncate(fd, 1 << 20))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (virtio_blk_open(&spec, -1, NULL, &disks[ro], err, sizeof(err)))
		abort();
	return disks[ro];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	struct guest_mem gm = {.ram_size = RAM, .nregions = 1};
	struct virtio_blk *b;
	struct vq vq;
	unsigned n;

	if (size < 1)
		return 0;
	b = open_disk(data[0] & 1);
	if (!ram)
		ram = malloc(RAM);
	memset(ram, 0, RAM);
	memcpy(ram, data + 1, size - 1 < RAM ? size - 1 : RAM);
	gm.base = ram;
	gm.regions[0] = (struct mem_region){0, RAM, ram};
	if (vq_enable(&vq, &gm, 16, 0, 0x4000, 0x6000, true, false) != VQ_OK)
		return 0;
	for (n = 0; n < 16; n++) {
		int r = vq_pop(&vq, &chain, NULL);
		uint32_t used;

		if (r == 0 || r == VQ_BROKEN)
			break;
		if (r == VQ_BAD_CHAIN)
			continue;
		used = virtio_blk_request(b, &chain);
		if (used > chain.out_len)
			__builtin_trap();
		vq_push(&vq, chain.head, used);
	}
	return 0;
}
