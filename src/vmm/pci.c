/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/pci.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "vmm/kvm.h"
#include "vmm/pci_internal.h"
#include "vmm/machine.h"
#include "vmm/x86/layout.h"

struct log_ratelimit pci_rl = LOG_RATELIMIT_INIT(5000, 5);
bool pci_trace;
static _Atomic unsigned trace_bar_budget = 4000;

bool pci_trace_bar(void)
{
	unsigned b = atomic_load(&trace_bar_budget);

	while (pci_trace && b && !atomic_compare_exchange_weak(&trace_bar_budget, &b, b - 1))
		;
	return pci_trace && b;
}

void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id)
{
	unsigned i;

	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->bars, 0, sizeof(d->bars));
	le_store(d->cfg + PCI_VENDOR_ID, vendor, 2);
	le_store(d->cfg + PCI_DEVICE_ID, device, 2);
	d->cfg[PCI_REVISION] = revision;
	le_store(d->cfg + PCI_CLASS_PROG, class_code, 3);
	le_store(d->cfg + PCI_SUBSYS_VENDOR, subsys_vendor, 2);
	le_store(d->cfg + PCI_SUBSYS_ID, subsys_id, 2);
	le_store(d->wmask + PCI_COMMAND,
		 PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF, 2);
	d->wmask[0x0c] = 0xff; /* cache line size */
	d->wmask[0x0d] = 0xff; /* latency timer */
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	d->cap_end = 0x40;
	d->cap_last = 0;
	d->msix_nvec = 0;
	d->msix_cap = 0;
	d->msix_pending = 0;
	d->msix_enabled = d->msix_fmask = false;
	for (i = 0; i < PCI_MSIX_MAX_VEC; i++)
		d->msix_irqfd[i] = -1;
	pthread_mutex_init(&d->msix_lock, NULL);
}

int pci_dev_add_bar(struct pci_dev *d, unsigned bar, uint64_t size, bool is64)
{
	if (bar >= PCI_NUM_BARS || (is64 && bar + 1 >= PCI_NUM_BARS) || size < 4096 ||
	    (size & (size - 1)) || d->bars[bar].size || (is64 && d->bars[bar + 1].size))
		return -EINVAL;
	d->bars[bar].size = size;
	d->bars[bar].is64 = is64;
	return 0;
}

uint8_t pci_dev_add_cap(struct pci_dev *d, const uint8_t *cap, size_t len)
{
	unsigned off = (d->cap_end + 3u) & ~3u;

	if (len < 2 || off + len > PCI_CFG_SIZE)
		return 0;
	memcpy(d->cfg + off, cap, len);
	d->cfg[off + 1] = 0;
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CAP_PTR] = (uint8_t)off;
	le_store(d->cfg + PCI_STATUS,
		 (uint32_t)le_load(d->cfg + PCI_STATUS, 2) | PCI_STATUS_CAP_LIST, 2);
	d->cap_last = (uint8_t)off;
	d->cap_end = (uint8_t)(off + len);
	return (uint8_t)off;
}

int pci_dev_add_msix(struct pci_dev *d, unsigned bar, unsigned nvec)
{
	uint8_t cap[12] = {PCI_CAP_ID_MSIX, 0};
	unsigned i;
	int r;

	if (nvec == 0 || nvec > PCI_MSIX_MAX_VEC)
		return -EINVAL;
	r = pci_dev_add_bar(d, bar, 4096, false);
	if (r)
		return r;
	le_store(cap + 2, nvec - 1, 2);
	le_store(cap + 4, bar, 4);			 /* table at offset 0 */
	le_store(cap + 8, PCI_MSIX_PBA_OFFSET | bar, 4); /* PBA */
	d->msix_cap = pci_dev_add_cap(d, cap, sizeof(cap));
	if (!d->msix_cap)
		return -ENOSPC;
	d->wmask[d->msix_cap + 3] = 0xc0; /* function mask and enable */
	d->msix_nvec = nvec;
	d->msix_bar = bar;
	for (i = 0; i < nvec; i++)
		d->msix_table[i] = (struct pci_msix_entry){.ctrl = 1};
	return 0;
}

/* ---- BAR placement and decoding ---- */

