/* SPDX-License-Identifier: Apache-2.0 */
/* QEMU's isa-debug-exit: a write of V to port 0xf4 ends keel-vmm with (V << 1) | 1. */
#ifndef KEEL_VMM_DEV_DEBUG_EXIT_H
#define KEEL_VMM_DEV_DEBUG_EXIT_H

struct machine;

int debug_exit_create(struct machine *m) __attribute__((warn_unused_result));

#endif
