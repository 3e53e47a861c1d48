/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (virtio 1.2, 5.1) on a Linux tap device with the virtio-net header
 * (IFF_VNET_HDR, 12 bytes: the VERSION_1 layout with num_buffers). One receive and one
 * transmit queue, served on the device's I/O thread. Transmit: the guest's header is copied
 * and checked (net_hdr.c) and goes to the tap with the frame in one writev, so checksum and
 * segmentation offloads pass to the host kernel. Receive: a frame is read from the tap
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
#include "vmm/device.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/vhost_net.h"
#include "vmm/virtio/virtio.h"
#include "config/vmdef_device.h"
#include "vmm/machine.h"

#define NET_S_LINK_UP	 1
#define NET_QUEUE_SIZE	 256
#define NET_RX		 0
#define NET_TX		 1
#define NET_CFG_SIZE	 10
#define NET_MAX_RX_BATCH 64
/* Tap offload changes: a guest that renegotiates in a loop must not have the host take RTNL
 * and broadcast a link event per cycle. A bucket of NET_OFFL_BURST changes, one more every
 * NET_OFFL_MS; a change that grants offloads needs two (one kept to take them back). */
#define NET_OFFL_BURST 4
#define NET_OFFL_MS    250
/* An up that waits for the driver to read the link down (virtio_net_set_link) waits this
 * long at most: a driver that never reads the status does not keep the link down. */
#define NET_LINK_WAIT_MS 1000

_Static_assert(NET_HDR_SIZE == TAP_VNET_HDR_SIZE, "the tap's header is virtio-net's");
_Static_assert(VQ_MAX_SEGS <= IOV_MAX, "a transmit chain fits one writev");

static struct log_ratelimit net_rl = LOG_RATELIMIT_INIT(5000, 5);

struct virtio_net {
	int tap;
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	/* The link as the host set it (virtio_net_set_link; vd->lock): down, whether the
	 * driver has read the status since it went down, and an up waiting for that read. */
	bool link_down, link_seen, up_pending;
	int link_timer;		/* timerfd: the end of an up's wait (NET_LINK_WAIT_MS) */
	bool rx_muted;		/* tap not watched: no receive buffers */
	unsigned offloads;	/* TUN_F_* the tap is set to (the last TUNSETOFFLOAD that worked) */
	bool offload_warned;	/* TUNSETOFFLOAD failed once (said once) */
	unsigned offl_tokens;	/* offload changes allowed now */
	uint64_t offl_refill;	/* when a token was last added (ms, monotonic) */
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
static unsigned net_offl_tokens(struct virtio_net *n)
{
	uint64_t now = net_now_ms(), add = (now - n->offl_refill) / NET_OFFL_MS;

	if (add) {
		n->offl_refill += add * NET_OFFL_MS;
		n->offl_tokens = add >= NET_OFFL_BURST - n->offl_tokens
					 ? NET_OFFL_BURST
					 : n->offl_tokens + (unsigned)add;
	}
	return n->offl_tokens;
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
	if (net_offl_tokens(n) < 2)
		want = 0; /* limited: the last token takes offloads away, never grants them */
	if (want == n->offloads || !n->offl_tokens)
		return;
	n->offl_tokens--;
	if (ioctl(n->tap, TUNSETOFFLOAD, (unsigned long)want) < 0) {
		if (!n->offload_warned)
			log_warn("%s: cannot set the tap's offloads to 0x%x: %s (tried again "
				 "later; frames with offloads the guest did not take are dropped)",
				 n->ifname, want, strerror(errno));
		n->offload_warned = true;
		return;
	}
	n->offloads = want;
}

/* One transmit chain to the tap, its header copied and checked first (the guest cannot
 * change it between the check and the write). */
static void net_tx_one(struct virtio_dev *vd, const struct vq_chain *c)
{
	struct virtio_net *n = vd->priv;
	uint8_t raw[NET_HDR_SIZE];
	const char *why = NULL;
	struct net_hdr h;
	size_t skip = NET_HDR_SIZE;
	unsigned i, cnt = 1;

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
	memcpy(n->tx_head, raw, NET_HDR_SIZE);
	n->tx_iov[0] = (struct iovec){n->tx_head, NET_HDR_SIZE};
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
			vq_chain_read(c, NET_HDR_SIZE, n->tx_head + NET_HDR_SIZE, len - skip);
			n->tx_iov[0].iov_len += len - skip;
			skip = 0;
			continue;
		}
		n->tx_iov[cnt++] = (struct iovec){(uint8_t *)c->seg[i].iov_base + skip, len - skip};
		skip = 0;
	}
	if (writev(n->tap, n->tx_iov, (int)cnt) < 0 && errno != EAGAIN)
		log_warn_ratelimited(&net_rl, "%s: write: %s", n->ifname, strerror(errno));
}

