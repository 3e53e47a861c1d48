/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (virtio 1.2, 5.1) on a Linux tap device with the virtio-net header
 * (IFF_VNET_HDR, 12 bytes: the VERSION_1 layout with num_buffers). One receive and one
 * transmit queue, served on the device's I/O thread: transmit chains go to the tap with one
 * writev (header included, so checksum and segmentation offloads pass through to the host
 * kernel); received frames are read straight into the guest's receive buffers. When the
 * guest has no receive buffers the tap is not read (it queues or drops, as a full NIC would)
 * until the guest posts more.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/tap.h"
#include "vmm/device.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/virtio.h"
#include "config/vmdef_device.h"
#include "vmm/machine.h"

#define NET_F_CSUM	 0
#define NET_F_MAC	 5
#define NET_F_HOST_TSO4	 11
#define NET_F_HOST_TSO6	 12
#define NET_F_STATUS	 16
#define NET_S_LINK_UP	 1
#define NET_QUEUE_SIZE	 256
#define NET_RX		 0
#define NET_TX		 1
#define NET_CFG_SIZE	 10
#define NET_HDR_SIZE	 TAP_VNET_HDR_SIZE
#define NET_MAX_RX_BATCH 64

static struct log_ratelimit net_rl = LOG_RATELIMIT_INIT(5000, 5);

struct virtio_net {
	int tap;
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	bool rx_muted;			    /* tap not watched: no receive buffers */
	struct vq_chain rx_chain, tx_chain; /* I/O thread only */
	uint8_t drop[65536 + NET_HDR_SIZE]; /* frames read with nowhere to go */
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

static void net_tx(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	do {
		while (virtio_pop(vd, NET_TX, &n->tx_chain) > 0) {
			struct vq_chain *c = &n->tx_chain;

			if (c->in_len < NET_HDR_SIZE || c->nout) {
				log_warn_ratelimited(&net_rl,
						     "%s: transmit chain without a header "
						     "or with writable buffers",
						     n->ifname);
			} else if (writev(n->tap, c->seg, (int)c->nin) < 0 && errno != EAGAIN) {
				log_warn_ratelimited(&net_rl, "%s: write: %s", n->ifname,
						     strerror(errno));
			}
			vq_push(&vd->q[NET_TX].vq, c->head, 0);
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

/* Move frames from the tap into receive buffers while both last. */
static void net_rx(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	unsigned got = 0;

	if (!virtio_queue_ready(vd, NET_RX)) {
		/* Not running: drain so the tap does not stay readable forever. */
		while (read(n->tap, n->drop, sizeof(n->drop)) > 0)
			;
		return;
	}
	while (got < NET_MAX_RX_BATCH) {
		struct vq_chain *c = &n->rx_chain;
		ssize_t len;
		uint16_t one = 1;

		if (virtio_pop(vd, NET_RX, c) <= 0) {
			/* No buffers: stop watching the tap until the guest posts some. */
			if (virtio_queue_ready(vd, NET_RX) && vq_rearm(&vd->q[NET_RX].vq))
				continue;
			net_mute(vd, true);
			break;
		}
		if (c->nin || c->out_len < NET_HDR_SIZE) {
			log_warn_ratelimited(&net_rl,
					     "%s: receive chain with readable buffers or "
					     "smaller than the header",
					     n->ifname);
			vq_push(&vd->q[NET_RX].vq, c->head, 0);
			continue;
		}
		len = readv(n->tap, c->seg, (int)c->nout);
		if (len < 0) {
			/* Nothing more to read: the chain waits for the next frame. */
			vq_unpop(&vd->q[NET_RX].vq);
			break;
		}
		if ((uint64_t)len > c->out_len) {
			/* The tap reports a frame's full length even when it was cut to fit:
			 * never report more than the buffers hold; drop the cut frame. */
			log_warn_ratelimited(&net_rl,
					     "%s: dropped a %zd-byte frame that did not fit "
					     "%llu bytes of receive buffers",
					     n->ifname, len, (unsigned long long)c->out_len);
			vq_push(&vd->q[NET_RX].vq, c->head, 0);
			continue;
		}
		/* num_buffers (header bytes 10-11) is 1: no mergeable buffers. */
		vq_chain_write(c, 10, &one, 2);
		vq_push(&vd->q[NET_RX].vq, c->head, (uint32_t)len);
		got++;
	}
	if (got)
		virtio_queue_interrupt(vd, NET_RX);
}

static void net_queue_notify(struct virtio_dev *vd, unsigned q)
{
	if (q == NET_TX) {
		net_tx(vd);
	} else {
		net_mute(vd, false); /* new receive buffers */
		net_rx(vd);
	}
}

static void net_fd_event(struct virtio_dev *vd, int fd, uint32_t events)
{
	net_rx(vd);
}

static void net_config_read(struct virtio_dev *vd, unsigned off, void *buf, unsigned len)
{
	struct virtio_net *n = vd->priv;
	uint8_t cfg[NET_CFG_SIZE] = {0};

	memcpy(cfg, n->mac, 6);
	cfg[6] = NET_S_LINK_UP;
	cfg[8] = 1; /* max_virtqueue_pairs */
	if (off <= NET_CFG_SIZE && len <= NET_CFG_SIZE - off)
		memcpy(buf, cfg + off, len);
}

static void net_release(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	close(n->tap);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net",
	.device_type = VIRTIO_ID_NET,
	.class_code = 0x020000, /* Ethernet controller */
	.queue_notify = net_queue_notify,
	.config_read = net_config_read,
	.fd_event = net_fd_event,
	.release = net_release,
};

int virtio_net_create_fd(struct machine *m, unsigned slot, int fd, const char *ifname,
			 const uint8_t mac[6], struct virtio_dev **out)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint64_t features = 1ull << NET_F_MAC | 1ull << NET_F_STATUS | 1ull << NET_F_CSUM |
			    1ull << NET_F_HOST_TSO4 | 1ull << NET_F_HOST_TSO6;
	struct virtio_dev *vd = NULL;
	int r;

	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	n->tap = fd;
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifname);
	memcpy(n->mac, mac, 6);
	r = virtio_dev_create(m, slot, &net_ops, n, features, 2, NET_QUEUE_SIZE, NET_CFG_SIZE, &vd);
	if (!r)
		r = virtio_dev_watch(vd, n->tap, EPOLLIN);
	if (r) {
		if (vd) {
			virtio_dev_destroy(vd); /* frees n */
		} else {
			close(n->tap);
			free(n);
		}
		return r;
	}
	*out = vd;
	return 0;
}

int virtio_net_create(struct machine *m, const struct vm_nic *spec, int tap,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	int r;

	/* keeld attached it (the jailed worker's network namespace has no taps): it set the
	 * tap up as tap_open does. */
	if (tap >= 0)
		snprintf(ifname, sizeof(ifname), "%s", spec->tap);
	else
		tap = tap_open(spec->tap, ifname, err, errlen);
	if (tap < 0)
		return tap;
	if (!spec->mac[0] || vmdef_mac_parse(spec->mac, mac))
		virtio_net_default_mac(spec->tap, mac);
	r = virtio_net_create_fd(m, spec->pci_slot, tap, ifname, mac, out);
	if (r)
		snprintf(err, errlen, "--net tap=%s: virtio-net set-up: %s", spec->tap,
			 strerror(-r));
	return r;
}

static int net_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int r = virtio_net_create(m, &m->def->nics[i], m->net_fds[i], &vd, err, errlen);

	r = r ?: virtio_dev_keep(m, vd);
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
