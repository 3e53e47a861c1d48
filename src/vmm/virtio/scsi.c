/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-scsi (virtio 1.2, 5.6): one controller with one target (0) and the VM's SCSI LUNs
 * (disks and DVD drives, vmm/scsi). Queues: 0 control (task management, asynchronous
 * notification queries), 1 event (no feature that sends events is offered, so its buffers
 * stay with the driver), 2 requests. A request's CDB is executed by the SCSI target layer
 * on the device's I/O thread; its reads, writes and cache flushes run on the block backend
 * (vmm/blkio, the pool threads of virtio-blk's backend) through keel's disk library, and
 * complete on the I/O thread with one interrupt per batch.
 *
 * The host changes a DVD drive's medium through the control socket (machine_set_media):
 * once no request is in flight (virtio_lock_idle) the medium is swapped and the guest sees
 * a unit attention (28/00, medium changed) and a media event. The LUNs' state (media, unit
 * attentions, tray, lock) is the section "virtio-scsi-luns.SS" of a saved state.
 */
#include "vmm/virtio/scsi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "config/vmdef_device.h"
#include "lib/clock.h"
#include "lib/le.h"
#include "lib/log.h"
#include "vmm/blkio/blkio.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/virtio/scsi_internal.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/virtio.h"

static struct log_ratelimit scsi_rl = LOG_RATELIMIT_INIT(5000, 5);

/* The QoS gate holds every slot of one LUN, and has a FIFO per LUN. */
_Static_assert(VSCSI_SLOTS <= QOS_GATE_DEPTH, "a LUN's FIFO holds every slot");
_Static_assert(VMDEF_MAX_LUNS <= QOS_GATE_FIFOS, "a FIFO per LUN");

/* I/O thread or reset, vd->lock held. */
static void scsi_release_slot(struct virtio_scsi *s, struct vscsi_slot *sl)
{
	if (sl->tmf_wait) {
		sl->tmf_wait = false;
		s->tmf_wait--;
	}
	s->freelist[s->nfree++] = sl->idx;
	sl->gated = false;
	if (sl->qos_lun >= 0) {
		s->lun_busy[sl->qos_lun]--;
		qos_gate_done(&s->gate, (unsigned)sl->qos_lun);
		sl->qos_lun = -1;
	}
}

/* Decode virtio-scsi's LUN field: byte 0 is 1, byte 1 the target (0 only), bytes 2-3 the
 * LUN in SAM's flat form (40h) or peripheral form on bus 0 (00h). Returns the LUN, or -1 for
 * another target or another addressing method (a bus, logical unit or extended addressing
 * would otherwise alias this target's LUNs; QEMU refuses them the same way). */
int virtio_scsi_lun(const uint8_t lun[8])
{
	if (lun[0] != 1 || lun[1] != 0 || (lun[2] && (lun[2] & 0xc0) != 0x40))
		return -1;
	return (lun[2] & 0x3f) << 8 | lun[3];
}

/* The chain's bytes from skip on, readable (out of the guest) or writable, as buffers. */
static void chain_part(const struct vq_chain *c, bool writable, uint64_t skip, struct iovec *seg,
		       struct scsi_buf *b)
{
	unsigned i = writable ? c->nin : 0, end = writable ? c->nin + c->nout : c->nin;

	b->iov = seg;
	b->n = 0;
	b->len = 0;
	for (; i < end; i++) {
		uint64_t sl = c->seg[i].iov_len;

		if (skip >= sl) {
			skip -= sl;
			continue;
		}
		seg[b->n++] = (struct iovec){(uint8_t *)c->seg[i].iov_base + skip, sl - skip};
		b->len += sl - skip;
		skip = 0;
	}
}

/* Write the response of the request in sl into its chain; returns the used length (0 for a
 * chain without room for a response). */
static uint32_t scsi_answer(struct vscsi_slot *sl)
{
	struct scsi_req *r = &sl->req;
	uint8_t resp[VSCSI_RESP_HDR + VSCSI_SENSE_MAX] = {0};
	uint32_t resp_len = VSCSI_RESP_HDR + sl->sense_size;
	uint64_t resid = r->in.len ? r->in.len - r->in_done : r->out.len - r->out_done;

	if (sl->malformed)
		return 0;
	resp[11] = sl->response;
	if (sl->response == VIRTIO_SCSI_S_OK && r->overrun) {
		resp[11] = VIRTIO_SCSI_S_OVERRUN;
	} else if (sl->response == VIRTIO_SCSI_S_OK) {
		resp[10] = r->status;
		if (r->status == SCSI_CHECK_CONDITION) {
			uint8_t sense[SCSI_SENSE_LEN];
			uint32_t n =
				sl->sense_size < SCSI_SENSE_LEN ? sl->sense_size : SCSI_SENSE_LEN;

			scsi_sense_fixed(r->sense, sense);
			memcpy(resp + VSCSI_RESP_HDR, sense, n);
			le32_store(resp, n);
		}
	}
	le32_store(resp + 4, resid > UINT32_MAX ? UINT32_MAX : (uint32_t)resid);
	vq_chain_write(&sl->chain, 0, resp, resp_len);
	return (uint32_t)(resp_len + (resp[11] == VIRTIO_SCSI_S_OK ? r->in_done : 0));
}

/* Answer the request and hand the chain back (unless a reset came in between). Returns
 * whether the used ring changed. */
static bool scsi_complete(struct virtio_scsi *s, struct vscsi_slot *sl)
{
	struct virtio_dev *vd = s->vd;
	bool pushed = false;

	if (sl->epoch == vd->epoch && vd->q[VSCSI_REQUEST_Q].vq.ready) {
		vq_push(&vd->q[VSCSI_REQUEST_Q].vq, sl->chain.head, scsi_answer(sl));
		pushed = true;
	}
	scsi_release_slot(s, sl);
	return pushed;
}

/* Pool thread: the request's read, write or flush through the disk library. */
static int scsi_io_call(void *arg)
{
	scsi_io_run(&((struct vscsi_slot *)arg)->req);
	return 0;
}

/* Check a request chain (virtio 1.2, 5.6.6.1) and execute its CDB: SCSI_EXEC_IO when its
 * read, write or flush is still to be run, else it is ready to be answered. */
