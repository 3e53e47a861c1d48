/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net's kernel data path (vmm/virtio/vhost_net.c) on the fuzz targets' fake machine,
 * against a stand-in for /dev/vhost-net (an eventfd whose vhost requests -Wl,--wrap=ioctl
 * answers and records; this build host has no vhost-net, lab-vhost-net runs the real one):
 * what the device hands the kernel, and what it takes back when the kernel gives the rings
 * back, whatever the guest wrote into them meanwhile.
 */
#include <errno.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "vmm/device.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/vhost_net.h"
#include "vmm/virtio/virtio.h"

/* linux/vhost.h brings the kernel's ring structures, whose names queue.h has for its own. */
#define vring_desc linux_vring_desc
#include <linux/vhost.h>
#undef vring_desc

#define QSIZE	 32
#define QBASE(i) (0x800u * (i))
#define USED(i)	 (QBASE(i) + 0x400)

extern const struct device_class virtio_net_class;

/* The stand-in kernel: one fd per queue pair, and per ring what it was
 * given and what it reports. */
static int kfds[2] = {-1, -1};
static struct {
	unsigned base_set; /* VHOST_SET_VRING_BASE's num */
	unsigned base_get; /* what VHOST_GET_VRING_BASE reports: where the kernel got to */
	int backend;	   /* VHOST_NET_SET_BACKEND's fd */
	unsigned num;	   /* VHOST_SET_VRING_NUM */
} kpair[2][2];
/* This pair's VHOST_SET_VRING_KICK fails (-1: none). */
static int kick_fails = -1;

/* VHOST_NET_SET_BACKEND on the transmit ring fails; receive chains the kernel fills as
 * soon as it has the receive ring's backend. */
static bool backend1_fails;
static uint64_t kfeatures; /* the last VHOST_SET_FEATURES */
static uint16_t rx_on_attach;

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	struct stat st;
	unsigned k;
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	for (k = 0; k < 2 && (fd != kfds[k] || kfds[k] < 0); k++)
		;
	if (k == 2) {
		/* TUNSETOFFLOAD on the socket pair's "tap" works. */
		if (req == TUNSETOFFLOAD && !fstat(fd, &st) && S_ISSOCK(st.st_mode))
			return 0;
		return __real_ioctl(fd, req, arg);
	}
	switch (req) {
	case VHOST_SET_VRING_KICK:
		if ((int)k == kick_fails) {
			errno = EINVAL;
			return -1;
		}
		return 0;
	case VHOST_SET_FEATURES:
		kfeatures = *(const uint64_t *)arg;
		return 0;
	case VHOST_GET_FEATURES:
		*(uint64_t *)arg = 1ull << VIRTIO_F_VERSION_1 | 1ull << NET_F_MRG_RXBUF |
				   1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX |
				   1ull << VHOST_F_LOG_ALL | 1ull << VHOST_NET_F_VIRTIO_NET_HDR;
		return 0;
	case VHOST_SET_VRING_NUM: {
		const struct vhost_vring_state *s = arg;

		kpair[k][s->index & 1].num = s->num;
		return 0;
	}
	case VHOST_SET_VRING_BASE: {
		const struct vhost_vring_state *s = arg;

		kpair[k][s->index & 1].base_set = kpair[k][s->index & 1].base_get = s->num;
		return 0;
	}
	case VHOST_GET_VRING_BASE: {
		struct vhost_vring_state *s = arg;

		s->num = kpair[k][s->index & 1].base_get;
		return 0;
	}
	case VHOST_NET_SET_BACKEND: {
		const struct vhost_vring_file *f = arg;

		if (f->fd >= 0 && (f->index & 1) && backend1_fails && k == 0) {
			errno = ENOMEM;
			return -1;
		}
		kpair[k][f->index & 1].backend = f->fd;
		if (f->fd >= 0 && !(f->index & 1) && rx_on_attach && k == 0) {
			/* Frames were waiting in the tap: the kernel fills buffers at once. */
			kpair[k][0].base_get += rx_on_attach;
			le_store(fake_ram(USED(0) + 2, 2), (uint16_t)kpair[k][0].base_get, 2);
		}
		return 0;
	}
	default: /* SET_OWNER, SET_FEATURES, SET_MEM_TABLE, SET_LOG_BASE, SET_VRING_* */
		return 0;
	}
}

static struct virtio_dev *vd;
static int peer = -1;

/* A card on vhost-net (the stand-in) whose driver started: the kernel serves its rings, or
 * (want_running false) refused them. Each test has a card of its own (the last one's driver
 * reset: its queues off, so it leaves the rings at the same addresses alone). */
