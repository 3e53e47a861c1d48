/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-console (virtio 1.2, 5.3), one port without multiport: receiveq 0 carries console
 * input to the guest, transmitq 1 its output (hvc0 in Linux). The back end is a chardev
 * (--console stdio|file:PATH|unix:PATH). Input arrives on the main loop thread and is copied
 * straight into the guest's receive buffers under the device lock; when the guest has none,
 * the chardev keeps the bytes and offers them again once buffers are posted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/chardev.h"
#include "vmm/device.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/virtio.h"
#include "config/vmdef_device.h"
#include "vmm/machine.h"

#define CONSOLE_QUEUE_SIZE 128
#define CONSOLE_RX	   0
#define CONSOLE_TX	   1
#define CONSOLE_CFG_SIZE   12
#define CONSOLE_TX_MAX	   (64u * 1024) /* bytes of output taken from one chain */

static struct log_ratelimit console_rl = LOG_RATELIMIT_INIT(5000, 5);

struct virtio_console {
	struct machine *m;
	struct virtio_dev *vd;
	struct chardev *cd;
	struct vq_chain rx_chain, tx_chain; /* under vd->lock */
	bool rx_wanted;			    /* the chardev holds input the guest had no room for */
};

static void console_tx(struct virtio_dev *vd)
{
	struct virtio_console *c = vd->priv;

	do {
		while (virtio_pop(vd, CONSOLE_TX, &c->tx_chain) > 0) {
			size_t left = CONSOLE_TX_MAX;
			unsigned i;

			/* Descriptors may alias and each may be near 4 GiB: a chain carries at
			 * most CONSOLE_TX_MAX bytes of output (drivers send a page or less). */
			for (i = 0; i < c->tx_chain.nin && left; i++) {
				size_t n = c->tx_chain.seg[i].iov_len < left
						   ? c->tx_chain.seg[i].iov_len
						   : left;

				chardev_write(c->cd, c->tx_chain.seg[i].iov_base, n);
				left -= n;
			}
			if (c->tx_chain.in_len > CONSOLE_TX_MAX)
				log_warn_ratelimited(
					&console_rl,
					"virtio-console: a %llu-byte output chain was cut "
					"to %u bytes",
					(unsigned long long)c->tx_chain.in_len, CONSOLE_TX_MAX);
			vq_push(&vd->q[CONSOLE_TX].vq, c->tx_chain.head, 0);
		}
	} while (virtio_queue_ready(vd, CONSOLE_TX) && vq_rearm(&vd->q[CONSOLE_TX].vq));
	virtio_queue_interrupt(vd, CONSOLE_TX);
}

static void console_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_console *c = vd->priv;

	if (q == CONSOLE_TX) {
		console_tx(vd);
	} else if (c->rx_wanted) {
		c->rx_wanted = false;
		chardev_input_ready(c->cd); /* new receive buffers: offer the held input again */
	}
}

/* Loop thread: copy console input into the guest's receive buffers. */
static size_t console_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct virtio_console *c = opaque;
	struct virtio_dev *vd = c->vd;
	size_t done = 0;

	pthread_mutex_lock(&vd->lock);
	while (done < len && virtio_pop(vd, CONSOLE_RX, &c->rx_chain) > 0) {
		size_t n = vq_chain_write(&c->rx_chain, 0, buf + done, len - done);

		vq_push(&vd->q[CONSOLE_RX].vq, c->rx_chain.head, (uint32_t)n);
		done += n;
	}
	if (done)
		virtio_queue_interrupt(vd, CONSOLE_RX);
	if (done < len) {
		c->rx_wanted = true;
		if (virtio_queue_ready(vd, CONSOLE_RX))
			vq_rearm(&vd->q[CONSOLE_RX].vq); /* ask to be told of new buffers */
	}
	pthread_mutex_unlock(&vd->lock);
	return done;
}

static void console_quit(void *opaque)
{
	struct virtio_console *c = opaque;

	machine_request(c->m, VM_EVENT_QUIT, 0, "quit from the console (Ctrl-A x)");
}

static const struct chardev_client_ops console_chardev_ops = {
	.input = console_input,
	.quit = console_quit,
};

static void console_config_read(struct virtio_dev *vd, unsigned off, void *buf, unsigned len)
{
	uint8_t cfg[CONSOLE_CFG_SIZE] = {0};

	cfg[4] = 1; /* max_nr_ports (meaningful with multiport only) */
	if (off <= CONSOLE_CFG_SIZE && len <= CONSOLE_CFG_SIZE - off)
		memcpy(buf, cfg + off, len);
}

static void console_reset(struct virtio_dev *vd)
{
	struct virtio_console *c = vd->priv;

	c->rx_wanted = true; /* buffers posted after the reset pick up held input */
}

static void console_release(struct virtio_dev *vd)
{
	struct virtio_console *c = vd->priv;

	chardev_close(c->cd);
	free(c);
}

static const struct virtio_dev_ops console_ops = {
	.name = "virtio-console",
	.device_type = VIRTIO_ID_CONSOLE,
	.class_code = 0x078000, /* communication controller, other */
	.seccomp = SECCOMP_CONSOLE,
	.queue_notify = console_queue_notify,
	.config_read = console_config_read,
	.reset = console_reset,
	.release = console_release,
};

int virtio_console_create(struct machine *m, unsigned slot, const struct chardev_spec *spec,
			  struct loop *loop, struct virtio_dev **out, char *err, size_t errlen)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->m = m;
	r = chardev_open(spec, loop, &c->cd, err, errlen);
	if (r) {
		free(c);
		return r;
	}
	r = virtio_dev_create(m, slot, &console_ops, c, 0, 2, CONSOLE_QUEUE_SIZE, CONSOLE_CFG_SIZE,
			      &c->vd);
	if (r) {
		chardev_close(c->cd);
		free(c);
		return r;
	}
	chardev_attach(c->cd, &console_chardev_ops, c);
	*out = c->vd;
	return 0;
}

static int console_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int r = virtio_console_create(m, m->def->console.pci_slot, m->console, m->loop, &vd, err,
				      errlen);

	r = r ?: virtio_dev_keep(m, vd);
	if (!r)
		*obj = vd;
	return r;
}

const struct device_class virtio_console_class = {
	.name = "virtio-console",
	.config = &vmdef_console_kind,
	.state = {{"virtio-console", STATE_VIRTIO_VERSION, virtio_state}},
	.create = console_class_create};
