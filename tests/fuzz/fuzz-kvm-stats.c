/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-kvm-stats: a vCPU statistics fd's header and descriptor block (src/daemon/
 * kvm_stats.c), which keeld treats as untrusted. The input is the fd's bytes from offset 0;
 * an accepted block maps 1 to 3 counters, each at the data offset plus its own (so below
 * 2^33), and kvm_stats_need never asks for more than the cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kvm_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvm_stats_map map;
	unsigned char *copy = malloc(size ? size : 1); /* exact size: ASan sees an overread */
	size_t need;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (!kvm_stats_need(copy, size, &need) && need > KVM_STATS_MAX_DESC_BYTES)
		abort();
	if (!kvm_stats_parse(copy, size, &map)) {
		if (!map.n || map.n > KVM_STATS_MAX_COUNTERS)
			abort();
		for (unsigned i = 0; i < map.n; i++)
			if (map.offset[i] >= (uint64_t)1 << 33)
				abort();
	}
	free(copy);
	return 0;
}
