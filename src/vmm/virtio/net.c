/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (virtio 1.2, 5.1) on a Linux tap device with the virtio-net header
 * (IFF_VNET_HDR, 12 bytes: the VERSION_1 layout with num_buffers). One queue pair (a receive
 * and a transmit queue) per queue of the tap, served on the device's I/O thread. An adapter
 * with more than one pair is multi-queue (VIRTIO_NET_F_MQ, VIRTIO_NET_F_CTRL_VQ): pair k is
 * queues 2k and 2k+1 and reads and writes queue k of a multi-queue tap (IFF_MULTI_QUEUE);
 * the driver enables pairs with the control queue's VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, and
 * the tap queues of the pairs it does not use are detached (IFF_DETACH_QUEUE) so the kernel
 * steers no flow to them. Every pair's state is its own struct net_pair. Transmit: the guest's
 * header is copied and checked (net_hdr.c) and goes to the tap with the frame in one writev, so
 * checksum and segmentation offloads pass to the host kernel. Receive: a frame is read from the tap
 * into the device's buffer and copied into one receive chain, or with mergeable receive
 * buffers (MRG_RXBUF) over as many as it takes, all returned at once; the tap's offloads
 * (TUNSETOFFLOAD) follow what the driver negotiated (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN),
 * so TCP streams arrive as 64 KiB frames. When the guest has too few receive buffers the
 * frame waits in the device (its chains put back) and the tap is not read (it queues or
 * drops, as a full NIC would) until the guest posts more.
 *
 * Where the host has vhost-net, the host kernel serves the rings instead (vhost_net.c; the hooks
 * below hand them over and take them back): the device, its features and its saved state are
 * the same on both paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/log.h"
#include "lib/tap.h"
#include "vmm/fail_point.h"
#include "vmm/device.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/vhost_net.h"
#include "vmm/virtio/virtio.h"
#include "config/vmdef_device.h"
#include "vmm/machine.h"

#define NET_S_LINK_UP  1
#define NET_QUEUE_SIZE 256
#define NET_RX	       0 /* a pair's receive queue is 2k + NET_RX, its transmit queue 2k + NET_TX */
#define NET_TX	       1
#define NET_CFG_SIZE   10
#define NET_PAIRS_MAX  VMDEF_NET_QUEUES_MAX
/* The control queue's commands (virtio 1.2, 5.1.6.5): only MQ's is offered. */
#define NET_CTRL_OK		 0
#define NET_CTRL_ERR		 1
#define NET_CTRL_MQ		 4
#define NET_CTRL_MQ_VQ_PAIRS_SET 0
#define NET_MAX_RX_BATCH	 64
/* Tap offload changes: a guest that renegotiates in a loop must not have the host take RTNL
 * and broadcast a link event per cycle. A bucket of NET_OFFL_BURST changes, one more every
 * NET_OFFL_MS; a change that grants offloads needs two (one kept to take them back). */
#define NET_OFFL_BURST 4
#define NET_OFFL_MS    250
/* Tap queue changes (TUNSETQUEUE takes RTNL too): a guest that toggles its pairs in a loop
 * gets NET_QUEUE_BURST changes, one more every NET_OFFL_MS; a change past them waits for the
 * next event of the device's I/O thread once a token is back. */
#define NET_QUEUE_BURST 8
/* An up that waits for the driver to read the link down (virtio_net_set_link) waits this
 * long at most: a driver that never reads the status does not keep the link down. */
#define NET_LINK_WAIT_MS 1000

_Static_assert(NET_HDR_SIZE == TAP_VNET_HDR_SIZE, "the tap's header is virtio-net's");
_Static_assert(VQ_MAX_SEGS <= IOV_MAX, "a transmit chain fits one writev");

_Static_assert(2 * NET_PAIRS_MAX + 1 <= VIRTIO_MAX_QUEUES, "every pair and the control queue");

static struct log_ratelimit net_rl = LOG_RATELIMIT_INIT(5000, 5);

/* Changes to the tap a guest can cause, rate-limited: tokens now, and when one was last
 * added (ms, monotonic). */
struct net_bucket {
	unsigned tokens;
	uint64_t refill;
};

/* One queue pair: its tap queue and its receive and transmit state. vd->lock; the buffers
 * are the I/O thread's. */
struct net_pair {
	unsigned index;		/* k: queues 2k (receive) and 2k + 1 (transmit) */
	int tap;		/* queue k of the tap */
	bool attached;		/* the tap queue takes frames (the driver enabled the pair) */
	bool in_tap;		/* its thread is inside an unlocked tap call (net_unlock) */
	bool rx_muted;		/* tap not watched: no receive buffers, or detached */
	size_t pending;		/* bytes of a frame in frame[] waiting for buffers */
	bool rx_wait;		/* the frame waits: rx_wait_avail, rx_wait_epoch valid */
	uint16_t rx_wait_avail; /* the driver's avail index when it began to wait */
	uint32_t rx_wait_epoch; /* vd->epoch then (a reset or restore ends the wait) */
	/* I/O thread only: */
	struct vq_chain rx_first, rx_chain, tx_chain;
	uint16_t rx_heads[NET_QUEUE_SIZE];
	uint32_t rx_lens[NET_QUEUE_SIZE];
	struct iovec tx_iov[VQ_MAX_SEGS];
	uint8_t tx_head[NET_HDR_SIZE + NET_FRAME_MAX]; /* header and a segment's tail, copied */
	uint8_t frame[NET_HDR_SIZE + NET_FRAME_MAX];   /* a received frame, header first */
	struct vhost_net *vhost; /* the queue pair's kernel data path, or NULL (vd->lock) */
};

struct virtio_net {
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	/* The link as the host set it (virtio_net_set_link; vd->lock): down, whether the
	 * driver has read the status since it went down, and an up waiting for that read. */
	bool link_down, link_seen, up_pending;
	int link_timer;		/* timerfd: the end of an up's wait (NET_LINK_WAIT_MS) */
	unsigned offloads;	/* TUN_F_* the tap is set to (the last TUNSETOFFLOAD that worked) */
	bool offload_warned;	/* TUNSETOFFLOAD failed once (said once) */
	struct net_bucket offl; /* offload changes allowed now */
	struct net_bucket qchg; /* tap queue changes allowed now */
	bool queue_warned;	/* TUNSETQUEUE failed once (said once) */
	unsigned npairs;     /* pairs offered (max_virtqueue_pairs); 1: no MQ, no control queue */
	unsigned curr_pairs; /* pairs the driver enabled (1 after a reset) */
	struct vq_chain ctrl_chain; /* I/O thread only */
	struct net_pair pair[];	    /* npairs of them */
};