uint64_t pci_bar_addr(const struct pci_dev *d, unsigned bar)
{
	uint64_t a = (uint32_t)le_load(d->cfg + PCI_BAR0 + 4 * bar, 4) & ~0xfull;

	if (d->bars[bar].is64)
		a |= le_load(d->cfg + PCI_BAR0 + 4 * (bar + 1), 4) << 32;
	return a;
}

void pci_bar_set_addr(struct pci_dev *d, unsigned bar, uint64_t a)
{
	uint32_t flags = d->bars[bar].is64 ? PCI_BAR_MEM64 : 0;

	le_store(d->cfg + PCI_BAR0 + 4 * bar, (uint32_t)(a & ~(d->bars[bar].size - 1)) | flags, 4);
	if (d->bars[bar].is64)
		le_store(d->cfg + PCI_BAR0 + 4 * (bar + 1),
			 (uint32_t)((a & ~(d->bars[bar].size - 1)) >> 32), 4);
}

bool pci_in_window(const struct pci_host *h, uint64_t a, uint64_t size)
{
	if (a >= LAYOUT_PCI_MMIO32 && size <= LAYOUT_PCI_MMIO32_END - LAYOUT_PCI_MMIO32 &&
	    a - LAYOUT_PCI_MMIO32 <= LAYOUT_PCI_MMIO32_END - LAYOUT_PCI_MMIO32 - size)
		return true;
	return h && a >= h->win64_base && size <= h->win64_size &&
	       a - h->win64_base <= h->win64_size - size;
}

bool pci_is_msix_bar(const struct pci_dev *d, unsigned bar)
{
	return d->msix_nvec && bar == d->msix_bar;
}

/* Re-evaluate where each BAR decodes after a command or BAR register change. */
void pci_update_bars(struct pci_dev *d)
{
	bool mem = (uint32_t)le_load(d->cfg + PCI_COMMAND, 2) & PCI_CMD_MEM;
	unsigned i;

	for (i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		uint64_t a;
		bool map;

		if (!b->size)
			continue;
		a = pci_bar_addr(d, i);
		map = mem && a && pci_in_window(d->host, a, b->size);
		if (map == b->mapped && (!map || a == b->map_addr))
			continue;
		if (b->mapped && d->ops && d->ops->bar_map && !pci_is_msix_bar(d, i))
			d->ops->bar_map(d->opaque, i, b->map_addr, false);
		if (pci_trace)
			log_info("pci-trace: %02x.0 BAR %u %s 0x%llx (size 0x%llx, command 0x%x)",
				 d->slot, i, map ? "decodes at" : "stops decoding, now",
				 (unsigned long long)a, (unsigned long long)b->size,
				 (unsigned)le_load(d->cfg + PCI_COMMAND, 2));
		b->mapped = map;
		b->map_addr = a;
		if (map && d->ops && d->ops->bar_map && !pci_is_msix_bar(d, i))
			d->ops->bar_map(d->opaque, i, a, true);
	}
}

/* ---- configuration space ---- */

uint32_t pci_cfg_read(struct pci_dev *d, unsigned off, unsigned size)
{
	uint32_t v;

	if (off >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - off)
		return 0;
	v = (uint32_t)le_load(d->cfg + off, size);
	if (d->ops && d->ops->cfg_read)
		d->ops->cfg_read(d->opaque, off, size, &v);
	return v;
}

/* A write to a BAR register: size the BAR (all ones reads back the size mask). */
static void bar_reg_write(struct pci_dev *d, unsigned reg, unsigned shift, unsigned size,
			  uint32_t value)
{
	unsigned idx = (reg - PCI_BAR0) / 4;
	uint32_t old = (uint32_t)le_load(d->cfg + reg, 4), mask, nv;
	unsigned bar = idx;
	bool high = false;

	if (!d->bars[idx].size) {
		if (idx > 0 && d->bars[idx - 1].is64) {
			bar = idx - 1;
			high = true;
		} else {
			return; /* unimplemented BAR: reads as zero */
		}
	}
	mask = size == 4 ? 0xffffffffu : ((1u << (size * 8)) - 1) << shift;
	nv = (old & ~mask) | ((value << shift) & mask);
	if (high) {
		nv &= (uint32_t)(~(d->bars[bar].size - 1) >> 32);
	} else {
		nv &= (uint32_t) ~(d->bars[bar].size - 1);
		nv |= d->bars[bar].is64 ? PCI_BAR_MEM64 : 0;
	}
	le_store(d->cfg + reg, nv, 4);
}

