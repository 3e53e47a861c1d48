/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI's insides, shared by its three files and nothing else: pci.c (a device's configuration
 * space and BARs, its saved state), msix.c (MSI-X: table, PBA, KVM routes and irqfds) and
 * pci_host.c (the host bridge: 0xCF8/0xCFC and ECAM, the MMIO windows, slots, reset).
 * Locks: pci.h.
 */
#ifndef KEEL_VMM_PCI_INTERNAL_H
#define KEEL_VMM_PCI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "vmm/bus.h"
#include "vmm/pci.h"

#define PCI_FIRST_MSI_GSI 24 /* after the IOAPIC's 24 pins */
#define PCI_MAX_MSI_GSI	  1024

struct pci_host {
	struct machine *m;
	/* lock protects every device's configuration space, BAR placement and MSI-X table,
	 * conf1_addr, and the GSI routing table in KVM. */
	pthread_mutex_t lock;
	uint32_t conf1_addr;
	struct pci_dev bridge;
	struct pci_dev *slots[PCI_MAX_SLOTS];
	uint64_t win64_base, win64_size;
	uint64_t next32, next64; /* BAR placement cursors */
	struct bus_range cf9;	 /* the reset register at 0xcf9, inside our 0xcf8-0xcff range */
	bool have_cf9;
	/* q35.c: the firmware image was given back this boot (the MCH's power-on clears it). */
	bool firmware_released;
};

extern struct log_ratelimit pci_rl;
/* KEEL_VMM_TRACE_PCI set: log what the guest does to configuration space and BARs. */
extern bool pci_trace;
/* Any thread: whether to log one more trace line (config write, BAR decode change or BAR
 * access: the first 4000 are, so that a guest cannot flood the log under the host lock). */
bool pci_trace_take(void);

/* pci.c: BARs (host lock held) */
uint64_t pci_bar_addr(const struct pci_dev *d, unsigned bar);
void pci_bar_set_addr(struct pci_dev *d, unsigned bar, uint64_t a);
bool pci_in_window(const struct pci_host *h, uint64_t a, uint64_t size);
bool pci_is_msix_bar(const struct pci_dev *d, unsigned bar);
/* Map or unmap each BAR as the command register and its address say. */
void pci_update_bars(struct pci_dev *d);
/* The device as after power-on: configuration space, BARs at their defaults, MSI-X off. */
void pci_dev_power_on(struct pci_dev *d);
/* A saved configuration space the device as created can take (why says what not). */
bool pci_cfg_compatible(const struct pci_dev *d, const uint8_t *cfg, char *why, size_t len);

/* msix.c (host lock held) */
/* Rebuild the VM's GSI routing table from every device's MSI-X table. */
void pci_update_routes(struct pci_host *h);
/* The MSI-X enable or function-mask bits changed. */
void pci_msix_ctrl_changed(struct pci_dev *d);
void pci_msix_flush_pending(struct pci_dev *d);

#endif
