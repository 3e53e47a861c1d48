/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/lock.h"
#include "lib/le.h"
#include "lib/log.h"
#include "vmm/kvm.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

#define PCI_FIRST_MSI_GSI 24 /* after the IOAPIC's 24 pins */
#define PCI_MAX_MSI_GSI	  1024

struct pci_host {
	struct vm *vm;
	/* lock protects every device's configuration space, BAR placement and MSI-X table,
	 * conf1_addr, and the GSI routing table in KVM. */
	pthread_mutex_t lock;
	uint32_t conf1_addr;
	struct pci_dev bridge;
	struct pci_dev *slots[PCI_MAX_SLOTS];
	uint64_t win64_base, win64_size;
	uint64_t next32, next64; /* BAR placement cursors */
	uint32_t next_gsi;
	struct bus_range cf9; /* the reset register at 0xcf9, inside our 0xcf8-0xcff range */
	bool have_cf9;
};

static struct log_ratelimit pci_rl = LOG_RATELIMIT_INIT(5000, 5);

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

static uint64_t bar_addr(const struct pci_dev *d, unsigned bar)
{
	uint64_t a = (uint32_t)le_load(d->cfg + PCI_BAR0 + 4 * bar, 4) & ~0xfull;

	if (d->bars[bar].is64)
		a |= le_load(d->cfg + PCI_BAR0 + 4 * (bar + 1), 4) << 32;
	return a;
}

static void bar_set_addr(struct pci_dev *d, unsigned bar, uint64_t a)
{
	uint32_t flags = d->bars[bar].is64 ? PCI_BAR_MEM64 : 0;

	le_store(d->cfg + PCI_BAR0 + 4 * bar, (uint32_t)(a & ~(d->bars[bar].size - 1)) | flags, 4);
	if (d->bars[bar].is64)
		le_store(d->cfg + PCI_BAR0 + 4 * (bar + 1),
			 (uint32_t)((a & ~(d->bars[bar].size - 1)) >> 32), 4);
}

static bool in_window(const struct pci_host *h, uint64_t a, uint64_t size)
{
	if (a >= LAYOUT_PCI_MMIO32 && size <= LAYOUT_PCI_MMIO32_SIZE &&
	    a - LAYOUT_PCI_MMIO32 <= LAYOUT_PCI_MMIO32_SIZE - size)
		return true;
	return h && a >= h->win64_base && size <= h->win64_size &&
	       a - h->win64_base <= h->win64_size - size;
}

static bool is_msix_bar(const struct pci_dev *d, unsigned bar)
{
	return d->msix_nvec && bar == d->msix_bar;
}

/* Re-evaluate where each BAR decodes after a command or BAR register change. */
static void pci_update_bars(struct pci_dev *d)
{
	bool mem = (uint32_t)le_load(d->cfg + PCI_COMMAND, 2) & PCI_CMD_MEM;
	unsigned i;

	for (i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		uint64_t a;
		bool map;

		if (!b->size)
			continue;
		a = bar_addr(d, i);
		map = mem && a && in_window(d->host, a, b->size);
		if (map == b->mapped && (!map || a == b->map_addr))
			continue;
		if (b->mapped && d->ops && d->ops->bar_map && !is_msix_bar(d, i))
			d->ops->bar_map(d->opaque, i, b->map_addr, false);
		b->mapped = map;
		b->map_addr = a;
		if (map && d->ops && d->ops->bar_map && !is_msix_bar(d, i))
			d->ops->bar_map(d->opaque, i, a, true);
	}
}

/* ---- MSI-X ---- */

/* Set KVM's routes for every vector of every device with a usable message (host lock). */
static void pci_update_routes(struct pci_host *h)
{
	struct kvm_irq_routing_entry *e;
	unsigned n = 0, s, v;
	int r;

	if (!h)
		return;
	e = calloc(PCI_MAX_SLOTS * PCI_MSIX_MAX_VEC, sizeof(*e));
	if (!e) {
		log_err("pci: out of memory for MSI routes");
		return;
	}
	for (s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slots[s];

		if (!d)
			continue;
		pthread_mutex_lock(&d->msix_lock);
		for (v = 0; v < d->msix_nvec; v++) {
			const struct pci_msix_entry *m = &d->msix_table[v];

			d->msix_dirty[v] = false;
			if ((m->addr_lo & 0xfff00000u) != 0xfee00000u)
				continue; /* not a message an x86 APIC takes */
			e[n].gsi = d->msix_gsi_base + v;
			e[n].type = KVM_IRQ_ROUTING_MSI;
			e[n].u.msi.address_lo = m->addr_lo;
			e[n].u.msi.address_hi = m->addr_hi;
			e[n].u.msi.data = m->data;
			n++;
		}
		pthread_mutex_unlock(&d->msix_lock);
	}
	r = vm_set_irq_routes(h->vm, e, n);
	if (r) {
		log_warn_ratelimited(&pci_rl, "pci: KVM_SET_GSI_ROUTING with %u MSI routes: %s", n,
				     strerror(-r));
		/* Not installed: every vector stays dirty, so the next change tries again. */
		for (s = 0; s < PCI_MAX_SLOTS; s++) {
			struct pci_dev *d = h->slots[s];

			if (!d)
				continue;
			pthread_mutex_lock(&d->msix_lock);
			for (v = 0; v < d->msix_nvec; v++)
				d->msix_dirty[v] = true;
			pthread_mutex_unlock(&d->msix_lock);
		}
	}
	free(e);
}

