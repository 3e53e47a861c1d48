/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One cgroup v2 per running worker (docs/security.md, "cgroups"): MOUNT/keel.slice/vm-UUID,
 * or, when systemd delegated keeld's unit cgroup to it (Delegate=yes, DelegateSubgroup=keeld:
 * the unit's cgroup carries the trusted.delegate extended attribute), UNIT/vms/vm-UUID,
 * never writing a cgroup systemd owns; with memory.max at the guest's RAM plus the worker's fixed
 * allowance and pids.max at the worker's task budget. keeld writes cgroupfs itself (no systemd
 * needed) and stays out of keel.slice; the worker is cloned straight into its cgroup
 * (CLONE_INTO_CGROUP), so it never runs a single instruction outside it. A host without a cgroup v2
 * hierarchy that has the memory and pids controllers gets none: vmcg_init says why, once.
 */
#ifndef KEEL_DAEMON_VM_CGROUP_H
#define KEEL_DAEMON_VM_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMCG_SLICE "keel.slice"
/* Under a delegated unit cgroup: the VMs' parent, and keeld's own leaf (the kernel lets a
 * cgroup with controllers on for its children hold no process). */
#define VMCG_DELEGATED_VMS  "vms"
#define VMCG_DELEGATED_LEAF "keeld"

struct vmcg {
	bool available;
	bool cpu;	      /* the cpu controller is on for the VMs' cgroups: never yet (not
			       * until keel sets cpu limits) */
	bool delegated;	      /* under keeld's delegated unit cgroup (slice is UNIT/vms) */
	char slice[PATH_MAX]; /* MOUNT/keel.slice or UNIT/vms, when available */
	char why[512];	      /* when not available: why, in words for the log */
};

/* Find the cgroup v2 hierarchy (mount NULL: the first cgroup2 in /proc/self/mountinfo) and
 * keeld's own cgroup in it (self NULL: /proc/self/cgroup's "0::" line). When that cgroup is
 * the leaf "keeld" of a cgroup marked delegated (trusted.delegate), the VMs go under
 * UNIT/vms: keeld turns memory and pids on in UNIT and UNIT/vms. keeld in a delegated cgroup
 * itself (a systemd without DelegateSubgroup=) does not take it: with controllers on in UNIT,
 * systemd could not start the next keeld there while VMs run. Else it checks the hierarchy's
 * controllers, creates keel.slice and turns memory and pids on for its children (not cpu: keel sets
 * no cpu limit yet). Never fails: cg->available says whether per-VM cgroups work, cg->why why not.
 */
void vmcg_init(struct vmcg *cg, const char *mount, const char *self);
/* MOUNT/keel.slice/vm-UUID: 0, or -ENAMETOOLONG. */
int vmcg_path(const struct vmcg *cg, const char *uuid, char *buf, size_t size)
	__attribute__((warn_unused_result));
/*
 * The VM's cgroup, made (or an empty one left by an earlier worker reused) with its limits
 * written: its directory's descriptor (for CLONE_INTO_CGROUP), or -errno with err naming the
 * file. Only when cg->available.
 */
int vmcg_create(const struct vmcg *cg, const char *uuid, uint64_t memory_max, uint64_t pids_max,
		char *err, size_t errlen) __attribute__((warn_unused_result));
/* Remove the VM's cgroup once its worker has ended or the VM is deleted (a no-op when there
 * is none), retrying EBUSY VMCG_RMDIR_TRIES times 10 ms apart (a task still on its way out);
 * a warning in the log when it stays. */
#define VMCG_RMDIR_TRIES 20
void vmcg_remove(const struct vmcg *cg, const char *uuid);
/* At keeld's start: remove every empty vm-* cgroup (a worker's that ended while keeld was
 * away); a running worker's has tasks and stays. Returns how many were removed. */
unsigned vmcg_sweep(const struct vmcg *cg);

#endif