static enum scsi_exec_result scsi_begin(struct virtio_scsi *s, struct vscsi_slot *sl)
{
	const struct vq_chain *c = &sl->chain;
	uint32_t hdr = VSCSI_CMD_HDR + s->cdb_size;
	uint8_t lun[8];
	int n;

	sl->sense_size = s->sense_size;
	sl->response = VIRTIO_SCSI_S_OK;
	sl->malformed = false;
	memset(&sl->req, 0, sizeof(sl->req));
	if (c->in_len < hdr || c->out_len < VSCSI_RESP_HDR + sl->sense_size) {
		log_warn_ratelimited(&scsi_rl,
				     "virtio-scsi: request without a %u-byte header or a %u-byte "
				     "response",
				     hdr, VSCSI_RESP_HDR + sl->sense_size);
		sl->malformed = true;
		return SCSI_EXEC_DONE;
	}
	vq_chain_read(c, 0, lun, sizeof(lun));
	sl->req.cdb_len = s->cdb_size < SCSI_CDB_MAX ? s->cdb_size : SCSI_CDB_MAX;
	vq_chain_read(c, VSCSI_CMD_HDR, sl->req.cdb, sl->req.cdb_len);
	chain_part(c, false, hdr, sl->out_seg, &sl->req.out);
	chain_part(c, true, VSCSI_RESP_HDR + sl->sense_size, sl->in_seg, &sl->req.in);
	n = virtio_scsi_lun(lun);
	sl->lun = n;
	if (n < 0) {
		sl->response = VIRTIO_SCSI_S_BAD_TARGET;
		return SCSI_EXEC_DONE;
	}
	if (sl->req.in.len && sl->req.out.len) { /* VIRTIO_SCSI_F_INOUT is not offered */
		sl->response = VIRTIO_SCSI_S_FAILURE;
		return SCSI_EXEC_DONE;
	}
	return scsi_exec(&s->t, (unsigned)n, &sl->req);
}

/* Submit a request's read, write or flush to the block backend. */
static void scsi_submit(struct virtio_scsi *s, struct vscsi_slot *sl)
{
	sl->io = (struct blkio_req){.op = BLKIO_CALL, .call = scsi_io_call, .arg = sl, .tag = sl};
	blkio_submit(s->io, 0, &sl->io);
}

/* The bytes a request moves, for its LUN's bucket: a read's or write's, 0 for a flush (one
 * I/O). */
static uint64_t scsi_qos_bytes(const struct vscsi_slot *sl)
{
	return sl->req.op == SCSI_IO_FLUSH ? 0 : sl->req.len;
}

/* Start the request just taken into sl: answered at once (returns whether the used ring
 * changed), or its I/O submitted to the block backend, unless its LUN's QoS makes it wait
 * (the gate's timer starts it). */
static bool scsi_start(struct virtio_scsi *s, struct vscsi_slot *sl)
{
	sl->qos_lun = -1;
	sl->lun = -1;
	if (scsi_begin(s, sl) == SCSI_EXEC_DONE)
		return scsi_complete(s, sl);
	if (sl->lun < 0 || sl->lun >= VMDEF_MAX_LUNS) { /* not reached: I/O is a unit's */
		scsi_submit(s, sl);
		return false;
	}
	sl->qos_lun = sl->lun;
	s->lun_busy[sl->qos_lun]++;
	if (!qos_gate_admit(&s->gate, (unsigned)sl->qos_lun, sl->idx, scsi_qos_bytes(sl))) {
		scsi_submit(s, sl);
		return false;
	}
	sl->gated = true;
	if (sl->tmf_wait) { /* a function waits only for what was submitted (scsi_tmf_hold) */
		sl->tmf_wait = false;
		s->tmf_wait--;
	}
	return false;
}

/* ---- the QoS gate's view of the requests (qos_gate.h): FIFO and bucket l are LUN l's ---- */

static uint64_t gate_bytes(void *opaque, unsigned lun, uint16_t id)
{
	struct virtio_scsi *s = opaque;

	return scsi_qos_bytes(&s->slots[id]);
}

static void gate_run(void *opaque, unsigned lun, uint16_t id)
{
	struct virtio_scsi *s = opaque;
	struct vscsi_slot *sl = &s->slots[id];

	/* A reset since it was taken: its buffers are the old driver's (scsi_complete's rule). */
	sl->gated = false;
	if (sl->epoch != s->vd->epoch) {
		scsi_release_slot(s, sl);
		return;
	}
	scsi_submit(s, sl);
	s->gate_touched = true;
}

static void gate_drop(void *opaque, unsigned lun, uint16_t id)
{
	struct virtio_scsi *s = opaque;

	scsi_release_slot(s, &s->slots[id]);
}

static unsigned gate_outstanding(void *opaque, unsigned lun)
{
	const struct virtio_scsi *s = opaque;

	return s->lun_busy[lun];
}

static const struct qos_gate_ops scsi_gate_ops = {
	.bytes = gate_bytes,
	.run = gate_run,
	.drop = gate_drop,
	.outstanding = gate_outstanding,
};

/* Release what the LUNs' buckets allow (force: everything waiting), from the gate's timer or
 * a pause. */
static void scsi_gate_release(struct virtio_scsi *s, int timer_fd, bool force)
{
	s->gate_touched = false;
	if (timer_fd >= 0)
		(void)qos_gate_timer(&s->gate, timer_fd);
	else
		qos_gate_release(&s->gate, force);
	if (s->gate_touched)
		blkio_commit(s->io, 0);
}

int virtio_scsi_qos(struct virtio_dev *vd, unsigned lun, const struct blk_qos_limits *set,
		    struct blk_qos_limits *lim, struct blk_qos_stats *st, unsigned *waiting)
{
	struct virtio_scsi *s = vd->priv;

	if (lun >= s->t.nluns || s->t.lun[lun].type != VM_LUN_DISK)
		return -ENOENT;
	pthread_mutex_lock(&vd->lock);
	qos_gate_query(&s->gate, lun, set, lim, st, waiting);
	pthread_mutex_unlock(&vd->lock);
	if (set) {
		char what[64];

		snprintf(what, sizeof(what), "virtio-scsi lun %u", lun);
		qos_gate_log(what, set, true);
	}
	return 0;
}

