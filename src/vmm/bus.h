/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Port-I/O and MMIO dispatch. Devices register address ranges with a const ops table
 * before the vCPUs start; afterwards the bus is read-only, so lookups take no lock.
 * Handlers run on vCPU threads, concurrently: each device locks its own state.
 */
#ifndef KEEL_VMM_BUS_H
#define KEEL_VMM_BUS_H

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

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	unsigned n;
	struct bus_range ranges[BUS_MAX_RANGES]; /* sorted by base, never overlapping */
};

void bus_init(struct bus *bus, const char *name);
/* -EEXIST if the range overlaps another, -ENOSPC if the bus is full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name) __attribute__((warn_unused_result));
/* Take the range registered at exactly base off the bus (set-up time only), copying it to
 * out, so a device can claim a wider range and pass the old one's accesses on. */
int bus_unregister(struct bus *bus, uint64_t base, struct bus_range *out)
	__attribute__((warn_unused_result));
/* Dispatch; false when no device claims the address (reads then see all ones). */
bool bus_read(const struct bus *bus, uint64_t addr, unsigned size, uint64_t *value);
bool bus_write(const struct bus *bus, uint64_t addr, unsigned size, uint64_t value);

#endif
