/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lab-vhost-net: virtio-net's kernel data path (vmm/virtio/vhost_net.c) against the host's
 * real vhost-net, on the fuzz targets' fake machine (no KVM needed), run by the lab's
 * 76-vhost-net (the lab host has /dev/vhost-net; this build host has not, hence not a unit
 * test). A frame sent out of the tap (a packet socket on it) lands in the guest's receive
 * buffer through the kernel, whose dirty log then has that page's bit and the used ring's,
 * and no bit of a page nothing wrote; the queue's MSI-X irqfd is signalled, and while the
 * guest masks the vector the interrupt goes pending instead (through the relay) and comes
 * when it unmasks; a pause takes the rings back with the kernel's indexes, a save and
 * restore keeps them, and the resume hands them over again where they were.
 * Usage: lab-vhost-net TAPNAME. Prints what it checked; exit 0 when all held.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "lib/tap.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/vhost_net.h"
#include "vmm/virtio/virtio.h"

#define QSIZE	  16
#define RXQ	  0x0000u /* rx rings: desc, avail at +0x200, used at +0x400 */
#define TXQ	  0x0800u
#define BUF(i)	  (0x2000u + 0x800u * (i)) /* receive buffers: pages 2 to 3 */
#define NBUF	  4
#define UNTOUCHED 14 /* a page nothing writes */
#define FRAME	  60

extern const struct device_class virtio_net_class;

static unsigned failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			printf("lab-vhost-net: ok: " __VA_ARGS__);                                 \
		} else {                                                                           \
			printf("lab-vhost-net: FAIL: " __VA_ARGS__);                               \
			failures++;                                                                \
		}                                                                                  \
		printf("\n");                                                                      \
	} while (0)

static uint8_t *gpa(uint64_t a, uint64_t len)
{
	uint8_t *p = mem_ptr(fake_machine()->mem, a, len);

	if (!p) {
		printf("lab-vhost-net: FAIL: 0x%llx is not guest RAM\n", (unsigned long long)a);
		exit(1);
	}
	return p;
}

static uint16_t used_idx(void)
{
	return (uint16_t)le_load(gpa(RXQ + 0x400 + 2, 2), 2);
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, ms % 1000 * 1000000L};

	nanosleep(&t, NULL);
}

/* Wait (10 s at most: a bound for a broken path, not a measurement) for the used index. */
static bool wait_used(uint16_t want)
{
	for (int i = 0; i < 1000 && used_idx() != want; i++)
		sleep_ms(10);
	return used_idx() == want;
}

