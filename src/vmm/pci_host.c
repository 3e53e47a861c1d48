/* SPDX-License-Identifier: Apache-2.0 */
/* The PCI host bridge: configuration through 0xCF8/0xCFC and ECAM, the 32- and 64-bit MMIO
 * windows that dispatch BAR accesses, the slots on bus 0, reset and saved state. */
#include "vmm/pci.h"

#include <errno.h>
#include <linux/kvm.h>
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
#include "vmm/state.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/q35.h"

bool pci_conf1_decode(uint32_t addr, unsigned port_off, unsigned *slot, unsigned *fn, unsigned *reg)
{
	if (!(addr & 0x80000000u) || ((addr >> 16) & 0xff) != 0)
		return false;
	*slot = (addr >> 11) & 0x1f;
	*fn = (addr >> 8) & 7;
	*reg = (addr & 0xfc) + port_off;
	return true;
}

/* The published device at (slot, fn) on bus 0, or NULL (reads then give all ones): a device
 * still pending (pci_dev_publish, pci.h) is not there for the guest. Host lock held: the
 * device cannot leave the bus (pci_dev_unregister takes the lock) while the caller uses it. */
static struct pci_dev *pci_lookup(struct pci_host *h, unsigned slot, unsigned fn)
{
	struct pci_dev *d = fn == 0 && slot < PCI_MAX_SLOTS ? h->slots[slot] : NULL;

	return d && d->published ? d : NULL;
}

static uint64_t ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/* A configuration space access to (slot, fn): the look-up and the access under one hold of
 * the host lock. */
static uint64_t pci_cfg_access(struct pci_host *h, unsigned slot, unsigned fn, unsigned reg,
			       unsigned size, bool write, uint64_t value)
{
	struct pci_dev *d;
	uint64_t v = 0;

	if (size == 8) { /* an 8-byte ECAM access: two dwords */
		v = pci_cfg_access(h, slot, fn, reg, 4, write, value);
		return v | pci_cfg_access(h, slot, fn, reg + 4, 4, write, value >> 32) << 32;
	}
	if (reg & (size - 1))
		return ones(size); /* unaligned: ignored */
	pthread_mutex_lock(&h->lock);
	d = pci_lookup(h, slot, fn);
	if (!d)
		v = ones(size);
	else if (write)
		pci_cfg_write(d, reg, size, (uint32_t)value);
	else
		v = pci_cfg_read(d, reg, size);
	pthread_mutex_unlock(&h->lock);
	return v;
}

static uint64_t conf1_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	unsigned slot, fn, reg;
	uint32_t addr;

	if (off == 1 && size == 1 && h->have_cf9)
		return h->cf9.ops->read ? h->cf9.ops->read(h->cf9.opaque, 0, 1) : 0xff;
	if (off == 0 && size == 4) {
		pthread_mutex_lock(&h->lock);
		addr = h->conf1_addr;
		pthread_mutex_unlock(&h->lock);
		return addr;
	}
	if (off < 4)
		return ones(size);
	pthread_mutex_lock(&h->lock);
	addr = h->conf1_addr;
	pthread_mutex_unlock(&h->lock);
	if (!pci_conf1_decode(addr, (unsigned)off - 4, &slot, &fn, &reg) || (reg & 3) + size > 4)
		return ones(size);
	return pci_cfg_access(h, slot, fn, reg, size, false, 0);
}

static void conf1_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;
	unsigned slot, fn, reg;
	uint32_t addr;

	if (off == 1 && size == 1 && h->have_cf9) {
		if (h->cf9.ops->write)
			h->cf9.ops->write(h->cf9.opaque, 0, 1, value);
		return;
	}
	if (off == 0 && size == 4) {
		pthread_mutex_lock(&h->lock);
		h->conf1_addr = (uint32_t)value;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	if (off < 4)
		return;
	pthread_mutex_lock(&h->lock);
	addr = h->conf1_addr;
	pthread_mutex_unlock(&h->lock);
	if (!pci_conf1_decode(addr, (unsigned)off - 4, &slot, &fn, &reg) || (reg & 3) + size > 4)
		return;
	pci_cfg_access(h, slot, fn, reg, size, true, value);
}

static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	unsigned reg = off & 0xfff;

	return pci_cfg_access(h, (off >> 15) & 31, (off >> 12) & 7, reg, size, false, 0);
}

static void ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;

	pci_cfg_access(h, (off >> 15) & 31, (off >> 12) & 7, off & 0xfff, size, true, value);
}

/* The published device BAR that decodes gpa, with the offset into it (host lock held). A
 * pending device's BARs never decode (its command register stays 0 while the guest cannot
 * reach its configuration space); skipped all the same. */