static void start(bool want_running)
{
	struct fake_vq q[2];
	struct vm_nic spec = {.vhost = VM_VHOST_ON};
	char err[256];
	int sv[2];

	if (vd) {
		fake_virtio_write(vd, FAKE_CC(device_status), 1, 0);
		assert_false(vhost_net_running(virtio_net_vhost(vd, 0)));
	}
	fake_machine();
	memset(fake_ram(0, 0x1000), 0, 0x1000); /* empty rings */
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	kfds[0] = eventfd(0, EFD_CLOEXEC);
	assert_true(kfds[0] >= 0);
	memset(kpair, 0, sizeof(kpair));
	snprintf(spec.tap, sizeof(spec.tap), "vhost0");
	assert_int_equal(virtio_net_create(fake_machine(), &spec, 1, &sv[0], &kfds[0], &vd, err,
					   sizeof(err)),
			 0);
	assert_int_equal(device_state_register(fake_machine(), &virtio_net_class, vd->pci.slot, vd),
			 0);
	peer = sv[1];
	for (unsigned i = 0; i < 2; i++)
		q[i] = (struct fake_vq){.size = QSIZE,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = QBASE(i) + 0x200,
					.used = USED(i)};
	/* The receive ring's posted buffers (the kernel may take them at the hand-over). */
	le_store(fake_ram(QBASE(0) + 0x200 + 2, 2), QSIZE / 2, 2);
	assert_true(
		fake_virtio_start(vd, 1ull << NET_F_MRG_RXBUF | 1ull << VIRTIO_F_EVENT_IDX, q, 2));
	assert_int_equal(vhost_net_running(virtio_net_vhost(vd, 0)), want_running);
	assert_int_equal(kpair[0][0].num, QSIZE);
	if (!want_running)
		return;
	assert_int_equal(kpair[0][0].backend, kpair[0][1].backend);
	assert_true(kpair[0][0].backend >= 0);
}

/* The driver posted n receive chains and the kernel took and returned them: the avail
 * index, the kernel's next avail entry and the used index it published in the ring. */
static void kernel_received(uint16_t n)
{
	kpair[0][0].base_get += n;
	le_store(fake_ram(QBASE(0) + 0x200 + 2, 2), (uint16_t)kpair[0][0].base_get, 2);
	le_store(fake_ram(USED(0) + 2, 2), (uint16_t)kpair[0][0].base_get, 2);
}

/* The pause takes the rings back at the kernel's next avail entry, and the device's used
 * index is that too: the used ring's index is guest memory, and a driver that wrote another
 * there must not leave the saved state "in flight" (a restore refuses it) nor make the next
 * pause wait for chains nobody holds. */
static void test_pause_ignores_the_guests_used_index(void **state)
{
	uint8_t *saved;
	size_t len;
	char err[256];

	(void)state;
	start(true);
	kernel_received(3);
	assert_int_equal(fake_virtio_used_idx(USED(0)), 3);
	le_store(fake_ram(USED(0) + 2, 2), 7, 2); /* the guest scribbles on its used index */
	fake_machine_pause(true);
	assert_false(vhost_net_running(virtio_net_vhost(vd, 0)));
	assert_int_equal(kpair[0][0].backend, -1);
	assert_int_equal(vd->q[0].vq.last_avail, 3);
	assert_int_equal(vd->q[0].vq.used_idx, 3);
	assert_int_equal(vd->q[1].vq.last_avail, 0);
	assert_int_equal(vd->q[1].vq.used_idx, 0);
	fake_machine_save(&saved, &len);
	assert_int_equal(fake_machine_load(saved, len, err, sizeof(err)), 0);
	free(saved);
	fake_machine_pause(false);
	assert_true(vhost_net_running(virtio_net_vhost(vd, 0)));
	assert_int_equal(kpair[0][0].base_set, 3);
	/* And once more: a second pause finds nothing in flight. */
	kernel_received(2);
	fake_machine_pause(true);
	assert_int_equal(vd->q[0].vq.last_avail, 5);
	assert_int_equal(vd->q[0].vq.used_idx, 5);
	fake_machine_pause(false);
}

/* The kernel refuses the transmit ring's backend after it took the receive ring's (and
 * filled buffers with frames that were waiting): the user-space path takes over from where
 * the kernel got, not from where the rings were before the hand-over. */
