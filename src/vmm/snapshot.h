/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Saving the whole machine to a directory and bringing it back in a fresh keel-vmm
 * (docs/state.md). The directory holds two files:
 *
 *   state    the state file (state.h): the configuration, the memory map, every device,
 *            the in-kernel PIC, IOAPIC and PIT, every vCPU, and the VM clock
 *   memory   guest RAM as one image (sparse: zero pages are holes), then a 4 KiB trailer
 *            tying it to its state file; mapped MAP_PRIVATE on restore, so restore time
 *            does not grow with guest RAM and the file never changes
 */
#ifndef KEEL_VMM_SNAPSHOT_H
#define KEEL_VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define SNAPSHOT_STATE_FILE  "state"
#define SNAPSHOT_MEMORY_FILE "memory"
#define SNAPSHOT_MEM_TRAILER 4096u

/* Register the sections that come first ("config", "memory": checked before any device)
 * and, after the devices, the machine's own ("kvm.irqchip", "kvm.pit", "cpu.N",
 * "kvm.clock"). Both are called by vm_create. */
int snapshot_register_config(struct vm *vm) __attribute__((warn_unused_result));
int snapshot_register_machine(struct vm *vm) __attribute__((warn_unused_result));

/*
 * Save the paused VM to dir (created if missing; an earlier save there is replaced
 * atomically). Nothing of the VM changes. Main thread only; err gets a one-line reason.
 */
int snapshot_save(struct vm *vm, const char *dir, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Restore, step 1a (vm_create, before the devices are made): read and parse the state file
 * in dir. An adapter the saved description gives no queue pairs was saved by a keel-vmm
 * before multi-queue, with one pair: the running description's adapter with its MAC, left
 * to the default, gets one (docs/virtio.md), so the device is made as it was saved.
 */
int snapshot_read(struct vm *vm, const char *dir, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/*
 * Restore, step 1 (vm_create, before the VM is built): read the state in dir (unless
 * snapshot_read did), validate
 * all of it (structure, checksum, the configuration against the command line, every
 * section's values, the memory file) and only then map the memory file as guest RAM.
 */
int snapshot_open(struct vm *vm, const char *dir, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Restore, step 0 (a jailed worker, while root): open the saved files in dir, which are
 * root's, for snapshot_open to take inside the jail (jail_prep.h). */
void snapshot_prepare(const char *dir);
/* The same with the two files keeld opened (--fd state, memory), for snapshot_open(DIR): 0,
 * or -ENAMETOOLONG (DIR's file names too long) or -EINVAL (either is not a regular file) with
 * err, and then both descriptors are closed. */
int snapshot_give(const char *dir, int state_fd, int memory_fd, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Whether the next build restores saved state instead of loading the kernel. */
bool snapshot_pending(const struct vm *vm);
/* Restore, step 2 (vm_build, vCPUs created): load every section into the devices, the
 * irqchip, the PIT, the vCPUs and the clock. The next build boots normally again. */
int snapshot_apply(struct vm *vm, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Parse and check a state file image against this VM without applying anything (for the
 * fuzz target and tests). */
int snapshot_check(struct vm *vm, const uint8_t *data, size_t size, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
