/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KVM's binary statistics of a vCPU (the fd of KVM_GET_STATS_FD, Linux 5.14+), as keeld reads
 * them: a header, a block of descriptors (each a fixed part and a name) and the data, all at
 * offsets the header gives. keeld looks up the counters of interrupts the vCPU accepted by
 * name (never by a fixed offset: they move between kernels) and sums them each heartbeat.
 * The block comes from the kernel but is parsed as untrusted input: every offset and size is
 * checked against the bytes read.
 */
#ifndef KEEL_DAEMON_KVM_STATS_H
#define KEEL_DAEMON_KVM_STATS_H

#include <stddef.h>
#include <stdint.h>

/* The counters of interrupts a vCPU accepted, the ones found: KVM_STATS_COUNTERS names. */
#define KVM_STATS_MAX_COUNTERS 3
#define KVM_STATS_COUNTERS     "irq_injections, nmi_injections, halt_wakeup"
/* The most of the file read for the descriptors (the kernel's are a few KiB). */
#define KVM_STATS_MAX_DESC_BYTES (1u << 20)

struct kvm_stats_map {
	unsigned n;				 /* counters found */
	uint64_t offset[KVM_STATS_MAX_COUNTERS]; /* each one's u64 in the fd */
	unsigned injected; /* bit i: counter i counts injections (irq_, nmi_), not wake-ups */
};

/* The bytes needed from the start of the fd to hold the descriptors the header (the first
 * 24 bytes of buf) announces: 0 and *need, or -EPROTO for an impossible header (sizes that
 * overflow or exceed KVM_STATS_MAX_DESC_BYTES). */
int kvm_stats_need(const void *buf, size_t len, size_t *need) __attribute__((warn_unused_result));
/* Parse buf (the fd's bytes from offset 0, len of them) into map: 0 with at least one
 * counter, -ENOENT with none (a kernel without them), -EPROTO for a malformed block. A counter
 * counts only when it is cumulative, one u64 and without a unit. */
int kvm_stats_parse(const void *buf, size_t len, struct kvm_stats_map *map)
	__attribute__((warn_unused_result));
/* Read fd's header and descriptors and parse them (the two functions above). */
int kvm_stats_map_fd(int fd, struct kvm_stats_map *map) __attribute__((warn_unused_result));
/* The sum of the mapped counters of fd (pread), into *sum, and of the injection counters
 * alone into *injected (with posted interrupts, APICv or AVIC, those stand still while
 * halt_wakeup still moves): 0 or -errno. */
int kvm_stats_sum(int fd, const struct kvm_stats_map *map, uint64_t *sum, uint64_t *injected)
	__attribute__((warn_unused_result));

#endif