static void test_failed_handover_keeps_the_kernels_indexes(void **state)
{
	(void)state;
	backend1_fails = true;
	rx_on_attach = 2;
	start(false);
	backend1_fails = false;
	rx_on_attach = 0;
	assert_int_equal(kpair[0][0].backend, -1);
	assert_int_equal(vd->q[0].vq.last_avail, 2);
	assert_int_equal(vd->q[0].vq.used_idx, 2);
	assert_int_equal(vd->q[1].vq.last_avail, 0);
	assert_int_equal(vd->q[1].vq.used_idx, 0);
	/* The user-space path serves the adapter from then on, pause or not. */
	fake_machine_pause(true);
	fake_machine_pause(false);
	assert_false(vhost_net_running(virtio_net_vhost(vd, 0)));
}

/* A driver that clears FEATURES_OK without a reset and starts again with other features:
 * the kernel serves the rings with those (the user-space path would), from where it got. */
static void test_renegotiation_reaches_the_kernel(void **state)
{
	uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	(void)state;
	start(true);
	assert_true(kfeatures >> NET_F_MRG_RXBUF & 1);
	kernel_received(4);
	fake_virtio_write(vd, FAKE_CC(device_status), 1, st);
	fake_virtio_write(vd, FAKE_CC(guest_feature_select), 4, 0);
	fake_virtio_write(vd, FAKE_CC(guest_feature), 4, 0);
	fake_virtio_write(vd, FAKE_CC(guest_feature_select), 4, 1);
	fake_virtio_write(vd, FAKE_CC(guest_feature), 4, 1); /* VERSION_1 alone */
	st |= VIRTIO_STATUS_FEATURES_OK;
	fake_virtio_write(vd, FAKE_CC(device_status), 1, st);
	fake_virtio_write(vd, FAKE_CC(device_status), 1, st | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(fake_virtio_read(vd, FAKE_CC(device_status), 1),
			 st | VIRTIO_STATUS_DRIVER_OK);
	assert_true(vhost_net_running(virtio_net_vhost(vd, 0)));
	assert_false(kfeatures >> NET_F_MRG_RXBUF & 1);
	assert_false(kfeatures >> VIRTIO_F_EVENT_IDX & 1);
	assert_int_equal(kpair[0][0].base_set, 4);
}

/* Dirty logging turned on while a driver, FEATURES_OK cleared without a reset, has written
 * bits the device never offered (27 is vhost's own VHOST_NET_F_VIRTIO_NET_HDR: the kernel
 * would add a header of its own): the kernel keeps the features of the hand-over. */
static void test_log_keeps_the_handed_over_features(void **state)
{
	struct vhost_net *h;

	(void)state;
	start(true);
	h = virtio_net_vhost(vd, 0);
	fake_virtio_write(vd, FAKE_CC(device_status), 1,
			  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	fake_virtio_write(vd, FAKE_CC(guest_feature_select), 4, 0);
	fake_virtio_write(vd, FAKE_CC(guest_feature), 4, 1u << VHOST_NET_F_VIRTIO_NET_HDR);
	assert_true(vhost_net_running(h));
	pthread_mutex_lock(&vd->lock);
	assert_int_equal(vhost_net_log(h, true), 0);
	pthread_mutex_unlock(&vd->lock);
	assert_true(kfeatures >> VHOST_F_LOG_ALL & 1);
	assert_false(kfeatures >> VHOST_NET_F_VIRTIO_NET_HDR & 1);
	assert_true(kfeatures >> NET_F_MRG_RXBUF & 1);
	pthread_mutex_lock(&vd->lock);
	assert_int_equal(vhost_net_log(h, false), 0);
	pthread_mutex_unlock(&vd->lock);
}

/* The two-pair card (MQ and the control queue, queue 4), each pair on its own stand-in
 * /dev/vhost-net; its driver started on pair 0 (the I/O thread's work served by hand). */
#define MQ_QUEUES 5
#define MQ_F	  (1ull << NET_F_MRG_RXBUF | 1ull << NET_F_CTRL_VQ | 1ull << NET_F_MQ)
static struct virtio_dev *mq;
static uint16_t ctrl_avail;

static void start_mq(void)
{
	struct fake_vq q[MQ_QUEUES];
	struct vm_nic spec = {.vhost = VM_VHOST_ON};
	int taps[2], sv[2];
	char err[256];

	fake_machine();
	memset(fake_ram(0, 0x3000), 0, 0x3000); /* empty rings */
	memset(kpair, 0, sizeof(kpair));
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(
			socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		taps[k] = sv[0]; /* the peer stays open: the "tap" is never at its end */
		kfds[k] = eventfd(0, EFD_CLOEXEC);
		assert_true(kfds[k] >= 0);
	}
	snprintf(spec.tap, sizeof(spec.tap), "vhostmq0");
	assert_int_equal(
		virtio_net_create(fake_machine(), &spec, 2, taps, kfds, &mq, err, sizeof(err)), 0);
	assert_int_equal(device_state_register(fake_machine(), &virtio_net_class, mq->pci.slot, mq),
			 0);
	for (unsigned i = 0; i < MQ_QUEUES; i++)
		q[i] = (struct fake_vq){.size = i < 4 ? QSIZE : 16,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = QBASE(i) + 0x200,
					.used = USED(i)};
	ctrl_avail = 0;
	assert_true(fake_virtio_start(mq, MQ_F, q, MQ_QUEUES));
	fake_virtio_serve(mq);
	assert_true(vhost_net_running(virtio_net_vhost(mq, 0)));
	assert_false(vhost_net_running(virtio_net_vhost(mq, 1))); /* not enabled yet */
}

/* VQ_PAIRS_SET on the control queue (4 bytes, then the ack byte); returns the ack. */
static uint8_t pairs_set(uint16_t pairs)
{
	uint8_t *d = fake_ram(QBASE(4), 32), *avail = fake_ram(QBASE(4) + 0x200, 4 + 2 * 16),
		*cmd = fake_ram(0x3000, 5);

	cmd[0] = 4; /* VIRTIO_NET_CTRL_MQ */
	cmd[1] = 0; /* VQ_PAIRS_SET */
	le_store(cmd + 2, pairs, 2);
	cmd[4] = 0xee;
	le_store(d, 0x3000, 8);
	le_store(d + 8, 4, 4);
	le_store(d + 12, 1 | 1u << 16, 4); /* NEXT, next 1 */
	le_store(d + 16, 0x3004, 8);
	le_store(d + 24, 1, 4);
	le_store(d + 28, 2, 4); /* WRITE */
	le_store(avail + 4 + 2 * (ctrl_avail % 16), 0, 2);
	le_store(avail + 2, ++ctrl_avail, 2);
	fake_virtio_queue_notify(mq, 4);
	assert_int_equal(fake_virtio_used_idx(USED(4)), ctrl_avail);
	return cmd[4];
}

/* An adapter is on one path: pair 1's hand-over failing (VHOST_SET_VRING_KICK refused) once
 * the driver enabled it takes pair 0's rings back from the kernel too, and neither is handed
 * over again, a resume included. */
static void test_mq_handover_all_or_none(void **state)
{
	(void)state;
	start_mq();
	kick_fails = 1;
	assert_int_equal(pairs_set(2), 0);
	fake_virtio_serve(mq);
	kick_fails = -1;
	assert_false(vhost_net_running(virtio_net_vhost(mq, 1)));
	assert_false(vhost_net_running(virtio_net_vhost(mq, 0)));
	assert_int_equal(kpair[0][0].backend, -1);
	assert_int_equal(kpair[0][1].backend, -1);
	fake_machine_pause(true);
	fake_machine_pause(false);
	assert_false(vhost_net_running(virtio_net_vhost(mq, 0)));
	assert_false(vhost_net_running(virtio_net_vhost(mq, 1)));
	fake_virtio_write(mq, FAKE_CC(device_status), 1, 0);
}

/* VQ_PAIRS_SET 1 while the tap queue changes are rate-limited (the driver toggled its pairs
 * past the bucket): the ack says OK, so pair 1's rings are back from the kernel before it,
 * its tap queue's detach waiting; enabled again, the kernel takes them again. */
static void test_mq_limited_pairs_set_stops_the_kernel(void **state)
{
	(void)state;
	start_mq();
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(pairs_set(i % 2 ? 1 : 2), 0);
	assert_int_equal(pairs_set(2), 0);
	fake_virtio_serve(mq);
	assert_true(vhost_net_running(virtio_net_vhost(mq, 1)));
	assert_int_equal(pairs_set(1), 0); /* acknowledged: VIRTIO_NET_OK */
	assert_false(vhost_net_running(virtio_net_vhost(mq, 1)));
	assert_int_equal(kpair[1][0].backend, -1);
	assert_true(vhost_net_running(virtio_net_vhost(mq, 0)));
	assert_int_equal(pairs_set(2), 0);
	fake_virtio_serve(mq);
	assert_true(vhost_net_running(virtio_net_vhost(mq, 1)));
	fake_virtio_write(mq, FAKE_CC(device_status), 1, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_ignores_the_guests_used_index),
		cmocka_unit_test(test_failed_handover_keeps_the_kernels_indexes),
		cmocka_unit_test(test_renegotiation_reaches_the_kernel),
		cmocka_unit_test(test_log_keeps_the_handed_over_features),
		cmocka_unit_test(test_mq_handover_all_or_none),
		cmocka_unit_test(test_mq_limited_pairs_set_stops_the_kernel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