static void net_tx(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	net_sync_offloads(vd);
	do {
		while (virtio_pop(vd, NET_TX, &n->tx_chain) > 0) {
			net_tx_one(vd, &n->tx_chain);
			vq_push(&vd->q[NET_TX].vq, n->tx_chain.head, 0);
		}
	} while (virtio_queue_ready(vd, NET_TX) && vq_rearm(&vd->q[NET_TX].vq));
	virtio_queue_interrupt(vd, NET_TX);
}

static void net_mute(struct virtio_dev *vd, bool mute)
{
	struct virtio_net *n = vd->priv;

	if (n->rx_muted == mute)
		return;
	if (virtio_dev_watch_mod(vd, n->tap, mute ? 0 : EPOLLIN))
		log_warn_ratelimited(&net_rl, "%s: cannot change the tap watch", n->ifname);
	n->rx_muted = mute;
}

enum net_rx_result {
	NET_RX_DONE,  /* the frame was delivered or dropped */
	NET_RX_WAIT,  /* too few buffers: the frame waits, every chain put back */
	NET_RX_RETRY, /* too few buffers, but the driver just added more */
};

/* Not enough buffers for the pending frame after taking k good chains (the ring's next
 * entry was start and its used index used before): put them back and wait, or drop the
 * frame when waiting cannot help. */
static enum net_rx_result net_rx_short(struct virtio_dev *vd, uint16_t start, uint16_t used,
				       unsigned k)
{
	struct virtio_net *n = vd->priv;
	struct vq *vq = &vd->q[NET_RX].vq;
	unsigned i;

	if (vq->used_idx != used) {
		/* A malformed chain among them was returned already: these cannot be put
		 * back in order, so they go back empty and the frame is dropped. */
		for (i = 0; i < k; i++)
			n->rx_lens[i] = 0;
		vq_push_many(vq, n->rx_heads, n->rx_lens, k);
		log_warn_ratelimited(&net_rl,
				     "%s: dropped a %zu-byte frame: malformed receive chains "
				     "among its buffers",
				     n->ifname, n->pending);
		return NET_RX_DONE;
	}
	if (!virtio_queue_ready(vd, NET_RX)) {
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
				     n->ifname, n->pending);
		return NET_RX_DONE;
	}
	n->rx_wait_avail = vq->last_avail; /* the avail index: the last pop found no more */
	n->rx_wait_epoch = vd->epoch;
	return vq_unpop_to(vq, start) ? NET_RX_RETRY : NET_RX_WAIT;
}

/* Give the pending frame (header first) to the guest: in one receive chain, or with
 * MRG_RXBUF over as many as it takes, num_buffers in the header saying how many. */