uint32_t virtio_scsi_request(struct virtio_scsi *s, const struct vq_chain *c)
{
	static struct vscsi_slot sl; /* one caller at a time */

	memcpy(&sl.chain, c, sizeof(*c));
	if (scsi_begin(s, &sl) == SCSI_EXEC_IO)
		scsi_io_run(&sl.req);
	return scsi_answer(&sl);
}

/* ---- chains parked for a LUN at its cap (virtio_scsi.park) ---- */

/* The LUN a request chain addresses (its tag in *tag), or -1 (short, or another target). */
static int scsi_chain_lun(const struct vq_chain *c, uint64_t *tag)
{
	uint8_t hdr[16];

	*tag = 0;
	if (c->in_len < sizeof(hdr))
		return -1;
	vq_chain_read(c, 0, hdr, sizeof(hdr));
	*tag = le64_load(hdr + 8);
	return virtio_scsi_lun(hdr);
}

/* Answer a request that never started with response (a function cancelled it): nothing
 * was transferred, so the residual is the whole data buffer (5.6.6.1: data length minus the
 * bytes transferred), as scsi_answer gives a cancelled request that held a slot. Returns the
 * used length, 0 for a chain without room for a response. */
static uint32_t scsi_cancel_answer(const struct virtio_scsi *s, const struct vq_chain *c,
				   uint8_t response)
{
	uint8_t resp[VSCSI_RESP_HDR] = {0};
	uint64_t hdr = VSCSI_CMD_HDR + s->cdb_size, resp_len = VSCSI_RESP_HDR + s->sense_size, data;

	if (c->in_len < hdr || c->out_len < resp_len)
		return 0;
	data = (c->in_len - hdr) + (c->out_len - resp_len);
	le32_store(resp + 4, data > UINT32_MAX ? UINT32_MAX : (uint32_t)data);
	resp[11] = response;
	vq_chain_write(c, 0, resp, sizeof(resp));
	return (uint32_t)resp_len;
}

/* Must a chain of LUN lun wait behind its LUN's parked chains or its cap? */
static bool scsi_must_park(const struct virtio_scsi *s, int lun)
{
	return lun >= 0 && lun < VMDEF_MAX_LUNS && (s->park_n[lun] || s->gate.n[lun] >= s->lun_cap);
}

/* Park the chain c (just taken, no slot) for LUN lun. Returns whether the used ring changed
 * (a driver with more chains outstanding than its ring holds: refused). */
static bool scsi_park(struct virtio_dev *vd, struct virtio_scsi *s, unsigned lun,
		      const struct vq_chain *c, uint64_t tag)
{
	unsigned at;

	if (s->park_n[lun] == VSCSI_QUEUE_SIZE) {
		log_warn_ratelimited(&scsi_rl,
				     "virtio-scsi: more requests outstanding than the ring "
				     "holds: one refused");
		vq_push(&vd->q[VSCSI_REQUEST_Q].vq, c->head, 0);
		return true;
	}
	at = (s->park_head[lun] + s->park_n[lun]) % VSCSI_QUEUE_SIZE;
	s->park[lun][at] = c->head;
	s->park_tag[lun][at] = tag;
	s->park_n[lun]++;
	s->nparked++;
	return false;
}

/* Forget every parked chain (a reset: they were the old driver's). */
static void scsi_park_clear(struct virtio_scsi *s)
{
	memset(s->park_head, 0, sizeof(s->park_head));
	memset(s->park_n, 0, sizeof(s->park_n));
	s->nparked = 0;
}

/* Start parked chains, oldest first, while their LUN is below its cap (force: whatever the
 * cap, a pause's drain) and a slot is free. Returns whether the used ring changed. */
static bool scsi_unpark(struct virtio_dev *vd, struct virtio_scsi *s, bool force)
{
	struct vq *vq = &vd->q[VSCSI_REQUEST_Q].vq;
	bool pushed = false;

	if (s->nparked && !virtio_queue_ready(vd, VSCSI_REQUEST_Q)) {
		scsi_park_clear(s); /* the ring broke: nothing is answered on it any more */
		return false;
	}
	for (unsigned l = 0; l < VMDEF_MAX_LUNS && s->nparked; l++) {
		while (s->park_n[l] && s->nfree && (force || s->gate.n[l] < s->lun_cap)) {
			struct vscsi_slot *sl = &s->slots[s->freelist[s->nfree - 1]];
			uint16_t head = s->park[l][s->park_head[l]];
			const char *why = NULL;

			s->park_head[l] = (s->park_head[l] + 1) % VSCSI_QUEUE_SIZE;
			s->park_n[l]--;
			s->nparked--;
			if (vq_chain_at(vq, head, &sl->chain, &why) < 0) {
				log_warn_ratelimited(&scsi_rl,
						     "virtio-scsi: rejected a parked chain at "
						     "descriptor %u: %s",
						     head, why);
				vq_push(vq, head, 0);
				pushed = true;
				continue;
			}
			s->nfree--;
			sl->epoch = vd->epoch;
			pushed |= scsi_start(s, sl);
		}
	}
	return pushed;
}

/* The LUN a task management function (req: its device-readable part) names, or -1 when it
 * names another target (or LUN addressing keel does not use: scsi_lun). I_T NEXUS RESET
 * concerns the whole target and ignores the single-level LUN (virtio 1.2, 5.6.6.2): 0. */
static int scsi_tmf_lun(const uint8_t req[VSCSI_TMF_LEN])
{
	if (le32_load(req + 4) == VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET)
		return req[8] == 1 && req[9] == 0 ? 0 : -1;
	return virtio_scsi_lun(req + 8);
}

/* Does function fn name this target and, but for I_T NEXUS RESET (the whole target), a LUN
 * the controller has (lun: scsi_tmf_lun's)? */
static bool scsi_tmf_addressed(const struct virtio_scsi *s, uint32_t fn, int lun)
{
	return lun >= 0 && (fn == VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET || (unsigned)lun < s->t.nluns);
}

