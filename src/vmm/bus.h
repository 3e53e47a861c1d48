/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Port-I/O and MMIO dispatch. Devices register address ranges with a const ops table
 * before the vCPUs start; afterwards the bus is read-only, so lookups take no lock.
 * Handlers run on vCPU threads, concurrently: each device locks its own state.
 */
#ifndef KEEL_VMM_BUS_H
#define KEEL_VMM_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct bus_ops {
	/* offset is relative to the registered base; size is 1, 2, 4 or 8. */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

#define BUS_MAX_RANGES 64

/* A range whose base the guest programs (a chipset register: PMBASE, PCIEXBAR): registered
 * at set-up like the others, moved at any time by bus_move; it takes precedence over fixed
 * ranges where they overlap, as the chipset's decoder does. */
#define BUS_MAX_MOVABLE 4
#define BUS_UNMAPPED	UINT64_MAX

struct bus_movable {
	_Atomic uint64_t base; /* BUS_UNMAPPED while it decodes nothing */
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	unsigned n;
	struct bus_range ranges[BUS_MAX_RANGES]; /* sorted by base, never overlapping */
	unsigned nmovable;
	struct bus_movable movable[BUS_MAX_MOVABLE];
};

void bus_init(struct bus *bus, const char *name);
/* -EEXIST if the range overlaps another, -ENOSPC if the bus is full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name) __attribute__((warn_unused_result));
/* Take the range registered at exactly base off the bus (set-up time only), copying it to
 * out, so a device can claim a wider range and pass the old one's accesses on. */
int bus_unregister(struct bus *bus, uint64_t base, struct bus_range *out)
	__attribute__((warn_unused_result));
/* A movable range of len bytes, unmapped until bus_move (set-up time only). -EEXIST for a
 * name already there, -ENOSPC when full, -EINVAL for len 0. */
int bus_register_movable(struct bus *bus, uint64_t len, const struct bus_ops *ops, void *opaque,
			 const char *name) __attribute__((warn_unused_result));
/* Any thread: decode the movable range called name at base (BUS_UNMAPPED: nowhere). -ENOENT
 * when there is none, -EINVAL when base + len would wrap. */
int bus_move(struct bus *bus, const char *name, uint64_t base) __attribute__((warn_unused_result));
/* Where the movable range called name decodes now (BUS_UNMAPPED when nowhere or absent). */
uint64_t bus_movable_base(const struct bus *bus, const char *name);

/* Dispatch; false when no device claims the address (reads then see all ones). */
bool bus_read(const struct bus *bus, uint64_t addr, unsigned size, uint64_t *value);
bool bus_write(const struct bus *bus, uint64_t addr, unsigned size, uint64_t value);
/* The name of the range that decodes addr now, or NULL (for reports: exit_stats.h). */
const char *bus_name_at(const struct bus *bus, uint64_t addr);

#endif
