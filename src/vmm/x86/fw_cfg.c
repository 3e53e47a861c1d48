/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/fw_cfg.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/x86/layout.h"

#define FW_CFG_MAX_ITEM 16

struct fw_cfg_item {
	uint16_t key;
	uint8_t len;
	uint8_t data[FW_CFG_MAX_ITEM];
};

struct fw_cfg {
	/* The items never change after creation. */
	struct fw_cfg_item items[8];
	unsigned nitems;
	/* lock protects the selection and read position */
	pthread_mutex_t lock;
	const struct fw_cfg_item *cur;
	unsigned pos;
};

static void fw_cfg_add(struct fw_cfg *f, uint16_t key, const void *data, uint8_t len)
{
	struct fw_cfg_item *it = &f->items[f->nitems++];

	it->key = key;
	it->len = len;
	memcpy(it->data, data, len);
}

static void fw_cfg_add_le(struct fw_cfg *f, uint16_t key, uint64_t v, uint8_t len)
{
	uint8_t b[8];

	for (unsigned i = 0; i < len; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	fw_cfg_add(f, key, b, len);
}

static uint64_t fw_cfg_read(void *opaque, uint64_t off, unsigned size)
{
	struct fw_cfg *f = opaque;
	uint64_t v = 0;
	unsigned i;

	if (off != 1)
		return 0; /* the selector register reads as zero */
	pthread_mutex_lock(&f->lock);
	for (i = 0; i < size; i++) {
		/* Past the end of an item, or with no item selected, reads give zeros. */
		uint8_t b = f->cur && f->pos < f->cur->len ? f->cur->data[f->pos] : 0;

		if (f->cur && f->pos < f->cur->len)
			f->pos++;
		v |= (uint64_t)b << (8 * i);
	}
	pthread_mutex_unlock(&f->lock);
	return v;
}

static void fw_cfg_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct fw_cfg *f = opaque;
	unsigned i;

	if (off != 0 || size != 2)
		return; /* the data port is read-only since QEMU 2.4; so is ours */
	pthread_mutex_lock(&f->lock);
	f->cur = NULL;
	f->pos = 0;
	for (i = 0; i < f->nitems; i++)
		if (f->items[i].key == (uint16_t)value)
			f->cur = &f->items[i];
	pthread_mutex_unlock(&f->lock);
}

static const struct bus_ops fw_cfg_ops = {
	.read = fw_cfg_read,
	.write = fw_cfg_write,
};

/* Saved state: the selected item (by key) and the read position in it. */
static int fw_cfg_state(struct state_io *io, void *opaque)
{
	struct fw_cfg *f = opaque;
	const struct fw_cfg_item *it = NULL;
	bool selected;
	uint16_t key;
	uint32_t pos, i;

	pthread_mutex_lock(&f->lock);
	selected = f->cur != NULL;
	key = f->cur ? f->cur->key : 0;
	pos = f->pos;
	selected = state_bool(io, &selected);
	key = state_u16(io, &key, 0xffff);
	pos = state_u32(io, &pos, FW_CFG_MAX_ITEM);
	for (i = 0; selected && i < f->nitems; i++)
		if (f->items[i].key == key)
			it = &f->items[i];
	if (selected && !it)
		state_fail(io, "selected item 0x%04x does not exist", key);
	else if (pos > (it ? it->len : 0u))
		state_fail(io, "read position %u is past the item's end", pos);
	if (state_applying(io)) {
		f->cur = it;
		f->pos = pos;
	}
	pthread_mutex_unlock(&f->lock);
	return state_error(io);
}

static void fw_cfg_reset(void *opaque)
{
	struct fw_cfg *f = opaque;

	pthread_mutex_lock(&f->lock);
	f->cur = NULL;
	f->pos = 0;
	pthread_mutex_unlock(&f->lock);
}

int fw_cfg_create(struct machine *m)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	static const uint8_t no_files[4] = {0}; /* big-endian count of 0 */
	uint8_t uuid[16] = {0};
	int r;

	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	fw_cfg_add(f, FW_CFG_SIGNATURE, "QEMU", 4);
	fw_cfg_add_le(f, FW_CFG_ID, 1, 4); /* traditional interface, no DMA */
	fw_cfg_add(f, FW_CFG_UUID, uuid, sizeof(uuid));
	fw_cfg_add_le(f, FW_CFG_RAM_SIZE, m->def->memory, 8);
	fw_cfg_add_le(f, FW_CFG_NB_CPUS, m->def->cpus, 2);
	fw_cfg_add_le(f, FW_CFG_MAX_CPUS, m->def->cpus, 2);
	fw_cfg_add(f, FW_CFG_FILE_DIR, no_files, sizeof(no_files));
	r = bus_register(m->pio, PORT_FW_CFG, 2, &fw_cfg_ops, f, "fw_cfg");
	r = r ?: machine_add_reset_hook(m, fw_cfg_reset, f);
	r = r ?: machine_add_state_section(m, "fw_cfg", 1, fw_cfg_state, f);
	return r;
}

static int fw_cfg_class_create(struct machine *m, unsigned i, char *err, size_t errlen)
{
	return fw_cfg_create(m);
}

const struct device_class fw_cfg_class = {.name = "fw_cfg", .create = fw_cfg_class_create};