static struct pci_dev *pci_find_bar(struct pci_host *h, uint64_t gpa, unsigned size, unsigned *bar,
				    uint64_t *off)
{
	unsigned s, i;

	for (s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slots[s];

		if (!d || !d->published)
			continue;
		for (i = 0; i < PCI_NUM_BARS; i++) {
			const struct pci_bar *b = &d->bars[i];

			if (b->mapped && gpa >= b->map_addr && gpa - b->map_addr < b->size &&
			    size <= b->size - (gpa - b->map_addr)) {
				*bar = i;
				*off = gpa - b->map_addr;
				return d;
			}
		}
	}
	return NULL;
}

static uint64_t window_access(struct pci_host *h, uint64_t gpa, unsigned size, bool write,
			      uint64_t value)
{
	struct pci_dev *d;
	unsigned bar;
	uint64_t off, v = 0;

	pthread_mutex_lock(&h->lock);
	d = pci_find_bar(h, gpa, size, &bar, &off);
	if (d && pci_is_msix_bar(d, bar)) {
		if (write)
			pci_msix_write(d, off, size, value);
		else
			v = pci_msix_read(d, off, size);
		pthread_mutex_unlock(&h->lock);
		return v;
	}
	pthread_mutex_unlock(&h->lock);
	if (!d) {
		if (pci_trace_take())
			log_info("pci-trace: %s 0x%llx/%u: no BAR decodes it",
				 write ? "write" : "read", (unsigned long long)gpa, size);
		return write ? 0 : ones(size);
	}
	if (write) {
		if (d->ops->bar_write)
			d->ops->bar_write(d->opaque, bar, off, size, value);
	} else {
		value = d->ops->bar_read ? d->ops->bar_read(d->opaque, bar, off, size) : ones(size);
	}
	if (pci_trace_take())
		log_info("pci-trace: %02x.0 BAR %u +0x%llx/%u %s 0x%llx", d->slot, bar,
			 (unsigned long long)off, size, write ? "write" : "read",
			 (unsigned long long)value);
	return write ? 0 : value;
}

static uint64_t win32_read(void *opaque, uint64_t off, unsigned size)
{
	return window_access(opaque, LAYOUT_PCI_MMIO32 + off, size, false, 0);
}

static void win32_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	window_access(opaque, LAYOUT_PCI_MMIO32 + off, size, true, value);
}

static uint64_t win64_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;

	return window_access(h, h->win64_base + off, size, false, 0);
}

static void win64_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;

	window_access(h, h->win64_base + off, size, true, value);
}

static const struct bus_ops conf1_ops = {.read = conf1_read, .write = conf1_write};
static const struct bus_ops ecam_ops = {.read = ecam_read, .write = ecam_write};
static const struct bus_ops win32_ops = {.read = win32_read, .write = win32_write};
static const struct bus_ops win64_ops = {.read = win64_read, .write = win64_write};

uint64_t pci_window64_base(uint64_t ram_size, bool firmware)
{
	struct mem_region regions[MEM_MAX_REGIONS];
	unsigned n = mem_layout(ram_size, firmware, regions), i;
	uint64_t end = LAYOUT_HIGH_RAM;

	for (i = 0; i < n; i++)
		if (regions[i].gpa + regions[i].size > end)
			end = regions[i].gpa + regions[i].size;
	return (end + GiB - 1) & ~(GiB - 1);
}

uint64_t pci_window64_end(uint64_t ram_size, bool firmware, unsigned phys_bits)
{
	uint64_t base = pci_window64_base(ram_size, firmware);
	uint64_t ovmf = (base + LAYOUT_PCI_MMIO64_OVMF - 1) / LAYOUT_PCI_MMIO64_OVMF *
			LAYOUT_PCI_MMIO64_OVMF;
	uint64_t end;

	ovmf += LAYOUT_PCI_MMIO64_OVMF;
	end = ovmf > base + LAYOUT_PCI_MMIO64_SIZE ? ovmf : base + LAYOUT_PCI_MMIO64_SIZE;
	/* OVMF 2022.11 (Debian 12's) ignores X-PciMmio64Mb when it trusts the CPUID's address
	 * width and puts its aperture at [2^pb - 2^(pb-3), 2^pb), pb at most 47 (at most 40
	 * without 1 GiB pages, which only lowers it): decode up to 2^pb, as a real host bridge
	 * decodes everything that is not RAM. */
	if (firmware && phys_bits) {
		uint64_t top = 1ull << (phys_bits < LAYOUT_PHYS_BITS_MAX ? phys_bits
									 : LAYOUT_PHYS_BITS_MAX);

		if (top > end)
			end = top;
	}
	return end;
}