void virtio_net_default_mac(const char *tap, uint8_t mac[6])
{
	uint32_t h = 0x811c9dc5;

	for (; *tap; tap++)
		h = (h ^ (uint8_t)*tap) * 0x01000193;
	mac[0] = 0x52; /* locally administered, unicast; QEMU's and libvirt's 52:54:00 prefix */
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static uint64_t net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The offload changes allowed now (the bucket refilled first). */
static unsigned net_tokens(struct net_bucket *b, unsigned burst)
{
	uint64_t now = net_now_ms(), add = (now - b->refill) / NET_OFFL_MS;

	if (add) {
		b->refill += add * NET_OFFL_MS;
		b->tokens = add >= burst - b->tokens ? burst : b->tokens + (unsigned)add;
	}
	return b->tokens;
}

/* Set the tap's offloads to what the driver negotiated (none while it has not): the tap
 * then hands over frames with partial checksums and 64 KiB segments only to a guest that
 * takes them. Rate-limited (NET_OFFL_BURST): while limited the tap gets no offloads (whole,
 * checksummed frames: right for every guest) and the driver's are set on a later call (the
 * next frame either way). A failed TUNSETOFFLOAD leaves offloads as they were and is tried
 * again later (a frame with offloads the guest did not take is dropped meanwhile).
 * I/O thread (TUNSETOFFLOAD is in its seccomp rules). */
static void net_sync_offloads(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	unsigned want = vd->status & VIRTIO_STATUS_FEATURES_OK
				? net_hdr_tap_offloads(vd->driver_features)
				: 0;

	if (want == n->offloads)
		return;
	if (net_tokens(&n->offl, NET_OFFL_BURST) < 2)
		want = 0; /* limited: the last token takes offloads away, never grants them */
	if (want == n->offloads || !n->offl.tokens)
		return;
	n->offl.tokens--;
	/* The tap's offloads are the device's, set through any attached queue: pair 0's is
	 * never detached. */
	if (ioctl(n->pair[0].tap, TUNSETOFFLOAD, (unsigned long)want) < 0) {
		if (!n->offload_warned)
			log_warn("%s: cannot set the tap's offloads to 0x%x: %s (tried again "
				 "later; frames with offloads the guest did not take are dropped)",
				 n->ifname, want, strerror(errno));
		n->offload_warned = true;
		return;
	}
	n->offloads = want;
}

static void net_mute(struct virtio_dev *vd, struct net_pair *p, bool mute)
{
	struct virtio_net *n = vd->priv;

	if (p->rx_muted == mute)
		return;
	if (virtio_dev_watch_mod_on(vd, p->index, p->tap, mute ? 0 : EPOLLIN))
		log_warn_ratelimited(&net_rl, "%s: cannot change the watch of tap queue %u",
				     n->ifname, p->index);
	p->rx_muted = mute;
}

/* Attach the tap queues of the pairs the driver enabled (curr_pairs) and detach the others:
 * the kernel then steers every flow to a queue the guest reads. A detached pair's waiting
 * frame is dropped (its flow moves to another queue). Rate-limited (NET_QUEUE_BURST). A TUNSETQUEUE
 * that fails (said once) leaves the kernel's view as it was; the pair is watched or not as the
 * driver asked either way. A pair on vhost-net has its rings taken back before its queue is
 * detached and handed over again once it is attached. I/O thread (TUNSETQUEUE and the vhost
 * ioctls are in its seccomp rules). */
static void net_vhost_start_pair(struct virtio_dev *vd, struct net_pair *p);
static void net_vhost_stop_pair(struct virtio_dev *vd, struct net_pair *p, bool keep);
static void net_vhost_give_up(struct virtio_dev *vd);

/* The pairs in use: those the driver enabled, with MQ negotiated; else pair 0 alone (a
 * driver that renegotiated without MQ since VQ_PAIRS_SET: queue 2 may be its control
 * queue). */
static unsigned net_pairs_on(const struct virtio_dev *vd)
{
	const struct virtio_net *n = vd->priv;

	return virtio_has_feature(vd, NET_F_MQ) ? n->curr_pairs : 1;
}

static void net_sync_queues(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	for (unsigned k = 1; k < n->npairs; k++) {
		struct net_pair *p = &n->pair[k];
		bool want = k < net_pairs_on(vd);
		int r;

		if (p->attached == want) {
			if (want) /* disabled and enabled again while its detach waited */
				net_vhost_start_pair(vd, p);
			continue;
		}
		if (!net_tokens(&n->qchg, NET_QUEUE_BURST))
			return; /* limited: the next event of the thread tries again */
		n->qchg.tokens--;
		/* A pair on vhost-net: the kernel gives its rings back before its queue is
		 * detached (and takes them again once it is attached, below). */
		if (!want)
			net_vhost_stop_pair(vd, p, true);
		r = tap_queue_enable(p->tap, want);
		if (r && !n->queue_warned) {
			log_warn("%s: cannot %s tap queue %u: %s", n->ifname,
				 want ? "attach" : "detach", k, strerror(-r));
			n->queue_warned = true;
		}
		p->attached = want;
		p->pending = 0;
		p->rx_wait = false;
		net_mute(vd, p, !want);
		if (want)
			net_vhost_start_pair(vd, p);
	}
}

/* The tap read or write of a pair on the user-space path runs without vd->lock (on the
 * pair's own I/O thread, into or out of its own buffers), so that the pairs' threads move
 * frames at once instead of one after the other: the caller rechecks what may have changed
 * meanwhile (vd->epoch: a reset; the pair's queue; whether it is attached and in use). A
 * transmit's writev reads the guest's buffers: a reset waits for every pair's tap call to end
 * (p->in_tap, net_reset; one non-blocking call at most), so that no buffer of the old driver
 * is read once the driver sees the reset done. A pause waits for the thread to park, which
 * it does between events, never here. A pair with a kernel data path keeps the lock: the
 * kernel may take its rings whenever it is let go. */
static bool net_unlock(struct virtio_dev *vd, struct net_pair *p)
{
	if (p->vhost)
		return false;
	p->in_tap = true;
	pthread_mutex_unlock(&vd->lock);
	return true;
}

/* unlocked: what net_unlock returned (p->vhost may be set meanwhile, net_vhost_setup). */
static void net_relock(struct virtio_dev *vd, struct net_pair *p, bool unlocked)
{
	if (!unlocked)
		return;
	pthread_mutex_lock(&vd->lock);
	p->in_tap = false;
	pthread_cond_broadcast(&vd->cond); /* a reset may wait for it */
}

/* One transmit chain to the tap, its header copied and checked first (the guest cannot
 * change it between the check and the write). A pair the driver has not enabled (chains
 * left on it when it enabled fewer) sends through pair 0's queue: its own is detached. */
static void net_tx_one(struct virtio_dev *vd, struct net_pair *p, const struct vq_chain *c)
{
	struct virtio_net *n = vd->priv;
	uint8_t raw[NET_HDR_SIZE];
	const char *why = NULL;
	struct net_hdr h;
	size_t skip = NET_HDR_SIZE;
	unsigned i, cnt = 1;
	bool unlocked;
	int fd, r;

	if (c->in_len < NET_HDR_SIZE || c->nout) {
		why = "a chain without a header or with writable buffers";
	} else {
		vq_chain_read(c, 0, raw, NET_HDR_SIZE);
		net_hdr_parse(raw, &h);
		why = net_hdr_tx_check(&h, c->in_len - NET_HDR_SIZE, vd->driver_features);
	}
	if (why) {
		log_warn_ratelimited(&net_rl, "%s: dropped a frame from the guest: %s", n->ifname,
				     why);
		return;
	}
	memset(raw + 10, 0, 2); /* num_buffers: unused on transmit */
	memcpy(p->tx_head, raw, NET_HDR_SIZE);
	p->tx_iov[0] = (struct iovec){p->tx_head, NET_HDR_SIZE};
	for (i = 0; i < c->nin; i++) {
		size_t len = c->seg[i].iov_len;

		if (len <= skip) {
			skip -= len;
			continue;
		}
		if (skip && c->nin - i >= VQ_MAX_SEGS) {
			/* The header ends inside the first of VQ_MAX_SEGS segments: its tail
			 * goes after the header copy, or the frame would take one iovec more
			 * than IOV_MAX (writev fails). */
			vq_chain_read(c, NET_HDR_SIZE, p->tx_head + NET_HDR_SIZE, len - skip);
			p->tx_iov[0].iov_len += len - skip;
			skip = 0;
			continue;
		}
		p->tx_iov[cnt++] = (struct iovec){(uint8_t *)c->seg[i].iov_base + skip, len - skip};
		skip = 0;
	}
	fd = p->attached ? p->tap : n->pair[0].tap;
	unlocked = net_unlock(vd, p);
	r = writev(fd, p->tx_iov, (int)cnt) < 0 ? errno : 0;
	net_relock(vd, p, unlocked);
	if (r && r != EAGAIN)
		log_warn_ratelimited(&net_rl, "%s: write: %s", n->ifname, strerror(r));
}

static void net_tx(struct virtio_dev *vd, struct net_pair *p)
{
	unsigned q = 2 * p->index + NET_TX;
	uint32_t epoch = vd->epoch;

	net_sync_offloads(vd);
	do {
		while (virtio_pop(vd, q, &p->tx_chain) > 0) {
			net_tx_one(vd, p, &p->tx_chain);
			/* Reset while the frame went out (the lock let go): the chain was the
			 * old driver's, and its rings are gone. */
			if (vd->epoch != epoch)
				return;
			vq_push(&vd->q[q].vq, p->tx_chain.head, 0);
		}
	} while (virtio_queue_ready(vd, q) && vq_rearm(&vd->q[q].vq));
	virtio_queue_interrupt(vd, q);
}

enum net_rx_result {
	NET_RX_DONE,  /* the frame was delivered or dropped */
	NET_RX_WAIT,  /* too few buffers: the frame waits, every chain put back */
	NET_RX_RETRY, /* too few buffers, but the driver just added more */
};

/* Not enough buffers for the pending frame after taking k good chains (the ring's next
 * entry was start and its used index used before): put them back and wait, or drop the
 * frame when waiting cannot help. */
static enum net_rx_result net_rx_short(struct virtio_dev *vd, struct net_pair *p, uint16_t start,
				       uint16_t used, unsigned k)
{
	struct virtio_net *n = vd->priv;
	unsigned q = 2 * p->index + NET_RX, i;
	struct vq *vq = &vd->q[q].vq;

	if (vq->used_idx != used) {
		/* A malformed chain among them was returned already: these cannot be put
		 * back in order, so they go back empty and the frame is dropped. */
		for (i = 0; i < k; i++)
			p->rx_lens[i] = 0;
		vq_push_many(vq, p->rx_heads, p->rx_lens, k);
		log_warn_ratelimited(&net_rl,
				     "%s: dropped a %zu-byte frame: malformed receive chains "
				     "among its buffers",
				     n->ifname, p->pending);
		return NET_RX_DONE;
	}
	if (!virtio_queue_ready(vd, q)) {
		/* The ring broke (DEVICE_NEEDS_RESET): the chains go back untouched and the
		 * frame is dropped. */
		vq_unpop_to(vq, start);
		return NET_RX_DONE;
	}
	if (k >= vq->size || k >= NET_QUEUE_SIZE) {
		/* The whole ring does not hold it: more buffers cannot come. */
		vq_unpop_to(vq, start);
		log_warn_ratelimited(&net_rl,
				     "%s: dropped a %zu-byte frame larger than the whole receive "
				     "ring",
				     n->ifname, p->pending);
		return NET_RX_DONE;
	}
	p->rx_wait_avail = vq->last_avail; /* the avail index: the last pop found no more */
	p->rx_wait_epoch = vd->epoch;
	return vq_unpop_to(vq, start) ? NET_RX_RETRY : NET_RX_WAIT;
}

/* Give the pending frame (header first) to the guest: in one receive chain, or with
 * MRG_RXBUF over as many as it takes, num_buffers in the header saying how many. */
static enum net_rx_result net_rx_place(struct virtio_dev *vd, struct net_pair *p)
{
	struct virtio_net *n = vd->priv;
	unsigned q = 2 * p->index + NET_RX;
	struct vq *vq = &vd->q[q].vq;
	bool mrg = virtio_has_feature(vd, NET_F_MRG_RXBUF);
	uint16_t start = vq->last_avail, used = vq->used_idx;
	uint8_t nbuf[2];
	size_t off = 0;
	unsigned k = 0;

	while (off < p->pending && k < NET_QUEUE_SIZE) {
		struct vq_chain *c = k ? &p->rx_chain : &p->rx_first;
		size_t take;

		if (virtio_pop(vd, q, c) <= 0)
			break;
		if (c->nin || c->out_len < NET_HDR_SIZE) {
			log_warn_ratelimited(&net_rl,
					     "%s: receive chain with readable buffers or "
					     "smaller than the header",
					     n->ifname);
			vq_push(vq, c->head, 0);
			continue;
		}
		if (!mrg && c->out_len < p->pending) {
			log_warn_ratelimited(&net_rl,
					     "%s: dropped a %zu-byte frame that did not fit "
					     "%llu bytes of receive buffers",
					     n->ifname, p->pending, (unsigned long long)c->out_len);
			vq_push(vq, c->head, 0);
			return NET_RX_DONE;
		}
		take = c->out_len < p->pending - off ? (size_t)c->out_len : p->pending - off;
		vq_chain_write(c, 0, p->frame + off, take);
		p->rx_heads[k] = c->head;
		p->rx_lens[k] = (uint32_t)take;
		k++;
		off += take;
	}
	if (off < p->pending)
		return net_rx_short(vd, p, start, used, k);
	le_store(nbuf, k, 2);
	vq_chain_write(&p->rx_first, 10, nbuf, 2);
	vq_push_many(vq, p->rx_heads, p->rx_lens, k);
	return NET_RX_DONE;
}

/* Read the next frame from the pair's tap queue into frame[]: 1, 0 when it was dropped (too
 * short or too long), -1 when there is none. */
static int net_rx_read(struct virtio_dev *vd, struct net_pair *p)
{
	struct virtio_net *n = vd->priv;
	bool unlocked = net_unlock(vd, p);
	ssize_t len = read(p->tap, p->frame, sizeof(p->frame));

	net_relock(vd, p, unlocked);
	if (len < 0)
		return -1;
	if (len < NET_HDR_SIZE || (size_t)len > sizeof(p->frame)) {
		log_warn_ratelimited(&net_rl, "%s: dropped a %zd-byte frame from the tap",
				     n->ifname, len);
		return 0;
	}
	p->pending = (size_t)len;
	return 1;
}

/* Move frames from the pair's tap queue into its receive buffers while both last. */
static void net_rx(struct virtio_dev *vd, struct net_pair *p)
{
	struct virtio_net *n = vd->priv;
	unsigned q = 2 * p->index + NET_RX;
	struct vq *vq = &vd->q[q].vq;
	uint16_t used = vq->used_idx;
	uint32_t epoch = vd->epoch;
	unsigned frames;

	net_sync_offloads(vd);
	if (!virtio_queue_ready(vd, q) || !p->attached || p->index >= net_pairs_on(vd)) {
		/* Not running: drain so the tap does not stay readable forever, a batch per
		 * event under the lock (the tap, level-triggered, wakes the thread again). */
		p->pending = 0;
		for (frames = 0; frames < NET_MAX_RX_BATCH; frames++)
			if (read(p->tap, p->frame, sizeof(p->frame)) <= 0)
				break;
		return;
	}
	for (frames = 0; frames < NET_MAX_RX_BATCH; frames++) {
		enum net_rx_result r;

		if (!p->pending) {
			int got = net_rx_read(vd, p);

			if (got < 0)
				break;
			/* Reset, stopped, detached or no longer in use (VQ_PAIRS_SET, or a
			 * renegotiation without MQ: queue 2 may be the control queue now) while
			 * the frame was read (the lock let go): no driver of now takes it. */
			if (vd->epoch != epoch || !virtio_queue_ready(vd, q) || !p->attached ||
			    p->index >= net_pairs_on(vd)) {
				p->pending = 0;
				break;
			}
			if (!got)
				continue;
		}
		/* Checked against the features now: a frame may have waited across a restore. */
		if (!net_hdr_rx_fix(p->frame, vd->driver_features)) {
			log_warn_ratelimited(&net_rl,
					     "%s: dropped a frame from the tap with offloads the "
					     "guest did not negotiate",
					     n->ifname);
			p->pending = 0;
			continue;
		}
		while ((r = net_rx_place(vd, p)) == NET_RX_RETRY)
			;
		if (r == NET_RX_WAIT) {
			/* Stop watching the tap until the guest posts buffers. */
			net_mute(vd, p, true);
			p->rx_wait = true;
			break;
		}
		p->pending = 0;
		p->rx_wait = false;
	}
	if (vd->epoch == epoch && vq->used_idx != used)
		virtio_queue_interrupt(vd, q);
}

/* One control command (virtio 1.2, 5.1.6.5): its class, command and data readable; the ack
 * is written by the caller. Only MQ's VQ_PAIRS_SET is offered: every other command, and one
 * out of range or malformed, is refused (VIRTIO_NET_ERR) and changes nothing. */
static uint8_t net_ctrl_one(struct virtio_dev *vd, const struct vq_chain *c)
{
	struct virtio_net *n = vd->priv;
	uint8_t cmd[4] = {0};
	unsigned pairs;

	vq_chain_read(c, 0, cmd, c->in_len < sizeof(cmd) ? (size_t)c->in_len : sizeof(cmd));
	if (c->in_len < 2) {
		log_warn_ratelimited(&net_rl, "%s: a control command of %llu bytes", n->ifname,
				     (unsigned long long)c->in_len);
		return NET_CTRL_ERR;
	}
	if (cmd[0] != NET_CTRL_MQ || cmd[1] != NET_CTRL_MQ_VQ_PAIRS_SET) {
		log_debug("%s: control command class %u command %u refused (not offered)",
			  n->ifname, cmd[0], cmd[1]);
		return NET_CTRL_ERR;
	}
	pairs = (unsigned)le_load(cmd + 2, 2);
	if (!virtio_has_feature(vd, NET_F_MQ) || c->in_len != 4 || pairs < 1 || pairs > n->npairs) {
		log_warn_ratelimited(&net_rl,
				     "%s: VQ_PAIRS_SET refused: %s (%llu bytes, %u pairs; the "
				     "device has 1 to %u)",
				     n->ifname,
				     !virtio_has_feature(vd, NET_F_MQ) ? "MQ not negotiated"
				     : c->in_len != 4		       ? "not 2 bytes of data"
								       : "pairs out of range",
				     (unsigned long long)c->in_len, pairs, n->npairs);
		return NET_CTRL_ERR;
	}
	n->curr_pairs = pairs;
	/* The disabled pairs' rings come back from the kernel before the driver reads the ack
	 * (virtio 1.2, 5.1.6.5.5), whatever the rate limit: net_sync_queues detaches their tap
	 * queues when it may, and net_rx drops what they get meanwhile. */
	for (unsigned k = net_pairs_on(vd); k < n->npairs; k++)
		net_vhost_stop_pair(vd, &n->pair[k], true);
	return NET_CTRL_OK;
}

/* The control queue: each command answered in its ack byte (the first writable one). */
static void net_ctrl(struct virtio_dev *vd, unsigned q)
{
	struct virtio_net *n = vd->priv;
	struct vq_chain *c = &n->ctrl_chain;

	do {
		while (virtio_pop(vd, q, c) > 0) {
			uint8_t ack;

			if (!c->out_len) {
				log_warn_ratelimited(&net_rl,
						     "%s: a control command without an ack byte",
						     n->ifname);
				vq_push(&vd->q[q].vq, c->head, 0);
				continue;
			}
			ack = net_ctrl_one(vd, c);
			vq_chain_write(c, 0, &ack, 1);
			vq_push(&vd->q[q].vq, c->head, 1);
		}
	} while (virtio_queue_ready(vd, q) && vq_rearm(&vd->q[q].vq));
	virtio_queue_interrupt(vd, q);
}

/* The control queue's index: after every pair with MQ, else after the first (virtio 1.2,
 * 5.1.2). */
static unsigned net_ctrl_queue(const struct virtio_dev *vd)
{
	const struct virtio_net *n = vd->priv;

	return virtio_has_feature(vd, NET_F_MQ) ? 2 * n->npairs : 2;
}

static void net_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_net *n = vd->priv;
	struct net_pair *p;

	net_sync_queues(vd);
	if (virtio_has_feature(vd, NET_F_CTRL_VQ) && q == net_ctrl_queue(vd)) {
		net_ctrl(vd, q);
		net_sync_queues(vd);
		return;
	}
	if (q / 2 >= n->npairs)
		return; /* a queue that is neither a pair's nor the control queue now */
	p = &n->pair[q / 2];
	if (vhost_net_running(p->vhost))
		return; /* a kick taken just before the kernel took the rings */
	if (q % 2 == NET_TX) {
		net_tx(vd, p);
		return;
	}
	/* A frame waits for buffers and the driver added none since (a notify alone, or the
	 * same ring after a pause): nothing to do, the tap stays unwatched. A reset or a
	 * restore (vd->epoch) ends the wait. */
	if (p->rx_wait && p->pending && p->rx_wait_epoch == vd->epoch &&
	    vq_avail_idx(&vd->q[q].vq) == p->rx_wait_avail)
		return;
	p->rx_wait = false;
	if (p->attached)
		net_mute(vd, p, false); /* new receive buffers */
	net_rx(vd, p);
}