static enum net_rx_result net_rx_place(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	struct vq *vq = &vd->q[NET_RX].vq;
	bool mrg = virtio_has_feature(vd, NET_F_MRG_RXBUF);
	uint16_t start = vq->last_avail, used = vq->used_idx;
	uint8_t nbuf[2];
	size_t off = 0;
	unsigned k = 0;

	while (off < n->pending && k < NET_QUEUE_SIZE) {
		struct vq_chain *c = k ? &n->rx_chain : &n->rx_first;
		size_t take;

		if (virtio_pop(vd, NET_RX, c) <= 0)
			break;
		if (c->nin || c->out_len < NET_HDR_SIZE) {
			log_warn_ratelimited(&net_rl,
					     "%s: receive chain with readable buffers or "
					     "smaller than the header",
					     n->ifname);
			vq_push(vq, c->head, 0);
			continue;
		}
		if (!mrg && c->out_len < n->pending) {
			log_warn_ratelimited(&net_rl,
					     "%s: dropped a %zu-byte frame that did not fit "
					     "%llu bytes of receive buffers",
					     n->ifname, n->pending, (unsigned long long)c->out_len);
			vq_push(vq, c->head, 0);
			return NET_RX_DONE;
		}
		take = c->out_len < n->pending - off ? (size_t)c->out_len : n->pending - off;
		vq_chain_write(c, 0, n->frame + off, take);
		n->rx_heads[k] = c->head;
		n->rx_lens[k] = (uint32_t)take;
		k++;
		off += take;
	}
	if (off < n->pending)
		return net_rx_short(vd, start, used, k);
	le_store(nbuf, k, 2);
	vq_chain_write(&n->rx_first, 10, nbuf, 2);
	vq_push_many(vq, n->rx_heads, n->rx_lens, k);
	return NET_RX_DONE;
}

/* Read the next frame from the tap into frame[]: 1, 0 when it was dropped (too short or
 * too long), -1 when there is none. */
static int net_rx_read(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	ssize_t len = read(n->tap, n->frame, sizeof(n->frame));

	if (len < 0)
		return -1;
	if (len < NET_HDR_SIZE || (size_t)len > sizeof(n->frame)) {
		log_warn_ratelimited(&net_rl, "%s: dropped a %zd-byte frame from the tap",
				     n->ifname, len);
		return 0;
	}
	n->pending = (size_t)len;
	return 1;
}

/* Move frames from the tap into receive buffers while both last. */
static void net_rx(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	struct vq *vq = &vd->q[NET_RX].vq;
	uint16_t used = vq->used_idx;
	unsigned frames;

	net_sync_offloads(vd);
	if (!virtio_queue_ready(vd, NET_RX)) {
		/* Not running: drain so the tap does not stay readable forever. */
		n->pending = 0;
		while (read(n->tap, n->frame, sizeof(n->frame)) > 0)
			;
		return;
	}
	for (frames = 0; frames < NET_MAX_RX_BATCH; frames++) {
		enum net_rx_result r;

		if (!n->pending) {
			int got = net_rx_read(vd);

			if (got < 0)
				break;
			if (!got)
				continue;
		}
		/* Checked against the features now: a frame may have waited across a restore. */
		if (!net_hdr_rx_fix(n->frame, vd->driver_features)) {
			log_warn_ratelimited(&net_rl,
					     "%s: dropped a frame from the tap with offloads the "
					     "guest did not negotiate",
					     n->ifname);
			n->pending = 0;
			continue;
		}
		while ((r = net_rx_place(vd)) == NET_RX_RETRY)
			;
		if (r == NET_RX_WAIT) {
			/* Stop watching the tap until the guest posts buffers. */
			net_mute(vd, true);
			n->rx_wait = true;
			break;
		}
		n->pending = 0;
		n->rx_wait = false;
	}
	if (vq->used_idx != used)
		virtio_queue_interrupt(vd, NET_RX);
}

static void net_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_net *n = vd->priv;

	if (vhost_net_running(n->vhost))
		return; /* a kick taken just before the kernel took the rings */
	if (q == NET_TX) {
		net_tx(vd);
		return;
	}
	/* A frame waits for buffers and the driver added none since (a notify alone, or the
	 * same ring after a pause): nothing to do, the tap stays unwatched. A reset or a
	 * restore (vd->epoch) ends the wait. */
	if (n->rx_wait && n->pending && n->rx_wait_epoch == vd->epoch &&
	    vq_avail_idx(&vd->q[NET_RX].vq) == n->rx_wait_avail)
		return;
	n->rx_wait = false;
	net_mute(vd, false); /* new receive buffers */
	net_rx(vd);
}

