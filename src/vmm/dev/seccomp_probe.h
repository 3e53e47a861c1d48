/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test builds only (-Dtest_hooks=true): the seccomp probe, a port through which the guest
 * asks keel-vmm to make a system call its seccomp filter forbids, so that tests prove the
 * filter ends the worker and keeld names the call (docs/security.md). A 4-byte write of a
 * request code to PORT_SECCOMP_PROBE:
 *   SECCOMP_PROBE_VCPU    the vCPU thread that takes the exit calls unlinkat, which the
 *                         main loop's list allows and the vCPU list does not;
 *   SECCOMP_PROBE_DEVICE  a device I/O thread (a disk's, a network card's, the block pool's)
 *                         calls mkdirat, which the main loop's list allows and no device
 *                         thread's does;
 *   SECCOMP_PROBE_MAIN    the main loop maps executable memory (mmap with PROT_EXEC), an
 *                         argument that no thread's list allows.
 * Any other value or width is ignored. A 4-byte read answers how many forbidden calls
 * returned (none does under the jail's filters; an unjailed worker has none). Release
 * builds have no such device: the port is unassigned.
 */
#ifndef KEEL_VMM_DEV_SECCOMP_PROBE_H
#define KEEL_VMM_DEV_SECCOMP_PROBE_H

#include <stdint.h>

#define PORT_SECCOMP_PROBE   0x5ec
#define SECCOMP_PROBE_VCPU   0x5ec00001u
#define SECCOMP_PROBE_DEVICE 0x5ec00002u
#define SECCOMP_PROBE_MAIN   0x5ec00003u

/* Carry out request code on the calling thread (what a guest's write does, but for
 * SECCOMP_PROBE_MAIN, which the device hands to the main loop): 1 when the code
 * is a request and its forbidden call returned, 0 when it is not a request, -ENOENT when a
 * device thread was asked for and none has its own filter. */
int seccomp_probe_request(uint32_t code);

#endif
