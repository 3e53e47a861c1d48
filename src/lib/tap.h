/* SPDX-License-Identifier: Apache-2.0 */
/* Attaching to a Linux tap device for virtio-net: keeld does it and passes the descriptor to
 * the jailed worker (whose network namespace is empty); keel-vmm run by hand does it itself. */
#ifndef KEEL_LIB_TAP_H
#define KEEL_LIB_TAP_H

#include <stddef.h>

/* The virtio-net header every frame on the tap carries (virtio 1.2 5.1.6, with num_buffers). */
#define TAP_VNET_HDR_SIZE 12

/*
 * Open (creating if missing) tap NAME with the virtio-net header and no offloads, and bring
 * it up. Returns the descriptor (non-blocking, close-on-exec) and the interface's name in
 * ifname (IFNAMSIZ bytes), or a negative errno with a one-line reason in err.
 */
int tap_open(const char *name, char *ifname, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