static bool msix_deliverable(const struct pci_dev *d, unsigned v)
{
	return d->msix_enabled && !d->msix_fmask && !(d->msix_table[v].ctrl & 1);
}

static void msix_fire(struct pci_dev *d, unsigned v)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(5000, 5);
	uint64_t one = 1;

	if (d->msix_irqfd[v] < 0 || write(d->msix_irqfd[v], &one, sizeof(one)) != sizeof(one))
		log_warn_ratelimited(&rl, "pci %s: cannot signal MSI-X vector %u", d->name, v);
}

/* Deliver pending vectors that became deliverable (msix_lock held). */
static void msix_flush_pending(struct pci_dev *d)
{
	unsigned v;

	for (v = 0; v < d->msix_nvec; v++) {
		if ((d->msix_pending >> v & 1) && msix_deliverable(d, v)) {
			d->msix_pending &= ~(1ull << v);
			msix_fire(d, v);
		}
	}
}

void pci_msix_notify(struct pci_dev *d, unsigned vector)
{
	if (vector >= d->msix_nvec)
		return;
	pthread_mutex_lock(&d->msix_lock);
	if (d->msix_enabled) {
		if (msix_deliverable(d, vector))
			msix_fire(d, vector);
		else
			d->msix_pending |= 1ull << vector;
	}
	pthread_mutex_unlock(&d->msix_lock);
}

void pci_msix_describe(struct pci_dev *d, char *buf, size_t len)
{
	size_t n;
	unsigned v;

	if (!lock_within_ms(&d->msix_lock, 100)) {
		snprintf(buf, len, "MSI-X state busy for 100 ms");
		return;
	}
	n = (size_t)snprintf(
		buf, len, "MSI-X %s%s, pending 0x%llx;", d->msix_enabled ? "enabled" : "disabled",
		d->msix_fmask ? ", function masked" : "", (unsigned long long)d->msix_pending);
	for (v = 0; v < d->msix_nvec && n < len; v++) {
		const struct pci_msix_entry *m = &d->msix_table[v];

		n += (size_t)snprintf(buf + n, len - n, " v%u 0x%x@0x%llx%s", v, m->data,
				      (unsigned long long)m->addr_hi << 32 | m->addr_lo,
				      m->ctrl & 1 ? " masked" : "");
	}
	pthread_mutex_unlock(&d->msix_lock);
}

uint64_t pci_msix_read(struct pci_dev *d, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	unsigned i;

	if (size == 8)
		return pci_msix_read(d, off, 4) | pci_msix_read(d, off + 4, 4) << 32;
	if (off < (uint64_t)d->msix_nvec * PCI_MSIX_ENTRY_SIZE) {
		const struct pci_msix_entry *m = &d->msix_table[off / PCI_MSIX_ENTRY_SIZE];
		uint8_t raw[16];

		le_store(raw, m->addr_lo, 4);
		le_store(raw + 4, m->addr_hi, 4);
		le_store(raw + 8, m->data, 4);
		le_store(raw + 12, m->ctrl, 4);
		i = off % PCI_MSIX_ENTRY_SIZE;
		if (i + size <= 16)
			v = (uint32_t)le_load(raw + i, size);
	} else if (off >= PCI_MSIX_PBA_OFFSET && off + size <= PCI_MSIX_PBA_OFFSET + 8) {
		pthread_mutex_lock(&d->msix_lock);
		v = d->msix_pending >> ((off - PCI_MSIX_PBA_OFFSET) * 8);
		pthread_mutex_unlock(&d->msix_lock);
		if (size < 8)
			v &= (1ull << (size * 8)) - 1;
	}
	return v;
}

