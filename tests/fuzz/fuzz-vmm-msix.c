/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: MSI-X (vmm/msix.c) on four PCI functions with 1, 7, 33 and 64
 * vectors, their tables in different BARs: reads and writes of every width at every offset
 * of the MSI-X BAR (table and pending bits), the capability's enable and function-mask
 * bits, the device signalling vectors, crash-report lines, resets, and each function's
 * saved state (pci_dev_state) saved and restored at any point. After each operation a
 * vector fired only if the device signalled it while deliverable or it was pending and
 * became deliverable, every pending vector that became deliverable fired, a deliverable
 * vector has its KVM route, and the pending bits read back as the device holds them.
 * Input: byte 0, bit 0: leave memory decoding off; then records of 14 bytes: operation
 * and function, width, a 32-bit offset, a 64-bit value.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "vmm/pci.h"
#include "vmm/state.h"

#define NDEV 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	unsigned nvec, bar;
} layout[NDEV] = {{1, 0}, {7, 2}, {33, 4}, {64, 0}};

static const struct pci_dev_ops no_ops;
static struct pci_dev dev[NDEV];

static int dev_state(struct state_io *io, void *opaque)
{
	return pci_dev_state(io, opaque);
}

static void setup(void)
{
	static bool ready;
	char name[32];
	unsigned i;

	if (ready)
		return;
	for (i = 0; i < NDEV; i++) {
		struct pci_dev *d = &dev[i];

		pci_dev_init(d, 0x1af4, (uint16_t)(0x10f0 + i), 0xff0000, 0, 0x1af4, 0x1100);
		d->ops = &no_ops;
		d->name = "msix-test";
		FAKE_CHECK(pci_dev_add_msix(d, layout[i].bar, layout[i].nvec) == 0, "MSI-X");
		if (layout[i].bar != 0)
			FAKE_CHECK(pci_dev_add_bar(d, 0, 0x10000, true) == 0, "BAR 0");
		FAKE_CHECK(pci_dev_register(fake_machine()->pci, d) == 0, "register");
		snprintf(name, sizeof(name), "msix-test.%02x", d->slot);
		FAKE_CHECK(machine_add_state_section(fake_machine(), name, 1, dev_state, d) == 0,
			   "state section");
	}
	ready = true;
}

/* Which vectors of each function fired since the last call (one epoll set over every
 * irqfd: a read of each would cost a system call per vector). */
static void fired(uint64_t got[NDEV])
{
	static int ep = -1;
	struct epoll_event evs[64];
	unsigned i, v;
	uint64_t cnt;
	int n;

	if (ep < 0) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		FAKE_CHECK(ep >= 0, "epoll_create1");
		for (i = 0; i < NDEV; i++)
			for (v = 0; v < dev[i].msix_nvec; v++) {
				struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i << 8 | v};

				FAKE_CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, dev[i].msix_irqfd[v], &ev),
					   "epoll_ctl");
			}
	}
	memset(got, 0, NDEV * sizeof(got[0]));
	while ((n = epoll_wait(ep, evs, 64, 0)) > 0) {
		for (int e = 0; e < n; e++) {
			i = evs[e].data.u32 >> 8;
			v = evs[e].data.u32 & 0xff;
			FAKE_CHECK(read(dev[i].msix_irqfd[v], &cnt, sizeof(cnt)) == sizeof(cnt),
				   "irqfd");
			got[i] |= 1ull << v;
		}
	}
}

static uint64_t deliverable(const struct pci_dev *d)
{
	uint64_t m = 0;
	unsigned v;

	if (!d->msix_enabled || d->msix_fmask)
		return 0;
	for (v = 0; v < d->msix_nvec; v++)
		if (!(d->msix_table[v].ctrl & 1))
			m |= 1ull << v;
	return m;
}

static void reset(bool decode)
{
	uint64_t got[NDEV];
	unsigned i;

	fake_machine_reset();
	fired(got); /* signals of the last input */
	for (i = 0; decode && i < NDEV; i++)
		fake_ecam_write(dev[i].slot, PCI_COMMAND, 2, PCI_CMD_MEM);
}