/* The eventfd's count (0: not signalled), read and so cleared. */
static uint64_t drain(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void send_frame(int ps, int ifindex, uint8_t tag, uint8_t *frame)
{
	struct sockaddr_ll to = {.sll_family = AF_PACKET,
				 .sll_ifindex = ifindex,
				 .sll_halen = ETH_ALEN,
				 .sll_addr = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

	memset(frame, 0xff, 6);
	memcpy(frame + 6, "\x02\x00\x00\x00\x16\x16", 6);
	frame[12] = 0x88; /* local experimental ethertype */
	frame[13] = 0xb5;
	for (int i = 14; i < FRAME; i++)
		frame[i] = (uint8_t)(tag + i);
	if (sendto(ps, frame, FRAME, 0, (struct sockaddr *)&to, sizeof(to)) != FRAME) {
		printf("lab-vhost-net: FAIL: sending a frame out of the tap: %s\n",
		       strerror(errno));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct vm_nic spec = {0};
	struct fake_vq q[2] = {{QSIZE, 0, RXQ, RXQ + 0x200, RXQ + 0x400},
			       {QSIZE, 1, TXQ, TXQ + 0x200, TXQ + 0x400}};
	uint8_t frame[FRAME];
	uint64_t bm[1] = {0}, msix;
	struct virtio_dev *vd = NULL;
	struct vhost_net *h;
	char ifname[IFNAMSIZ], err[256];
	int tap, vfd, ps, ifindex, irqfd;

	if (argc != 2) {
		fprintf(stderr, "usage: lab-vhost-net TAPNAME\n");
		return 2;
	}
	tap = tap_open(argv[1], ifname, err, sizeof(err));
	vfd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (tap < 0 || vfd < 0) {
		printf("lab-vhost-net: FAIL: %s\n", tap < 0 ? err : strerror(errno));
		return 1;
	}
	/* No frame but the test's: the host sends nothing of its own out of the tap (IPv6's
	 * neighbour discovery and MLD would take receive buffers; the scenario also turns it
	 * off for new interfaces while this runs). */
	{
		char path[96];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
		f = fopen(path, "w");
		if (f) {
			fputs("1\n", f);
			fclose(f);
		}
	}
	fake_ioeventfd_enable(true);
	snprintf(spec.tap, sizeof(spec.tap), "%s", argv[1]);
	spec.vhost = VM_VHOST_ON;
	if (virtio_net_create(fake_machine(), &spec, 1, &tap, &vfd, &vd, err, sizeof(err))) {
		printf("lab-vhost-net: FAIL: %s\n", err);
		return 1;
	}
	if (device_state_register(fake_machine(), &virtio_net_class, vd->pci.slot, vd)) {
		printf("lab-vhost-net: FAIL: virtio-net's state sections\n");
		return 1;
	}
	h = virtio_net_vhost(vd, 0);
	/* The driver's receive buffers, posted before it starts. */
	for (unsigned i = 0; i < NBUF; i++) {
		struct vring_desc d = {BUF(i), 0x800, VRING_DESC_F_WRITE, 0};

		memcpy(gpa(RXQ + 16 * i, 16), &d, 16);
		le_store(gpa(RXQ + 0x200 + 4 + 2 * i, 2), i, 2);
	}
	le_store(gpa(RXQ + 0x200 + 2, 2), NBUF, 2);
	CHECK(fake_virtio_start(vd, 1ull << NET_F_MRG_RXBUF, q, 2), "the driver started");
	CHECK(vhost_net_running(h), "DRIVER_OK handed the rings to vhost-net");
	pthread_mutex_lock(&vd->lock);
	CHECK(!vhost_net_log(h, true), "dirty logging on");
	pthread_mutex_unlock(&vd->lock);
	irqfd = vd->pci.msix_irqfd[0];
	drain(irqfd);

	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	ifindex = (int)if_nametoindex(ifname);
	if (ps < 0 || !ifindex) {
		printf("lab-vhost-net: FAIL: packet socket on %s: %s\n", ifname, strerror(errno));
		return 1;
	}
	send_frame(ps, ifindex, 1, frame);
	CHECK(wait_used(1), "the kernel returned the first receive buffer (used index %u)",
	      used_idx());
	CHECK(le_load(gpa(RXQ + 0x400 + 4, 4), 4) == 0 &&
		      le_load(gpa(RXQ + 0x400 + 8, 4), 4) == NET_HDR_SIZE + FRAME,
	      "used entry: buffer 0, %u bytes", (unsigned)le_load(gpa(RXQ + 0x400 + 8, 4), 4));
	CHECK(!memcmp(gpa(BUF(0) + NET_HDR_SIZE, FRAME), frame, FRAME) &&
		      le_load(gpa(BUF(0) + 10, 2), 2) == 1,
	      "the frame is in guest RAM after the 12-byte header (num_buffers 1)");
	for (int i = 0; i < 100 && !(bm[0] & 1); i++) {
		pthread_mutex_lock(&vd->lock);
		vhost_net_log_harvest(h, bm, 1);
		pthread_mutex_unlock(&vd->lock);
		if (!(bm[0] & 1))
			sleep_ms(10);
	}
	CHECK(bm[0] >> (BUF(0) / 4096) & 1, "dirty log: the receive buffer's page %u is marked",
	      BUF(0) / 4096);
	CHECK(bm[0] & 1, "dirty log: the used ring's page 0 is marked");
	CHECK(!(bm[0] >> UNTOUCHED & 1),
	      "dirty log: page %u, which nothing wrote, is not (log 0x%llx)", UNTOUCHED,
	      (unsigned long long)bm[0]);
	CHECK(drain(irqfd) > 0, "the receive queue's MSI-X irqfd was signalled");

	/* The guest masks vector 0: the interrupt goes pending, and comes at the unmask. */
	pthread_mutex_lock(&vd->lock);
	CHECK(!vhost_net_log(h, false), "dirty logging off");
	pthread_mutex_unlock(&vd->lock);
	msix = fake_pci_bar(&vd->pci, VIRTIO_MSIX_BAR);
	fake_mmio_write(msix + 12, 4, 1);
	send_frame(ps, ifindex, 2, frame);
	CHECK(wait_used(2), "the second frame arrived while the vector is masked");
	for (int i = 0; i < 1000 && !(vd->pci.msix_pending & 1); i++)
		sleep_ms(10);
	CHECK(vd->pci.msix_pending & 1, "masked: the vector's pending bit is set (the relay)");
	CHECK(drain(irqfd) == 0, "masked: its irqfd was not signalled");
	fake_mmio_write(msix + 12, 4, 0);
	CHECK(drain(irqfd) > 0 && !(vd->pci.msix_pending & 1),
	      "unmasked: the pending interrupt came through the irqfd");

	/* Pause: the rings come back at the kernel's indexes; save and restore; resume. */
	fake_machine_pause(true);
	CHECK(!vhost_net_running(h), "pause took the rings back");
	CHECK(vd->q[0].vq.last_avail == 2 && vd->q[0].vq.used_idx == 2,
	      "the receive queue holds the kernel's indexes (next avail %u, used %u)",
	      vd->q[0].vq.last_avail, vd->q[0].vq.used_idx);
	fake_machine_save_restore();
	fake_machine_pause(false);
	CHECK(vhost_net_running(h), "resume after a save and restore handed them over again");
	send_frame(ps, ifindex, 3, frame);
	CHECK(wait_used(3) && !memcmp(gpa(BUF(2) + NET_HDR_SIZE, FRAME), frame, FRAME),
	      "the third frame went into buffer 2 (used index %u)", used_idx());
	close(ps);
	virtio_dev_destroy(vd);
	printf("lab-vhost-net: %s\n", failures ? "FAILED" : "all checks held");
	return failures ? 1 : 0;
}
