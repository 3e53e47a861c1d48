/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-scsi: the controller of the VM's SCSI disks and DVD drives (docs/virtio.md). */
#ifndef KEEL_VMM_VIRTIO_SCSI_H
#define KEEL_VMM_VIRTIO_SCSI_H

#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"

struct machine;
struct machine_chain;
struct virtio_dev;
struct virtio_scsi;

/* The controller's units as spec says, before it is on a bus (fds[i] >= 0: LUN i's file,
 * already open, with chains[i] its differencing chain's parents; either may be NULL). */
int virtio_scsi_open(const struct vm_scsi *spec, const int *fds, const struct machine_chain *chains,
		     struct virtio_scsi **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void virtio_scsi_free(struct virtio_scsi *s);
/* The controller on the VM's PCI bus at spec->pci_slot (fds as for virtio_scsi_open). */
int virtio_scsi_create(struct machine *m, const struct vm_scsi *spec, const int *fds,
		       const struct machine_chain *chains, struct virtio_dev **out, char *err,
		       size_t errlen) __attribute__((warn_unused_result));
/* LUN lun's storage QoS (a disk's; -ENOENT for a DVD drive or no such LUN): new limits when
 * set is not NULL, then its limits, counters and requests waiting (as virtio_blk_qos). */
struct blk_qos_limits;
struct blk_qos_stats;
int virtio_scsi_qos(struct virtio_dev *vd, unsigned lun, const struct blk_qos_limits *set,
		    struct blk_qos_limits *lim, struct blk_qos_stats *st, unsigned *waiting)
	__attribute__((warn_unused_result));
/* Requests of the device vd submitted to the block backend and not yet reaped. */
unsigned virtio_scsi_inflight(struct virtio_dev *vd);
/* Serve one validated chain of the request queue (reads and writes done at once, blocking),
 * or of the control queue; returns the bytes written into it (the used length), 0 for a
 * chain too malformed to answer. One caller at a time (the fuzz targets). */
struct vq_chain;
uint32_t virtio_scsi_request(struct virtio_scsi *s, const struct vq_chain *c);
uint32_t virtio_scsi_control(struct virtio_scsi *s, const struct vq_chain *c);
/* virtio-scsi's LUN field: the LUN, or -1 when it names another target than 0. */
int virtio_scsi_lun(const uint8_t lun[8]);

#endif
