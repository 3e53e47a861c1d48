/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: the virtio-pci modern transport (vmm/virtio/pci.c) of
 * virtio-rng, virtio-console and virtio-net, register by register in any order: common
 * configuration (features, status, queue set-up at guest-chosen addresses, enable, resets),
 * ISR, device configuration, notifications, the PCI-configuration window and MSI-X, with
 * the queues served between, and the device saved and restored at any point (a state a
 * guest can reach must restore). Input: byte 0, bit 0: KVM takes ioeventfds; then records
 * of 14 bytes: operation and device, width and area, a 32-bit offset or address, a 64-bit
 * value.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "vmm/mem.h"
#include "vmm/pci.h"
#include "vmm/virtio/virtio.h"
#include "vmm/x86/layout.h"

#define NDEV FAKE_VIRTIO_NDEV

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct virtio_dev *dev[NDEV];
static int net_peer;

/* An offset in one of the transport BAR's four areas. */
static unsigned bar_offset(unsigned area, uint32_t off)
{
	static const unsigned base[4] = {VIRTIO_COMMON_OFF, VIRTIO_ISR_OFF, VIRTIO_DEVICE_OFF,
					 VIRTIO_NOTIFY_OFF};

	return area == 0 && (off & 0x8000) ? off % VIRTIO_BAR_SIZE : base[area] + off % 0x40;
}

/* Ring addresses near the start of RAM, or anywhere (also outside RAM) for bit 31. */
static uint64_t guest_addr(uint32_t a)
{
	if (a & 0x80000000u)
		return a & 0x40000000u ? LAYOUT_HIGH_RAM + (a & 0x3fffffff) : a & 0x3fffffff;
	return a % (FAKE_RAM_LOW + 0x100);
}

static void driver_start(struct virtio_dev *vd, uint32_t a, uint64_t features)
{
	struct fake_vq q[VIRTIO_MAX_QUEUES];
	unsigned i;

	for (i = 0; i < vd->nqueues; i++) {
		uint64_t base = 0x4000u * i + (a >> 8 & 0xff0);

		q[i] = (struct fake_vq){.size = (uint16_t)(1u << ((a >> (4 * i)) % 9)),
					.vector =
						(uint16_t)(a >> 20 & 1 ? VIRTIO_NO_VECTOR : i + 1),
					.desc = base,
					.avail = base + 0x1000,
					.used = base + 0x2000};
	}
	fake_virtio_start(vd, features, q, vd->nqueues);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fake_virtio_devices(dev, &net_peer);
	fake_ioeventfd_enable(data[0] & 1);
	fake_machine_reset();
	fake_virtio_serve_all(dev, net_peer);
	for (data++, size--; size >= 14; data += 14, size -= 14) {
		struct virtio_dev *vd = dev[(data[0] >> 4) % NDEV];
		unsigned width = 1u << (data[1] & 3), area = data[1] >> 2 & 3;
		uint32_t a = (uint32_t)le_load(data + 2, 4);
		uint64_t v = le_load(data + 6, 8), ga;
		uint8_t *p;

		switch (data[0] & 0xf) {
		case 0:
		case 1:
		case 2: /* the transport's registers, most of all */
			fake_virtio_write(vd, bar_offset(area, a), width, v);
			break;
		case 3:
		case 4:
			fake_virtio_read(vd, bar_offset(area, a), width);
			break;
		case 5: /* configuration space: command, MSI-X control, the PCI_CFG window */
			fake_ecam_write(vd->pci.slot, a & 0xff, width, v);
			break;
		case 6:
			fake_ecam_read(vd->pci.slot, a & 0xff, width);
			break;
		case 7: /* the MSI-X table and PBA */
			ga = fake_pci_bar(&vd->pci, VIRTIO_MSIX_BAR);
			if (ga && data[1] & 0x80)
				fake_mmio_read(ga + (a & 0xfff), width);
			else if (ga)
				fake_mmio_write(ga + (a & 0xfff), width, v);
			break;
		case 8: /* guest memory: 8 bytes anywhere in RAM */
			ga = guest_addr(a);
			p = mem_ptr(fake_machine()->mem, ga, 8);
			if (p)
				memcpy(p, data + 6, 8);
			break;
		case 9: /* a driver's whole bring-up, rings in the first pages */
			driver_start(vd, a, v);
			break;
		case 10: /* queue set-up at any address: select, size, rings, enable */
			fake_virtio_write(vd, FAKE_CC(queue_select), 2, a & 0xf);
			fake_virtio_write(vd, FAKE_CC(queue_size), 2, v & 0xffff);
			fake_virtio_write(vd, FAKE_CC(queue_desc_lo), 4, guest_addr(a) & ~15u);
			fake_virtio_write(vd, FAKE_CC(queue_avail_lo), 4,
					  guest_addr((uint32_t)(v >> 16)) & ~1u);
			fake_virtio_write(vd, FAKE_CC(queue_used_lo), 4,
					  guest_addr((uint32_t)(v >> 32)) & ~3u);
			fake_virtio_write(vd, FAKE_CC(queue_enable), 2, 1);
			break;
		case 11: /* notify, and let the I/O threads run */
			fake_virtio_notify(vd, a % 9);
			fake_virtio_serve_all(dev, net_peer);
			break;
		case 12:
			fake_virtio_serve_all(dev, net_peer);
			break;
		case 13: /* console input */
			fake_chardev_input(fake_chardev(0), data + 6, (a & 7) + 1);
			break;
		case 14:
			fake_machine_save_restore();
			fake_machine_report();
			break;
		default:
			fake_machine_reset();
			fake_virtio_serve_all(dev, net_peer);
			break;
		}
		fake_virtio_check_all(dev);
	}
	return 0;
}