/* Task management (virtio 1.2, 5.6.6.2; the service responses are SAM's): a function for
 * another target is BAD TARGET; CLEAR ACA (no ACA here) and unknown functions are FUNCTION
 * REJECTED; one naming a LUN the controller lacks is INCORRECT LUN. An abort or reset
 * waits for the requests it concerns that were submitted (scsi_tmf_hold) and cancels the
 * others first (ABORTED, RESET), then it is FUNCTION COMPLETE; a LUN or nexus reset also
 * returns the units to their reset state. A query is answered as it is taken: FUNCTION
 * SUCCEEDED when a request it concerns is outstanding (s->tmf_found), else FUNCTION
 * COMPLETE. A LUN reset leaves the unit attention POWER ON, RESET, OR BUS DEVICE RESET
 * OCCURRED (29h/00h) on its LUN, a nexus reset I_T NEXUS LOSS OCCURRED (29h/07h) on every
 * LUN (SAM-5 6.3, 6.5; they replace a pending one, as QEMU's do): the driver's next command
 * there is told, and its error handling revalidates the unit. */
static uint8_t scsi_tmf(struct virtio_scsi *s, const struct vq_chain *c)
{
	uint8_t req[VSCSI_TMF_LEN];
	uint32_t fn;
	int n;

	vq_chain_read(c, 0, req, sizeof(req));
	fn = le32_load(req + 4);
	n = scsi_tmf_lun(req);
	if (n < 0)
		return VIRTIO_SCSI_S_BAD_TARGET;
	if (fn == VIRTIO_SCSI_T_TMF_CLEAR_ACA || fn > VIRTIO_SCSI_T_TMF_QUERY_TASK_SET)
		return VIRTIO_SCSI_S_FUNCTION_REJECTED;
	if (!scsi_tmf_addressed(s, fn, n))
		return VIRTIO_SCSI_S_INCORRECT_LUN;
	switch (fn) {
	case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
		s->t.lun[n].prevent = false;
		s->t.lun[n].ua = SENSE_RESET_OCCURRED;
		return VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
		for (unsigned i = 0; i < s->t.nluns; i++) {
			s->t.lun[i].prevent = false;
			s->t.lun[i].ua = SENSE_I_T_NEXUS_LOSS;
		}
		return VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	case VIRTIO_SCSI_T_TMF_QUERY_TASK:
	case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
		return s->tmf_found ? VIRTIO_SCSI_S_FUNCTION_SUCCEEDED
				    : VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	default: /* ABORT TASK, ABORT TASK SET, CLEAR TASK SET */
		return VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	}
}

uint32_t virtio_scsi_control(struct virtio_scsi *s, const struct vq_chain *c)
{
	uint8_t type[4], resp[5] = {0};

	if (c->in_len < 4)
		goto bad;
	vq_chain_read(c, 0, type, 4);
	switch (le32_load(type)) {
	case VIRTIO_SCSI_T_TMF:
		if (c->in_len < VSCSI_TMF_LEN || c->out_len < 1)
			goto bad;
		resp[0] = scsi_tmf(s, c);
		return (uint32_t)vq_chain_write(c, 0, resp, 1);
	case VIRTIO_SCSI_T_AN_QUERY:
	case VIRTIO_SCSI_T_AN_SUBSCRIBE: {
		uint8_t req[VSCSI_AN_LEN];

		if (c->in_len < VSCSI_AN_LEN || c->out_len < 5)
			goto bad;
		vq_chain_read(c, 0, req, sizeof(req));
		/* event_actual: none of the events asked for is supported */
		resp[4] =
			virtio_scsi_lun(req + 4) < 0 ? VIRTIO_SCSI_S_BAD_TARGET : VIRTIO_SCSI_S_OK;
		return (uint32_t)vq_chain_write(c, 0, resp, 5);
	}
	default:
		break;
	}
bad:
	log_warn_ratelimited(&scsi_rl, "virtio-scsi: malformed control request (%llu bytes)",
			     (unsigned long long)c->in_len);
	return 0;
}

/* Is the control request in c a task management function that concerns requests (virtio
 * 1.2, 5.6.6.2: the driver takes an abort's or reset's FUNCTION COMPLETE to mean that the
 * requests it concerns are done; Linux's virtscsi_tmf then completes and frees the
 * commands)? Then what it concerns is set (s->tmf_lun, tmf_by_tag, tmf_tag, tmf_cancels,
 * tmf_resp, tmf_query). A function for another target or a LUN the controller lacks, CLEAR
 * ACA or an unknown one is answered at once (scsi_tmf). Requests cancelled before they
 * started are answered as 5.6.6.1 says: VIRTIO_SCSI_S_ABORTED for ABORT TASK and ABORT TASK
 * SET (and CLEAR TASK SET, which aborts the same tasks), VIRTIO_SCSI_S_RESET for LOGICAL UNIT
 * RESET and I_T NEXUS RESET. */
static bool scsi_tmf_scope(struct virtio_scsi *s, const struct vq_chain *c)
{
	uint8_t req[VSCSI_TMF_LEN];
	uint32_t fn;
	int lun;

	s->tmf_found = false;
	if (c->in_len < VSCSI_TMF_LEN || c->out_len < 1)
		return false;
	vq_chain_read(c, 0, req, sizeof(req));
	fn = le32_load(req + 4);
	lun = scsi_tmf_lun(req);
	if (le32_load(req) != VIRTIO_SCSI_T_TMF || !scsi_tmf_addressed(s, fn, lun))
		return false;
	s->tmf_lun = lun;
	s->tmf_tag = le64_load(req + 16);
	s->tmf_by_tag = false;
	s->tmf_cancels = false;
	s->tmf_query = false;
	s->tmf_resp = VIRTIO_SCSI_S_ABORTED;
	switch (fn) {
	case VIRTIO_SCSI_T_TMF_ABORT_TASK:
		s->tmf_by_tag = true;
		/* fall through */
	case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
	case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
		s->tmf_cancels = true;
		return true;
	case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
		s->tmf_lun = -1;
		/* fall through */
	case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
		s->tmf_cancels = true;
		s->tmf_resp = VIRTIO_SCSI_S_RESET;
		return true;
	case VIRTIO_SCSI_T_TMF_QUERY_TASK:
		s->tmf_by_tag = true;
		/* fall through */
	case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
		s->tmf_query = true;
		return true;
	default:
		return false;
	}
}

