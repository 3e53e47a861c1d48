/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-rng (virtio 1.2, 5.4): one queue; each chain's writable buffers are filled from
 * getrandom(). */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmm/device.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/virtio.h"
#include "config/vmdef_device.h"
#include "vmm/machine.h"

#define RNG_QUEUE_SIZE 256
#define RNG_MAX_CHAIN  (64 * 1024) /* bytes given per request, at most */

struct virtio_rng {
	struct vq_chain chain; /* I/O thread only */
};

/* Fill up to RNG_MAX_CHAIN bytes of c's writable buffers; returns the bytes written. */
static uint32_t rng_fill(const struct vq_chain *c)
{
	uint32_t done = 0;
	unsigned i;

	for (i = c->nin; i < c->nin + c->nout && done < RNG_MAX_CHAIN; i++) {
		size_t want = c->seg[i].iov_len, got = 0;

		if (want > RNG_MAX_CHAIN - done)
			want = RNG_MAX_CHAIN - done;
		while (got < want) {
			ssize_t n = getrandom((uint8_t *)c->seg[i].iov_base + got, want - got, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return done + (uint32_t)got;
			got += (size_t)n;
		}
		done += (uint32_t)got;
	}
	return done;
}

static void rng_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_rng *rng = vd->priv;

	do {
		while (virtio_pop(vd, q, &rng->chain) > 0)
			vq_push(&vd->q[q].vq, rng->chain.head, rng_fill(&rng->chain));
	} while (virtio_queue_ready(vd, q) && vq_rearm(&vd->q[q].vq));
	virtio_queue_interrupt(vd, q);
}

static void rng_config_read(struct virtio_dev *vd, unsigned off, void *buf, unsigned len)
{
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng",
	.device_type = VIRTIO_ID_RNG,
	.class_code = 0xff0000, /* unclassified device */
	.seccomp = SECCOMP_RNG,
	.queue_notify = rng_queue_notify,
	.config_read = rng_config_read,
};

int virtio_rng_create(struct machine *m, unsigned slot, struct virtio_dev **out)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	int r;

	if (!rng)
		return -ENOMEM;
	r = virtio_dev_create(m, slot, &rng_ops, rng, 0, 1, RNG_QUEUE_SIZE, 0, out);
	if (r)
		free(rng);
	return r;
}

static int rng_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int r = virtio_rng_create(m, m->def->rng.pci_slot, &vd);

	r = r ?: virtio_dev_keep(m, vd);
	if (!r)
		*obj = vd;
	return r;
}

const struct device_class virtio_rng_class = {
	.name = "virtio-rng",
	.config = &vmdef_rng_kind,
	.state = {{"virtio-rng", STATE_VIRTIO_VERSION, virtio_state}},
	.create = rng_class_create};
