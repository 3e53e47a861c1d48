/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-scsi's shared state: the device (scsi.c) and its media and saved state
 * (scsi_media.c). Internal to src/vmm/virtio. */
#ifndef KEEL_VMM_VIRTIO_SCSI_INTERNAL_H
#define KEEL_VMM_VIRTIO_SCSI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/blkio/blkio.h"
#include "vmm/blkio/qos_gate.h"
#include "vmm/machine.h"
#include "vmm/scsi/scsi.h"
#include "vmm/virtio/queue.h"

#define VSCSI_CONTROL_Q	      0
#define VSCSI_EVENT_Q	      1
#define VSCSI_REQUEST_Q	      2
#define VSCSI_NQUEUES	      3
#define VSCSI_QUEUE_SIZE      256
#define VSCSI_SLOTS	      32 /* requests taken and not yet answered, at most */
#define VSCSI_CONFIG_SIZE     36
#define VSCSI_EVENT_INFO_SIZE 16
#define VSCSI_CDB_DEFAULT     32
#define VSCSI_SENSE_DEFAULT   96
#define VSCSI_CDB_MAX	      256 /* what a driver may set cdb_size to */
#define VSCSI_SENSE_MAX	      256 /* ... and sense_size */
#define VSCSI_CMD_HDR	      19  /* lun[8], id, task_attr, prio, crn: then the CDB */
#define VSCSI_RESP_HDR	      12  /* sense_len, resid, status_qualifier, status, response */
#define VSCSI_TMF_LEN	      24  /* type, subtype, lun[8], id */
#define VSCSI_AN_LEN	      16  /* type, lun[8], event_requested */

/* Control request types and task management functions (virtio 1.2, 5.6.6.2). */
#define VIRTIO_SCSI_T_TMF		     0
#define VIRTIO_SCSI_T_AN_QUERY		     1
#define VIRTIO_SCSI_T_AN_SUBSCRIBE	     2
#define VIRTIO_SCSI_T_TMF_ABORT_TASK	     0
#define VIRTIO_SCSI_T_TMF_ABORT_TASK_SET     1
#define VIRTIO_SCSI_T_TMF_CLEAR_ACA	     2
#define VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET     3
#define VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET    4
#define VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET 5
#define VIRTIO_SCSI_T_TMF_QUERY_TASK	     6
#define VIRTIO_SCSI_T_TMF_QUERY_TASK_SET     7

/* Response codes. */
#define VIRTIO_SCSI_S_OK		 0
#define VIRTIO_SCSI_S_FUNCTION_COMPLETE	 0
#define VIRTIO_SCSI_S_OVERRUN		 1
#define VIRTIO_SCSI_S_ABORTED		 2
#define VIRTIO_SCSI_S_BAD_TARGET	 3
#define VIRTIO_SCSI_S_RESET		 4
#define VIRTIO_SCSI_S_FAILURE		 9
#define VIRTIO_SCSI_S_FUNCTION_SUCCEEDED 10
#define VIRTIO_SCSI_S_FUNCTION_REJECTED	 11
#define VIRTIO_SCSI_S_INCORRECT_LUN	 12

/* One request taken from the request queue. */
struct vscsi_slot {
	struct vq_chain chain;
	struct scsi_req req;
	struct iovec in_seg[VQ_MAX_SEGS], out_seg[VQ_MAX_SEGS];
	struct blkio_req io;
	uint32_t epoch, sense_size;
	uint16_t idx;
	int lun;     /* the LUN it addresses (scsi_begin), or -1 */
	int qos_lun; /* the LUN whose bucket counts it (a read, write or flush), or -1 */
	uint8_t response;
	bool malformed; /* no room for a response: answered with 0 bytes */
	bool tmf_wait;	/* a pending task management function waits for it */
	bool gated;	/* waiting in the QoS gate (not submitted) */
};

struct virtio_scsi {
	struct virtio_dev *vd;
	/* Everything below under vd->lock once the device runs. */
	struct scsi_target t;
	struct blkio *io;
	uint32_t cdb_size, sense_size; /* the driver's (configuration space) */
	struct vscsi_slot slots[VSCSI_SLOTS];
	uint16_t freelist[VSCSI_SLOTS];
	unsigned nfree;
	bool starved; /* chains left in the ring for want of a slot */
	/* Storage QoS (as virtio-blk's, per LUN: qos_gate.h): a bucket and a FIFO per LUN,
	 * each LUN's reads, writes and flushes outstanding (taken, not answered). */
	struct qos_gate gate;
	unsigned lun_busy[VMDEF_MAX_LUNS];
	bool gate_touched; /* a release submitted requests: commit after it */
	/* A LUN holds at most lun_cap slots waiting in the gate (its share of the slots, so
	 * that a throttled LUN cannot take every slot from the others). A chain taken from the
	 * ring for a LUN at its cap, or with chains parked already, is parked here: only its
	 * head (and tag, for ABORT TASK), oldest first; it is walked again (vq_chain_at) and
	 * started once the LUN is below its cap and a slot is free. At most a ring's worth. */
	unsigned lun_cap;
	uint16_t park[VMDEF_MAX_LUNS][VSCSI_QUEUE_SIZE];
	uint64_t park_tag[VMDEF_MAX_LUNS][VSCSI_QUEUE_SIZE];
	unsigned park_head[VMDEF_MAX_LUNS], park_n[VMDEF_MAX_LUNS], nparked;
	struct vq_chain park_chain; /* a parked chain being cancelled */
	struct vq_chain ctl_chain;
	/* A task management function taken while requests were in flight (ctl_chain holds
	 * it; tmf_epoch the driver instance that sent it): it is answered once the requests
	 * the driver gave before it are, tmf_wait of them in flight (their slots flagged) and
	 * tmf_ring_left still in the ring for want of a slot (flagged as they are taken).
	 * Meanwhile no control request is taken; other requests run as usual. */
	bool tmf_pending;
	uint32_t tmf_epoch;
	unsigned tmf_wait;
	uint16_t tmf_ring_left;
	/* What the function concerns (scsi_tmf_scope): LUN tmf_lun (-1: every LUN), only the
	 * request tagged tmf_tag (ABORT TASK, QUERY TASK), and whether it cancels the requests
	 * that have not started (answered with tmf_resp) or asks whether any is outstanding (a
	 * query: tmf_found once one is seen; it waits for none to be answered). */
	int tmf_lun;
	bool tmf_by_tag, tmf_cancels, tmf_query, tmf_found;
	uint64_t tmf_tag;
	uint8_t tmf_resp;
};

/* The host's DVD media (scsi_media.c). */
extern const struct machine_media_ops virtio_scsi_media_ops;
/* The section "virtio-scsi-luns.SS": every unit's medium and state (opaque: the
 * controller's struct virtio_dev), listed in virtio_scsi_class. */
#define STATE_SCSI_VERSION 1u
int virtio_scsi_state(struct state_io *io, void *opaque);

#endif
