/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/exit_stats.h"

#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/bus.h"

#define MMIO_PAGE 4096ull

static uint64_t key_addr(uint32_t reason, uint64_t addr)
{
	if (reason == KVM_EXIT_MMIO)
		return addr & ~(MMIO_PAGE - 1);
	return reason == KVM_EXIT_IO ? addr : 0;
}

void exit_stats_count(struct exit_stats *s, uint32_t reason, bool write, uint64_t addr)
{
	uint64_t a = key_addr(reason, addr);
	uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ (reason * 31u + write);
	unsigned i, at;

	s->total++;
	for (i = 0; i < EXIT_STATS_SLOTS; i++) {
		struct exit_stats_slot *e;

		at = (unsigned)((h + i) % EXIT_STATS_SLOTS);
		e = &s->slot[at];
		if (e->count && e->reason == reason && e->write == write && e->addr == a) {
			e->count++;
			return;
		}
		if (!e->count) {
			*e = (struct exit_stats_slot){
				.addr = a, .count = 1, .reason = reason, .write = write};
			return;
		}
	}
	s->dropped++;
}

static int by_count(const void *a, const void *b)
{
	const struct exit_stats_slot *x = a, *y = b;

	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static const char *kind_name(const struct exit_stats_slot *e)
{
	switch (e->reason) {
	case KVM_EXIT_IO:
		return e->write ? "port out" : "port in";
	case KVM_EXIT_MMIO:
		return e->write ? "mmio write" : "mmio read";
	case KVM_EXIT_HLT:
		return "hlt";
	case KVM_EXIT_SHUTDOWN:
		return "shutdown";
	case KVM_EXIT_SYSTEM_EVENT:
		return "system event";
	default:
		return "other";
	}
}

void exit_stats_log(struct exit_stats *const *s, unsigned n, const struct bus *pio,
		    const struct bus *mmio, unsigned max_lines)
{
	struct exit_stats_slot *all = calloc((size_t)n * EXIT_STATS_SLOTS, sizeof(*all));
	uint64_t total = 0, dropped = 0, by_kind[2][2] = {{0}};
	size_t used = 0, i;

	if (!all) {
		log_err("exit stats: out of memory");
		return;
	}
	/* Merge the vCPUs' tables (a few thousand entries: quadratic is fine at exit). */
	for (unsigned v = 0; v < n; v++) {
		total += s[v]->total;
		dropped += s[v]->dropped;
		for (unsigned j = 0; j < EXIT_STATS_SLOTS; j++) {
			const struct exit_stats_slot *e = &s[v]->slot[j];

			if (!e->count)
				continue;
			if (e->reason == KVM_EXIT_IO || e->reason == KVM_EXIT_MMIO)
				by_kind[e->reason == KVM_EXIT_MMIO][e->write] += e->count;
			for (i = 0; i < used; i++)
				if (all[i].reason == e->reason && all[i].write == e->write &&
				    all[i].addr == e->addr)
					break;
			if (i == used)
				all[used++] = (struct exit_stats_slot){
					.addr = e->addr, .reason = e->reason, .write = e->write};
			all[i].count += e->count;
		}
	}
	qsort(all, used, sizeof(*all), by_count);
	log_info("exit stats: %llu exits to keel-vmm on %u vCPU(s): port in %llu, port out %llu, "
		 "mmio read %llu, mmio write %llu, other %llu%s",
		 (unsigned long long)total, n, (unsigned long long)by_kind[0][0],
		 (unsigned long long)by_kind[0][1], (unsigned long long)by_kind[1][0],
		 (unsigned long long)by_kind[1][1],
		 (unsigned long long)(total - by_kind[0][0] - by_kind[0][1] - by_kind[1][0] -
				      by_kind[1][1]),
		 dropped ? " (some addresses not counted apart: table full)" : "");
	for (i = 0; i < used && i < max_lines; i++) {
		const struct exit_stats_slot *e = &all[i];
		const char *dev = e->reason == KVM_EXIT_IO     ? bus_name_at(pio, e->addr)
				  : e->reason == KVM_EXIT_MMIO ? bus_name_at(mmio, e->addr)
							       : "";

		log_info("exit stats: %10llu %-10s 0x%llx%s %s", (unsigned long long)e->count,
			 kind_name(e), (unsigned long long)e->addr,
			 e->reason == KVM_EXIT_MMIO ? " (page)" : "", dev ? dev : "(no device)");
	}
	free(all);
}
