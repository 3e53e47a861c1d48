/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel-vmm --exit-stats (docs/keel-vmm.md): how many times the guest exited to keel-vmm,
 * by kind (port I/O, MMIO, other KVM exit reasons), direction and address, counted per vCPU
 * on its own thread (no lock) and written to the log when the VM ends. Port I/O is counted
 * per port, MMIO per 4 KiB page. Off by default: a vCPU without a table pays one pointer
 * test per exit. What it is for: seeing where a boot's exits go (bench/firmware).
 */
#ifndef KEEL_VMM_EXIT_STATS_H
#define KEEL_VMM_EXIT_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct bus;

#define EXIT_STATS_SLOTS 1024 /* distinct (kind, direction, address) kept per vCPU */

struct exit_stats_slot {
	uint64_t addr; /* port, or MMIO page */
	uint64_t count;
	uint32_t reason; /* KVM_EXIT_*; 0 with count 0: a free slot */
	uint8_t write;
};

struct exit_stats {
	uint64_t total;
	uint64_t dropped; /* exits of kinds beyond the table's room */
	struct exit_stats_slot slot[EXIT_STATS_SLOTS];
};

/* One exit (the vCPU's own thread): addr is the port or guest-physical address. */
void exit_stats_count(struct exit_stats *s, uint32_t reason, bool write, uint64_t addr);
/* Write the counts of n vCPUs' tables to the log, most frequent first, each line naming the
 * device that claims the address on pio or mmio; at most max_lines lines. */
void exit_stats_log(struct exit_stats *const *s, unsigned n, const struct bus *pio,
		    const struct bus *mmio, unsigned max_lines);

#endif
