/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device models (DESIGN.md habit 1): each model is one file that defines one const
 * struct device_class, and one line in device_table.c lists it. vm_create builds the
 * machine by walking the tables: the platform devices, then the PCI devices on the host
 * bridge. How to add a device: docs/devices.md.
 */
#ifndef KEEL_VMM_DEVICE_H
#define KEEL_VMM_DEVICE_H

#include <stddef.h>

struct machine;
struct vmdef_device_kind;

struct device_class {
	const char *name; /* for messages: "virtio-blk", "serial" */
	/* The kind of device in the VM's description that configures this model (its JSON
	 * field, limits, PCI slots: config/vmdef_device.h); NULL for the platform's own. */
	const struct vmdef_device_kind *config;
	/* How many the VM has: config's count, else this (from m->def), else exactly one. */
	unsigned (*count)(const struct machine *m);
	/* Create instance i (0 to count - 1) and attach it to the machine: its ports or MMIO,
	 * interrupts, PCI slot, reset and pause hooks, saved-state section. Returns 0, or
	 * -errno with err saying why (devices_create adds the name when err is empty). */
	int (*create)(struct machine *m, unsigned i, char *err, size_t errlen);
};

/* Which table: the platform (ISA ports, fixed interrupts) or PCI bus 0. */
enum device_bus { DEVICE_BUS_PLATFORM, DEVICE_BUS_PCI };

/* The table itself: its classes in creation order, and how many (*n). */
const struct device_class *const *device_table(enum device_bus bus, size_t *n);
/* Create every device of that table the VM has, in table order. */
int devices_create(struct machine *m, enum device_bus bus, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
