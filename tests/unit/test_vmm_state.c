/* SPDX-License-Identifier: Apache-2.0 */
/* The state file and the section API (src/vmm/state.c, docs/state.md). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/crc32c.h"
#include "vmm/state.h"

struct dev {
	uint8_t a;
	uint16_t b;
	uint32_t c;
	uint64_t d;
	int64_t e;
	bool f;
	uint8_t bytes[5];
	uint32_t n;
	uint8_t buf[16];
};

static int dev_state(struct state_io *io, void *opaque)
{
	struct dev *d = opaque;
	uint32_t n = d->n;

	state_u8(io, &d->a, 200);
	state_u16(io, &d->b, 0xffff);
	state_u32(io, &d->c, 1000);
	state_u64(io, &d->d, UINT64_MAX);
	state_i64(io, &d->e);
	state_bool(io, &d->f);
	state_bytes(io, d->bytes, sizeof(d->bytes));
	n = state_u32(io, &n, sizeof(d->buf));
	state_bytes(io, d->buf, n);
	if (state_applying(io))
		d->n = n;
	return state_error(io);
}

static int empty_state(struct state_io *io, void *opaque)
{
	return state_error(io);
}

static const struct dev dev_saved = {
	.a = 200,
	.b = 0xbeef,
	.c = 999,
	.d = 0x1122334455667788ull,
	.e = -42,
	.f = true,
	.bytes = {1, 2, 3, 4, 5},
	.n = 3,
	.buf = {9, 8, 7},
};

/* A registry of two devices and an empty section, saved with dev_saved's values. */
static uint8_t *saved_file(struct state_registry *reg, struct dev *d1, struct dev *d2, size_t *len)
{
	char err[256];
	uint8_t *out = NULL;

	memset(reg, 0, sizeof(*reg));
	*d1 = dev_saved;
	*d2 = dev_saved;
	d2->n = 0;
	assert_int_equal(state_register(reg, "dev.1", 1, dev_state, d1), 0);
	assert_int_equal(state_register(reg, "empty", 2, empty_state, NULL), 0);
	assert_int_equal(state_register(reg, "dev.2", 1, dev_state, d2), 0);
	assert_int_equal(state_save(reg, &out, len, err, sizeof(err)), 0);
	assert_int_equal(*len % 8, 0);
	return out;
}

static void fix_crc(uint8_t *p, size_t len)
{
	uint32_t crc = crc32c(0, p, len - 8);

	memcpy(p + len - 8, &crc, 4);
}