static void net_link_apply(struct virtio_dev *vd, bool up);

static void net_fd_event(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct virtio_net *n = vd->priv;
	uint64_t ticks;

	net_sync_queues(vd);
	for (unsigned k = 0; k < n->npairs; k++)
		if (n->pair[k].vhost && vhost_net_fd_event(n->pair[k].vhost, fd))
			return;
	if (fd != n->link_timer) {
		for (unsigned k = 0; k < n->npairs; k++)
			if (n->pair[k].tap == fd && !vhost_net_running(n->pair[k].vhost))
				net_rx(vd, &n->pair[k]);
		return;
	}
	/* An up's wait is over: the driver did not read the status in time. */
	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_debug("%s: link timer: %s", n->ifname, strerror(errno));
	if (n->up_pending)
		net_link_apply(vd, true);
}

static void net_config_read(struct virtio_dev *vd, unsigned off, void *buf, unsigned len)
{
	struct virtio_net *n = vd->priv;
	uint8_t cfg[NET_CFG_SIZE] = {0};

	memcpy(cfg, n->mac, 6);
	/* A save reads the link as up: a restored VM comes up with its link up (net_loaded),
	 * and the save's read is not the driver's (vd->host_reading). */
	cfg[6] = n->link_down && !vd->host_reading ? 0 : NET_S_LINK_UP;
	le_store(cfg + 8, n->npairs, 2); /* max_virtqueue_pairs */
	if (off <= NET_CFG_SIZE && len <= NET_CFG_SIZE - off)
		memcpy(buf, cfg + off, len);
	/* The driver saw the link down: an up that waited for this comes now, as a change of
	 * its own (the driver reads the status again on its interrupt). */
	if (n->link_down && !vd->host_reading && off <= 6 && off + len > 6) {
		n->link_seen = true;
		if (n->up_pending)
			net_link_apply(vd, true);
	}
}