unsigned pci_guest_phys_bits(const struct kvm_cpuid2 *cpuid)
{
	for (unsigned i = 0; cpuid && i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		/* PhysBits (EAX[7:0]) alone, as edk2 2022.11 reads it: a GuestPhysBits below
		 * it would only narrow the window under an OVMF that does not look at it. */
		if (e->function == 0x80000008)
			return e->eax & 0xff;
	}
	return 0;
}

/* Does keel's own placement of a BAR at a (size bytes) stay in its part of the windows? */
static bool pci_in_placement(const struct pci_host *h, uint64_t a, uint64_t size, bool is64)
{
	uint64_t lo = is64 ? h->win64_base : LAYOUT_PCI_MMIO32;
	uint64_t len = is64 ? LAYOUT_PCI_MMIO64_SIZE : LAYOUT_PCI_MMIO32_SIZE;

	return a >= lo && size <= len && a - lo <= len - size;
}

static void pci_host_reset(void *opaque)
{
	struct pci_host *h = opaque;
	unsigned s;

	pthread_mutex_lock(&h->lock);
	h->conf1_addr = 0;
	q35_mch_power_on(&h->bridge);
	for (s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slots[s];

		if (!d)
			continue;
		pci_dev_power_on(d);
		if (d->ops && d->ops->reset)
			d->ops->reset(d->opaque);
	}
	pthread_mutex_unlock(&h->lock);
}

/* The lowest GSIs from PCI_FIRST_MSI_GSI that no device on the bus has, n of them in a row:
 * those of a device taken off the bus (hot unplug) are used again. At boot, devices coming
 * one after another, each gets the GSIs after the previous one's. */
static int pci_gsi_alloc(struct pci_host *h, unsigned n, uint32_t *base)
{
	uint32_t b = PCI_FIRST_MSI_GSI;
	bool moved = true;

	pthread_mutex_lock(&h->lock);
	while (moved) { /* past every range that overlaps [b, b + n): b only grows */
		moved = false;
		for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
			const struct pci_dev *o = h->slots[s];

			if (o && o->msix_nvec && n && b < o->msix_gsi_base + o->msix_nvec &&
			    o->msix_gsi_base < b + n) {
				b = o->msix_gsi_base + o->msix_nvec;
				moved = true;
			}
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (b + n > PCI_MAX_MSI_GSI)
		return -ENOSPC;
	*base = b;
	return 0;
}

int pci_dev_register(struct pci_host *h, struct pci_dev *d)
{
	uint32_t gsi;
	unsigned s, i;

	if (d->slot) {
		s = d->slot;
		if (s >= PCI_MAX_SLOTS)
			return -EINVAL;
		if (h->slots[s])
			return -EBUSY;
	} else {
		for (s = 1; s < PCI_MAX_SLOTS && h->slots[s]; s++)
			;
		if (s == PCI_MAX_SLOTS)
			return -ENOSPC;
	}
	if (pci_gsi_alloc(h, d->msix_nvec, &gsi))
		return -ENOSPC;
	for (i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		uint64_t *cur;

		if (!b->size)
			continue;
		cur = b->is64 ? &h->next64 : &h->next32;
		*cur = (*cur + b->size - 1) & ~(b->size - 1);
		b->def_addr = *cur;
		if (!pci_in_placement(h, b->def_addr, b->size, b->is64))
			return -ENOSPC;
		*cur += b->size;
	}
	d->msix_gsi_base = gsi;
	for (i = 0; i < d->msix_nvec; i++) {
		d->msix_irqfd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->msix_irqfd[i] < 0)
			return -errno;
	}
	d->host = h;
	d->slot = s;
	pthread_mutex_lock(&h->lock);
	/* In a VM that runs (a hot add) the guest sees it once its owner publishes it. */
	d->published = !machine_built(h->m);
	h->slots[s] = d;
	pthread_mutex_unlock(&h->lock);
	/* Not yet reset by the VM's first build when the VM fd does not exist. */
	if (machine_built(h->m)) {
		pthread_mutex_lock(&h->lock);
		pci_dev_power_on(d);
		pthread_mutex_unlock(&h->lock);
	} else {
		for (i = 0; i < PCI_NUM_BARS; i++)
			if (d->bars[i].size)
				pci_bar_set_addr(d, i, d->bars[i].def_addr);
	}
	return 0;
}

static int pci_host_state(struct state_io *io, void *opaque);

