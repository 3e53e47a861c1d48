/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net's kernel data path: one vhost-net instance (/dev/vhost-net) per queue pair
 * (docs/virtio.md, "vhost-net"). The host kernel moves frames between the tap and the
 * guest's rings; keel-vmm hands it the guest's memory map and each ring (addresses, size,
 * where to start), the queue's ioeventfd as its kick and the vector's irqfd as its call,
 * and takes the rings back (their indexes) when the device stops, resets or the VM pauses,
 * so that the saved state is the same as the user-space path's (virtio/net.c).
 *
 * All calls with the device's lock held (vd->lock), from the threads that change the
 * device's state: a vCPU thread (the driver's status writes), the main loop (pause, resume,
 * restore). Their seccomp classes allow the vhost ioctls (seccomp_rules.c).
 */
#ifndef KEEL_VMM_VIRTIO_VHOST_NET_H
#define KEEL_VMM_VIRTIO_VHOST_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct virtio_dev;
struct guest_mem;
struct vhost_net;

/* Take over fd (an open /dev/vhost-net): become its owner and check that it offers every
 * ring feature the device offers the guest (VERSION_1, MRG_RXBUF, INDIRECT_DESC,
 * EVENT_IDX). The pair serves queues rxq and rxq + 1 of vd on tap. 0, or -errno with why
 * in words (fd closed either way on failure). */
int vhost_net_open(int fd, struct virtio_dev *vd, unsigned rxq, int tap, struct vhost_net **out,
		   char *why, size_t len) __attribute__((warn_unused_result));
void vhost_net_close(struct vhost_net *h);
/* Is the kernel serving the pair's rings now? (The user-space path must not touch them.) */
bool vhost_net_running(const struct vhost_net *h);
/* The driver is running (DRIVER_OK, both queues enabled, VM not paused): hand the rings to
 * the kernel. Also after a resume or a restore. 0 (also when there is nothing to start), or
 * -errno with the reason logged; the caller then serves the rings itself (virtio-net: every
 * pair's, vhost_net_give_up on the others: an adapter is on one path). */
int vhost_net_start(struct vhost_net *h) __attribute__((warn_unused_result));
/* Take the rings back: the backend detached, each ring's next avail entry read back from
 * the kernel into the device's queues (vq), as their used index too (every chain the kernel
 * took is returned by then; the used ring's index is guest memory, not trusted). keep false:
 * the queues' indexes were just replaced (a restore) and are not overwritten. */
void vhost_net_stop(struct vhost_net *h, bool keep);
/* The user-space path serves the pair from now on (another pair of the adapter could not be
 * handed over: an adapter is on one path); h stopped first. NULL: nothing. */
void vhost_net_give_up(struct vhost_net *h);

/* A queue's vector, or whether it may be signalled, changed: each ring's call follows (the
 * vector's irqfd, or the relay while it is masked). */
void vhost_net_reroute(struct vhost_net *h);
/* fd is one of the pair's interrupt relays (watched on the device's I/O thread): the masked
 * vector's interrupt is made pending (pci_msix_notify). False for another fd. */
bool vhost_net_fd_event(struct vhost_net *h, int fd);

/* Dirty logging for live migration (VHOST_F_LOG_ALL): while on, every page of guest RAM the
 * kernel writes (received frames, used rings) has its bit set in a bitmap of one bit per
 * 4 KiB page of guest-physical address space. Turn it on or off (the rings running or
 * not); 0 or -errno. */
int vhost_net_log(struct vhost_net *h, bool on) __attribute__((warn_unused_result));
/* OR the pages written since the last harvest into bitmap (words 64-bit words, bit p for
 * the page at p * 4096) and clear them; returns the number of words the log has. */
size_t vhost_net_log_harvest(struct vhost_net *h, uint64_t *bitmap, size_t words);

#endif