/* Does the pending function concern a request of LUN lun tagged tag? */
static bool scsi_tmf_covers(const struct virtio_scsi *s, int lun, uint64_t tag)
{
	return lun >= 0 && (s->tmf_lun < 0 || s->tmf_lun == lun) &&
	       (!s->tmf_by_tag || s->tmf_tag == tag);
}

/* The gate's pick (qos_gate_remove): a waiting request the pending function cancels. */
static bool scsi_tmf_pick(void *arg, uint16_t id)
{
	struct virtio_scsi *s = arg;
	uint64_t tag;
	int lun = scsi_chain_lun(&s->slots[id].chain, &tag);

	return scsi_tmf_covers(s, lun, tag);
}

/* Cancel what the pending function concerns that has not started: requests waiting in the
 * gate and parked chains, answered with s->tmf_resp. Returns whether the used ring changed. */
static bool scsi_tmf_cancel(struct virtio_dev *vd, struct virtio_scsi *s)
{
	struct vq *vq = &vd->q[VSCSI_REQUEST_Q].vq;
	bool pushed = false;

	for (unsigned l = 0; l < VMDEF_MAX_LUNS; l++) {
		uint16_t ids[QOS_GATE_DEPTH];
		unsigned n, keep = 0;

		if (!scsi_tmf_covers(s, (int)l, s->tmf_tag)) /* not this LUN */
			continue;
		n = qos_gate_remove(&s->gate, l, scsi_tmf_pick, s, ids);
		for (unsigned i = 0; i < n; i++) {
			struct vscsi_slot *sl = &s->slots[ids[i]];

			sl->gated = false;
			sl->response = s->tmf_resp;
			pushed |= scsi_complete(s, sl);
		}
		/* Parked chains: cancelled ones answered, the others kept in order. */
		for (unsigned i = 0; i < s->park_n[l]; i++) {
			unsigned at = (s->park_head[l] + i) % VSCSI_QUEUE_SIZE;
			unsigned to = (s->park_head[l] + keep) % VSCSI_QUEUE_SIZE;

			if (!scsi_tmf_covers(s, (int)l, s->park_tag[l][at])) {
				s->park[l][to] = s->park[l][at];
				s->park_tag[l][to] = s->park_tag[l][at];
				keep++;
				continue;
			}
			if (vq->ready && vq_chain_at(vq, s->park[l][at], &s->park_chain, NULL) > 0)
				vq_push(vq, s->park[l][at],
					scsi_cancel_answer(s, &s->park_chain, s->tmf_resp));
			else if (vq->ready)
				vq_push(vq, s->park[l][at], 0);
			pushed = true;
		}
		s->nparked -= s->park_n[l] - keep;
		s->park_n[l] = keep;
	}
	return pushed;
}

/* Hold the function in s->ctl_chain until the requests it concerns that were given before
 * it are answered: those submitted (slots neither free nor waiting in the gate), and those
 * left in the ring for want of a slot (the next ones taken, checked as they are, which
 * scsi_queue_notify does at once: scsi_tmf_wants_ring; at most a ring's worth, whatever the
 * driver's index says). Those not started are cancelled first (aborts and resets). A query
 * waits for none to be answered: it notes whether one is outstanding (a slot in use, a parked
 * chain, or one of those left in the ring: s->tmf_found) and waits only until those left in
 * the ring are taken. Returns whether it must wait. */
static bool scsi_tmf_hold(struct virtio_dev *vd, struct virtio_scsi *s)
{
	bool is_free[VSCSI_SLOTS] = {false};
	uint16_t avail, used;

	if (s->tmf_cancels && scsi_tmf_cancel(vd, s))
		virtio_queue_interrupt(vd, VSCSI_REQUEST_Q);
	s->tmf_pending = true;
	s->tmf_epoch = vd->epoch;
	s->tmf_wait = 0;
	for (unsigned i = 0; i < s->nfree; i++)
		is_free[s->freelist[i]] = true;
	for (unsigned i = 0; i < VSCSI_SLOTS; i++) {
		struct vscsi_slot *sl = &s->slots[i];
		uint64_t tag = 0;
		bool w = !is_free[i];

		if (w && s->tmf_by_tag)
			(void)scsi_chain_lun(&sl->chain, &tag);
		w = w && scsi_tmf_covers(s, sl->lun, s->tmf_by_tag ? tag : s->tmf_tag);
		s->tmf_found |= w;
		w = w && !sl->gated && !s->tmf_query;
		sl->tmf_wait = w;
		s->tmf_wait += w;
	}
	for (unsigned l = 0; s->tmf_query && l < VMDEF_MAX_LUNS; l++)
		for (unsigned i = 0; i < s->park_n[l]; i++)
			s->tmf_found |= scsi_tmf_covers(
				s, (int)l,
				s->park_tag[l][(s->park_head[l] + i) % VSCSI_QUEUE_SIZE]);
	s->tmf_ring_left = 0;
	if (s->starved && vd->q[VSCSI_REQUEST_Q].vq.ready) {
		vq_ring_indices(&vd->q[VSCSI_REQUEST_Q].vq, &avail, &used);
		avail = (uint16_t)(avail - vd->q[VSCSI_REQUEST_Q].vq.last_avail);
		s->tmf_ring_left = avail < VSCSI_QUEUE_SIZE ? avail : VSCSI_QUEUE_SIZE;
	}
	return s->tmf_wait || s->tmf_ring_left;
}