void pci_cfg_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t value)
{
	unsigned i;
	bool bars = false, msix = false;

	if (off >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - off)
		return;
	if (pci_trace)
		log_info("pci-trace: %02x.0 config write 0x%02x/%u = 0x%x", d->slot, off, size,
			 value);
	if (off >= PCI_BAR0 && off < PCI_BAR0 + 24) {
		unsigned reg = off & ~3u;

		if (off + size > reg + 4)
			return; /* straddles two BAR registers */
		bar_reg_write(d, reg, (off - reg) * 8, size, value);
		pci_update_bars(d);
		return;
	}
	for (i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t b = (uint8_t)(value >> (8 * i));

		d->cfg[o] = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (b & d->wmask[o]));
		if (o == PCI_COMMAND || o == PCI_COMMAND + 1)
			bars = true;
		if (d->msix_cap && o == d->msix_cap + 3u)
			msix = true;
	}
	if (bars)
		pci_update_bars(d);
	if (msix)
		pci_msix_ctrl_changed(d);
	if (d->ops && d->ops->cfg_write)
		d->ops->cfg_write(d->opaque, off, size, value);
}

/* Power-on state of one device (VM reset): BARs where the firmware put them, decoding off,
 * MSI-X off and masked, irqfds attached to the (new) KVM VM. */
void pci_dev_power_on(struct pci_dev *d)
{
	struct pci_host *h = d->host;
	unsigned i;

	for (i = 0; i < PCI_NUM_BARS; i++) {
		if (!d->bars[i].size)
			continue;
		d->bars[i].mapped = false; /* the old KVM VM's ioeventfds went with it */
		pci_bar_set_addr(d, i, d->bars[i].def_addr);
	}
	le_store(d->cfg + PCI_COMMAND, 0, 2);
	d->cfg[PCI_INTERRUPT_LINE] = 0;
	if (d->msix_cap)
		le_store(d->cfg + d->msix_cap + 2, d->msix_nvec - 1, 2);
	pthread_mutex_lock(&d->msix_lock);
	d->msix_enabled = d->msix_fmask = false;
	d->msix_pending = 0;
	for (i = 0; i < d->msix_nvec; i++) {
		d->msix_table[i] = (struct pci_msix_entry){.ctrl = 1};
		d->msix_dirty[i] = false;
	}
	pthread_mutex_unlock(&d->msix_lock);
	/* Between a VM's teardown and its rebuild there is no KVM VM to attach to: vm_build
	 * runs this again once there is. */
	for (i = 0; machine_built(h->m) && i < d->msix_nvec; i++) {
		int r = machine_irqfd(h->m, d->msix_gsi_base + i, d->msix_irqfd[i], true);

		if (r)
			log_err("pci %s: KVM_IRQFD for MSI-X vector %u (GSI %u): %s", d->name, i,
				d->msix_gsi_base + i, strerror(-r));
	}
}

/* ---- saved state (docs/state.md) ---- */

/* Is a saved configuration space one this device (as created) can hold? Every bit the
 * guest cannot write must match; BAR registers must look like what bar_reg_write makes. */
bool pci_cfg_compatible(const struct pci_dev *d, const uint8_t *cfg, char *why, size_t len)
{
	unsigned o, i;

	for (o = 0; o < PCI_CFG_SIZE; o++) {
		if (o >= PCI_BAR0 && o < PCI_BAR0 + 24)
			continue;
		if ((cfg[o] ^ d->cfg[o]) & ~d->wmask[o] & 0xff) {
			snprintf(why, len,
				 "configuration byte 0x%02x is 0x%02x, the device has 0x%02x", o,
				 cfg[o], d->cfg[o]);
			return false;
		}
	}
	for (i = 0; i < PCI_NUM_BARS; i++) {
		uint32_t v = (uint32_t)le_load(cfg + PCI_BAR0 + 4 * i, 4);
		const struct pci_bar *b = &d->bars[i];

		if (b->size) {
			uint32_t flags = b->is64 ? PCI_BAR_MEM64 : 0;

			if ((v & ((uint32_t)(b->size - 1) | 0xf)) != flags) {
				snprintf(why, len, "BAR %u holds 0x%08x (size 0x%llx)", i, v,
					 (unsigned long long)b->size);
				return false;
			}
		} else if (!(i > 0 && d->bars[i - 1].size && d->bars[i - 1].is64) && v) {
			snprintf(why, len, "BAR %u is not implemented but holds 0x%08x", i, v);
			return false;
		}
	}
	return true;
}

