/* SPDX-License-Identifier: Apache-2.0 */
/* Attaching to a Linux tap device for virtio-net: keeld does it and passes the descriptor to
 * the jailed worker (whose network namespace is empty); keel-vmm run by hand does it itself. */
#ifndef KEEL_LIB_TAP_H
#define KEEL_LIB_TAP_H

#include <stdbool.h>
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

/*
 * Open n queues of tap NAME (n > 1: a multi-queue tap, IFF_MULTI_QUEUE; 1: a single-queue
 * one, as every tap made without multi_queue is) into fds[0..n-1], as tap_open does each.
 * Returns 0, or a negative errno with a one-line reason in err (none left open).
 */
int tap_open_queues(const char *name, unsigned n, int *fds, char *ifname, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Attach (on) or detach a queue of a multi-queue tap (TUNSETQUEUE): a detached queue gets no
 * frames (the kernel spreads them over the attached ones). 0 or -errno. */
int tap_queue_enable(int fd, bool on) __attribute__((warn_unused_result));

#endif