void pci_msix_write(struct pci_dev *d, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_msix_entry *m;
	unsigned v, i;
	uint8_t raw[16];
	bool routes = false;

	if (size == 8) {
		pci_msix_write(d, off, 4, (uint32_t)value);
		pci_msix_write(d, off + 4, 4, value >> 32);
		return;
	}
	if (off >= (uint64_t)d->msix_nvec * PCI_MSIX_ENTRY_SIZE)
		return; /* the PBA is read-only */
	v = (unsigned)(off / PCI_MSIX_ENTRY_SIZE);
	i = off % PCI_MSIX_ENTRY_SIZE;
	if (i + size > 16)
		return;
	m = &d->msix_table[v];
	pthread_mutex_lock(&d->msix_lock);
	le_store(raw, m->addr_lo, 4);
	le_store(raw + 4, m->addr_hi, 4);
	le_store(raw + 8, m->data, 4);
	le_store(raw + 12, m->ctrl, 4);
	le_store(raw + i, (uint32_t)value, size);
	if (i < 12) {
		m->addr_lo = (uint32_t)le_load(raw, 4) & ~3u;
		m->addr_hi = (uint32_t)le_load(raw + 4, 4);
		m->data = (uint32_t)le_load(raw + 8, 4);
		d->msix_dirty[v] = true;
		routes = !(m->ctrl & 1);
	} else {
		bool was_masked = m->ctrl & 1, unmask = !((uint32_t)le_load(raw + 12, 4) & 1);

		routes = was_masked && unmask && d->msix_dirty[v];
		/* A vector whose new message has no KVM route yet stays masked until the route
		 * is in, so the device cannot signal it into nothing (or the old message). */
		m->ctrl = routes ? 1 : (uint32_t)le_load(raw + 12, 4) & 1;
	}
	pthread_mutex_unlock(&d->msix_lock);
	if (routes)
		pci_update_routes(d->host);
	pthread_mutex_lock(&d->msix_lock);
	if (routes && i >= 12)
		m->ctrl = 0;
	msix_flush_pending(d);
	pthread_mutex_unlock(&d->msix_lock);
}

/* The MSI-X message control register was written. */
static void msix_ctrl_changed(struct pci_dev *d)
{
	uint16_t ctrl = (uint16_t)le_load(d->cfg + d->msix_cap + 2, 2);
	bool dirty = false;
	unsigned v;

	/* Routes first, then enable: a device must not signal a vector KVM cannot route. */
	pthread_mutex_lock(&d->msix_lock);
	for (v = 0; v < d->msix_nvec; v++)
		dirty |= d->msix_dirty[v];
	pthread_mutex_unlock(&d->msix_lock);
	if (dirty && (ctrl & PCI_MSIX_CTRL_ENABLE))
		pci_update_routes(d->host);
	pthread_mutex_lock(&d->msix_lock);
	d->msix_enabled = ctrl & PCI_MSIX_CTRL_ENABLE;
	d->msix_fmask = ctrl & PCI_MSIX_CTRL_FMASK;
	msix_flush_pending(d);
	pthread_mutex_unlock(&d->msix_lock);
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
		msix_ctrl_changed(d);
	if (d->ops && d->ops->cfg_write)
		d->ops->cfg_write(d->opaque, off, size, value);
}

bool pci_conf1_decode(uint32_t addr, unsigned port_off, unsigned *slot, unsigned *fn, unsigned *reg)
{
	if (!(addr & 0x80000000u) || ((addr >> 16) & 0xff) != 0)
		return false;
	*slot = (addr >> 11) & 0x1f;
	*fn = (addr >> 8) & 7;
	*reg = (addr & 0xfc) + port_off;
	return true;
}

/* Device at (slot, fn) on bus 0, or NULL (reads then give all ones). */
static struct pci_dev *pci_lookup(struct pci_host *h, unsigned slot, unsigned fn)
{
	return fn == 0 && slot < PCI_MAX_SLOTS ? h->slots[slot] : NULL;
}

static uint64_t ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static uint64_t pci_cfg_access(struct pci_host *h, struct pci_dev *d, unsigned reg, unsigned size,
			       bool write, uint64_t value)
{
	uint64_t v = 0;

	if (!d)
		return ones(size);
	if (size == 8) { /* an 8-byte ECAM access: two dwords */
		v = pci_cfg_access(h, d, reg, 4, write, value);
		return v | pci_cfg_access(h, d, reg + 4, 4, write, value >> 32) << 32;
	}
	if (reg & (size - 1))
		return ones(size); /* unaligned: ignored */
	pthread_mutex_lock(&h->lock);
	if (write)
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
	return pci_cfg_access(h, pci_lookup(h, slot, fn), reg, size, false, 0);
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
	pci_cfg_access(h, pci_lookup(h, slot, fn), reg, size, true, value);
}