static void scsi_control_queue(struct virtio_dev *vd, struct virtio_scsi *s)
{
	bool pushed = false;

	while (!s->tmf_pending) {
		int r = virtio_pop(vd, VSCSI_CONTROL_Q, &s->ctl_chain);

		if (r <= 0) {
			if (virtio_queue_ready(vd, VSCSI_CONTROL_Q) &&
			    vq_rearm(&vd->q[VSCSI_CONTROL_Q].vq))
				continue;
			break;
		}
		if (scsi_tmf_scope(s, &s->ctl_chain) && scsi_tmf_hold(vd, s))
			break; /* answered by scsi_tmf_finish */
		s->tmf_pending = false;
		vq_push(&vd->q[VSCSI_CONTROL_Q].vq, s->ctl_chain.head,
			virtio_scsi_control(s, &s->ctl_chain));
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(vd, VSCSI_CONTROL_Q);
}

/* Answer the task management function that waited once the requests it waits for are
 * answered (force: also with some still in the ring, which a pause does not take); then the
 * control queue goes on (go_on: not while pausing, when no chain is taken; the resume kicks
 * every queue). Returns whether it was answered. */
static bool scsi_tmf_finish(struct virtio_dev *vd, struct virtio_scsi *s, bool force, bool go_on)
{
	if (!s->tmf_pending || s->tmf_wait || (s->tmf_ring_left && !force))
		return false;
	s->tmf_pending = false;
	s->tmf_ring_left = 0;
	if (s->tmf_epoch == vd->epoch && vd->q[VSCSI_CONTROL_Q].vq.ready) {
		vq_push(&vd->q[VSCSI_CONTROL_Q].vq, s->ctl_chain.head,
			virtio_scsi_control(s, &s->ctl_chain));
		virtio_queue_interrupt(vd, VSCSI_CONTROL_Q);
	}
	if (go_on && virtio_queue_ready(vd, VSCSI_CONTROL_Q))
		scsi_control_queue(vd, s);
	return true;
}

/* Take the request queue's chains (parked ones first) into free slots, and those a pending
 * function waits for also without one. */
static void scsi_take_requests(struct virtio_dev *vd, struct virtio_scsi *s)
{
	const unsigned q = VSCSI_REQUEST_Q;
	bool pushed;

	pushed = scsi_unpark(vd, s, false); /* before the ring: a LUN's chains keep their order */
	for (;;) {
		struct vscsi_slot *sl = NULL;
		struct vq_chain *c = &s->park_chain;
		uint64_t tag;
		bool before_tmf = false;
		int r, lun;

		if (s->nfree) {
			sl = &s->slots[s->freelist[s->nfree - 1]];
			c = &sl->chain;
		} else if (!s->tmf_pending || !s->tmf_ring_left) {
			s->starved = true; /* a completion takes the queue up again */
			break;
		} /* else no slot, but a function waits for the chains given before it: each is
		   * taken all the same, to be cancelled or parked (below) */
		r = virtio_pop(vd, q, c);
		if (r <= 0) {
			if (virtio_queue_ready(vd, q) && vq_rearm(&vd->q[q].vq))
				continue;
			s->tmf_ring_left = 0; /* the ring is empty: nothing more to wait for */
			break;
		}
		lun = scsi_chain_lun(c, &tag);
		if (s->tmf_ring_left) { /* given before the pending function */
			s->tmf_ring_left--;
			before_tmf = s->tmf_pending && scsi_tmf_covers(s, lun, tag);
		}
		if (before_tmf && s->tmf_cancels) { /* it never starts */
			vq_push(&vd->q[q].vq, c->head, scsi_cancel_answer(s, c, s->tmf_resp));
			pushed = true;
			continue;
		}
		if (before_tmf && s->tmf_query) { /* outstanding: a query waits for no answer */
			s->tmf_found = true;
			before_tmf = false;
		}
		if (!sl && (lun < 0 || lun >= VMDEF_MAX_LUNS)) {
			/* No list holds it: back in the ring until a slot is free. */
			vq_unpop(&vd->q[q].vq);
			s->tmf_ring_left++;
			s->starved = true;
			break;
		}
		if (!sl || scsi_must_park(s, lun)) {
			pushed |= scsi_park(vd, s, (unsigned)lun, c, tag);
			continue;
		}
		s->nfree--;
		if (before_tmf) { /* unless it waits in the gate (scsi_start) or is answered */
			sl->tmf_wait = true;
			s->tmf_wait++;
		}
		sl->epoch = vd->epoch;
		pushed |= scsi_start(s, sl);
	}
	blkio_commit(s->io, 0);
	if (pushed)
		virtio_queue_interrupt(vd, q);
}

/* Does a pending function wait for chains left in the ring (every slot was taken when it
 * came)? They are taken as soon as it is held, not at the next completion: its cancel may
 * have freed every slot with nothing left in flight, and then no completion would come (a
 * driver in error recovery gives no new request to kick the ring either). */
static bool scsi_tmf_wants_ring(struct virtio_dev *vd, const struct virtio_scsi *s)
{
	return s->tmf_pending && s->tmf_ring_left && virtio_queue_ready(vd, VSCSI_REQUEST_Q);
}

/* I/O thread, vd->lock held. */
static void scsi_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_scsi *s = vd->priv;

	if (q == VSCSI_CONTROL_Q) {
		scsi_control_queue(vd, s);
		if (!scsi_tmf_wants_ring(vd, s))
			return;
	} else if (q != VSCSI_REQUEST_Q) {
		return; /* the event queue: its buffers wait for events that never come */
	}
	/* Until no function answered meanwhile leaves the next one waiting for the ring (one
	 * function answered a turn: at most the control ring's worth). */
	do
		scsi_take_requests(vd, s);
	while (scsi_tmf_finish(vd, s, false, true) && scsi_tmf_wants_ring(vd, s));
}

/* Reap completions (with wait, until none is in flight), answer them, interrupt once. */
static void scsi_reap(struct virtio_scsi *s, bool wait, bool answer)
{
	struct blkio_req *done[VSCSI_SLOTS];
	bool pushed = false;
	unsigned n;

	while ((n = blkio_reap(s->io, 0, done, VSCSI_SLOTS, wait)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			if (answer)
				pushed |= scsi_complete(s, done[i]->tag);
			else
				scsi_release_slot(s, done[i]->tag);
		}
		if (!wait)
			break;
	}
	if (pushed)
		virtio_queue_interrupt(s->vd, VSCSI_REQUEST_Q);
}

