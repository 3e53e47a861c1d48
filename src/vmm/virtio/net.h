/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-net on a tap device (--net tap=IFNAME[,mac=MAC]). */
#ifndef KEEL_VMM_VIRTIO_NET_H
#define KEEL_VMM_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"

struct machine;
struct virtio_dev;

/* The MAC a card on tap IFNAME gets without mac=: 52:54:00 and a hash of the name, so the
 * same configuration always gives the same address. */
void virtio_net_default_mac(const char *tap, uint8_t mac[6]);
/* An adapter's MAC: its own, or the default for its tap's name. */
void virtio_net_nic_mac(const struct vm_nic *nic, uint8_t mac[6]);
/* A card as spec says with npairs queue pairs (1 to VMDEF_NET_QUEUES_MAX), on taps[0..npairs)
 * (the tap's queues, attached by keeld, taken over, also when this fails) or, if taps[0] is
 * -1, on the tap spec names, its queues attached here. Its kernel data path (spec->vhost):
 * one vhost-net instance per pair, pair k's on vhosts[k] (keeld's /dev/vhost-net, taken
 * over; vhosts NULL: none passed) or, if none was passed and the tap is attached here, on
 * /dev/vhost-net opened here. When anything fails the card is destroyed here and *out is
 * NULL: in a VM that runs (a hot add) it is still pending on the bus (pci.h), out of the
 * guest's reach, until the caller publishes it. */
int virtio_net_create(struct machine *m, const struct vm_nic *spec, unsigned npairs,
		      const int *taps, const int *vhosts, struct virtio_dev **out, char *err,
		      size_t errlen) __attribute__((warn_unused_result));
/* Adapter i of the machine's description on tap (as virtio_net_create), kept by the machine
 * (torn down with it) and its link the host's (machine_set_nic_link). *out is set once the
 * card exists, also when keeping it or taking its link failed after (-errno; its hooks point
 * at it: the caller destroys it). 0, or -errno with err set when the card could not be made.
 * In a VM that runs the card stays pending (pci.h) until the caller calls pci_dev_publish. */
int virtio_net_attach(struct machine *m, unsigned i, const int *taps, const int *vhosts,
		      struct virtio_dev **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The same on fds[0..npairs), already open, one per queue pair, that read and write whole
 * frames each led by the 12-byte virtio-net header as a tap's queues do (socket pairs in the
 * fuzz targets); named ifname in messages. More than one pair: multi-queue (MQ and the
 * control queue). The device owns the fds from here on, also when this fails. */
int virtio_net_create_fd(struct machine *m, unsigned slot, const int *fds, unsigned npairs,
			 const char *ifname, const uint8_t mac[6], struct virtio_dev **out)
	__attribute__((warn_unused_result));
/* The open ones of fds[0..n) (n at most VMDEF_NET_QUEUES_MAX; fds NULL: none) closed: tap
 * queues or vhost-nets passed for a card that is not made. */
void virtio_net_close_fds(const int *fds, unsigned n);
/* The link as the host sets it (down: VIRTIO_NET_S_LINK_UP clear in the status the driver
 * reads). A change is a configuration change: a new generation and the configuration
 * interrupt, once the driver is running. Any thread. */
void virtio_net_set_link(struct virtio_dev *vd, bool up);
/* Queue pair k's kernel data path (vhost_net.h: dirty logging for a migration), or NULL on
 * the user-space path (or k beyond the card's pairs). */
struct vhost_net *virtio_net_vhost(struct virtio_dev *vd, unsigned k);

#endif