static void test_round_trip(void **unused)
{
	static struct state_registry reg;
	static struct state_file f;
	struct dev d1, d2, zero = {0};
	char err[256];
	size_t len;
	uint8_t *p = saved_file(&reg, &d1, &d2, &len);

	assert_memory_equal(p, STATE_MAGIC, 8);
	assert_int_equal(state_parse(p, len, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 3);
	assert_string_equal(f.sections[1].name, "empty");
	assert_int_equal(f.sections[1].version, 2);
	assert_int_equal(f.sections[1].size, 0);
	assert_non_null(state_find(&f, "dev.2"));
	assert_null(state_find(&f, "dev.3"));
	/* The check pass validates but stores nothing. */
	d1 = zero;
	d2 = zero;
	assert_int_equal(state_load(&reg, &f, STATE_CHECK, err, sizeof(err)), 0);
	assert_memory_equal(&d1, &zero, sizeof(zero));
	assert_memory_equal(&d2, &zero, sizeof(zero));
	/* The load pass stores everything. */
	assert_int_equal(state_load(&reg, &f, STATE_LOAD, err, sizeof(err)), 0);
	assert_memory_equal(&d1, &dev_saved, sizeof(d1));
	assert_int_equal(d2.n, 0);
	assert_int_equal(d2.e, -42);
	free(p);
}

static void test_register(void **unused)
{
	static struct state_registry reg;
	int x;

	assert_int_equal(state_register(&reg, "", 1, empty_state, &x), -EINVAL);
	assert_int_equal(state_register(&reg, "Upper", 1, empty_state, &x), -EINVAL);
	assert_int_equal(state_register(&reg, "has space", 1, empty_state, &x), -EINVAL);
	assert_int_equal(
		state_register(&reg, "a23456789012345678901234567890123", 1, empty_state, &x),
		-EINVAL);
	assert_int_equal(state_register(&reg, "v0", 0, empty_state, &x), -EINVAL);
	assert_int_equal(state_register(&reg, "ok-1.x_y", 1, empty_state, &x), 0);
	assert_int_equal(state_register(&reg, "ok-1.x_y", 1, empty_state, &x), -EEXIST);
}

/* Mutate a good file, then expect parse (or load) to fail with a message containing want. */
static void expect_refused(void (*mutate)(uint8_t *p, size_t *len), const char *want)
{
	static struct state_registry reg;
	static struct state_file f;
	struct dev d1, d2, before1, before2;
	char err[256] = "";
	size_t len;
	uint8_t *p = saved_file(&reg, &d1, &d2, &len);
	int r;

	p = realloc(p, len + 64);
	assert_non_null(p);
	mutate(p, &len);
	before1 = d1;
	before2 = d2;
	r = state_parse(p, len, &f, err, sizeof(err));
	if (!r)
		r = state_load(&reg, &f, STATE_CHECK, err, sizeof(err));
	if (!r)
		fail_msg("accepted a file that should fail with '%s'", want);
	if (!strstr(err, want))
		fail_msg("error '%s' does not contain '%s'", err, want);
	assert_memory_equal(&d1, &before1, sizeof(d1));
	assert_memory_equal(&d2, &before2, sizeof(d2));
	free(p);
}

static void m_truncate(uint8_t *p, size_t *len)
{
	*len -= 16;
}

static void m_flip(uint8_t *p, size_t *len)
{
	p[40] ^= 1;
}

static void m_magic(uint8_t *p, size_t *len)
{
	p[0] = 'X';
}

static void m_version(uint8_t *p, size_t *len)
{
	p[8] = 7;
}

static void m_tiny(uint8_t *p, size_t *len)
{
	*len = 20;
}

/* Section 1 ("dev.1") starts at 32; its data at 80; field a is the first byte. */
static void m_above_max(uint8_t *p, size_t *len)
{
	p[80] = 201;
	fix_crc(p, *len);
}

static void m_bad_bool(uint8_t *p, size_t *len)
{
	p[80 + 1 + 2 + 4 + 8 + 8] = 2;
	fix_crc(p, *len);
}

static void m_bad_name(uint8_t *p, size_t *len)
{
	p[32] = 'D';
	fix_crc(p, *len);
}

static void m_unknown_name(uint8_t *p, size_t *len)
{
	p[32 + 4] = '9'; /* "dev.1" -> "dev.9" */
	fix_crc(p, *len);
}

static void m_newer_version(uint8_t *p, size_t *len)
{
	p[32 + 32] = 5;
	fix_crc(p, *len);
}

static void m_count(uint8_t *p, size_t *len)
{
	p[24] = 2; /* one section fewer than the file holds */
	fix_crc(p, *len);
}

static void m_section_size(uint8_t *p, size_t *len)
{
	p[32 + 40 + 2] = 0x10; /* data size 1 MiB + */
	fix_crc(p, *len);
}

static void m_trailing(uint8_t *p, size_t *len)
{
	/* 8 more bytes before the trailer: header size updated, checksum good. */
	memmove(p + *len, p + *len - 8, 8);
	memset(p + *len - 8, 0, 8);
	*len += 8;
	p[16] = (uint8_t)*len;
	p[17] = (uint8_t)(*len >> 8);
	fix_crc(p, *len);
}

/* dev.1 claims n = 16 bytes of buf but holds 3: its data ends early. */
static void m_short_data(uint8_t *p, size_t *len)
{
	p[80 + 1 + 2 + 4 + 8 + 8 + 1 + 5] = 16;
	fix_crc(p, *len);
}

static void test_refused(void **unused)
{
	expect_refused(m_truncate, "truncated");
	expect_refused(m_flip, "checksum");
	expect_refused(m_magic, "KEELSAVE");
	expect_refused(m_version, "format version 7");
	expect_refused(m_tiny, "too short");
	expect_refused(m_above_max,
		       "'dev.1' (version 1): value 201 at offset 0 is above its maximum 200");
	expect_refused(m_bad_bool, "above its maximum 1");
	expect_refused(m_bad_name, "bad name");
	expect_refused(m_unknown_name, "'dev.9'");
	expect_refused(m_newer_version, "'dev.1' has version 5");
	expect_refused(m_count, "after the last section");
	expect_refused(m_section_size, "more than the");
	expect_refused(m_trailing, "after the last section");
	expect_refused(m_short_data, "'dev.1'");
}

static void test_blocker(void **unused)
{
	static struct state_registry reg;
	struct dev d = dev_saved;
	char err[256];
	uint8_t *out = NULL;
	size_t len;

	assert_int_equal(state_register(&reg, "dev", 1, dev_state, &d), 0);
	assert_int_equal(state_block(&reg, "virtio-foo has no saved state"), 0);
	assert_int_equal(state_save(&reg, &out, &len, err, sizeof(err)), -ENOTSUP);
	assert_null(out);
	assert_string_equal(err, "this VM cannot be saved: virtio-foo has no saved state");
}

static void test_size_cap(void **unused)
{
	static struct state_file f;
	char err[256];
	uint8_t b[64] = {0};

	assert_int_equal(state_parse(b, (size_t)STATE_MAX_FILE + 1, &f, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "64 MiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_register),
		cmocka_unit_test(test_refused),	   cmocka_unit_test(test_blocker),
		cmocka_unit_test(test_size_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
