/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk: request parsing and execution on a disk (raw or VHDX), and the device. */
#ifndef KEEL_VMM_VIRTIO_BLK_H
#define KEEL_VMM_VIRTIO_BLK_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"
#include "vmm/virtio/queue.h"

/* How cache=none opens a disk's file again for its payload (jail_prep.h). */
#define BLK_DIRECT_FLAGS(ro)	  (((ro) ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC)

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK		  0
#define VIRTIO_BLK_S_IOERR	  1
#define VIRTIO_BLK_S_UNSUPP	  2
#define VIRTIO_BLK_HDR_SIZE	  16

struct machine;
struct machine_chain;
struct virtio_dev;
struct virtio_blk;

/* Open the disk of spec as its recorded format: fd when it is >= 0 (passed by keeld; taken
 * over, and it must be open for writing unless the disk is read-only) with its differencing
 * chain's parents from chain (taken over; NULL: none), else its path. */
int virtio_blk_open(const struct vm_disk *spec, int fd, const struct machine_chain *chain,
		    struct virtio_blk **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void virtio_blk_free(struct virtio_blk *b);
uint64_t virtio_blk_features(const struct virtio_blk *b);
/* Serve one validated chain; returns the bytes written into it (the used length), 0 for a
 * chain too malformed to carry a status byte. */
uint32_t virtio_blk_request(struct virtio_blk *b, const struct vq_chain *c);
/* Requests of the device vd (a virtio-blk) submitted to the backend and not yet reaped;
 * vd->lock not held (the fuzz targets wait for them). */
unsigned virtio_blk_inflight(struct virtio_dev *vd);
/* Storage QoS of the device vd (a virtio-blk; blk_throttle.c): new limits when set is not
 * NULL (what waits is released as they allow), then the limits, counters and requests
 * waiting now. Any thread; vd->lock not held. */
struct blk_qos_limits;
struct blk_qos_stats;
void virtio_blk_qos(struct virtio_dev *vd, const struct blk_qos_limits *set,
		    struct blk_qos_limits *lim, struct blk_qos_stats *st, unsigned *waiting);
/* The device on the VM's PCI bus. */
int virtio_blk_create(struct machine *m, const struct vm_disk *spec, int fd,
		      const struct machine_chain *chain, struct virtio_dev **out, char *err,
		      size_t errlen) __attribute__((warn_unused_result));

#endif
