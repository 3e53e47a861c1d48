/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device models (DESIGN.md habit 1): each model is one file that defines one const
 * struct device_class (its name, its kind of the description, its constructor and its
 * saved-state sections), and one line in device_table.c lists it. vm_create builds the
 * machine by walking the tables: the platform devices, then the PCI devices on the host
 * bridge. How to add a device: docs/devices.md.
 */
#ifndef KEEL_VMM_DEVICE_H
#define KEEL_VMM_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/state.h"

struct machine;
struct vmdef_device_kind;

/* How many saved-state sections a model may have. */
#define DEVICE_STATES 2

/* A saved-state section of a model (docs/state.md). Each instance's is named `name` for a
 * platform device and `name.SS` for a PCI device (SS: its PCI slot, two hex digits), so a
 * section's name never depends on the other devices; fn gets the instance's object. */
struct device_state {
	const char *name; /* NULL: no (more) sections */
	uint32_t version;
	state_fn fn;
};

struct device_class {
	const char *name; /* for messages: "virtio-blk", "serial" */
	/* The kind of device in the VM's description that configures this model (its JSON
	 * field, limits, PCI slots: config/vmdef_device.h); NULL for the platform's own. */
	const struct vmdef_device_kind *config;
	/* How many the VM has: config's count, else this (from m->def), else exactly one. */
	unsigned (*count)(const struct machine *m);
	/* Its saved-state sections, registered for every instance by devices_create. */
	struct device_state state[DEVICE_STATES];
	/* Create instance i (0 to count - 1) and attach it to the machine: its ports or MMIO,
	 * interrupts, PCI slot, reset and pause hooks; *obj gets the object its state sections
	 * are given. Returns 0, or -errno with err saying why (devices_create adds the name
	 * when err is empty). */
	int (*create)(struct machine *m, unsigned i, void **obj, char *err, size_t errlen);
};

/* Which table: the platform (ISA ports, fixed interrupts) or PCI bus 0. */
enum device_bus { DEVICE_BUS_PLATFORM, DEVICE_BUS_PCI };

/* The table itself: its classes in creation order, and how many (*n). */
const struct device_class *const *device_table(enum device_bus bus, size_t *n);
/* Create every device of that table the VM has, in table order, with its state sections. */
int devices_create(struct machine *m, enum device_bus bus, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Register c's state sections for one instance: obj as its constructor made it, slot its
 * PCI slot (0 for a platform device). devices_create does this; a test that builds a device
 * by its constructor alone does it too. 0 or -errno. */
int device_state_register(struct machine *m, const struct device_class *c, unsigned slot, void *obj)
	__attribute__((warn_unused_result));
/* The name of c's state section k for the instance at slot (0: a platform device). */
void device_state_name(const struct device_class *c, unsigned k, unsigned slot,
		       char name[STATE_NAME_MAX + 1]);

#endif
