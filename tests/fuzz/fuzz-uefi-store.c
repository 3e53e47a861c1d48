/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-uefi-store: the UEFI variable store check (lib/uefi_store.c) that keeld runs before
 * every start and keel-vmm before it reads or saves a store the guest wrote. The input is
 * checked as it is, and again as the start of a store of a valid size (64 KiB plus up to
 * 15 pages, the rest zeros) so that short inputs reach the header checks. Whatever the
 * input: no crash, no read outside the buffer, and a store that passes has a size keel
 * accepts and a firmware volume no longer than the file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/le.h"
#include "lib/uefi_store.h"

static void check(const uint8_t *buf, size_t size)
{
	if (uefi_store_check(buf, size))
		return;
	if (size < UEFI_STORE_MIN_SIZE || size > UEFI_STORE_MAX_SIZE || size % 4096 ||
	    le64_load(buf + 32) > size || memcmp(buf + 40, "_FVH", 4))
		abort(); /* passed what it must refuse */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	uint8_t *buf;

	/* As it is, in a buffer of exactly its size (ASan sees any read past it). */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	check(buf, size);
	free(buf);
	if (!size)
		return 0;
	len = UEFI_STORE_MIN_SIZE + (size_t)(data[0] % 16) * 4096;
	buf = calloc(1, len);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1 < len ? size - 1 : len);
	check(buf, len);
	free(buf);
	return 0;
}