/* Set the link now (vd->lock held). The driver rereads the status on the configuration
 * interrupt (virtio 1.2, 5.1.4.2); before DRIVER_OK it reads it when it gets there. */
static void net_link_apply(struct virtio_dev *vd, bool up)
{
	struct virtio_net *n = vd->priv;

	n->up_pending = false;
	if (n->link_down != up)
		return;
	n->link_down = !up;
	n->link_seen = false;
	if (vd->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_config_changed(vd);
}

void virtio_net_set_link(struct virtio_dev *vd, bool up)
{
	struct virtio_net *n = vd->priv;

	pthread_mutex_lock(&vd->lock);
	/* A driver that reads the status and has not yet seen it down would miss a short
	 * down (Linux compares the status with the last it read): the up waits for that read
	 * (a paused VM sees both once it runs again). */
	if (up && n->link_down && !n->link_seen && virtio_has_feature(vd, NET_F_STATUS) &&
	    (vd->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) ==
		    VIRTIO_STATUS_DRIVER_OK) {
		struct itimerspec its = {
			.it_value = {NET_LINK_WAIT_MS / 1000, NET_LINK_WAIT_MS % 1000 * 1000000L}};

		n->up_pending = true;
		/* Without the timer the up goes through now (the driver may miss the down). */
		if (timerfd_settime(n->link_timer, 0, &its, NULL)) {
			log_warn("%s: link timer: %s", n->ifname, strerror(errno));
			net_link_apply(vd, true);
		}
	} else
		net_link_apply(vd, up);
	pthread_mutex_unlock(&vd->lock);
}

struct vhost_net *virtio_net_vhost(struct virtio_dev *vd, unsigned k)
{
	struct virtio_net *n = vd->priv;

	return k < n->npairs ? n->pair[k].vhost : NULL;
}

static void net_link(void *opaque, bool up)
{
	virtio_net_set_link(opaque, up);
}

/* ---- the kernel data path's hooks (vhost_net.h) ---- */

/* A pair's hand-over failed: every pair's rings come back from the kernel (their indexes)
 * and the user-space path serves the whole adapter from now on (docs/virtio.md). */
static void net_vhost_give_up(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	for (unsigned k = 0; k < n->npairs; k++) {
		net_vhost_stop_pair(vd, &n->pair[k], true);
		vhost_net_give_up(n->pair[k].vhost);
	}
}

/* Pair p's rings to the kernel once the driver runs and p is enabled with its tap queue
 * attached: its tap queue is no longer read here. */
static void net_vhost_start_pair(struct virtio_dev *vd, struct net_pair *p)
{
	if (!p->vhost || vhost_net_running(p->vhost) || p->index >= net_pairs_on(vd) ||
	    !p->attached)
		return;
	net_sync_offloads(vd);
	if (vhost_net_start(p->vhost)) {
		net_vhost_give_up(vd); /* the adapter is on one path: all or none */
		return;
	}
	if (!vhost_net_running(p->vhost))
		return;
	p->pending = 0;
	p->rx_wait = false;
	net_mute(vd, p, true);
}

/* Pair p's rings come back (keep: with the kernel's indexes); its tap queue is read here
 * again if attached. */
static void net_vhost_stop_pair(struct virtio_dev *vd, struct net_pair *p, bool keep)
{
	if (!vhost_net_running(p->vhost))
		return;
	vhost_net_stop(p->vhost, keep);
	if (p->attached)
		net_mute(vd, p, false);
}

/* The driver runs: the kernel takes the rings of every enabled pair. */
static void net_vhost_start(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	for (unsigned k = 0; k < n->npairs; k++)
		net_vhost_start_pair(vd, &n->pair[k]);
}

static void net_vhost_stop(struct virtio_dev *vd, bool keep)
{
	struct virtio_net *n = vd->priv;

	for (unsigned k = 0; k < n->npairs; k++)
		net_vhost_stop_pair(vd, &n->pair[k], keep);
}

static void net_driver_ok(struct virtio_dev *vd)
{
	/* DRIVER_OK again without a reset (the driver cleared FEATURES_OK and may have taken
	 * other features): the kernel takes the rings again with the features and offloads the
	 * driver has now, as the user-space path would serve them. */
	net_vhost_stop(vd, true);
	net_vhost_start(vd);
}

static void net_vectors_changed(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	for (unsigned k = 0; k < n->npairs; k++)
		if (vhost_net_running(n->pair[k].vhost))
			vhost_net_reroute(n->pair[k].vhost);
}

/* Pause: the rings come back before the save reads them; resume: the kernel takes them at
 * the indexes they have then (after a restore, the saved ones). */
static int net_vhost_pause(void *opaque, bool pause)
{
	struct virtio_dev *vd = opaque;

	pthread_mutex_lock(&vd->lock);
	if (pause)
		net_vhost_stop(vd, true);
	else
		net_vhost_start(vd);
	pthread_mutex_unlock(&vd->lock);
	return 0;
}

/* Any pair's thread inside an unlocked tap call? */
static bool net_in_tap(const struct virtio_net *n)
{
	for (unsigned k = 0; k < n->npairs; k++)
		if (n->pair[k].in_tap)
			return true;
	return false;
}

static void net_reset(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	/* A writev under way reads the old driver's buffers: done before the reset is (the
	 * thread relocks and signals; it never waits for anything with the lock let go). */
	while (net_in_tap(n))
		pthread_cond_wait(&vd->cond, &vd->lock);
	net_vhost_stop(vd, false); /* the queues are gone */
	/* A new driver gets no frame of the old one's, and one pair until it enables more (the
	 * tap's offloads and queues follow on the I/O thread: net_sync_queues). */
	for (unsigned k = 0; k < n->npairs; k++) {
		n->pair[k].pending = 0;
		n->pair[k].rx_wait = false;
	}
	n->curr_pairs = 1;
	if (n->up_pending) /* no driver to wait for: the next one finds the link up */
		n->link_down = n->up_pending = false;
}

/* Restored from a save: the link is up (the save recorded it up; a move's keeld side
 * is over by the time a VM can be saved, docs/networking.md). */
static void net_loaded(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	n->link_down = n->link_seen = n->up_pending = false;
	net_vhost_stop(vd, false); /* the saved indexes replace the kernel's */
	net_vhost_start(vd);
}

static void net_release(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	for (unsigned k = 0; k < n->npairs; k++) {
		vhost_net_close(n->pair[k].vhost);
		close(n->pair[k].tap);
	}
	if (n->link_timer >= 0)
		close(n->link_timer);
	free(n);
}

/* One I/O thread per queue pair: pair k's queues and tap queue are served on thread k, the
 * control queue and the link timer on pair 0's. */
static unsigned net_threads(const struct virtio_dev *vd)
{
	const struct virtio_net *n = vd->priv;

	return n->npairs;
}

static unsigned net_queue_thread(const struct virtio_dev *vd, unsigned q)
{
	const struct virtio_net *n = vd->priv;

	return q / 2 < n->npairs ? q / 2 : 0;
}

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net",
	.device_type = VIRTIO_ID_NET,
	.class_code = 0x020000, /* Ethernet controller */
	.seccomp = SECCOMP_NET,
	.queue_notify = net_queue_notify,
	.config_read = net_config_read,
	.driver_ok = net_driver_ok,
	.vectors_changed = net_vectors_changed,
	.reset = net_reset,
	.fd_event = net_fd_event,
	.loaded = net_loaded,
	.release = net_release,
	.threads = net_threads,
	.queue_thread = net_queue_thread,
};

