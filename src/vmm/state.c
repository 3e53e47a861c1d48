/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The state file (docs/state.md), all integers little-endian:
 *
 *   header   magic "KEELSAVE" | u32 format version | u32 header size (32) |
 *            u64 file size | u32 section count | u32 zero
 *   section  name[32] (NUL-padded) | u32 version | u32 zero | u64 data size |
 *            data, zero-padded to a multiple of 8
 *   trailer  u32 CRC-32C of every byte before it | u32 zero
 */
#include "vmm/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/le.h"

void state_fail(struct state_io *io, const char *fmt, ...)
{
	va_list ap;

	if (io->error)
		return;
	io->error = -EINVAL;
	va_start(ap, fmt);
	vsnprintf(io->why, sizeof(io->why), fmt, ap);
	va_end(ap);
}

int state_error(const struct state_io *io)
{
	return io->error;
}

bool state_applying(const struct state_io *io)
{
	return io->mode == STATE_LOAD && !io->error;
}

bool state_saving(const struct state_io *io)
{
	return io->mode == STATE_SAVE;
}

/* Append n bytes to the output, growing it; false (with io failed) when it cannot. */
static uint8_t *state_grow(struct state_io *io, size_t n)
{
	uint8_t *p;

	if (io->error)
		return NULL;
	if (n > STATE_MAX_FILE || io->out_len > STATE_MAX_FILE - n) {
		io->error = -E2BIG;
		snprintf(io->why, sizeof(io->why), "the state would exceed %u MiB",
			 STATE_MAX_FILE >> 20);
		return NULL;
	}
	if (io->out_len + n > io->out_cap) {
		size_t cap = io->out_cap ? io->out_cap : 4096;

		while (cap < io->out_len + n)
			cap *= 2;
		p = realloc(io->out, cap);
		if (!p) {
			io->error = -ENOMEM;
			snprintf(io->why, sizeof(io->why), "out of memory");
			return NULL;
		}
		io->out = p;
		io->out_cap = cap;
	}
	p = io->out + io->out_len;
	io->out_len += n;
	return p;
}

/* The next n bytes of the section, or NULL (io failed) past its end. */
static const uint8_t *state_take(struct state_io *io, size_t n)
{
	const uint8_t *p;

	if (io->error)
		return NULL;
	if (n > io->in_len - io->pos) {
		state_fail(io, "data ends %zu bytes early", n - (io->in_len - io->pos));
		return NULL;
	}
	p = io->in + io->pos;
	io->pos += n;
	return p;
}

/* The common scalar path: n bytes, little-endian, at most max. */
static uint64_t state_scalar(struct state_io *io, uint64_t value, uint64_t max, unsigned n,
			     bool *store)
{
	uint8_t *o;
	const uint8_t *in;

	*store = false;
	if (io->error)
		return 0;
	if (io->mode == STATE_SAVE) {
		if (value > max) {
			state_fail(io, "value %llu at offset %zu is above its maximum %llu",
				   (unsigned long long)value, io->out_len, (unsigned long long)max);
			return 0;
		}
		o = state_grow(io, n);
		if (o)
			le_store(o, value, n);
		return o ? value : 0;
	}
	in = state_take(io, n);
	if (!in)
		return 0;
	value = le_load(in, n);
	if (value > max) {
		state_fail(io, "value %llu at offset %zu is above its maximum %llu",
			   (unsigned long long)value, io->pos - n, (unsigned long long)max);
		return 0;
	}
	*store = io->mode == STATE_LOAD;
	return value;
}

uint8_t state_u8(struct state_io *io, uint8_t *field, uint8_t max)
{
	bool store;
	uint8_t v = (uint8_t)state_scalar(io, *field, max, 1, &store);

	if (store)
		*field = v;
	return v;
}

uint16_t state_u16(struct state_io *io, uint16_t *field, uint16_t max)
{
	bool store;
	uint16_t v = (uint16_t)state_scalar(io, *field, max, 2, &store);

	if (store)
		*field = v;
	return v;
}

uint32_t state_u32(struct state_io *io, uint32_t *field, uint32_t max)
{
	bool store;
	uint32_t v = (uint32_t)state_scalar(io, *field, max, 4, &store);

	if (store)
		*field = v;
	return v;
}

