/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: PCI configuration space through ports 0xCF8-0xCFF (any width,
 * any offset) and through ECAM, BAR sizing and placement, and accesses to wherever the BARs
 * decode, against the host bridge with virtio-rng, virtio-console and virtio-net on it
 * (vmm/pci.c, pci_host.c, msix.c, on fake_machine.h). After every access each device's BAR
 * decoding must follow its registers and command, MSI-X its capability, and the notify
 * ioeventfds its BAR. Input: byte 0, bit 0: KVM takes ioeventfds; then records of 14
 * bytes: operation, width/flags, a 32-bit address and a 64-bit value.
 */
#include <stddef.h>
#include <stdint.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "vmm/pci.h"
#include "vmm/virtio/virtio.h"
#include "vmm/x86/layout.h"

#define NDEV FAKE_VIRTIO_NDEV

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct virtio_dev *dev[NDEV];
static int net_peer;

/* Power-on, with nothing left over from the last input: no kick, no frame. */
static void reset(void)
{
	fake_machine_reset();
	fake_virtio_serve_all(dev, net_peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned i;

	if (size < 1)
		return 0;
	fake_virtio_devices(dev, &net_peer);
	fake_ioeventfd_enable(data[0] & 1);
	reset();
	for (data++, size--; size >= 14; data += 14, size -= 14) {
		unsigned width = 1u << (data[1] & 3), sel = data[1] >> 4;
		uint32_t addr = (uint32_t)le_load(data + 2, 4);
		uint64_t v = le_load(data + 6, 8);
		struct pci_dev *d = &dev[sel % NDEV]->pci;
		uint64_t a;

		switch (data[0] & 7) {
		case 0: /* CONFIG_ADDRESS / CONFIG_DATA (and 0xcf9), at most 4 bytes */
			fake_pio_write((uint16_t)(PORT_PCI_CONF1 + (addr & 7)), width & 7 ?: 4, v);
			break;
		case 1:
			fake_pio_read((uint16_t)(PORT_PCI_CONF1 + (addr & 7)), width & 7 ?: 4);
			break;
		case 2: /* ECAM: any slot, function, register, width */
			fake_mmio_write(LAYOUT_PCI_ECAM + (addr % LAYOUT_PCI_ECAM_SIZE), width, v);
			break;
		case 3:
			fake_mmio_read(LAYOUT_PCI_ECAM + (addr % LAYOUT_PCI_ECAM_SIZE), width);
			break;
		case 4: /* BAR sizing and placement: all ones, then an address */
			i = (addr >> 8) % PCI_NUM_BARS;
			fake_ecam_write(d->slot, PCI_BAR0 + 4 * i, 4, 0xffffffffu);
			fake_ecam_read(d->slot, PCI_BAR0 + 4 * i, 4);
			fake_ecam_write(d->slot, PCI_BAR0 + 4 * i, 4, (uint32_t)v);
			if (data[1] & 4)
				fake_ecam_write(d->slot, PCI_BAR0 + 4 * i + 4, 4, v >> 32);
			fake_ecam_write(d->slot, PCI_COMMAND, 2, addr & 0xffff);
			break;
		case 5: /* inside one of d's BARs, wherever it decodes now */
			i = (addr >> 24) % PCI_NUM_BARS;
			a = fake_pci_bar(d, i);
			if (!a)
				break;
			a += (addr & 0xffffff) % d->bars[i].size;
			if (data[1] & 4)
				fake_mmio_read(a, width);
			else
				fake_mmio_write(a, width, v);
			break;
		case 6: /* anywhere in the two windows */
			a = data[1] & 4 ? pci_window64_base(fake_machine()->def->memory, false) +
						  v % LAYOUT_PCI_MMIO64_SIZE
					: LAYOUT_PCI_MMIO32 + addr % LAYOUT_PCI_MMIO32_SIZE;
			if (data[1] & 8)
				fake_mmio_read(a, width);
			else
				fake_mmio_write(a, width, v);
			break;
		default:
			if (v % 3 == 0) {
				reset();
			} else if (v % 3 == 1) {
				fake_virtio_serve_all(dev, net_peer);
			} else {
				fake_machine_save_restore();
			}
			break;
		}
		fake_virtio_check_all(dev);
	}
	return 0;
}