int virtio_net_create_fd(struct machine *m, unsigned slot, const int *fds, unsigned npairs,
			 const char *ifname, const uint8_t mac[6], struct virtio_dev **out)
{
	struct virtio_net *n = NULL;
	uint64_t features = 1ull << NET_F_MAC | 1ull << NET_F_STATUS | 1ull << NET_F_CSUM |
			    1ull << NET_F_HOST_TSO4 | 1ull << NET_F_HOST_TSO6 |
			    1ull << NET_F_GUEST_CSUM | 1ull << NET_F_GUEST_TSO4 |
			    1ull << NET_F_GUEST_TSO6 | 1ull << NET_F_GUEST_ECN |
			    1ull << NET_F_MRG_RXBUF;
	struct virtio_dev *vd = NULL;
	unsigned k;
	int r;

	if (npairs >= 1 && npairs <= NET_PAIRS_MAX)
		n = calloc(1, sizeof(*n) + npairs * sizeof(n->pair[0]));
	if (!n) {
		for (k = 0; k < npairs && k < NET_PAIRS_MAX; k++)
			close(fds[k]);
		return npairs >= 1 && npairs <= NET_PAIRS_MAX ? -ENOMEM : -EINVAL;
	}
	n->npairs = npairs;
	n->curr_pairs = 1;
	for (k = 0; k < npairs; k++) {
		int fl = fcntl(fds[k], F_GETFL);

		/* Never block the I/O thread, whatever descriptor was passed (taps are opened
		 * non-blocking; a socket pair given by hand may not be). */
		if (fl >= 0 && !(fl & O_NONBLOCK))
			(void)fcntl(fds[k], F_SETFL, fl | O_NONBLOCK);
		n->pair[k].index = k;
		n->pair[k].tap = fds[k];
		/* Every queue of a tap is attached when opened: the I/O thread detaches those
		 * of the pairs the driver has not enabled (net_sync_queues) on its first event. */
		n->pair[k].attached = true;
	}
	/* One pair: the single-queue device of old (two queues, no control queue), which a
	 * state saved by an older keel-vmm restores into. */
	if (npairs > 1)
		features |= 1ull << NET_F_CTRL_VQ | 1ull << NET_F_MQ;
	n->link_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	n->offl = (struct net_bucket){NET_OFFL_BURST, net_now_ms()};
	n->qchg = (struct net_bucket){NET_QUEUE_BURST, net_now_ms()};
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifname);
	memcpy(n->mac, mac, 6);
	r = virtio_dev_create(m, slot, &net_ops, n, features, npairs > 1 ? 2 * npairs + 1 : 2,
			      NET_QUEUE_SIZE, NET_CFG_SIZE, &vd);
	for (k = 0; !r && k < npairs; k++)
		r = fail_point("net-watch") ?: virtio_dev_watch_on(vd, k, n->pair[k].tap, EPOLLIN);
	if (!r && n->link_timer >= 0)
		r = fail_point("net-timerfd");
	if (!r)
		r = n->link_timer < 0 ? -errno : virtio_dev_watch(vd, n->link_timer, EPOLLIN);
	if (r) {
		/* In a VM that runs (a hot add) the card is still pending on the bus (pci.h): no
		 * vCPU can be in it, it goes at once. */
		if (vd) {
			virtio_dev_destroy(vd); /* frees n */
		} else {
			for (k = 0; k < npairs; k++)
				close(n->pair[k].tap);
			if (n->link_timer >= 0)
				close(n->link_timer);
			free(n);
		}
		return r;
	}
	*out = vd;
	return 0;
}