uint64_t state_u64(struct state_io *io, uint64_t *field, uint64_t max)
{
	bool store;
	uint64_t v = state_scalar(io, *field, max, 8, &store);

	if (store)
		*field = v;
	return v;
}

int64_t state_i64(struct state_io *io, int64_t *field)
{
	bool store;
	int64_t v = (int64_t)state_scalar(io, (uint64_t)*field, UINT64_MAX, 8, &store);

	if (store)
		*field = v;
	return v;
}

bool state_bool(struct state_io *io, bool *field)
{
	bool store;
	bool v = state_scalar(io, *field ? 1 : 0, 1, 1, &store) != 0;

	if (store)
		*field = v;
	return v;
}

static void state_raw(struct state_io *io, void *p, size_t len, bool store_on_check)
{
	uint8_t *o;
	const uint8_t *in;

	if (io->error)
		return;
	if (io->mode == STATE_SAVE) {
		o = state_grow(io, len);
		if (o && len)
			memcpy(o, p, len);
		return;
	}
	in = state_take(io, len);
	if (in && len && (io->mode == STATE_LOAD || store_on_check))
		memcpy(p, in, len);
}

void state_bytes(struct state_io *io, void *field, size_t len)
{
	state_raw(io, field, len, false);
}

void state_blob(struct state_io *io, void *local, size_t len)
{
	state_raw(io, local, len, true);
}

