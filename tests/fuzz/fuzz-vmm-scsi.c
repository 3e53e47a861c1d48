/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-scsi requests (vmm/virtio/scsi.c and the SCSI target layer, vmm/scsi) on chains the
 * walker accepted from guest-controlled rings: LUN 0 a 1 MiB raw disk, LUN 1 a DVD drive
 * with a 64-block ISO image, both in memory. Input: byte 0: bit 0 the chains are control
 * requests (task management, notification queries), bit 1 eject the DVD first, bit 2 put
 * the other ISO image in first, bits 3-4 the driver's cdb_size (32, 6, 16, 256); the rest
 * is guest RAM (64 KiB: descriptors at 0, avail ring at 0x4000, used ring at 0x6000; queue
 * size 16, indirect negotiated). Every request must be answered within its chain or refused,
 * never crash or read or write outside guest RAM.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/scsi.h"
#include "vmm/virtio/scsi_internal.h"

#define RAM (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vq_chain chain;
static char isos[2][64];

/* A memfd of blocks 2048-byte blocks, an ISO 9660 descriptor at 16 when iso. */
static int memfile(const char *name, unsigned blocks, bool iso, char *path)
{
	int fd = memfd_create(name, 0);
	uint8_t d[7] = {1, 'C', 'D', '0', '0', '1', 1};

	if (fd < 0 || ftruncate(fd, (off_t)blocks * 2048) ||
	    (iso && pwrite(fd, d, sizeof(d), 16 * 2048) != sizeof(d)))
		abort();
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
}

static struct virtio_scsi *controller(void)
{
	static struct virtio_scsi *s;
	static char disk[64];
	struct vm_scsi spec = {.nluns = 2};
	char err[256];

	if (s)
		return s;
	log_init("fuzz-vmm-scsi", LOG_ERROR);
	memfile("disk", 512, false, disk);
	memfile("iso0", 64, true, isos[0]);
	memfile("iso1", 80, true, isos[1]);
	spec.luns[0] = (struct vm_lun){.type = VM_LUN_DISK, .disk = {.path = disk}};
	spec.luns[1] = (struct vm_lun){.type = VM_LUN_DVD, .disk = {.path = isos[0]}};
	if (virtio_scsi_open(&spec, NULL, NULL, &s, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t cdb_sizes[4] = {32, 6, 16, 256};
	static uint8_t *ram;
	struct guest_mem gm = {.ram_size = RAM, .nregions = 1};
	struct virtio_scsi *s = controller();
	struct scsi_lun *dvd = &s->t.lun[1];
	char err[256];
	struct vq vq;

	if (size < 1)
		return 0;
	if (!ram)
		ram = malloc(RAM);
	/* Each input starts from the same units: the first ISO in, no unit attention. */
	if (scsi_lun_change_medium(dvd, isos[0], -1, err, sizeof(err)))
		abort();
	scsi_lun_reset(dvd);
	dvd->ua = (struct scsi_sense){0};
	s->cdb_size = cdb_sizes[data[0] >> 3 & 3];
	if ((data[0] & 2) && scsi_lun_change_medium(dvd, NULL, -1, err, sizeof(err)))
		abort();
	if ((data[0] & 4) && scsi_lun_change_medium(dvd, isos[1], -1, err, sizeof(err)))
		abort();
	memset(ram, 0, RAM);
	memcpy(ram, data + 1, size - 1 < RAM ? size - 1 : RAM);
	gm.base = ram;
	gm.regions[0] = (struct mem_region){0, RAM, ram};
	if (vq_enable(&vq, &gm, 16, 0, 0x4000, 0x6000, true, false) != VQ_OK)
		return 0;
	for (unsigned n = 0; n < 16; n++) {
		int r = vq_pop(&vq, &chain, NULL);
		uint32_t used;

		if (r == 0 || r == VQ_BROKEN)
			break;
		if (r == VQ_BAD_CHAIN)
			continue;
		used = data[0] & 1 ? virtio_scsi_control(s, &chain)
				   : virtio_scsi_request(s, &chain);
		if (used > chain.out_len)
			__builtin_trap();
		vq_push(&vq, chain.head, used);
	}
	return 0;
}
