/* SPDX-License-Identifier: Apache-2.0 */
/* MSI-X for every PCI device: the table and PBA in a BAR, vectors routed to KVM GSIs and
 * raised through irqfds (pci_internal.h). */
#include "vmm/pci.h"

#include <errno.h>
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

/* Set KVM's routes for every vector of every device with a usable message (host lock). */
void pci_update_routes(struct pci_host *h)
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
	r = machine_set_msi_routes(h->m, e, n);
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
void pci_msix_flush_pending(struct pci_dev *d)
{
	unsigned v;

	for (v = 0; v < d->msix_nvec; v++) {
		if ((d->msix_pending >> v & 1) && msix_deliverable(d, v)) {
			d->msix_pending &= ~(1ull << v);
			msix_fire(d, v);
		}
	}
}

bool pci_msix_deliverable(struct pci_dev *d, unsigned vector)
{
	bool ok;

	if (vector >= d->msix_nvec)
		return false;
	pthread_mutex_lock(&d->msix_lock);
	ok = msix_deliverable(d, vector);
	pthread_mutex_unlock(&d->msix_lock);
	return ok;
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
	pci_msix_flush_pending(d);
	pthread_mutex_unlock(&d->msix_lock);
	if (i >= 12 && d->ops && d->ops->msix_changed)
		d->ops->msix_changed(d->opaque);
}

/* The MSI-X message control register was written. */
void pci_msix_ctrl_changed(struct pci_dev *d)
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
	pci_msix_flush_pending(d);
	pthread_mutex_unlock(&d->msix_lock);
	if (d->ops && d->ops->msix_changed)
		d->ops->msix_changed(d->opaque);
}