int pci_host_create(struct machine *m, struct pci_host **out)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->m = m;
	pthread_mutex_init(&h->lock, NULL);
	pci_trace = getenv("KEEL_VMM_TRACE_PCI") && *getenv("KEEL_VMM_TRACE_PCI");
	h->win64_base = pci_window64_base(m->def->memory, m->def->firmware != VM_FIRMWARE_NONE);
	h->win64_size = pci_window64_end(m->def->memory, m->def->firmware != VM_FIRMWARE_NONE,
					 m->phys_bits) -
			h->win64_base;
	h->next32 = LAYOUT_PCI_MMIO32;
	h->next64 = h->win64_base;
	/* 00:00.0, the host bridge: a Q35 MCH. */
	q35_mch_init(&h->bridge);
	h->bridge.name = "host-bridge";
	h->bridge.host = h;
	h->bridge.published = true;
	h->slots[0] = &h->bridge;

	/* 0xcf9 (the reset control register) sits inside 0xcf8-0xcff: take it over. */
	h->have_cf9 = bus_unregister(m->pio, PORT_RESET, &h->cf9) == 0;
	r = bus_register(m->pio, PORT_PCI_CONF1, 8, &conf1_ops, h, "pci-conf1");
	r = r
		    ?: bus_register_movable(m->mmio, LAYOUT_PCI_ECAM_SIZE, &ecam_ops, h,
					    PCI_ECAM_BUS_NAME);
	r = r
		    ?: bus_register(m->mmio, LAYOUT_PCI_MMIO32,
				    LAYOUT_PCI_MMIO32_END - LAYOUT_PCI_MMIO32, &win32_ops, h,
				    "pci-mmio32");
	r = r ?: bus_register(m->mmio, h->win64_base, h->win64_size, &win64_ops, h, "pci-mmio64");
	r = r ?: machine_add_reset_hook(m, pci_host_reset, h);
	r = r ?: machine_add_state_section(m, "pci", 2, pci_host_state, h);
	if (r) {
		free(h);
		return r;
	}
	q35_mch_power_on(&h->bridge);
	r = q35_lpc_create(m, h);
	if (r) {
		free(h);
		return r;
	}
	*out = h;
	return 0;
}

void pci_dev_unregister(struct pci_dev *d)
{
	struct pci_host *h = d->host;
	unsigned i;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	/* Decoding off first: a device unplugged from a running VM drops its BARs' KVM
	 * ioeventfds (bar_map), so nothing of it stays behind at their addresses. Not once the
	 * KVM VM is gone (the process ending): they went with it. */
	if (machine_built(h->m)) {
		le_store(d->cfg + PCI_COMMAND, 0, 2);
		pci_update_bars(d);
	}
	h->slots[d->slot] = NULL;
	d->published = false;
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_lock(&d->msix_lock);
	for (i = 0; i < d->msix_nvec; i++) {
		if (d->msix_irqfd[i] >= 0)
			close(d->msix_irqfd[i]);
		d->msix_irqfd[i] = -1;
	}
	pthread_mutex_unlock(&d->msix_lock);
	d->host = NULL;
}

void pci_dev_publish(struct pci_dev *d)
{
	struct pci_host *h = d->host;

	pthread_mutex_lock(&h->lock);
	d->published = true;
	pthread_mutex_unlock(&h->lock);
}

bool pci_slot_used(struct pci_host *h, unsigned slot)
{
	bool used;

	if (slot >= PCI_MAX_SLOTS)
		return true;
	pthread_mutex_lock(&h->lock);
	used = h->slots[slot] != NULL;
	pthread_mutex_unlock(&h->lock);
	return used;
}

/* Devices are unregistered by their owners first (virtio_dev_destroy). */
void pci_host_destroy(struct pci_host *h)
{
	free(h);
}

/* The host bridge itself: CONFIG_ADDRESS and the bridge's configuration space. */
static int pci_host_state(struct state_io *io, void *opaque)
{
	struct pci_host *h = opaque;
	uint32_t addr = h->conf1_addr;
	uint8_t cfg[PCI_CFG_SIZE];
	char why[128];

	if (io->version < 2) {
		state_fail(io, "saved with keel's earlier generic host bridge (1b36:0008), not the "
			       "Q35 MCH: restore it with the keel-vmm that saved it");
		return state_error(io);
	}
	if (state_saving(io))
		memcpy(cfg, h->bridge.cfg, sizeof(cfg));
	addr = state_u32(io, &addr, UINT32_MAX);
	state_blob(io, cfg, sizeof(cfg));
	if (state_error(io) || state_saving(io))
		return state_error(io);
	if (!pci_cfg_compatible(&h->bridge, cfg, why, sizeof(why))) {
		state_fail(io, "host bridge: %s", why);
		return state_error(io);
	}
	if (state_applying(io)) {
		pthread_mutex_lock(&h->lock);
		h->conf1_addr = addr;
		memcpy(h->bridge.cfg, cfg, sizeof(cfg));
		q35_mch_apply(&h->bridge);
		pthread_mutex_unlock(&h->lock);
	}
	return 0;
}