int pci_dev_state(struct state_io *io, struct pci_dev *d)
{
	struct pci_host *h = d->host;
	uint8_t cfg[PCI_CFG_SIZE];
	struct pci_msix_entry table[PCI_MSIX_MAX_VEC] = {0};
	uint64_t pending = 0;
	uint32_t nvec = d->msix_nvec;
	char why[128];
	unsigned v;

	if (state_saving(io)) {
		pthread_mutex_lock(&h->lock);
		memcpy(cfg, d->cfg, sizeof(cfg));
		pthread_mutex_lock(&d->msix_lock);
		memcpy(table, d->msix_table, sizeof(table));
		pending = d->msix_pending;
		pthread_mutex_unlock(&d->msix_lock);
		pthread_mutex_unlock(&h->lock);
	}
	state_blob(io, cfg, sizeof(cfg));
	if (state_u32(io, &nvec, PCI_MSIX_MAX_VEC) != d->msix_nvec && !state_error(io))
		state_fail(io, "%s %02x.0: saved with %u MSI-X vectors, the device has %u", d->name,
			   d->slot, nvec, d->msix_nvec);
	for (v = 0; v < d->msix_nvec && !state_error(io); v++) {
		table[v].addr_lo = state_u32(io, &table[v].addr_lo, UINT32_MAX);
		table[v].addr_hi = state_u32(io, &table[v].addr_hi, UINT32_MAX);
		table[v].data = state_u32(io, &table[v].data, UINT32_MAX);
		table[v].ctrl = state_u32(io, &table[v].ctrl, 1);
		if (table[v].addr_lo & 3)
			state_fail(io, "%s %02x.0: MSI-X vector %u address 0x%x is misaligned",
				   d->name, d->slot, v, table[v].addr_lo);
	}
	pending = state_u64(io, &pending,
			    d->msix_nvec >= 64 ? UINT64_MAX : (1ull << d->msix_nvec) - 1);
	if (state_error(io) || state_saving(io))
		return state_error(io);
	if (!pci_cfg_compatible(d, cfg, why, sizeof(why))) {
		state_fail(io, "%s %02x.0: %s", d->name, d->slot, why);
		return state_error(io);
	}
	if (!state_applying(io))
		return 0;
	/* Apply, then re-establish what follows from it: BAR decoding (and the device's
	 * ioeventfds through bar_map), MSI-X delivery flags and KVM's MSI routes. */
	pthread_mutex_lock(&h->lock);
	memcpy(d->cfg, cfg, sizeof(cfg));
	pthread_mutex_lock(&d->msix_lock);
	memcpy(d->msix_table, table, d->msix_nvec * sizeof(table[0]));
	d->msix_pending = pending;
	for (v = 0; v < d->msix_nvec; v++)
		d->msix_dirty[v] = true;
	pthread_mutex_unlock(&d->msix_lock);
	pci_update_bars(d);
	/* Routes first, then enable (as pci_msix_ctrl_changed does). */
	pci_update_routes(h);
	pthread_mutex_lock(&d->msix_lock);
	if (d->msix_cap) {
		uint16_t ctrl = (uint16_t)le_load(d->cfg + d->msix_cap + 2, 2);

		d->msix_enabled = ctrl & PCI_MSIX_CTRL_ENABLE;
		d->msix_fmask = ctrl & PCI_MSIX_CTRL_FMASK;
	}
	pci_msix_flush_pending(d);
	pthread_mutex_unlock(&d->msix_lock);
	pthread_mutex_unlock(&h->lock);
	return 0;
}