static void scsi_fd_event(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct virtio_scsi *s = vd->priv;

	if (fd == s->gate.timer_fd) {
		scsi_gate_release(s, fd, false);
		if (s->nparked && virtio_queue_ready(vd, VSCSI_REQUEST_Q))
			scsi_queue_notify(vd, VSCSI_REQUEST_Q); /* below their cap again */
		return;
	}
	if (fd != blkio_event_fd(s->io, 0))
		return;
	scsi_reap(s, false, true);
	if (s->nparked && virtio_queue_ready(vd, VSCSI_REQUEST_Q)) {
		s->starved = false;
		scsi_queue_notify(vd, VSCSI_REQUEST_Q);
	} else if (s->starved) {
		s->starved = false;
		if (virtio_queue_ready(vd, VSCSI_REQUEST_Q))
			scsi_queue_notify(vd, VSCSI_REQUEST_Q);
	}
	/* The next function taken may wait for the ring: it takes it now (scsi_queue_notify). */
	if (scsi_tmf_finish(vd, s, false, true) && scsi_tmf_wants_ring(vd, s))
		scsi_queue_notify(vd, VSCSI_REQUEST_Q);
}

/* Pausing, the I/O thread parked (vd->lock held): answer every request in flight, polling
 * until deadline_ms at most. */
static void scsi_quiesce(struct virtio_dev *vd, long long deadline_ms)
{
	struct virtio_scsi *s = vd->priv;
	struct timespec ms = {0, 1000000};

	for (;;) {
		/* What waits for its LUN's limits goes now, and the parked chains as slots
		 * free up (the save needs every chain taken answered). */
		scsi_gate_release(s, -1, true);
		if (scsi_unpark(vd, s, true))
			virtio_queue_interrupt(vd, VSCSI_REQUEST_Q);
		scsi_gate_release(s, -1, true);
		scsi_reap(s, false, true);
		scsi_tmf_finish(vd, s, true, false);
		if ((!blkio_inflight(s->io, 0) && !s->nparked) || clock_mono_ms() >= deadline_ms)
			return;
		nanosleep(&ms, NULL);
	}
}

unsigned virtio_scsi_inflight(struct virtio_dev *vd)
{
	struct virtio_scsi *s = vd->priv;
	unsigned n;

	pthread_mutex_lock(&vd->lock);
	n = blkio_inflight(s->io, 0);
	pthread_mutex_unlock(&vd->lock);
	return n;
}

static void scsi_defaults(struct virtio_scsi *s)
{
	s->cdb_size = VSCSI_CDB_DEFAULT;
	s->sense_size = VSCSI_SENSE_DEFAULT;
}

/* Device reset (vd->lock held): the requests of the old driver instance are waited for and
 * dropped, the units reset, the driver's CDB and sense sizes back to their defaults. */
static void scsi_reset(struct virtio_dev *vd)
{
	struct virtio_scsi *s = vd->priv;

	qos_gate_drop(&s->gate); /* nothing of theirs was submitted */
	scsi_park_clear(s);
	while (blkio_inflight(s->io, 0))
		scsi_reap(s, true, false);
	s->starved = false;
	s->tmf_pending = false; /* its chain went with the old driver instance */
	s->tmf_wait = 0;
	s->tmf_ring_left = 0;
	for (unsigned i = 0; i < s->t.nluns; i++)
		scsi_lun_reset(&s->t.lun[i]);
	scsi_defaults(s);
}

static void scsi_config_fill(const struct virtio_scsi *s, uint8_t *c)
{
	memset(c, 0, VSCSI_CONFIG_SIZE);
	le32_store(c + 0, 1);			    /* num_queues (request queues) */
	le32_store(c + 4, VSCSI_QUEUE_SIZE - 2);    /* seg_max */
	le32_store(c + 8, SCSI_MAX_TRANSFER / 512); /* max_sectors */
	le32_store(c + 12, VSCSI_SLOTS);	    /* cmd_per_lun */
	le32_store(c + 16, VSCSI_EVENT_INFO_SIZE);  /* event_info_size */
	le32_store(c + 20, s->sense_size);
	le32_store(c + 24, s->cdb_size);
	le16_store(c + 28, 0);				     /* max_channel */
	le16_store(c + 30, 0);				     /* max_target */
	le32_store(c + 32, s->t.nluns ? s->t.nluns - 1 : 0); /* max_lun */
}

static void scsi_config_read(struct virtio_dev *vd, unsigned off, void *buf, unsigned len)
{
	uint8_t c[VSCSI_CONFIG_SIZE];

	scsi_config_fill(vd->priv, c);
	if (off <= VSCSI_CONFIG_SIZE && len <= VSCSI_CONFIG_SIZE - off)
		memcpy(buf, c + off, len);
}

/* The driver may set sense_size (20) and cdb_size (24), whole 32-bit fields only, up to
 * what a request can carry here. */
static void scsi_config_write(struct virtio_dev *vd, unsigned off, const void *buf, unsigned len)
{
	struct virtio_scsi *s = vd->priv;
	uint8_t v[4];
	uint32_t val;

	if (len != 4 || (off != 20 && off != 24)) {
		log_warn_ratelimited(&scsi_rl,
				     "virtio-scsi: write of %u bytes at config offset %u "
				     "ignored",
				     len, off);
		return;
	}
	memcpy(v, buf, 4);
	val = le32_load(v);
	if (off == 20 && val <= VSCSI_SENSE_MAX)
		s->sense_size = val;
	else if (off == 24 && val <= VSCSI_CDB_MAX)
		s->cdb_size = val;
	else
		log_warn_ratelimited(&scsi_rl, "virtio-scsi: %s %u is too large (kept %u)",
				     off == 20 ? "sense_size" : "cdb_size", val,
				     off == 20 ? s->sense_size : s->cdb_size);
}

void virtio_scsi_free(struct virtio_scsi *s)
{
	if (!s)
		return;
	if (s->io) {
		while (blkio_inflight(s->io, 0))
			scsi_reap(s, true, false);
		blkio_destroy(s->io);
	}
	qos_gate_fini(&s->gate);
	scsi_target_close(&s->t);
	free(s);
}

static void scsi_release(struct virtio_dev *vd)
{
	virtio_scsi_free(vd->priv);
}

