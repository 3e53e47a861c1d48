/* SPDX-License-Identifier: Apache-2.0 */
/* vCPU threads: KVM_RUN loop, exit dispatch, and the run/pause/stop state machine. */
#ifndef KEEL_VMM_VCPU_H
#define KEEL_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/vthread.h"

struct vm;
struct boot_entry;
struct exit_stats;

/* One VM exit as the crash report shows it (the vCPU's own thread writes and reads these). */
struct vcpu_exit_rec {
	uint32_t reason; /* KVM_EXIT_* */
	uint8_t write;	 /* port or MMIO direction */
	uint8_t size;
	uint64_t addr; /* port or guest-physical address */
	uint64_t data; /* the first value written or read */
};

#define VCPU_EXIT_HISTORY 8

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	int stats_fd; /* KVM's statistics of the vCPU, or -1 (an older kernel); for keeld */
	struct kvm_run *run;
	struct vthread thread;
	bool parked; /* protected by vm->run_lock */
	/* The last exits, newest at exits[(nexits - 1) % VCPU_EXIT_HISTORY]; vCPU thread only. */
	struct vcpu_exit_rec exits[VCPU_EXIT_HISTORY];
	uint64_t nexits;
	struct exit_stats *stats; /* --exit-stats: counts by kind and address; else NULL */
};

/* Once per process, before any vCPU thread: the kick signal's handler. */
int vcpu_global_init(void) __attribute__((warn_unused_result));
/* Create the KVM vCPU and set its CPUID, MSRs, FPU and LAPIC; boot (the BSP only)
 * gives its entry state. APs wait for INIT/SIPI in the in-kernel LAPIC. */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned id, const struct boot_entry *boot,
		char *err, size_t errlen) __attribute__((warn_unused_result));
int vcpu_start(struct vcpu *vcpu) __attribute__((warn_unused_result));
/* Make a running KVM_RUN return soon (the thread then re-reads vm->target). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);

#endif
