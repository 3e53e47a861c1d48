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

int bus_register_movable(struct bus *bus, uint64_t len, const struct bus_ops *ops, void *opaque,
			 const char *name)
{
	struct bus_movable *mv;

	if (len == 0)
		return -EINVAL;
	if (bus->nmovable == BUS_MAX_MOVABLE)
		return -ENOSPC;
	for (unsigned i = 0; i < bus->nmovable; i++)
		if (!strcmp(bus->movable[i].name, name))
			return -EEXIST;
	mv = &bus->movable[bus->nmovable];
	atomic_init(&mv->base, BUS_UNMAPPED);
	mv->len = len;
	mv->ops = ops;
	mv->opaque = opaque;
	mv->name = name;
	bus->nmovable++;
	return 0;
}

static struct bus_movable *movable_named(const struct bus *bus, const char *name)
{
	for (unsigned i = 0; i < bus->nmovable; i++)
		if (!strcmp(bus->movable[i].name, name))
			return (struct bus_movable *)&bus->movable[i];
	return NULL;
}

int bus_move(struct bus *bus, const char *name, uint64_t base)
{
	struct bus_movable *mv = movable_named(bus, name);

	if (!mv)
		return -ENOENT;
	if (base != BUS_UNMAPPED && base + mv->len < base)
		return -EINVAL;
	atomic_store(&mv->base, base);
	return 0;
}

uint64_t bus_movable_base(const struct bus *bus, const char *name)
{
	struct bus_movable *mv = movable_named(bus, name);

	return mv ? atomic_load(&mv->base) : BUS_UNMAPPED;
}

/* The range holding [addr, addr + size), or NULL, with the access's offset in it: movable
 * ranges first (each base read once), then the fixed ones. An access straddling a range's
 * end is nobody's. */
static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned size,
					struct bus_range *tmp)
{
	unsigned lo = 0, hi = bus->n;

	for (unsigned i = 0; i < bus->nmovable; i++) {
		const struct bus_movable *mv = &bus->movable[i];
		uint64_t base = atomic_load(&mv->base);

		if (base == BUS_UNMAPPED || addr < base || addr - base >= mv->len)
			continue;
		if (size > mv->len - (addr - base))
			return NULL;
		*tmp = (struct bus_range){base, mv->len, mv->ops, mv->opaque, mv->name};
		return tmp;
	}

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

static bool bus_read_one(const struct bus *bus, uint64_t addr, unsigned size, uint64_t *value)
{
	struct bus_range tmp;
	const struct bus_range *r = bus_find(bus, addr, size, &tmp);

	if (!r || !r->ops->read) {
		*value = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
		return r != NULL;
	}
	*value = r->ops->read(r->opaque, addr - r->base, size);
	return true;
}

static bool bus_write_one(const struct bus *bus, uint64_t addr, unsigned size, uint64_t value)
{
	struct bus_range tmp;
	const struct bus_range *r = bus_find(bus, addr, size, &tmp);

	if (!r)
		return false;
	if (r->ops->write)
		r->ops->write(r->opaque, addr - r->base, size, value);
	return true;
}

/* KVM splits an access that crosses a page into pieces of any length from 1 to 8 (a load
 * of 8 bytes at 0xffd gives 3 and 5). Devices see only 1, 2, 4 or 8: other sizes are
 * taken apart into bytes. */
static bool bus_size_ok(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

bool bus_read(const struct bus *bus, uint64_t addr, unsigned size, uint64_t *value)
{
	bool claimed = false;
	unsigned i;

	if (bus_size_ok(size))
		return bus_read_one(bus, addr, size, value);
	*value = 0;
	for (i = 0; i < size && i < 8; i++) {
		uint64_t b;

		claimed |= bus_read_one(bus, addr + i, 1, &b);
		*value |= (b & 0xff) << (8 * i);
	}
	return claimed;
}

bool bus_write(const struct bus *bus, uint64_t addr, unsigned size, uint64_t value)
{
	bool claimed = false;
	unsigned i;

	if (bus_size_ok(size))
		return bus_write_one(bus, addr, size, value);
	for (i = 0; i < size && i < 8; i++)
		claimed |= bus_write_one(bus, addr + i, 1, (value >> (8 * i)) & 0xff);
	return claimed;
}

const char *bus_name_at(const struct bus *bus, uint64_t addr)
{
	struct bus_range tmp;
	const struct bus_range *r = bus_find(bus, addr, 1, &tmp);

	return r ? r->name : NULL;
}