static const struct bus_ops conf1_ops = {.read = conf1_read, .write = conf1_write};

static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	unsigned reg = off & 0xfff;

	return pci_cfg_access(h, pci_lookup(h, (off >> 15) & 31, (off >> 12) & 7), reg, size, false,
			      0);
}

static void ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;

	pci_cfg_access(h, pci_lookup(h, (off >> 15) & 31, (off >> 12) & 7), off & 0xfff, size, true,
		       value);
}

static const struct bus_ops ecam_ops = {.read = ecam_read, .write = ecam_write};

/* The device BAR that decodes gpa, with the offset into it (host lock held). */
static struct pci_dev *pci_find_bar(struct pci_host *h, uint64_t gpa, unsigned size, unsigned *bar,
				    uint64_t *off)
{
	unsigned s, i;

	for (s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slots[s];

		if (!d)
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
	if (d && is_msix_bar(d, bar)) {
		if (write)
			pci_msix_write(d, off, size, value);
		else
			v = pci_msix_read(d, off, size);
		pthread_mutex_unlock(&h->lock);
		return v;
	}
	pthread_mutex_unlock(&h->lock);
	if (!d)
		return write ? 0 : ones(size);
	if (write) {
		if (d->ops->bar_write)
			d->ops->bar_write(d->opaque, bar, off, size, value);
		return 0;
	}
	return d->ops->bar_read ? d->ops->bar_read(d->opaque, bar, off, size) : ones(size);
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

static const struct bus_ops win32_ops = {.read = win32_read, .write = win32_write};
static const struct bus_ops win64_ops = {.read = win64_read, .write = win64_write};

uint64_t pci_window64_base(uint64_t ram_size)
{
	struct mem_region regions[MEM_MAX_REGIONS];
	unsigned n = mem_layout(ram_size, regions), i;
	uint64_t end = LAYOUT_HIGH_RAM;

	for (i = 0; i < n; i++)
		if (regions[i].gpa + regions[i].size > end)
			end = regions[i].gpa + regions[i].size;
	return (end + GiB - 1) & ~(GiB - 1);
}

/* Power-on state of one device (VM reset): BARs where the firmware put them, decoding off,
 * MSI-X off and masked, irqfds attached to the (new) KVM VM. */
static void pci_dev_power_on(struct pci_dev *d)
{
	struct pci_host *h = d->host;
	int vm_fd = atomic_load(&h->vm->vm_fd);
	unsigned i;

	for (i = 0; i < PCI_NUM_BARS; i++) {
		if (!d->bars[i].size)
			continue;
		d->bars[i].mapped = false; /* the old KVM VM's ioeventfds went with it */
		bar_set_addr(d, i, d->bars[i].def_addr);
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
	for (i = 0; vm_fd >= 0 && i < d->msix_nvec; i++) {
		int r = kvm_vm_irqfd(vm_fd, d->msix_gsi_base + i, d->msix_irqfd[i], 0);

		if (r)
			log_err("pci %s: KVM_IRQFD for MSI-X vector %u (GSI %u): %s", d->name, i,
				d->msix_gsi_base + i, strerror(-r));
	}
}

static void pci_host_reset(void *opaque)
{
	struct pci_host *h = opaque;
	unsigned s;

	pthread_mutex_lock(&h->lock);
	h->conf1_addr = 0;
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

int pci_dev_register(struct pci_host *h, struct pci_dev *d)
{
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
	if (h->next_gsi + d->msix_nvec > PCI_MAX_MSI_GSI)
		return -ENOSPC;
	for (i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		uint64_t *cur;

		if (!b->size)
			continue;
		cur = b->is64 ? &h->next64 : &h->next32;
		*cur = (*cur + b->size - 1) & ~(b->size - 1);
		b->def_addr = *cur;
		if (!in_window(h, b->def_addr, b->size))
			return -ENOSPC;
		*cur += b->size;
	}
	d->msix_gsi_base = h->next_gsi;
	for (i = 0; i < d->msix_nvec; i++) {
		d->msix_irqfd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->msix_irqfd[i] < 0)
			return -errno;
	}
	h->next_gsi += d->msix_nvec;
	d->host = h;
	d->slot = s;
	pthread_mutex_lock(&h->lock);
	h->slots[s] = d;
	pthread_mutex_unlock(&h->lock);
	/* Not yet reset by the VM's first build when the VM fd does not exist. */
	if (atomic_load(&h->vm->vm_fd) >= 0) {
		pthread_mutex_lock(&h->lock);
		pci_dev_power_on(d);
		pthread_mutex_unlock(&h->lock);
	} else {
		for (i = 0; i < PCI_NUM_BARS; i++)
			if (d->bars[i].size)
				bar_set_addr(d, i, d->bars[i].def_addr);
	}
	return 0;
}

static int pci_host_state(struct state_io *io, void *opaque);

int pci_host_create(struct vm *vm, struct pci_host **out)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->vm = vm;
	pthread_mutex_init(&h->lock, NULL);
	h->win64_base = pci_window64_base(vm->cfg->def.memory);
	h->win64_size = LAYOUT_PCI_MMIO64_SIZE;
	h->next32 = LAYOUT_PCI_MMIO32;
	h->next64 = h->win64_base;
	h->next_gsi = PCI_FIRST_MSI_GSI;
	/* 00:00.0, the host bridge ("Red Hat, Inc." generic PCIe host bridge ID). */
	pci_dev_init(&h->bridge, 0x1b36, 0x0008, 0x060000, 0, 0x1af4, 0x1100);
	h->bridge.name = "host-bridge";
	h->bridge.host = h;
	h->slots[0] = &h->bridge;

	/* 0xcf9 (the reset control register) sits inside 0xcf8-0xcff: take it over. */
	h->have_cf9 = bus_unregister(&vm->pio, PORT_RESET, &h->cf9) == 0;
	r = bus_register(&vm->pio, PORT_PCI_CONF1, 8, &conf1_ops, h, "pci-conf1");
	r = r
		    ?: bus_register(&vm->mmio, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, &ecam_ops, h,
				    "pci-ecam");
	r = r
		    ?: bus_register(&vm->mmio, LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_SIZE,
				    &win32_ops, h, "pci-mmio32");
	r = r ?: bus_register(&vm->mmio, h->win64_base, h->win64_size, &win64_ops, h, "pci-mmio64");
	r = r ?: vm_add_reset_hook(vm, pci_host_reset, h);
	r = r ?: vm_add_state_section(vm, "pci", 1, pci_host_state, h);
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
	h->slots[d->slot] = NULL;
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

/* Devices are unregistered by their owners first (virtio_dev_destroy). */
void pci_host_destroy(struct pci_host *h)
{
	free(h);
}

/* ---- saved state (docs/state.md) ---- */

/* Is a saved configuration space one this device (as created) can hold? Every bit the
 * guest cannot write must match; BAR registers must look like what bar_reg_write makes. */
static bool cfg_compatible(const struct pci_dev *d, const uint8_t *cfg, char *why, size_t len)
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
	if (!cfg_compatible(d, cfg, why, sizeof(why))) {
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
	/* Routes first, then enable (as msix_ctrl_changed does). */
	pci_update_routes(h);
	pthread_mutex_lock(&d->msix_lock);
	if (d->msix_cap) {
		uint16_t ctrl = (uint16_t)le_load(d->cfg + d->msix_cap + 2, 2);

		d->msix_enabled = ctrl & PCI_MSIX_CTRL_ENABLE;
		d->msix_fmask = ctrl & PCI_MSIX_CTRL_FMASK;
	}
	msix_flush_pending(d);
	pthread_mutex_unlock(&d->msix_lock);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* The host bridge itself: CONFIG_ADDRESS and the bridge's configuration space. */
static int pci_host_state(struct state_io *io, void *opaque)
{
	struct pci_host *h = opaque;
	uint32_t addr = h->conf1_addr;
	uint8_t cfg[PCI_CFG_SIZE];
	char why[128];

	if (state_saving(io))
		memcpy(cfg, h->bridge.cfg, sizeof(cfg));
	addr = state_u32(io, &addr, UINT32_MAX);
	state_blob(io, cfg, sizeof(cfg));
	if (state_error(io) || state_saving(io))
		return state_error(io);
	if (!cfg_compatible(&h->bridge, cfg, why, sizeof(why))) {
		state_fail(io, "host bridge: %s", why);
		return state_error(io);
	}
	if (state_applying(io)) {
		pthread_mutex_lock(&h->lock);
		h->conf1_addr = addr;
		memcpy(h->bridge.cfg, cfg, sizeof(cfg));
		pthread_mutex_unlock(&h->lock);
	}
	return 0;
}
