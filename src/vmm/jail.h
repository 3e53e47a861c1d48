/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker's jail (docs/security.md): keeld starts keel-vmm in a PID namespace of its own
 * with --jail-user UID:GID --jail-root DIR; keel-vmm does the rest itself, in two steps.
 */
#ifndef KEEL_VMM_JAIL_H
#define KEEL_VMM_JAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/config.h"

/*
 * Right after the command line, while keel-vmm is single-threaded (so that every thread it
 * creates inherits all of it): no new privileges, empty capability bounding, inheritable
 * and ambient sets, new mount, IPC, UTS and network namespaces (the network one empty: taps
 * arrive as descriptors). The effective and permitted sets stay until jail_enter.
 */
int jail_early(const struct vm_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Once what needs root or a host path is open (jail_prep.h) and before the worker parses
 * any file it was handed (disks, saved state, NVRAM): DIR becomes the root (every thread's,
 * through pivot_root), resource limits, and the worker becomes UID:GID with no
 * supplementary groups and no capabilities (every thread: glibc applies set*id to all).
 */
int jail_enter(const struct vm_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Once the VM is built (its device threads running) and before its first guest
 * instruction: the process's seccomp filter on every thread (seccomp_filter.h). vCPU
 * threads add their own as they start.
 */
int jail_lock(const struct vm_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Whether jail_enter has run (the worker is its own uid inside its root). */
bool jail_active(void);

/*
 * A host path given before the jail (a save directory) as seen inside it: unchanged when not
 * jailed; inside the jail root, the rest of it (DIR/saved is /saved); anything else -EACCES.
 */
int jail_path(const char *host, char *out, size_t size) __attribute__((warn_unused_result));

#endif