void virtio_net_nic_mac(const struct vm_nic *nic, uint8_t mac[6])
{
	if (!nic->mac[0] || vmdef_mac_parse(nic->mac, mac))
		virtio_net_default_mac(nic->tap, mac);
}

void virtio_net_close_fds(const int *fds, unsigned n)
{
	for (unsigned k = 0; fds && k < n && k < NET_PAIRS_MAX; k++)
		if (fds[k] >= 0)
			close(fds[k]);
}

/* Pair k's /dev/vhost-net: keeld's (vhosts[k], taken over), or opened here when keel-vmm
 * attached the tap itself (an unjailed worker); -1 with why. */
static int net_vhost_fd(const int *vhosts, unsigned k, bool tap_passed, char *why, size_t len)
{
	int fd = vhosts ? vhosts[k] : -1;

	if (fd >= 0)
		return fd;
	if (tap_passed) {
		snprintf(why, len,
			 "keeld passed no /dev/vhost-net with the tap (the host has none, or "
			 "refused it: keeld's log says which)");
		return -1;
	}
	fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		snprintf(why, len, "cannot open /dev/vhost-net: %s%s", strerror(errno),
			 errno == ENOENT ? " (the host has no vhost-net: modprobe vhost_net)" : "");
	return fd;
}

/* The adapter's data path (spec->vhost): one vhost-net per queue pair, pair k's backend the
 * tap's queue k, or the user-space path for every pair, said once with why (a pair without
 * vhost-net puts the whole adapter on the user-space path: one path per adapter). vhost=on
 * without vhost-net for every pair fails the adapter. vhosts (npairs, or NULL) are taken
 * over. */
