/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/bus.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name)
{
	unsigned i;

	if (len == 0 || base + len < base)
		return -EINVAL;
	if (bus->n == BUS_MAX_RANGES)
		return -ENOSPC;
	for (i = 0; i < bus->n; i++) {
		const struct bus_range *r = &bus->ranges[i];

		if (base < r->base + r->len && r->base < base + len)
			return -EEXIST;
		if (r->base > base)
			break;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->n - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = (struct bus_range){base, len, ops, opaque, name};
	bus->n++;
	return 0;
}

int bus_unregister(struct bus *bus, uint64_t base, struct bus_range *out)
{
	unsigned i;

	for (i = 0; i < bus->n; i++) {
		if (bus->ranges[i].base != base)
			continue;
		*out = bus->ranges[i];
		memmove(&bus->ranges[i], &bus->ranges[i + 1],
			(bus->n - i - 1) * sizeof(bus->ranges[0]));
		bus->n--;
		return 0;
	}
	return -ENOENT;
}

/* The range holding [addr, addr + size), or NULL. An access straddling two ranges is
 * nobody's. */
static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned size)
{
	unsigned lo = 0, hi = bus->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return size <= r->len - (addr - r->base) ? r : NULL;
	}
	return NULL;
}

bool bus_read(const struct bus *bus, uint64_t addr, unsigned size, uint64_t *value)
{
	const struct bus_range *r = bus_find(bus, addr, size);

	if (!r || !r->ops->read) {
		*value = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
		return r != NULL;
	}
	*value = r->ops->read(r->opaque, addr - r->base, size);
	return true;
}

bool bus_write(const struct bus *bus, uint64_t addr, unsigned size, uint64_t value)
{
	const struct bus_range *r = bus_find(bus, addr, size);

	if (!r)
		return false;
	if (r->ops->write)
		r->ops->write(r->opaque, addr - r->base, size, value);
	return true;
}