bool state_name_valid(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > STATE_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

int state_register(struct state_registry *reg, const char *name, uint32_t version, state_fn fn,
		   void *opaque)
{
	struct state_entry *e;
	unsigned i;

	if (!state_name_valid(name, strlen(name)) || version == 0 || !fn)
		return -EINVAL;
	for (i = 0; i < reg->n; i++)
		if (!strcmp(reg->entries[i].name, name))
			return -EEXIST;
	if (reg->n == STATE_MAX_SECTIONS)
		return -ENOSPC;
	e = &reg->entries[reg->n++];
	memset(e, 0, sizeof(*e));
	strcpy(e->name, name);
	e->version = version;
	e->fn = fn;
	e->opaque = opaque;
	return 0;
}

int state_unregister(struct state_registry *reg, const char *name)
{
	for (unsigned i = 0; i < reg->n; i++) {
		if (strcmp(reg->entries[i].name, name))
			continue;
		memmove(&reg->entries[i], &reg->entries[i + 1],
			(reg->n - i - 1) * sizeof(reg->entries[0]));
		reg->n--;
		return 0;
	}
	return -ENOENT;
}

int state_block(struct state_registry *reg, const char *reason)
{
	if (reg->nblockers == STATE_MAX_BLOCKERS)
		return -ENOSPC;
	reg->blockers[reg->nblockers++] = reason;
	return 0;
}

int state_save(const struct state_registry *reg, uint8_t **out, size_t *len, char *err,
	       size_t errlen)
{
	struct state_io io = {.mode = STATE_SAVE};
	uint8_t *p;
	unsigned i;
	int r;

	if (reg->nblockers) {
		snprintf(err, errlen, "this VM cannot be saved: %s", reg->blockers[0]);
		return -ENOTSUP;
	}
	p = state_grow(&io, STATE_HEADER_SIZE);
	if (p)
		memset(p, 0, STATE_HEADER_SIZE);
	for (i = 0; i < reg->n && !io.error; i++) {
		const struct state_entry *e = &reg->entries[i];
		size_t hdr = io.out_len, data, size;

		p = state_grow(&io, STATE_SECTION_HEADER);
		if (!p)
			break;
		memset(p, 0, STATE_SECTION_HEADER);
		memcpy(p, e->name, strlen(e->name));
		le_store(p + 32, e->version, 4);
		data = io.out_len;
		io.version = e->version;
		r = e->fn(&io, e->opaque);
		if (r && !io.error) {
			io.error = r;
			snprintf(io.why, sizeof(io.why), "%s", strerror(-r));
		}
		if (io.error) {
			snprintf(err, errlen, "cannot save section '%s': %s", e->name, io.why);
			goto fail;
		}
		size = io.out_len - data;
		if (size > STATE_MAX_SECTION) {
			snprintf(err, errlen,
				 "section '%s' has %zu bytes, more than the %u allowed", e->name,
				 size, STATE_MAX_SECTION);
			r = -E2BIG;
			goto fail_r;
		}
		le_store(io.out + hdr + 40, size, 8);
		p = state_grow(&io, (8 - size % 8) % 8);
		if (p)
			memset(p, 0, (8 - size % 8) % 8);
	}
	p = state_grow(&io, STATE_TRAILER_SIZE);
	if (!p) {
		snprintf(err, errlen, "cannot save state: %s", io.why);
		goto fail;
	}
	memcpy(io.out, STATE_MAGIC, 8);
	le_store(io.out + 8, STATE_FORMAT_VERSION, 4);
	le_store(io.out + 12, STATE_HEADER_SIZE, 4);
	le_store(io.out + 16, io.out_len, 8);
	le_store(io.out + 24, reg->n, 4);
	le_store(p, crc32c(0, io.out, io.out_len - STATE_TRAILER_SIZE), 4);
	le_store(p + 4, 0, 4);
	*out = io.out;
	*len = io.out_len;
	return 0;
fail:
	r = io.error;
fail_r:
	free(io.out);
	return r;
}

int state_parse(const uint8_t *data, size_t size, struct state_file *f, char *err, size_t errlen)
{
	uint64_t fsize, off;
	uint32_t version, hsize, count, crc, want;
	unsigned i, j;

	memset(f, 0, sizeof(*f));
	if (size > STATE_MAX_FILE) {
		snprintf(err, errlen, "state file has %zu bytes, more than the %u MiB allowed",
			 size, STATE_MAX_FILE >> 20);
		return -E2BIG;
	}
	if (size < STATE_HEADER_SIZE + STATE_TRAILER_SIZE) {
		snprintf(err, errlen, "state file is truncated: %zu bytes, too short for a header",
			 size);
		return -EINVAL;
	}
	if (memcmp(data, STATE_MAGIC, 8)) {
		snprintf(err, errlen, "not a keel state file (no KEELSAVE magic)");
		return -EINVAL;
	}
	version = (uint32_t)le_load(data + 8, 4);
	if (version != STATE_FORMAT_VERSION) {
		snprintf(err, errlen,
			 "state file format version %u is not supported (this keel-vmm reads "
			 "version %u)",
			 version, STATE_FORMAT_VERSION);
		return -ENOTSUP;
	}
	hsize = (uint32_t)le_load(data + 12, 4);
	fsize = le_load(data + 16, 8);
	count = (uint32_t)le_load(data + 24, 4);
	if (hsize != STATE_HEADER_SIZE || le_load(data + 28, 4)) {
		snprintf(err, errlen, "state file header is malformed (header size %u)", hsize);
		return -EINVAL;
	}
	if (fsize != size) {
		snprintf(err, errlen, "state file is %s: its header says %llu bytes, it has %zu",
			 fsize > size ? "truncated" : "longer than its header says",
			 (unsigned long long)fsize, size);
		return -EINVAL;
	}
	want = (uint32_t)le_load(data + size - STATE_TRAILER_SIZE, 4);
	crc = crc32c(0, data, size - STATE_TRAILER_SIZE);
	if (crc != want || le_load(data + size - 4, 4)) {
		snprintf(err, errlen,
			 "state file is corrupt: checksum 0x%08x, expected 0x%08x (CRC-32C)", crc,
			 want);
		return -EINVAL;
	}
	if (count > STATE_MAX_SECTIONS) {
		snprintf(err, errlen, "state file has %u sections, more than the %u allowed", count,
			 STATE_MAX_SECTIONS);
		return -E2BIG;
	}
	off = STATE_HEADER_SIZE;
	for (i = 0; i < count; i++) {
		const uint64_t end = size - STATE_TRAILER_SIZE;
		struct state_section *s = &f->sections[i];
		const uint8_t *h = data + off;
		uint64_t dsize, pad;
		size_t nlen;

		if (end - off < STATE_SECTION_HEADER) {
			snprintf(err, errlen,
				 "state file is malformed: section %u of %u is cut off", i + 1,
				 count);
			return -EINVAL;
		}
		nlen = strnlen((const char *)h, 32);
		if (nlen == 32 || !state_name_valid((const char *)h, nlen)) {
			snprintf(err, errlen, "state file is malformed: section %u has a bad name",
				 i + 1);
			return -EINVAL;
		}
		for (j = (unsigned)nlen; j < 32; j++) {
			if (h[j]) {
				snprintf(err, errlen,
					 "state file is malformed: section %u's name is not padded "
					 "with zeros",
					 i + 1);
				return -EINVAL;
			}
		}
		memcpy(s->name, h, nlen);
		s->version = (uint32_t)le_load(h + 32, 4);
		dsize = le_load(h + 40, 8);
		if (s->version == 0 || le_load(h + 36, 4)) {
			snprintf(err, errlen, "state file is malformed: section '%s' has version 0",
				 s->name);
			return -EINVAL;
		}
		if (dsize > STATE_MAX_SECTION) {
			snprintf(err, errlen,
				 "section '%s' has %llu bytes, more than the %u allowed", s->name,
				 (unsigned long long)dsize, STATE_MAX_SECTION);
			return -E2BIG;
		}
		off += STATE_SECTION_HEADER;
		pad = (8 - dsize % 8) % 8;
		if (end - off < dsize + pad) {
			snprintf(err, errlen,
				 "state file is malformed: section '%s' runs past the end",
				 s->name);
			return -EINVAL;
		}
		s->data = data + off;
		s->size = dsize;
		for (j = 0; j < pad; j++) {
			if (data[off + dsize + j]) {
				snprintf(err, errlen,
					 "state file is malformed: section '%s' has non-zero "
					 "padding",
					 s->name);
				return -EINVAL;
			}
		}
		off += dsize + pad;
		for (j = 0; j < i; j++) {
			if (!strcmp(f->sections[j].name, s->name)) {
				snprintf(err, errlen, "state file has section '%s' twice", s->name);
				return -EINVAL;
			}
		}
	}
	if (off != size - STATE_TRAILER_SIZE) {
		snprintf(err, errlen, "state file is malformed: %llu bytes after the last section",
			 (unsigned long long)(size - STATE_TRAILER_SIZE - off));
		return -EINVAL;
	}
	f->n = count;
	return 0;
}

const struct state_section *state_find(const struct state_file *f, const char *name)
{
	unsigned i;

	for (i = 0; i < f->n; i++)
		if (!strcmp(f->sections[i].name, name))
			return &f->sections[i];
	return NULL;
}

static const struct state_entry *state_lookup(const struct state_registry *reg, const char *name)
{
	unsigned i;

	for (i = 0; i < reg->n; i++)
		if (!strcmp(reg->entries[i].name, name))
			return &reg->entries[i];
	return NULL;
}

int state_load(const struct state_registry *reg, const struct state_file *f, enum state_mode mode,
	       char *err, size_t errlen)
{
	unsigned i;
	int r;

	for (i = 0; i < f->n; i++) {
		const struct state_section *s = &f->sections[i];
		const struct state_entry *e = state_lookup(reg, s->name);

		if (!e) {
			snprintf(err, errlen,
				 "state has a section '%s' that this VM does not have (a device "
				 "missing from the command line, or a newer keel-vmm)",
				 s->name);
			return -EINVAL;
		}
		if (s->version > e->version) {
			snprintf(
				err, errlen,
				"section '%s' has version %u; this keel-vmm reads up to version %u",
				s->name, s->version, e->version);
			return -ENOTSUP;
		}
	}
	for (i = 0; i < reg->n; i++) {
		const struct state_entry *e = &reg->entries[i];
		const struct state_section *s = state_find(f, e->name);
		struct state_io io = {.mode = mode};

		if (!s) {
			snprintf(err, errlen,
				 "state has no section '%s' (saved from a VM without this device, "
				 "or damaged)",
				 e->name);
			return -EINVAL;
		}
		io.version = s->version;
		io.in = s->data;
		io.in_len = (size_t)s->size;
		r = e->fn(&io, e->opaque);
		if (r && !io.error) {
			io.error = r;
			snprintf(io.why, sizeof(io.why), "%s", strerror(-r));
		}
		if (!io.error && io.pos != io.in_len)
			state_fail(&io, "%zu bytes of data left over", io.in_len - io.pos);
		if (io.error) {
			snprintf(err, errlen, "%s section '%s' (version %u): %s",
				 mode == STATE_LOAD ? "cannot load" : "bad", e->name, s->version,
				 io.why);
			return io.error;
		}
	}
	return 0;
}
