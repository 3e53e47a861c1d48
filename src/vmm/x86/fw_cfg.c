/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/fw_cfg.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/x86/fw_cfg_content.h"
#include "vmm/x86/layout.h"

struct fw_cfg_item {
	uint16_t key;
	char name[FW_CFG_NAME_MAX]; /* files only; "" for numbered items */
	uint8_t *data;
	uint32_t len;
	bool refreshed; /* selecting it runs the refresh function */
};

struct fw_cfg {
	/* The items never change after fw_cfg_finish. */
	struct fw_cfg_item items[FW_CFG_MAX_ITEMS];
	unsigned nitems;
	bool finished; /* the files have their keys and the directory is there */
	const struct guest_mem *mem;
	fw_cfg_refresh_fn refresh;
	void *refresh_opaque;
	/* lock protects the file contents that refresh rewrites, the selection, the read position
	 * and the DMA address's high half */
	pthread_mutex_t lock;
	const struct fw_cfg_item *cur;
	uint32_t pos;
	uint32_t dma_high;
};

/* What a read of the DMA address ports gives: QEMU's "QEMU CFG", big-endian. */
static const char dma_signature[8] = "QEMU CFG";

static uint32_t be32_load(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be32_store(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static const struct fw_cfg_item *fw_cfg_find(const struct fw_cfg *f, uint16_t key)
{
	for (unsigned i = 0; i < f->nitems; i++)
		if (f->items[i].key == key)
			return &f->items[i];
	return NULL;
}

static int fw_cfg_push(struct fw_cfg *f, uint16_t key, const char *name, const void *data,
		       uint32_t len)
{
	struct fw_cfg_item *it;

	if (f->nitems == FW_CFG_MAX_ITEMS)
		return -ENOSPC;
	it = &f->items[f->nitems];
	it->data = malloc(len ? len : 1);
	if (!it->data)
		return -ENOMEM;
	if (len)
		memcpy(it->data, data, len);
	it->key = key;
	it->len = len;
	snprintf(it->name, sizeof(it->name), "%s", name);
	f->nitems++;
	return 0;
}

struct fw_cfg *fw_cfg_new(const struct guest_mem *mem)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	uint8_t id[4] = {FW_CFG_VERSION | FW_CFG_VERSION_DMA, 0, 0, 0};

	if (!f)
		return NULL;
	f->mem = mem;
	pthread_mutex_init(&f->lock, NULL);
	if (fw_cfg_push(f, FW_CFG_SIGNATURE, "", "QEMU", 4) ||
	    fw_cfg_push(f, FW_CFG_ID, "", id, sizeof(id))) {
		fw_cfg_free(f);
		return NULL;
	}
	return f;
}

void fw_cfg_free(struct fw_cfg *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < f->nitems; i++)
		free(f->items[i].data);
	free(f->refresh_opaque);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int fw_cfg_add_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
{
	if (f->finished)
		return -EBUSY;
	if (key >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR)
		return -EINVAL; /* those are the files' and the directory's */
	if (fw_cfg_find(f, key))
		return -EEXIST;
	return fw_cfg_push(f, key, "", data, len);
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
{
	size_t n = strlen(name);

	if (f->finished)
		return -EBUSY;
	if (!n || n >= FW_CFG_NAME_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < f->nitems; i++)
		if (!strcmp(f->items[i].name, name))
			return -EEXIST;
	/* The key is given by fw_cfg_finish; until then files have the directory's. */
	return fw_cfg_push(f, FW_CFG_FILE_DIR, name, data, len);
}

int fw_cfg_add_file_refreshed(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
{
	int r = fw_cfg_add_file(f, name, data, len);

	if (!r)
		f->items[f->nitems - 1].refreshed = true;
	return r;
}

void fw_cfg_set_refresh(struct fw_cfg *f, fw_cfg_refresh_fn fn, void *opaque)
{
	free(f->refresh_opaque);
	f->refresh = fn;
	f->refresh_opaque = opaque;
}

int fw_cfg_update_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
{
	for (unsigned i = 0; i < f->nitems; i++) {
		struct fw_cfg_item *it = &f->items[i];

		if (!it->name[0] || strcmp(it->name, name))
			continue;
		if (it->len != len)
			return -EINVAL;
		memcpy(it->data, data, len);
		return 0;
	}
	return -ENOENT;
}

/* Select the item with this key (lock held): nothing when there is none. */
static void fw_cfg_select(struct fw_cfg *f, uint16_t key)
{
	f->cur = fw_cfg_find(f, key);
	f->pos = 0;
	if (f->cur && f->cur->refreshed && f->refresh)
		f->refresh(f->refresh_opaque, f);
}

static int item_cmp(const void *a, const void *b)
{
	const struct fw_cfg_item *x = a, *y = b;

	/* Numbered items first (by key), then the files by name. */
	if (!x->name[0] || !y->name[0])
		return x->name[0] ? 1 : y->name[0] ? -1 : (int)x->key - (int)y->key;
	return strcmp(x->name, y->name);
}

int fw_cfg_finish(struct fw_cfg *f)
{
	/* The directory: a big-endian count, then per file its size (BE32), key (BE16), two
	 * reserved bytes and its NUL-padded name. */
	uint8_t dir[4 + FW_CFG_MAX_ITEMS * (8 + FW_CFG_NAME_MAX)];
	uint32_t nfiles = 0;
	size_t len = 4;
	unsigned i;

	if (f->finished)
		return -EEXIST;
	qsort(f->items, f->nitems, sizeof(f->items[0]), item_cmp);
	memset(dir, 0, sizeof(dir));
	for (i = 0; i < f->nitems; i++) {
		struct fw_cfg_item *it = &f->items[i];

		if (!it->name[0])
			continue;
		it->key = (uint16_t)(FW_CFG_FILE_FIRST + nfiles++);
		be32_store(dir + len, it->len);
		dir[len + 4] = (uint8_t)(it->key >> 8);
		dir[len + 5] = (uint8_t)it->key;
		memcpy(dir + len + 8, it->name, strlen(it->name));
		len += 8 + FW_CFG_NAME_MAX;
	}
	be32_store(dir, nfiles);
	f->finished = true;
	return fw_cfg_push(f, FW_CFG_FILE_DIR, "", dir, (uint32_t)len);
}

/* Guest memory for a DMA transfer, or NULL when [gpa, gpa + len) is not all RAM. */
static uint8_t *dma_ptr(const struct fw_cfg *f, uint64_t gpa, uint64_t len)
{
	return f->mem ? mem_ptr(f->mem, gpa, len) : NULL;
}

/*
 * Run the descriptor at gpa: { be32 control, be32 length, be64 address }. It is copied out
 * of guest memory once, so a vCPU changing it meanwhile changes nothing. Reads past an
 * item's end (or with nothing selected) fill zeros; writes fail, as every item is
 * read-only; a buffer that is not all RAM fails. The result goes back to the control word.
 */
static void fw_cfg_dma(struct fw_cfg *f, uint64_t gpa)
{
	uint8_t desc[16], *p;
	uint32_t control, length, status = 0;
	uint64_t addr;
	bool read, write, skip;

	p = dma_ptr(f, gpa, sizeof(desc));
	if (!p)
		return; /* nowhere to read the descriptor from, nor to report to */
	memcpy(desc, p, sizeof(desc));
	control = be32_load(desc);
	length = be32_load(desc + 4);
	addr = (uint64_t)be32_load(desc + 8) << 32 | be32_load(desc + 12);
	if (control & FW_CFG_DMA_SELECT)
		fw_cfg_select(f, (uint16_t)(control >> 16));
	/* One operation, in QEMU's order of precedence: read, write, skip. */
	read = control & FW_CFG_DMA_READ;
	write = !read && (control & FW_CFG_DMA_WRITE);
	skip = !read && !write && (control & FW_CFG_DMA_SKIP);
	if (write && length)
		status = FW_CFG_DMA_ERROR; /* no item is writable */
	else if (read || skip) {
		uint32_t avail = f->cur && f->pos < f->cur->len ? f->cur->len - f->pos : 0;
		uint32_t n = length < avail ? length : avail;

		if (read) {
			p = dma_ptr(f, addr, length);
			if (!p) {
				status = FW_CFG_DMA_ERROR;
				n = 0;
			} else {
				if (n)
					memcpy(p, f->cur->data + f->pos, n);
				memset(p + n, 0, length - n);
			}
		}
		f->pos += n;
	}
	p = dma_ptr(f, gpa, 4);
	if (p) {
		uint8_t out[4];

		be32_store(out, status);
		memcpy(p, out, 4);
	}
}

uint64_t fw_cfg_port_read(struct fw_cfg *f, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	unsigned i;

	if (off >= FW_CFG_PORT_DMA_HIGH && off < FW_CFG_PORT_SPAN) {
		for (i = 0; i < size && off - FW_CFG_PORT_DMA_HIGH + i < 8; i++)
			v |= (uint64_t)(uint8_t)dma_signature[off - FW_CFG_PORT_DMA_HIGH + i]
			     << (8 * i);
		return v;
	}
	if (off != FW_CFG_PORT_DATA)
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

/* A 32-bit port write to the DMA registers, as the guest's bytes in big-endian order. */
static uint32_t dma_word(uint64_t value)
{
	return __builtin_bswap32((uint32_t)value);
}

void fw_cfg_port_write(struct fw_cfg *f, uint64_t off, unsigned size, uint64_t value)
{
	pthread_mutex_lock(&f->lock);
	if (off == FW_CFG_PORT_SEL && size == 2) {
		fw_cfg_select(f, (uint16_t)value);
	} else if (off == FW_CFG_PORT_DMA_HIGH && size == 4) {
		f->dma_high = dma_word(value);
	} else if (off == FW_CFG_PORT_DMA_LOW && size == 4) {
		uint64_t gpa = (uint64_t)f->dma_high << 32 | dma_word(value);

		f->dma_high = 0; /* each transfer starts from a fresh address, as QEMU's */
		fw_cfg_dma(f, gpa);
	}
	/* Anything else (the data port is read-only since QEMU 2.4) is ignored. */
	pthread_mutex_unlock(&f->lock);
}

void fw_cfg_reset(struct fw_cfg *f)
{
	pthread_mutex_lock(&f->lock);
	f->cur = NULL;
	f->pos = 0;
	f->dma_high = 0;
	pthread_mutex_unlock(&f->lock);
}

static uint64_t fw_cfg_bus_read(void *opaque, uint64_t off, unsigned size)
{
	return fw_cfg_port_read(opaque, off, size);
}

static void fw_cfg_bus_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	fw_cfg_port_write(opaque, off, size, value);
}

static const struct bus_ops fw_cfg_ops = {
	.read = fw_cfg_bus_read,
	.write = fw_cfg_bus_write,
};

/* Saved state: the selected item (by key), the read position in it, and (version 2) the
 * DMA address's high half. */
static int fw_cfg_state(struct state_io *io, void *opaque)
{
	struct fw_cfg *f = opaque;
	const struct fw_cfg_item *it = NULL;
	bool selected;
	uint16_t key;
	uint32_t pos, high;

	pthread_mutex_lock(&f->lock);
	selected = f->cur != NULL;
	key = f->cur ? f->cur->key : 0;
	pos = f->pos;
	high = f->dma_high;
	selected = state_bool(io, &selected);
	key = state_u16(io, &key, 0xffff);
	pos = state_u32(io, &pos, UINT32_MAX);
	if (io->version >= 2)
		high = state_u32(io, &high, UINT32_MAX);
	else
		high = 0;
	if (selected)
		it = fw_cfg_find(f, key);
	if (selected && !it)
		state_fail(io, "selected item 0x%04x does not exist", key);
	else if (pos > (it ? it->len : 0u))
		state_fail(io, "read position %u is past the item's end", pos);
	if (state_applying(io)) {
		f->cur = it;
		f->pos = pos;
		f->dma_high = high;
	}
	pthread_mutex_unlock(&f->lock);
	return state_error(io);
}

static void fw_cfg_reset_hook(void *opaque)
{
	fw_cfg_reset(opaque);
}

static void fw_cfg_teardown(void *opaque)
{
	fw_cfg_free(opaque);
}

int fw_cfg_create(struct machine *m, void **obj)
{
	struct fw_cfg *f = fw_cfg_new(m->mem);
	int r;

	if (!f)
		return -ENOMEM;
	r = fw_cfg_content_add(f, m);
	r = r ?: fw_cfg_finish(f);
	if (r) {
		fw_cfg_free(f);
		return r;
	}
	r = machine_add_teardown(m, fw_cfg_teardown, f);
	if (r) {
		fw_cfg_free(f);
		return r;
	}
	r = bus_register(m->pio, PORT_FW_CFG, FW_CFG_PORT_SPAN, &fw_cfg_ops, f, "fw_cfg");
	r = r ?: machine_add_reset_hook(m, fw_cfg_reset_hook, f);
	*obj = f;
	return r;
}

static int fw_cfg_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	return fw_cfg_create(m, obj);
}

const struct device_class fw_cfg_class = {
	.name = "fw_cfg", .state = {{"fw_cfg", 2, fw_cfg_state}}, .create = fw_cfg_class_create};