static int net_vhost_setup(struct virtio_dev *vd, const struct vm_nic *spec, bool tap_passed,
			   const int *vhosts, char *err, size_t errlen)
{
	struct virtio_net *n = vd->priv;
	struct vhost_net *h[NET_PAIRS_MAX] = {NULL};
	char why[224] = "";
	unsigned k, got = 0;
	int r;

	if (spec->vhost == VM_VHOST_OFF) {
		virtio_net_close_fds(vhosts, n->npairs);
		log_info("%s: user-space data path (vhost=off)", n->ifname);
		return 0;
	}
	for (k = 0; k < n->npairs; k++) {
		int fd = net_vhost_fd(vhosts, k, tap_passed, why, sizeof(why));

		if (fd < 0 || vhost_net_open(fd, vd, 2 * k + NET_RX, n->pair[k].tap, &h[k], why,
					     sizeof(why))) {
			if (vhosts)
				virtio_net_close_fds(vhosts + k + 1, n->npairs - k - 1);
			break;
		}
		got++;
	}
	if (got < n->npairs) {
		for (k = 0; k < got; k++)
			vhost_net_close(h[k]);
		if (spec->vhost == VM_VHOST_ON) {
			snprintf(err, errlen,
				 "--net tap=%s: vhost=on, but vhost-net cannot serve it: %s (queue "
				 "pair %u of %u; set vhost to auto or off for the user-space data "
				 "path)",
				 spec->tap, why, got, n->npairs);
			return -ENODEV;
		}
		log_info("%s: user-space data path: %s (queue pair %u of %u)", n->ifname, why, got,
			 n->npairs);
		return 0;
	}
	log_info("%s: vhost-net: the host kernel's data path serves the adapter (%u queue "
		 "pair%s, one vhost-net each)",
		 n->ifname, n->npairs, n->npairs == 1 ? "" : "s");
	pthread_mutex_lock(&vd->lock); /* the I/O thread runs */
	for (k = 0; k < n->npairs; k++)
		n->pair[k].vhost = h[k];
	pthread_mutex_unlock(&vd->lock);
	r = machine_add_pause_hook(vd->m, net_vhost_pause, vd);
	if (r)
		snprintf(err, errlen, "--net tap=%s: no room for the vhost-net pause hook",
			 spec->tap);
	return r;
}

