/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-iso: the DVD image check (lib/iso.c) keeld runs on a medium from a storage pool and
 * keel-vmm before it puts one in a drive. The input is the heads of the volume descriptors
 * from sector 16 on, in a memory file. No crash, and an answer of 0 or -EINVAL.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/iso.h"

#define HEAD 7 /* a descriptor's type, identifier and version: what iso_check reads */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-iso", MFD_CLOEXEC), r;
	static uint8_t sector[ISO_BLOCK];
	unsigned n = 0;
	char err[256];

	if (fd < 0)
		return 0;
	/* Each HEAD bytes of input start a sector from 16 on; a shorter rest is a last sector
	 * cut short (the file ends inside it). */
	for (size_t off = 0; off < size && n < 40; off += HEAD, n++) {
		size_t len = size - off < HEAD ? size - off : HEAD;

		memset(sector, 0, sizeof(sector));
		memcpy(sector, data + off, len);
		if (pwrite(fd, sector, len < HEAD ? len : sizeof(sector),
			   (off_t)(16 + n) * ISO_BLOCK) < 0)
			break;
	}
	r = iso_check(fd, "fuzz.iso", err, sizeof(err));
	if (r && r != -EINVAL)
		abort();
	close(fd);
	return 0;
}