/* The MSI-X BAR's address: where it decodes, else where its register points. */
static uint64_t msix_base(const struct pci_dev *d)
{
	uint64_t a = fake_pci_bar(d, d->msix_bar);

	return a ? a : le_load(d->cfg + PCI_BAR0 + 4 * d->msix_bar, 4) & ~0xfull;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool decode;

	if (size < 1)
		return 0;
	fake_machine();
	setup();
	decode = !(data[0] & 1);
	reset(decode);
	for (data++, size--; size >= 14; data += 14, size -= 14) {
		unsigned k = (data[0] >> 4) % NDEV, width = 1u << (data[1] & 3), i;
		struct pci_dev *d = &dev[k];
		uint32_t off = (uint32_t)le_load(data + 2, 4);
		uint64_t v = le_load(data + 6, 8), pend[NDEV], deliv[NDEV], got[NDEV], r;
		int notified = -1;
		char line[512];

		for (i = 0; i < NDEV; i++) {
			pend[i] = dev[i].msix_pending;
			deliv[i] = deliverable(&dev[i]);
		}
		switch (data[0] & 7) {
		case 0: /* the table (most), the PBA, or anywhere in the BAR */
			off = off & 0x80000000u ? off % 4096 : off % (16 * d->msix_nvec + 16);
			fake_mmio_write(msix_base(d) + off, width, v);
			break;
		case 1:
			off = PCI_MSIX_PBA_OFFSET + off % 16;
			fake_mmio_write(msix_base(d) + off, width, v);
			break;
		case 2: /* reads; the pending bits as the device holds them */
			off = off & 0x80000000u ? PCI_MSIX_PBA_OFFSET + off % 16 : off % 4096;
			r = fake_mmio_read(msix_base(d) + off, width);
			if (fake_pci_bar(d, d->msix_bar) && off >= PCI_MSIX_PBA_OFFSET &&
			    off + width <= PCI_MSIX_PBA_OFFSET + 8)
				FAKE_CHECK(
					r == ((d->msix_pending >> 8 * (off - PCI_MSIX_PBA_OFFSET)) &
					      (width == 8 ? ~0ull : (1ull << 8 * width) - 1)),
					"PBA at 0x%x reads 0x%llx, pending 0x%llx", off,
					(unsigned long long)r, (unsigned long long)d->msix_pending);
			break;
		case 3: /* the capability: message control, table and PBA offsets */
			fake_ecam_write(d->slot, d->msix_cap + off % 12, width, v);
			break;
		case 4: /* anywhere in configuration space, through 0xCF8/0xCFC */
			fake_pio_write(0xcf8, 4, 0x80000000u | d->slot << 11 | (off & 0xfc));
			if (data[1] & 4)
				fake_pio_read((uint16_t)(0xcfc + (off >> 8 & 3)), width & 7 ?: 4);
			else
				fake_pio_write((uint16_t)(0xcfc + (off >> 8 & 3)), width & 7 ?: 4,
					       v);
			break;
		case 5: /* the device signals a vector, also one it does not have */
			notified = (int)(v % (d->msix_nvec + 4));
			pci_msix_notify(d, (unsigned)notified);
			break;
		case 6: /* the crash report's line, into a buffer of any size */
			i = (unsigned)(v % sizeof(line)) + 1;
			memset(line, 'x', sizeof(line));
			pci_msix_describe(d, line, i);
			FAKE_CHECK(memchr(line, 0, i), "MSI-X line not terminated in %u bytes", i);
			break;
		default:
			if (v & 1) {
				fake_machine_save_restore();
			} else {
				reset(decode);
				continue;
			}
			break;
		}
		fired(got);
		for (i = 0; i < NDEV; i++) {
			uint64_t now = deliverable(&dev[i]), sig;

			sig = i == k && notified >= 0 && notified < (int)dev[i].msix_nvec &&
					      (deliv[i] >> notified & 1)
				      ? 1ull << notified
				      : 0;
			FAKE_CHECK(!(got[i] & ~(sig | (pend[i] & now & ~dev[i].msix_pending))),
				   "function %u: vectors 0x%llx fired (pending 0x%llx, deliverable "
				   "0x%llx before; 0x%llx, 0x%llx now)",
				   i, (unsigned long long)got[i], (unsigned long long)pend[i],
				   (unsigned long long)deliv[i],
				   (unsigned long long)dev[i].msix_pending,
				   (unsigned long long)now);
			FAKE_CHECK(!(pend[i] & now & ~dev[i].msix_pending & ~got[i]),
				   "function %u: pending vectors 0x%llx became deliverable "
				   "unsignalled",
				   i, (unsigned long long)(pend[i] & now & ~got[i]));
			fake_pci_check(&dev[i]);
		}
	}
	return 0;
}