int virtio_net_create(struct machine *m, const struct vm_nic *spec, unsigned npairs,
		      const int *taps, const int *vhosts, struct virtio_dev **out, char *err,
		      size_t errlen)
{
	char ifname[IFNAMSIZ];
	int fds[NET_PAIRS_MAX];
	bool passed = taps[0] >= 0;
	uint8_t mac[6];
	int r;

	if (npairs < 1 || npairs > NET_PAIRS_MAX) {
		snprintf(err, errlen, "--net tap=%s: %u queue pairs (1 to %d)", spec->tap, npairs,
			 NET_PAIRS_MAX);
		virtio_net_close_fds(taps, npairs);
		virtio_net_close_fds(vhosts, npairs);
		return -EINVAL;
	}
	/* keeld attached them (the jailed worker's network namespace has no taps): it set the
	 * tap up as tap_open_queues does. */
	if (passed) {
		snprintf(ifname, sizeof(ifname), "%s", spec->tap);
		memcpy(fds, taps, npairs * sizeof(fds[0]));
	} else {
		r = tap_open_queues(spec->tap, npairs, fds, ifname, err, errlen);
		if (r) {
			virtio_net_close_fds(vhosts, npairs);
			return r;
		}
	}
	virtio_net_nic_mac(spec, mac);
	r = virtio_net_create_fd(m, spec->pci_slot, fds, npairs, ifname, mac, out);
	if (r) {
		virtio_net_close_fds(vhosts, npairs);
		snprintf(err, errlen, "--net tap=%s: virtio-net set-up: %s", spec->tap,
			 strerror(-r));
		return r;
	}
	r = net_vhost_setup(*out, spec, passed, vhosts, err, errlen);
	/* In a VM that runs (a hot add) the card is still pending on the bus (pci.h): the guest
	 * cannot reach it yet, so it goes at once here too. */
	if (r) {
		virtio_dev_destroy(*out);
		*out = NULL;
	}
	return r;
}

int virtio_net_attach(struct machine *m, unsigned i, const int *taps, const int *vhosts,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	struct virtio_dev *vd = NULL;
	int r = virtio_net_create(m, &m->def->nics[i], vmdef_nic_queues(m->def, i), taps, vhosts,
				  &vd, err, errlen);

	if (vd)
		*out = vd;
	if (r)
		return r;
	r = virtio_dev_keep(m, vd);
	return r ?: machine_set_nic_link(m, i, net_link, vd);
}

static int net_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct virtio_dev *vd = NULL;
	int r;

	/* Tap queues and vhost-nets passed beyond the adapter's pairs (a restore of a state saved
	 * with fewer, snapshot_read) are closed: an open queue stays attached, and the kernel
	 * would steer flows to it that nobody reads. */
	for (unsigned k = vmdef_nic_queues(m->def, i); k < VMDEF_NET_QUEUES_MAX; k++) {
		if (m->net_fds[i][k] >= 0)
			close(m->net_fds[i][k]);
		if (m->vhost_fds && m->vhost_fds[i][k] >= 0)
			close(m->vhost_fds[i][k]);
	}
	r = virtio_net_attach(m, i, m->net_fds[i], m->vhost_fds ? m->vhost_fds[i] : NULL, &vd, err,
			      errlen);

	if (!r)
		*obj = vd;
	return r;
}

/*
 * The section: the virtio device's (virtio_state: every pair's queues and ring positions,
 * the control queue's), then from version 2 the pairs the driver enabled (1 without MQ
 * negotiated). A version 1 section (a single-pair device of an older keel-vmm) has one.
 * Checked against the pairs the device offers before the load applies anything. MQ is not
 * checked: an older keel-vmm saved the count a driver that renegotiated without MQ had left
 * (that state must restore), and without MQ only pair 0 is in use whatever the count
 * (net_pairs_on).
 */
#define NET_STATE_VERSION 2u
static int net_state(struct state_io *io, void *opaque)
{
	struct virtio_dev *vd = opaque;
	struct virtio_net *n = vd->priv;
	uint16_t pairs = 1;
	int r = virtio_state(io, vd);

	if (r)
		return r;
	if (state_saving(io)) {
		pthread_mutex_lock(&vd->lock);
		pairs = (uint16_t)net_pairs_on(vd);
		pthread_mutex_unlock(&vd->lock);
	}
	if (state_saving(io) || io->version >= 2)
		pairs = state_u16(io, &pairs, NET_PAIRS_MAX);
	if (state_error(io) || state_saving(io))
		return state_error(io);
	if (pairs < 1 || pairs > n->npairs)
		state_fail(io, "%u queue pairs enabled, the device has 1 to %u", pairs, n->npairs);
	if (state_error(io) || !state_applying(io))
		return state_error(io);
	pthread_mutex_lock(&vd->lock);
	n->curr_pairs = pairs; /* the tap's queues follow on the I/O thread (net_sync_queues) */
	pthread_mutex_unlock(&vd->lock);
	return 0;
}

/* One per network adapter of the description. */
const struct device_class virtio_net_class = {
	.name = "virtio-net",
	.config = &vmdef_nic_kind,
	.state = {{"virtio-net", NET_STATE_VERSION, net_state}},
	.create = net_class_create};