static void scsi_report(void *opaque, struct machine_report *r)
{
	struct virtio_scsi *s = opaque;

	for (unsigned i = 0; i < s->t.nluns; i++) {
		const struct scsi_lun *l = &s->t.lun[i];

		machine_report_line(r, "virtio-scsi %02x.0 lun %u: %s %s%s%s", s->vd->pci.slot, i,
				    l->type == VM_LUN_DVD ? "dvd" : "disk",
				    l->path[0] ? l->path : "(no medium)",
				    l->tray_open ? ", tray open" : "",
				    l->prevent ? ", locked" : "");
	}
}

static const struct virtio_dev_ops scsi_ops = {
	.name = "virtio-scsi",
	.device_type = VIRTIO_ID_SCSI,
	.class_code = 0x010000, /* mass storage, SCSI */
	.seccomp = SECCOMP_DISK,
	.queue_notify = scsi_queue_notify,
	.config_read = scsi_config_read,
	.config_write = scsi_config_write,
	.reset = scsi_reset,
	.quiesce = scsi_quiesce,
	.fd_event = scsi_fd_event,
	.release = scsi_release,
};

int virtio_scsi_open(const struct vm_scsi *spec, const int *fds, const struct machine_chain *chains,
		     struct virtio_scsi **out, char *err, size_t errlen)
{
	struct virtio_scsi *s = calloc(1, sizeof(*s));
	struct blk_qos_limits lim[VMDEF_MAX_LUNS] = {{0}};
	uint8_t bucket_of[VMDEF_MAX_LUNS];
	const char *why;
	int r;

	if (!s)
		return -ENOMEM;
	s->gate.timer_fd = -1;
	scsi_defaults(s);
	for (unsigned i = 0; i < spec->nluns; i++) {
		r = scsi_lun_open(&s->t, i, &spec->luns[i], fds ? fds[i] : -1,
				  chains ? &chains[i] : NULL, err, errlen);
		if (r) {
			virtio_scsi_free(s);
			return r;
		}
	}
	/* A LUN's share of the slots waiting in the gate (at least one). */
	s->lun_cap = spec->nluns > 1 ? VSCSI_SLOTS / spec->nluns : VSCSI_SLOTS;
	if (!s->lun_cap)
		s->lun_cap = 1;
	for (unsigned i = 0; i < VSCSI_SLOTS; i++) {
		s->slots[i].idx = (uint16_t)i;
		s->slots[i].qos_lun = -1;
		s->freelist[s->nfree++] = (uint16_t)(VSCSI_SLOTS - 1 - i);
	}
	/* A bucket per LUN with its disk's limits (a DVD drive's: none). */
	for (unsigned i = 0; i < VMDEF_MAX_LUNS; i++) {
		const struct vm_disk *d = &spec->luns[i].disk;

		bucket_of[i] = (uint8_t)i;
		if (i < spec->nluns && spec->luns[i].type == VM_LUN_DISK)
			lim[i] = (struct blk_qos_limits){d->max_iops, d->max_bw, d->min_iops};
	}
	r = qos_gate_init(&s->gate, &scsi_gate_ops, s, VMDEF_MAX_LUNS, VMDEF_MAX_LUNS, bucket_of,
			  lim);
	if (r) {
		snprintf(err, errlen, "virtio-scsi: cannot make its QoS timer: %s", strerror(-r));
		virtio_scsi_free(s);
		return r;
	}
	r = blkio_create(1, VSCSI_SLOTS, &s->io, &why);
	if (r) {
		snprintf(err, errlen, "virtio-scsi: cannot start the block backend: %s",
			 strerror(-r));
		virtio_scsi_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int virtio_scsi_create(struct machine *m, const struct vm_scsi *spec, const int *fds,
		       const struct machine_chain *chains, struct virtio_dev **out, char *err,
		       size_t errlen)
{
	struct virtio_scsi *s;
	int r = virtio_scsi_open(spec, fds, chains, &s, err, errlen);

	if (r)
		return r;
	r = virtio_dev_create(m, spec->pci_slot, &scsi_ops, s, 0, VSCSI_NQUEUES, VSCSI_QUEUE_SIZE,
			      VSCSI_CONFIG_SIZE, out);
	if (r) {
		snprintf(err, errlen, "virtio-scsi set-up: %s", strerror(-r));
		virtio_scsi_free(s);
		return r;
	}
	s->vd = *out;
	r = virtio_dev_watch(*out, blkio_event_fd(s->io, 0), EPOLLIN);
	if (!r)
		r = virtio_dev_watch(*out, s->gate.timer_fd, EPOLLIN);
	if (!r)
		r = machine_add_report(m, scsi_report, s);
	if (!r)
		r = machine_set_media(m, &virtio_scsi_media_ops, s);
	if (r) {
		snprintf(err, errlen, "virtio-scsi set-up: %s", strerror(-r));
		/* its report hook, then the device (which frees s) */
		machine_forget(m, s);
		virtio_dev_destroy(*out);
		return r;
	}
	for (unsigned i = 0; i < spec->nluns; i++) {
		char what[64];

		log_info("virtio-scsi lun %u: %s %s%s", i,
			 spec->luns[i].type == VM_LUN_DVD ? "dvd" : "disk",
			 s->t.lun[i].path[0] ? s->t.lun[i].path : "(no medium)",
			 spec->luns[i].type == VM_LUN_DVD	     ? ""
			 : spec->luns[i].disk.format == VM_DISK_VHDX ? " (vhdx)"
								     : " (raw)");
		snprintf(what, sizeof(what), "virtio-scsi lun %u", i);
		qos_gate_log(what, &s->gate.bucket[i].lim, false);
	}
	return 0;
}

static int scsi_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int r = virtio_scsi_create(m, &m->def->scsi, m->lun_fds, m->lun_chains, &vd, err, errlen);

	r = r ?: virtio_dev_keep(m, vd);
	if (!r)
		*obj = vd;
	if (!r && machine_set_scsi_dev(m, vd))
		log_warn("virtio-scsi: its LUNs' QoS cannot be changed while the VM runs");
	return r;
}

/* One controller when the description has SCSI LUNs. */
const struct device_class virtio_scsi_class = {
	.name = "virtio-scsi",
	.config = &vmdef_scsi_kind,
	.state = {{"virtio-scsi", STATE_VIRTIO_VERSION, virtio_state},
		  {"virtio-scsi-luns", STATE_SCSI_VERSION, virtio_scsi_state}},
	.create = scsi_class_create};
