/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chain walker (vmm/virtio/queue.c) against rings the guest controls completely. Input:
 * byte 0: bit 0 indirect negotiated, bit 1 event index; byte 1: log2 of the queue size
 * (mod 11); the rest is guest RAM (64 KiB: descriptors at 0, avail ring at 0x4000, used ring
 * at 0x6000, anything else at will). Every chain the walker accepts must lie wholly in RAM,
 * with device-writable buffers after readable ones; nothing may hang or crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/virtio/queue.h"

#define RAM (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vq_chain chain;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	struct guest_mem gm = {.ram_size = RAM, .nregions = 1};
	struct vq vq;
	unsigned i, n;

	if (size < 2)
		return 0;
	if (!ram)
		ram = malloc(RAM);
	memset(ram, 0, RAM);
	memcpy(ram, data + 2, size - 2 < RAM ? size - 2 : RAM);
	gm.base = ram;
	gm.regions[0] = (struct mem_region){0, RAM, ram};
	if (vq_enable(&vq, &gm, (uint16_t)(1u << (data[1] % 11)), 0, 0x4000, 0x6000, data[0] & 1,
		      data[0] & 2) != VQ_OK)
		return 0;
	for (n = 0; n < 64; n++) {
		const char *why;
		int r = vq_pop(&vq, &chain, &why);

		if (r == 0 || r == VQ_BROKEN)
			break;
		if (r == VQ_BAD_CHAIN) {
			vq_push(&vq, chain.head, 0);
			continue;
		}
		if (chain.nin + chain.nout > VQ_MAX_SEGS)
			__builtin_trap();
		for (i = 0; i < chain.nin + chain.nout; i++) {
			uint8_t *p = chain.seg[i].iov_base;

			if (p < ram || p + chain.seg[i].iov_len > ram + RAM)
				__builtin_trap();
		}
		vq_push(&vq, chain.head, (uint32_t)chain.out_len);
		vq_need_notify(&vq);
	}
	vq_rearm(&vq);
	return 0;
}