static void net_link_apply(struct virtio_dev *vd, bool up);

static void net_fd_event(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct virtio_net *n = vd->priv;
	uint64_t ticks;

	if (n->vhost && vhost_net_fd_event(n->vhost, fd))
		return;
	if (fd != n->link_timer) {
		if (!vhost_net_running(n->vhost))
			net_rx(vd);
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
	cfg[8] = 1; /* max_virtqueue_pairs */
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

struct vhost_net *virtio_net_vhost(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	return n->vhost;
}

static void net_link(void *opaque, bool up)
{
	virtio_net_set_link(opaque, up);
}

/* ---- the kernel data path's hooks (vhost_net.h) ---- */

/* The driver runs: the kernel takes the rings, the tap is no longer read here. */
static void net_vhost_start(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	if (!n->vhost || vhost_net_running(n->vhost))
		return;
	net_sync_offloads(vd);
	if (vhost_net_start(n->vhost) || !vhost_net_running(n->vhost))
		return;
	n->pending = 0;
	n->rx_wait = false;
	net_mute(vd, true);
}

/* The rings come back (keep: with the kernel's indexes) and the tap is read here again. */
static void net_vhost_stop(struct virtio_dev *vd, bool keep)
{
	struct virtio_net *n = vd->priv;

	if (!vhost_net_running(n->vhost))
		return;
	vhost_net_stop(n->vhost, keep);
	net_mute(vd, false);
}

static void net_driver_ok(struct virtio_dev *vd)
{
	net_vhost_start(vd);
}

static void net_vectors_changed(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	if (vhost_net_running(n->vhost))
		vhost_net_reroute(n->vhost);
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

static void net_reset(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	net_vhost_stop(vd, false); /* the queues are gone */
	n->pending = 0; /* a new driver gets no frame of the old one's (the tap's offloads
			 * follow on the I/O thread) */
	n->rx_wait = false;
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

	vhost_net_close(n->vhost);
	close(n->tap);
	if (n->link_timer >= 0)
		close(n->link_timer);
	free(n);
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
};

int virtio_net_create_fd(struct machine *m, unsigned slot, int fd, const char *ifname,
			 const uint8_t mac[6], struct virtio_dev **out)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint64_t features = 1ull << NET_F_MAC | 1ull << NET_F_STATUS | 1ull << NET_F_CSUM |
			    1ull << NET_F_HOST_TSO4 | 1ull << NET_F_HOST_TSO6 |
			    1ull << NET_F_GUEST_CSUM | 1ull << NET_F_GUEST_TSO4 |
			    1ull << NET_F_GUEST_TSO6 | 1ull << NET_F_GUEST_ECN |
			    1ull << NET_F_MRG_RXBUF;
	struct virtio_dev *vd = NULL;
	int r;

	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	n->tap = fd;
	n->link_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	n->offl_tokens = NET_OFFL_BURST;
	n->offl_refill = net_now_ms();
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifname);
	memcpy(n->mac, mac, 6);
	r = virtio_dev_create(m, slot, &net_ops, n, features, 2, NET_QUEUE_SIZE, NET_CFG_SIZE, &vd);
	if (!r)
		r = virtio_dev_watch(vd, n->tap, EPOLLIN);
	if (!r)
		r = n->link_timer < 0 ? -errno : virtio_dev_watch(vd, n->link_timer, EPOLLIN);
	if (r) {
		if (vd) {
			virtio_dev_destroy(vd); /* frees n */
		} else {
			close(n->tap);
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

/* The adapter's data path (spec->vhost): vhost-net on fd (keeld's), on /dev/vhost-net opened
 * here when keel-vmm attached the tap itself (an unjailed worker), or the user-space path,
 * said once with why. vhost=on without vhost-net fails the adapter. fd is taken over. */
static int net_vhost_setup(struct virtio_dev *vd, const struct vm_nic *spec, bool tap_passed,
			   int fd, char *err, size_t errlen)
{
	struct virtio_net *n = vd->priv;
	struct vhost_net *h = NULL;
	char why[192];
	int r;

	if (spec->vhost == VM_VHOST_OFF) {
		if (fd >= 0)
			close(fd);
		log_info("%s: user-space data path (vhost=off)", n->ifname);
		return 0;
	}
	if (fd < 0 && !tap_passed) {
		fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			snprintf(why, sizeof(why), "cannot open /dev/vhost-net: %s%s",
				 strerror(errno),
				 errno == ENOENT
					 ? " (the host has no vhost-net: modprobe vhost_net)"
					 : "");
	} else if (fd < 0) {
		snprintf(why, sizeof(why),
			 "keeld passed no /dev/vhost-net with the tap (the host has none, or "
			 "refused it: keeld's log says which)");
	}
	if (fd >= 0 && !vhost_net_open(fd, vd, NET_RX, n->tap, &h, why, sizeof(why))) {
		log_info("%s: vhost-net: the host kernel's data path serves the adapter",
			 n->ifname);
		pthread_mutex_lock(&vd->lock); /* the I/O thread runs */
		n->vhost = h;
		pthread_mutex_unlock(&vd->lock);
	}
	if (!h) {
		if (spec->vhost == VM_VHOST_ON) {
			snprintf(err, errlen,
				 "--net tap=%s: vhost=on, but vhost-net cannot serve it: %s (set "
				 "vhost to auto or off for the user-space data path)",
				 spec->tap, why);
			return -ENODEV;
		}
		log_info("%s: user-space data path: %s", n->ifname, why);
		return 0;
	}
	r = machine_add_pause_hook(vd->m, net_vhost_pause, vd);
	if (r)
		snprintf(err, errlen, "--net tap=%s: no room for the vhost-net pause hook",
			 spec->tap);
	return r;
}

int virtio_net_create(struct machine *m, const struct vm_nic *spec, int tap, int vhost,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	char ifname[IFNAMSIZ];
	bool passed = tap >= 0;
	uint8_t mac[6];
	int r;

	/* keeld attached it (the jailed worker's network namespace has no taps): it set the
	 * tap up as tap_open does. */
	if (tap >= 0)
		snprintf(ifname, sizeof(ifname), "%s", spec->tap);
	else
		tap = tap_open(spec->tap, ifname, err, errlen);
	if (tap < 0) {
		if (vhost >= 0)
			close(vhost);
		return tap;
	}
	virtio_net_nic_mac(spec, mac);
	r = virtio_net_create_fd(m, spec->pci_slot, tap, ifname, mac, out);
	if (r) {
		if (vhost >= 0)
			close(vhost);
		snprintf(err, errlen, "--net tap=%s: virtio-net set-up: %s", spec->tap,
			 strerror(-r));
		return r;
	}
	r = net_vhost_setup(*out, spec, passed, vhost, err, errlen);
	if (r) {
		virtio_dev_destroy(*out);
		*out = NULL;
	}
	return r;
}

int virtio_net_attach(struct machine *m, unsigned i, int tap, int vhost, struct virtio_dev **out,
		      char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int r = virtio_net_create(m, &m->def->nics[i], tap, vhost, &vd, err, errlen);

	if (r)
		return r;
	*out = vd;
	r = virtio_dev_keep(m, vd);
	return r ?: machine_set_nic_link(m, i, net_link, vd);
}

static int net_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct virtio_dev *vd = NULL;
	int r = virtio_net_attach(m, i, m->net_fds[i], m->vhost_fds ? m->vhost_fds[i] : -1, &vd,
				  err, errlen);

	if (!r)
		*obj = vd;
	return r;
}

/* One per network adapter of the description. */
const struct device_class virtio_net_class = {
	.name = "virtio-net",
	.config = &vmdef_nic_kind,
	.state = {{"virtio-net", STATE_VIRTIO_VERSION, virtio_state}},
	.create = net_class_create};
