/* SPDX-License-Identifier: Apache-2.0 */
/* The VHDX library: geometry, headers, GUID rules, the log, dynamic and differencing I/O. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "disk/disk.h"
#include "disk/disk_io.h"
#include "disk/vhdx.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"

static char dir[64];

static const char *tmp(const char *name)
{
	static char path[8][128];
	static int i;

	i = (i + 1) % 8;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	return path[i];
}

static void make(const char *name, uint64_t size, uint32_t bs, enum disk_type t, const char *parent)
{
	struct disk_create_opts o = {.format = DISK_FORMAT_VHDX,
				     .type = t,
				     .size = size,
				     .block_size = bs,
				     .parent = parent};

	unlink(tmp(name));
	assert_int_equal(disk_create(tmp(name), &o, NULL), 0);
}

static void fill(uint8_t *b, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 9));
}

static void test_geometry(void **state)
{
	uint64_t cr, p, b, e;

	/* Chunk ratios from the spec: 2^23 * sector / block. */
	vhdx_geometry(1ull << 30, 32 << 20, 512, false, &cr, &p, &b, &e);
	assert_int_equal(cr, 128);
	assert_int_equal(p, 32);
	assert_int_equal(e, 32);
	vhdx_geometry(1ull << 30, 1 << 20, 512, false, &cr, &p, &b, &e);
	assert_int_equal(cr, 4096);
	vhdx_geometry(1ull << 40, 256 << 20, 4096, false, &cr, &p, &b, &e);
	assert_int_equal(cr, 128);
	/* 129 payload blocks need one sector bitmap entry in between; differencing: 2 chunks. */
	vhdx_geometry(129ull << 25, 32 << 20, 512, false, &cr, &p, &b, &e);
	assert_int_equal(p, 129);
	assert_int_equal(e, 130);
	vhdx_geometry(129ull << 25, 32 << 20, 512, true, &cr, &p, &b, &e);
	assert_int_equal(b, 2);
	assert_int_equal(e, 2 * 129);
}

static void test_dynamic_rw(void **state)
{
	const size_t n = 3 << 20;
	uint8_t *w = malloc(n), *r = malloc(n);
	struct disk *d;
	struct disk_info info;

	make("dyn.vhdx", 64 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("dyn.vhdx"), 0, &d, NULL), 0);
	assert_int_equal(disk_size(d), 64 << 20);
	/* Unallocated reads are zeros. */
	assert_int_equal(disk_read(d, r, 0, 65536), 0);
	assert_true(dio_is_zero(r, 65536));
	fill(w, n, 1);
	/* Straddles three blocks, unaligned to them. */
	assert_int_equal(disk_write(d, w, (5 << 20) - 512, n), 0);
	assert_int_equal(disk_read(d, r, (5 << 20) - 512, n), 0);
	assert_memory_equal(w, r, n);
	assert_int_equal(disk_info(d, &info), 0);
	assert_int_equal(info.blocks_allocated, 4);
	assert_int_equal(info.type, DISK_TYPE_DYNAMIC);
	/* Out of range and unaligned requests are refused. */
	assert_int_equal(disk_write(d, w, 64 << 20, 512), -EINVAL);
	assert_int_equal(disk_read(d, r, 100, 512), -EINVAL);
	assert_int_equal(disk_flush(d), 0);
	disk_close(d);
	/* Reopened read-only: the same bytes; writes refused. */
	assert_int_equal(disk_open(tmp("dyn.vhdx"), DISK_OPEN_RDONLY, &d, NULL), 0);
	memset(r, 0, n);
	assert_int_equal(disk_read(d, r, (5 << 20) - 512, n), 0);
	assert_memory_equal(w, r, n);
	assert_int_equal(disk_write(d, w, 0, 512), -EROFS);
	disk_close(d);
	assert_int_equal(vhdx_check(tmp("dyn.vhdx"), stderr, NULL), 0);
	free(w);
	free(r);
}

static void read_guids(const char *path, struct disk_info *info)
{
	struct disk *d;

	assert_int_equal(disk_open(path, DISK_OPEN_RDONLY, &d, NULL), 0);
	assert_int_equal(disk_info(d, info), 0);
	disk_close(d);
}

static void test_guid_rules(void **state)
{
	struct disk_info a, b, c;
	struct disk *d;
	uint8_t sec[512] = {1};
	uint64_t freed;

	make("g.vhdx", 16 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	read_guids(tmp("g.vhdx"), &a);
	/* A writable open that writes nothing changes nothing. */
	assert_int_equal(disk_open(tmp("g.vhdx"), 0, &d, NULL), 0);
	disk_close(d);
	read_guids(tmp("g.vhdx"), &b);
	assert_true(uuid_equal(&a.file_write_guid, &b.file_write_guid));
	/* A data write renews both GUIDs; the log is clean after close. */
	assert_int_equal(disk_open(tmp("g.vhdx"), 0, &d, NULL), 0);
	assert_int_equal(disk_write(d, sec, 0, 512), 0);
	disk_close(d);
	read_guids(tmp("g.vhdx"), &b);
	assert_false(uuid_equal(&a.file_write_guid, &b.file_write_guid));
	assert_false(uuid_equal(&a.data_write_guid, &b.data_write_guid));
	assert_true(uuid_is_zero(&b.log_guid));
	/* Compact moves no guest data: a new FileWriteGuid, the same DataWriteGuid. */
	assert_int_equal(disk_open(tmp("g.vhdx"), 0, &d, NULL), 0);
	memset(sec, 0, sizeof(sec));
	assert_int_equal(disk_write(d, sec, 0, 512), 0);
	disk_close(d);
	read_guids(tmp("g.vhdx"), &b);
	assert_int_equal(vhdx_compact(tmp("g.vhdx"), &freed, NULL), 0);
	assert_int_equal(freed, 1 << 20);
	read_guids(tmp("g.vhdx"), &c);
	assert_false(uuid_equal(&b.file_write_guid, &c.file_write_guid));
	assert_true(uuid_equal(&b.data_write_guid, &c.data_write_guid));
	assert_int_equal(c.blocks_allocated, 0);
}

static void poke(const char *path, uint64_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(dio_pwrite(fd, buf, len, off), 0);
	close(fd);
}

static void peek(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(dio_pread(fd, buf, len, off), 0);
	close(fd);
}

/* The caller's buffer holds one line: the file first, then what is wrong with it. */
static void expect_reason(const struct disk_err *why, const char *first, const char *part)
{
	if (strncmp(why->msg, first, strlen(first)) || !strstr(why->msg, part))
		fail_msg("the reason is '%s'; expected '%s' ... '%s'", why->msg, first, part);
}

static void test_headers(void **state)
{
	uint8_t h1[4096], h2[4096], junk[4] = {0xde, 0xad, 0xbe, 0xef};
	struct disk_err why;
	struct disk *d;

	make("h.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	peek(tmp("h.vhdx"), VHDX_HEADER1_OFF, h1, sizeof(h1));
	peek(tmp("h.vhdx"), VHDX_HEADER2_OFF, h2, sizeof(h2));
	assert_true(le64_load(h2 + 8) > le64_load(h1 + 8));
	/* The higher sequence number wins; a damaged header falls back to the other. */
	poke(tmp("h.vhdx"), VHDX_HEADER2_OFF + 100, junk, 4);
	assert_int_equal(disk_open(tmp("h.vhdx"), 0, &d, NULL), 0);
	assert_int_equal(to_vhdx(d)->cur_slot, 0);
	uint8_t sec[512] = {9};

	assert_int_equal(disk_write(d, sec, 0, 512), 0);
	disk_close(d);
	/* The update rewrote both slots with higher sequence numbers, both valid again. */
	peek(tmp("h.vhdx"), VHDX_HEADER1_OFF, h1, sizeof(h1));
	peek(tmp("h.vhdx"), VHDX_HEADER2_OFF, h2, sizeof(h2));
	assert_true(le64_load(h1 + 8) > 2 && le64_load(h2 + 8) > 2);
	assert_int_equal(vhdx_check(tmp("h.vhdx"), stderr, NULL), 0);
	/* Both headers damaged: a clear refusal, its reason in the caller's buffer. */
	poke(tmp("h.vhdx"), VHDX_HEADER1_OFF + 100, junk, 4);
	poke(tmp("h.vhdx"), VHDX_HEADER2_OFF + 100, junk, 4);
	assert_int_equal(disk_open(tmp("h.vhdx"), DISK_OPEN_RDONLY, &d, &why), -EINVAL);
	expect_reason(&why, tmp("h.vhdx"), ": both VHDX headers are invalid (header 1: ");
}

static void test_log_replay(void **state)
{
	const char *a = tmp("log.vhdx"), *b = tmp("log-copy.vhdx");
	uint8_t w[4096], r[4096], zero[4096] = {0}, *copy;
	struct disk *d, *e;
	size_t flen;
	int fd;

	make("log.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	fill(w, sizeof(w), 3);
	assert_int_equal(disk_open(a, 0, &d, NULL), 0);
	assert_int_equal(disk_write(d, w, 2 << 20, sizeof(w)), 0);
	assert_int_equal(disk_flush(d), 0);
	/* Snapshot the file mid-session, as a crash would leave it, minus the BAT. */
	fd = open(a, O_RDONLY);
	flen = (size_t)lseek(fd, 0, SEEK_END); /* with the tail grown ahead (vhdx_alloc) */
	copy = malloc(flen);
	assert_non_null(copy);
	assert_int_equal(dio_pread(fd, copy, flen, 0), 0);
	close(fd);
	disk_close(d);
	unlink(b);
	fd = open(b, O_RDWR | O_CREAT, 0644);
	assert_int_equal(dio_pwrite(fd, copy, flen, 0), 0);
	close(fd);
	poke(b, 3 << 20, zero, sizeof(zero)); /* the BAT's first sector */
	/* Read-only: replayed in memory, the file untouched. */
	assert_int_equal(disk_open(b, DISK_OPEN_RDONLY, &e, NULL), 0);
	assert_int_equal(to_vhdx(e)->replayed_entries, 1);
	assert_int_equal(disk_read(e, r, 2 << 20, sizeof(r)), 0);
	assert_memory_equal(w, r, sizeof(r));
	disk_close(e);
	peek(b, 3 << 20, r, sizeof(r));
	assert_memory_equal(r, zero, sizeof(r));
	/* Writable: replayed into the file, LogGuid cleared. */
	assert_int_equal(disk_open(b, 0, &e, NULL), 0);
	assert_true(uuid_is_zero(&to_vhdx(e)->log_guid));
	disk_close(e);
	peek(b, 3 << 20, r, sizeof(r));
	assert_memory_not_equal(r, zero, sizeof(r));
	assert_int_equal(disk_open(b, DISK_OPEN_RDONLY, &e, NULL), 0);
	assert_int_equal(to_vhdx(e)->replayed_entries, 0);
	assert_int_equal(disk_read(e, r, 2 << 20, sizeof(r)), 0);
	assert_memory_equal(w, r, sizeof(r));
	disk_close(e);
	/* A damaged entry (bad CRC) is not replayed: the wiped BAT stays wiped. */
	fd = open(b, O_RDWR);
	assert_int_equal(dio_pwrite(fd, copy, flen, 0), 0);
	close(fd);
	poke(b, 3 << 20, zero, sizeof(zero));
	poke(b, (1 << 20) + 4096 + 100, "x", 1);
	assert_int_equal(disk_open(b, DISK_OPEN_RDONLY, &e, NULL), 0);
	assert_int_equal(disk_read(e, r, 2 << 20, sizeof(r)), 0);
	assert_memory_equal(r, zero, sizeof(r));
	disk_close(e);
	free(copy);
}

/* Copies the file as a crash at this moment would leave it (the page cache included). */
static void crash_copy(const char *from, const char *to)
{
	int fd = open(from, O_RDONLY), out;
	size_t len = (size_t)lseek(fd, 0, SEEK_END);
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(dio_pread(fd, buf, len, 0), 0);
	close(fd);
	unlink(to);
	out = open(to, O_RDWR | O_CREAT, 0644);
	assert_true(out >= 0);
	assert_int_equal(dio_pwrite(out, buf, len, 0), 0);
	close(out);
	free(buf);
}

static uint64_t file_len(const char *path)
{
	int fd = open(path, O_RDONLY);
	off_t len = lseek(fd, 0, SEEK_END);

	close(fd);
	return (uint64_t)len;
}

/*
 * Allocation ahead: the file grows VHDX_GROW_BLOCKS blocks at a time, so the next
 * allocations change no file size; a crash leaves the unreferenced tail, which check accepts
 * and a writable open keeps using from its end; a clean close cuts it.
 */
static void test_alloc_ahead(void **state)
{
	const char *a = tmp("ahead.vhdx"), *c = tmp("ahead-crash.vhdx");
	uint8_t w[4096], r[4096];
	struct disk *d, *e;
	struct vhdx *v;
	uint64_t grown, end;

	make("ahead.vhdx", 64 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	fill(w, sizeof(w), 21);
	assert_int_equal(disk_open(a, 0, &d, NULL), 0);
	v = to_vhdx(d);
	assert_int_equal(disk_write(d, w, 0, sizeof(w)), 0);
	grown = file_len(a);
	assert_int_equal(grown, v->file_end + (uint64_t)(VHDX_GROW_BLOCKS - 1) * (1 << 20));
	for (uint64_t i = 1; i < VHDX_GROW_BLOCKS; i++)
		assert_int_equal(disk_write(d, w, i << 20, sizeof(w)), 0);
	assert_int_equal(file_len(a), grown); /* the next blocks took the grown tail */
	assert_int_equal(v->file_end, grown);
	assert_int_equal(disk_write(d, w, (uint64_t)VHDX_GROW_BLOCKS << 20, sizeof(w)), 0);
	assert_true(file_len(a) > grown);
	assert_int_equal(disk_flush(d), 0);
	end = v->file_end;
	/* A crash leaves the tail: consistent, the data there, and check says no error. */
	crash_copy(a, c);
	assert_true(file_len(c) > end);
	assert_int_equal(vhdx_check(c, stderr, NULL), 0);
	assert_int_equal(disk_open(c, 0, &e, NULL), 0);
	assert_int_equal(disk_read(e, r, (uint64_t)VHDX_GROW_BLOCKS << 20, sizeof(r)), 0);
	assert_memory_equal(r, w, sizeof(r));
	/* A new block after the crash goes past the old tail, which reads as nobody's. */
	assert_int_equal(disk_write(e, w, 40 << 20, sizeof(w)), 0);
	assert_true(to_vhdx(e)->file_end > end);
	disk_close(e);
	assert_int_equal(vhdx_check(c, stderr, NULL), 0);
	/* A clean close cuts the tail. */
	disk_close(d);
	assert_int_equal(file_len(a), end);
	assert_int_equal(vhdx_check(a, stderr, NULL), 0);
}

/*
 * A file size limit that leaves room for the next block but not for the blocks ahead
 * (RLIMIT_FSIZE here; a file system's largest file or a quota alike): the write still
 * allocates its block, as it did before allocation ahead.
 */
static void test_alloc_ahead_limit(void **state)
{
	const char *a = tmp("ahead-limit.vhdx");
	struct rlimit old, lim;
	uint8_t w[4096], r[4096];
	struct disk *d;
	uint64_t end;
	int rc[3];

	make("ahead-limit.vhdx", 64 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	fill(w, sizeof(w), 23);
	assert_int_equal(disk_open(a, 0, &d, NULL), 0);
	end = to_vhdx(d)->file_end;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = end + (2 << 20); /* two blocks, not VHDX_GROW_BLOCKS */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc[0] = disk_write(d, w, 0, sizeof(w));
	rc[1] = disk_write(d, w, 5 << 20, sizeof(w));
	rc[2] = disk_flush(d);
	/* The limit goes before any assertion, so that a failure here fails this test alone. */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rc[i], 0);
	assert_int_equal(disk_read(d, r, 5 << 20, sizeof(r)), 0);
	assert_memory_equal(r, w, sizeof(r));
	disk_close(d);
	assert_int_equal(file_len(a), end + (2 << 20));
	assert_int_equal(vhdx_check(a, stderr, NULL), 0);
}

/* Reads n bytes at off of a fresh read-only open of path (its log replayed in memory). */
static void read_fresh(const char *path, uint8_t *buf, uint64_t off, size_t n)
{
	struct disk *e;

	assert_int_equal(disk_open(path, DISK_OPEN_RDONLY, &e, NULL), 0);
	assert_int_equal(disk_read(e, buf, off, n), 0);
	disk_close(e);
}

/*
 * A differencing disk's partial-block writes: new sector bitmap bits are in the cache at once
 * and staged, logged with the staged BAT entries at the guest's flush in one transaction;
 * before it a crash loses the writes and the parent's data reads as before, after it they
 * survive with the parent's data around them.
 */
static void test_staged_bitmap(void **state)
{
	const char *c = tmp("sbm-child.vhdx"), *x = tmp("sbm-crash.vhdx");
	uint8_t *p = malloc(3 << 20), *r = malloc(3 << 20), w[3][4096];
	const uint64_t at[3] = {(1 << 20) + 8192, (1 << 20) + (64 << 10), (2 << 20) + 512};
	struct disk *d;
	struct vhdx *v;
	uint64_t seq;

	assert_non_null(p);
	assert_non_null(r);
	make("sbm-base.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("sbm-base.vhdx"), 0, &d, NULL), 0);
	fill(p, 3 << 20, 9);
	assert_int_equal(disk_write(d, p, 0, 3 << 20), 0);
	disk_close(d);
	make("sbm-child.vhdx", 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp("sbm-base.vhdx"));
	assert_int_equal(disk_open(c, 0, &d, NULL), 0);
	v = to_vhdx(d);
	seq = v->log_seq;
	for (int i = 0; i < 3; i++) {
		fill(w[i], sizeof(w[i]), 30 + i);
		assert_int_equal(disk_write(d, w[i], at[i], sizeof(w[i])), 0);
		memcpy(p + at[i], w[i], sizeof(w[i]));
	}
	/* In the cache: read back at once, the parent's data around; nothing logged. */
	assert_int_equal(v->log_seq, seq);
	assert_true(v->n_dirty > 0);
	assert_int_equal(disk_read(d, r, 0, 3 << 20), 0);
	assert_memory_equal(r, p, 3 << 20);
	/* A crash before the flush: the parent's data everywhere, the file consistent. */
	crash_copy(c, x);
	assert_int_equal(vhdx_check(x, stderr, NULL), 0);
	read_fresh(x, r, 0, 3 << 20);
	fill(p, 3 << 20, 9);
	assert_memory_equal(r, p, 3 << 20);
	/* The flush: one transaction (bitmap block entries, bits, block entries). */
	assert_int_equal(disk_flush(d), 0);
	assert_int_equal(v->n_dirty, 0);
	assert_int_equal(v->log_seq, seq + 1);
	for (int i = 0; i < 3; i++)
		memcpy(p + at[i], w[i], sizeof(w[i]));
	crash_copy(c, x);
	assert_int_equal(vhdx_check(x, stderr, NULL), 0);
	read_fresh(x, r, 0, 3 << 20);
	assert_memory_equal(r, p, 3 << 20);
	/* More bits in a block already partially present: one bitmap sector staged. */
	assert_int_equal(disk_write(d, w[0], (1 << 20) + (512 << 10), sizeof(w[0])), 0);
	memcpy(p + (1 << 20) + (512 << 10), w[0], sizeof(w[0]));
	assert_int_equal(v->n_dirty, 1);
	assert_int_equal(v->log_seq, seq + 1);
	assert_int_equal(disk_flush(d), 0);
	assert_int_equal(v->log_seq, seq + 2);
	/* Bits already set: nothing staged, nothing logged. */
	assert_int_equal(disk_write(d, w[1], at[0], sizeof(w[1])), 0);
	memcpy(p + at[0], w[1], sizeof(w[1]));
	assert_int_equal(v->n_dirty, 0);
	disk_close(d);
	read_fresh(c, r, 0, 3 << 20);
	assert_memory_equal(r, p, 3 << 20);
	assert_int_equal(vhdx_check(c, stderr, NULL), 0);
	free(p);
	free(r);
}

static uint64_t block_state(struct disk *d, uint64_t off)
{
	struct vhdx *v = to_vhdx(d);

	return v->bat[vhdx_bat_payload_index(v, off / v->block_size)] & VHDX_BAT_STATE_MASK;
}

/* Writes 4 KiB of pattern seed at off, to d and to the expected image. */
static void write_both(struct disk *d, uint8_t *img, uint64_t off, int seed)
{
	uint8_t w[4096];

	fill(w, sizeof(w), seed);
	assert_int_equal(disk_write(d, w, off, sizeof(w)), 0);
	memcpy(img + off, w, sizeof(w));
}

/*
 * A differencing disk's partial write to a block that the parent chain reads as zeros
 * allocates it fully present (no bitmap: the new block's zeros are what the parents read);
 * where any level of the chain has data in the block, partially present as before.
 */
static void test_zero_parent(void **state)
{
	const size_t size = 16 << 20;
	uint8_t *img = calloc(1, size), *r = malloc(size);
	const char *ch;
	struct disk *d;

	assert_non_null(img);
	assert_non_null(r);
	make("zp-gp.vhdx", size, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("zp-gp.vhdx"), 0, &d, NULL), 0);
	write_both(d, img, (5 << 20) + 8192, 40);
	write_both(d, img, (3 << 20) + 8192, 46);
	disk_close(d);
	make("zp-mid.vhdx", 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp("zp-gp.vhdx"));
	assert_int_equal(disk_open(tmp("zp-mid.vhdx"), 0, &d, NULL), 0);
	write_both(d, img, (7 << 20) + 4096, 41); /* zeros in the grandparent */
	assert_int_equal(block_state(d, 7 << 20), VHDX_PAYLOAD_FULLY_PRESENT);
	write_both(d, img, (5 << 20) + 65536, 42); /* the grandparent's data around */
	assert_int_equal(block_state(d, 5 << 20), VHDX_PAYLOAD_PARTIALLY_PRESENT);
	disk_close(d);
	make("zp-child.vhdx", 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp("zp-mid.vhdx"));
	ch = tmp("zp-child.vhdx"); /* tmp() keeps its last 8 answers */
	assert_int_equal(disk_open(ch, 0, &d, NULL), 0);
	write_both(d, img, (8 << 20) + 4096, 43); /* zeros two levels down */
	assert_int_equal(block_state(d, 8 << 20), VHDX_PAYLOAD_FULLY_PRESENT);
	write_both(d, img, (3 << 20) + 4096, 44); /* data in the grandparent only */
	assert_int_equal(block_state(d, 3 << 20), VHDX_PAYLOAD_PARTIALLY_PRESENT);
	write_both(d, img, (7 << 20) + 512 * 3, 45); /* data in the parent */
	assert_int_equal(block_state(d, 7 << 20), VHDX_PAYLOAD_PARTIALLY_PRESENT);
	assert_int_equal(disk_read(d, r, 0, size), 0);
	assert_memory_equal(r, img, size);
	disk_close(d);
	read_fresh(ch, r, 0, size);
	assert_memory_equal(r, img, size);
	assert_int_equal(vhdx_check(ch, stderr, NULL), 0);
	free(img);
	free(r);
}

/*
 * Staged allocation: blocks allocated by writes reach the BAT on file only at the guest's
 * flush, all in one log transaction written after their data was flushed; before it a crash
 * loses them (they read as zeros, the file stays consistent), after it they survive.
 */
static void test_staged_alloc(void **state)
{
	const char *a = tmp("stage.vhdx"), *c = tmp("stage-crash.vhdx");
	uint8_t w[3][4096], r[4096], zero[4096] = {0}, bat[4096], entry[64];
	const uint64_t at[3] = {0, 5 << 20, (40 << 20) + 8192};
	struct disk *d, *e;
	struct vhdx *v;
	uint64_t seq;

	make("stage.vhdx", 64 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(a, 0, &d, NULL), 0);
	v = to_vhdx(d);
	for (int i = 0; i < 3; i++) {
		fill(w[i], sizeof(w[i]), 10 + i);
		assert_int_equal(disk_write(d, w[i], at[i], sizeof(w[i])), 0);
	}
	/* Visible at once, in memory only: no log transaction, the file's BAT unchanged. */
	seq = v->log_seq;
	assert_int_equal(v->n_dirty, 1);
	assert_int_equal(disk_read(d, r, at[2], sizeof(r)), 0);
	assert_memory_equal(r, w[2], sizeof(r));
	peek(a, v->bat_off, bat, sizeof(bat));
	assert_memory_equal(bat, zero, sizeof(bat));
	/* A crash now: the unflushed writes are gone, nothing else. */
	crash_copy(a, c);
	assert_int_equal(disk_open(c, DISK_OPEN_RDONLY, &e, NULL), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(disk_read(e, r, at[i], sizeof(r)), 0);
		assert_memory_equal(r, zero, sizeof(r));
	}
	disk_close(e);
	/* The flush: one transaction for all three. */
	assert_int_equal(disk_flush(d), 0);
	assert_int_equal(v->n_dirty, 0);
	assert_int_equal(v->log_seq, seq + 1);
	peek(a, v->log_off + v->log_prev, entry, sizeof(entry));
	assert_memory_equal(entry, "loge", 4);
	/* A crash after the flush, with the in-place BAT lost: the log brings them back. */
	crash_copy(a, c);
	poke(c, v->bat_off, zero, sizeof(zero));
	assert_int_equal(disk_open(c, 0, &e, NULL), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(disk_read(e, r, at[i], sizeof(r)), 0);
		assert_memory_equal(r, w[i], sizeof(r));
	}
	disk_close(e);
	/* Staged again, then made durable by close without a flush. */
	assert_int_equal(disk_write(d, w[0], 20 << 20, sizeof(w[0])), 0);
	assert_int_equal(v->n_dirty, 1);
	disk_close(d);
	assert_int_equal(disk_open(a, DISK_OPEN_RDONLY, &e, NULL), 0);
	assert_int_equal(to_vhdx(e)->replayed_entries, 0);
	assert_int_equal(disk_read(e, r, 20 << 20, sizeof(r)), 0);
	assert_memory_equal(r, w[0], sizeof(r));
	disk_close(e);
}

/*
 * The log keeps the previous entry while its in-place writes are not durable: each
 * transaction's Tail names the one before, entries follow each other and start over at the
 * log's start when the next would not fit. After many flushes (two trips around the log),
 * a crash that loses every in-place BAT write still recovers every flushed block.
 */
static void test_log_sequence(void **state)
{
	const char *a = tmp("seq.vhdx"), *c = tmp("seq-crash.vhdx");
	uint8_t w[4096], r[4096], zero[4096] = {0}, entry[64];
	uint32_t first, wraps = 0, head;
	struct disk *d, *e;
	struct vhdx *v;

	make("seq.vhdx", 512 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(a, 0, &d, NULL), 0);
	v = to_vhdx(d);
	for (unsigned i = 0; i < 300; i++) {
		fill(w, sizeof(w), (int)i);
		assert_int_equal(disk_write(d, w, (uint64_t)(i % 500) << 20, sizeof(w)), 0);
		head = v->log_head;
		first = v->log_prev;
		assert_int_equal(disk_flush(d), 0);
		peek(a, v->log_off + v->log_prev, entry, sizeof(entry));
		assert_memory_equal(entry, "loge", 4);
		if (v->log_prev == 0 && i > 0) {
			wraps++; /* started over: Tail is the entry itself */
			assert_int_equal(le32_load(entry + 12), 0);
		} else if (i > 0) {
			assert_int_equal(v->log_prev, head); /* right after the previous one */
			assert_int_equal(le32_load(entry + 12), first);
		}
	}
	assert_true(wraps >= 2);
	crash_copy(a, c);
	for (uint64_t off = 0; off < 64 << 10; off += sizeof(zero))
		poke(c, v->bat_off + off, zero, sizeof(zero)); /* every BAT write in place lost */
	assert_int_equal(disk_open(c, DISK_OPEN_RDONLY, &e, NULL), 0);
	assert_true(to_vhdx(e)->replayed_entries >= 1);
	for (unsigned i = 0; i < 300; i++) { /* sector 0 of the BAT holds them all */
		fill(w, sizeof(w), (int)i);
		assert_int_equal(disk_read(e, r, (uint64_t)(i % 500) << 20, sizeof(r)), 0);
		assert_memory_equal(r, w, sizeof(r));
	}
	disk_close(e);
	disk_close(d);
	/* A crash right after the last flush, in-place writes intact: every block is there. */
	assert_int_equal(disk_open(a, DISK_OPEN_RDONLY, &e, NULL), 0);
	for (unsigned i = 0; i < 300; i++) {
		fill(w, sizeof(w), (int)i);
		assert_int_equal(disk_read(e, r, (uint64_t)(i % 500) << 20, sizeof(r)), 0);
		assert_memory_equal(r, w, sizeof(r));
	}
	disk_close(e);
}

/* vhdx_syncs after the commit test_flush_race plays on another thread's behalf. */
static unsigned long race_mark;

/* Another thread's commit, finishing between vhdx_flush's unlocked look at n_dirty and its
 * lock: its fdatasyncs may have started before the flushing caller's writes completed. */
static void commit_elsewhere(struct vhdx *v)
{
	pthread_mutex_lock(&v->lock);
	assert_int_equal(vhdx_bat_commit(v), 0);
	pthread_mutex_unlock(&v->lock);
	race_mark = __atomic_load_n(&v->syncs, __ATOMIC_RELAXED);
}

/*
 * A flush ends with an fdatasync that started after it was called: its own commit's (data,
 * then the log entry: two), or its own when nothing is staged, or when another thread's
 * commit took what was staged first.
 */
static void test_flush_race(void **state)
{
	const char *a = tmp("race.vhdx");
	uint8_t w[4096], r[4096];
	struct disk *d;
	struct vhdx *v;
	unsigned long s0;
	uint64_t seq;

	make("race.vhdx", 64 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(a, 0, &d, NULL), 0);
	v = to_vhdx(d);
	fill(w, sizeof(w), 7);
	/* A flush that commits: the new block's data synced, then one entry, synced. */
	assert_int_equal(disk_write(d, w, 0, sizeof(w)), 0);
	assert_int_equal(v->n_dirty, 1);
	s0 = v->syncs;
	seq = v->log_seq;
	assert_int_equal(disk_flush(d), 0);
	assert_int_equal(v->n_dirty, 0);
	assert_int_equal(v->log_seq, seq + 1);
	assert_int_equal(v->syncs, s0 + 2);
	/* Nothing staged: one sync. */
	assert_int_equal(disk_write(d, w, 4096, sizeof(w)), 0);
	s0 = v->syncs;
	assert_int_equal(disk_flush(d), 0);
	assert_int_equal(v->syncs, s0 + 1);
	/* Staged, but committed by someone else before this flush takes the lock. */
	assert_int_equal(disk_write(d, w, 2 << 20, sizeof(w)), 0);
	assert_int_equal(v->n_dirty, 1);
	v->flush_race = commit_elsewhere;
	race_mark = 0;
	assert_int_equal(disk_flush(d), 0);
	v->flush_race = NULL;
	assert_int_not_equal(race_mark, 0);
	assert_int_equal(v->n_dirty, 0);
	assert_true(v->syncs > race_mark);
	disk_close(d);
	assert_int_equal(disk_open(a, DISK_OPEN_RDONLY, &d, NULL), 0);
	assert_int_equal(disk_read(d, r, 2 << 20, sizeof(r)), 0);
	assert_memory_equal(r, w, sizeof(r));
	disk_close(d);
}

/* More staged BAT sectors than one commit takes: committed on the way, VHDX_STAGE_MAX at a
 * time, without waiting for a flush; every block reads back after reopening. */
static void test_staged_limit(void **state)
{
	const char *a = tmp("limit.vhdx");
	const unsigned n = VHDX_STAGE_MAX + 6;
	uint8_t w[512], r[512];
	struct disk *d;
	uint64_t seq, step;

	/* 1 MiB blocks: a BAT sector holds 512 entries; a bitmap entry follows every 4096
	 * blocks, so the blocks 512 apart have their entries in n different sectors. */
	make("limit.vhdx", (uint64_t)(n + 1) * 512 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(a, 0, &d, NULL), 0);
	step = 512ull << 20;
	fill(w, sizeof(w), 4);
	seq = to_vhdx(d)->log_seq;
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(disk_write(d, w, i * step, sizeof(w)), 0);
	assert_int_equal(to_vhdx(d)->n_dirty, n - VHDX_STAGE_MAX);
	assert_int_equal(to_vhdx(d)->log_seq, seq + 1);
	disk_close(d);
	assert_int_equal(disk_open(a, DISK_OPEN_RDONLY, &d, NULL), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(disk_read(d, r, i * step, sizeof(r)), 0);
		assert_memory_equal(r, w, sizeof(r));
	}
	disk_close(d);
	unlink(a);
}

static void test_differencing(void **state)
{
	uint8_t w[8192], r[8192], p[8192];
	struct disk *d;
	struct disk_info info;

	make("base.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("base.vhdx"), 0, &d, NULL), 0);
	fill(p, sizeof(p), 5);
	assert_int_equal(disk_write(d, p, 1 << 20, sizeof(p)), 0);
	disk_close(d);
	make("child.vhdx", 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp("base.vhdx"));
	assert_int_equal(disk_open(tmp("child.vhdx"), 0, &d, NULL), 0);
	assert_int_equal(disk_info(d, &info), 0);
	assert_int_equal(info.type, DISK_TYPE_DIFFERENCING);
	assert_int_equal(info.virtual_size, 8 << 20);
	/* One sector in the middle: the rest of the block still comes from the parent. */
	fill(w, 512, 6);
	assert_int_equal(disk_write(d, w, (1 << 20) + 1024, 512), 0);
	assert_int_equal(disk_read(d, r, 1 << 20, sizeof(r)), 0);
	assert_memory_equal(r, p, 1024);
	assert_memory_equal(r + 1024, w, 512);
	assert_memory_equal(r + 1536, p + 1536, sizeof(r) - 1536);
	/* A sub-sector (unaligned to the child's 512) is not possible; a sector next to it. */
	assert_int_equal(disk_write(d, w, (1 << 20) + 1536, 512), 0);
	assert_int_equal(disk_read(d, r, (1 << 20) + 1024, 1024), 0);
	assert_memory_equal(r, w, 512);
	assert_memory_equal(r + 512, w, 512);
	disk_close(d);
	assert_int_equal(vhdx_check(tmp("child.vhdx"), stderr, NULL), 0);
	/* Merge: the parent now holds what the child showed. */
	char parent[DISK_PATH_MAX];

	assert_int_equal(vhdx_merge(tmp("child.vhdx"), parent, sizeof(parent), NULL), 0);
	assert_int_equal(access(tmp("child.vhdx"), F_OK), -1);
	assert_int_equal(disk_open(tmp("base.vhdx"), DISK_OPEN_RDONLY, &d, NULL), 0);
	assert_int_equal(disk_read(d, r, 1 << 20, sizeof(r)), 0);
	assert_memory_equal(r, p, 1024);
	assert_memory_equal(r + 1024, w, 512);
	assert_memory_equal(r + 1536, w, 512);
	assert_memory_equal(r + 2048, p + 2048, sizeof(r) - 2048);
	disk_close(d);
}

/* A parent locator naming a FIFO (what a child's writer may put there): the library refuses
 * it, saying what it is, and never waits in open() for a writer. A hang would end the test
 * by its SIGALRM (default action: the process dies, the test fails). */
static void test_fifo_parent(void **state)
{
	struct disk_create_opts o = {.format = DISK_FORMAT_VHDX, .type = DISK_TYPE_DIFFERENCING};
	char merged[DISK_PATH_MAX], base[128];
	struct disk_err why;
	struct disk *d = NULL;

	snprintf(base, sizeof(base), "%s", tmp("fifo-base.vhdx")); /* tmp()'s slots rotate */
	o.parent = base;
	make("fifo-base.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	make("fifo-child.vhdx", 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp("fifo-base.vhdx"));
	assert_int_equal(unlink(tmp("fifo-base.vhdx")), 0);
	assert_int_equal(mkfifo(tmp("fifo-base.vhdx"), 0600), 0);
	alarm(60);
	assert_int_equal(disk_open(tmp("fifo-child.vhdx"), DISK_OPEN_RDONLY, &d, &why), -EINVAL);
	expect_reason(&why, tmp("fifo-child.vhdx"), "it is a FIFO, not a regular file");
	assert_non_null(strstr(why.msg, "cannot open its parent"));
	assert_int_equal(disk_open_as(tmp("fifo-child.vhdx"), DISK_FORMAT_VHDX,
				      DISK_OPEN_RDONLY | DISK_OPEN_NOLOCK, &d, &why),
			 -EINVAL);
	/* The offline operations that follow a child's locator, and a new child of it. */
	assert_int_equal(vhdx_merge(tmp("fifo-child.vhdx"), merged, sizeof(merged), &why), -EINVAL);
	assert_non_null(strstr(why.msg, "it is a FIFO"));
	assert_int_equal(access(tmp("fifo-child.vhdx"), F_OK), 0);
	unlink(tmp("fifo-new.vhdx"));
	assert_int_equal(disk_create(tmp("fifo-new.vhdx"), &o, &why), -EINVAL);
	expect_reason(&why, "cannot open", "it is a FIFO, not a regular file or a block device");
	assert_int_equal(access(tmp("fifo-new.vhdx"), F_OK), -1);
	alarm(0);
	unlink(tmp("fifo-base.vhdx"));
}

/* disk_map: where keel-vmm's io_uring backend may read and write a disk's bytes itself. */
static void test_map(void **state)
{
	uint8_t w[8192], r[8192], p[8192];
	struct disk_extent e;
	struct disk *d;

	make("map.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("map.vhdx"), 0, &d, NULL), 0);
	/* Unallocated: zeros to read (one block at most). */
	assert_int_equal(disk_map(d, 0, 2 << 20, false, &e), 0);
	assert_int_equal(e.kind, DISK_EXTENT_ZERO);
	assert_int_equal(e.len, 1 << 20);
	assert_int_equal(disk_map(d, 8 << 20, 512, false, &e), -EINVAL); /* outside */
	/* Allocated by a library write: a file extent up to the block's end, holding it. */
	fill(p, sizeof(p), 8);
	assert_int_equal(disk_write(d, p, (1 << 20) + 4096, sizeof(p)), 0);
	assert_int_equal(disk_map(d, (1 << 20) + 4096, 2 << 20, false, &e), 0);
	assert_int_equal(e.kind, DISK_EXTENT_FILE);
	assert_int_equal(e.len, (1 << 20) - 4096);
	assert_int_equal(dio_pread(disk_fd(d), r, sizeof(r), e.file_off), 0);
	assert_memory_equal(r, p, sizeof(r));
	/* A direct write there, made durable by disk_flush, reads back after a reopen. */
	assert_int_equal(disk_map(d, (1 << 20) + 4096, sizeof(w), true, &e), 0);
	assert_int_equal(e.kind, DISK_EXTENT_FILE);
	assert_false(e.alloc);
	fill(w, sizeof(w), 9);
	assert_int_equal(dio_pwrite(disk_fd(d), w, sizeof(w), e.file_off), 0);
	assert_int_equal(disk_flush(d), 0);
	disk_close(d);
	assert_int_equal(vhdx_check(tmp("map.vhdx"), stderr, NULL), 0);
	assert_int_equal(disk_open(tmp("map.vhdx"), DISK_OPEN_RDONLY, &d, NULL), 0);
	assert_int_equal(disk_read(d, r, (1 << 20) + 4096, sizeof(r)), 0);
	assert_memory_equal(r, w, sizeof(r));
	assert_int_equal(disk_map(d, 0, 512, true, &e), -EROFS);
	disk_close(d);
	/* A differencing child: its unallocated blocks are the parent's, the library's. */
	make("mapchild.vhdx", 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp("map.vhdx"));
	assert_int_equal(disk_open(tmp("mapchild.vhdx"), 0, &d, NULL), 0);
	assert_int_equal(disk_map(d, 1 << 20, 4096, false, &e), 0);
	assert_int_equal(e.kind, DISK_EXTENT_LIBRARY);
	assert_int_equal(disk_map(d, 1 << 20, 4096, true, &e), 0);
	assert_int_equal(e.kind, DISK_EXTENT_LIBRARY);
	assert_true(e.alloc);
	/* Written once: partially present, the next write is the library's without allocating. */
	assert_int_equal(disk_write(d, p, 1 << 20, 4096), 0);
	assert_int_equal(disk_map(d, (1 << 20) + 8192, 4096, true, &e), 0);
	assert_int_equal(e.kind, DISK_EXTENT_LIBRARY);
	assert_false(e.alloc);
	disk_close(d);
	/* Raw: the file is the disk. */
	assert_int_equal(disk_open_as(tmp("map.vhdx"), DISK_FORMAT_RAW, DISK_OPEN_RDONLY, &d, NULL),
			 0);
	assert_int_equal(disk_map(d, 512, 4096, false, &e), 0);
	assert_int_equal(e.kind, DISK_EXTENT_FILE);
	assert_int_equal(e.file_off, 512);
	assert_int_equal(e.len, 4096);
	disk_close(d);
}

/*
 * disk_map for a write into a block not present of a disk without parent: the block is
 * allocated there and then (a hole at the end of the file, its entry staged), and the write
 * is a file extent like one into a present block; every write into that block maps to the
 * same extent. Where allocating would wait (the lock held elsewhere) or fails (the file
 * cannot grow), the write stays the library's, which reports the error.
 */
static void test_map_alloc(void **state)
{
	const char *a = tmp("mapalloc.vhdx");
	uint8_t w[8192], r[8192], z[8192] = {0};
	struct disk_extent e, e2;
	struct rlimit old, lim;
	struct disk *d;
	struct vhdx *v;
	uint64_t end, blk0;
	int rc[2];

	make("mapalloc.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(a, 0, &d, NULL), 0);
	v = to_vhdx(d);
	end = v->file_end;
	assert_int_equal(disk_map(d, 4096, sizeof(w), true, &e), 0);
	assert_int_equal(e.kind, DISK_EXTENT_FILE);
	assert_int_equal(e.len, sizeof(w));
	assert_false(e.alloc);
	assert_int_equal(e.file_off, end + 4096); /* the new block at the end of the file */
	blk0 = e.file_off - 4096;
	assert_int_equal(v->bat[vhdx_bat_payload_index(v, 0)], blk0 | VHDX_PAYLOAD_FULLY_PRESENT);
	assert_true(v->n_dirty > 0); /* staged: logged with the next flush */
	/* Before the write lands the block reads as zeros, through the map and the library. */
	assert_int_equal(disk_map(d, 0, 1 << 20, false, &e2), 0);
	assert_int_equal(e2.kind, DISK_EXTENT_FILE);
	assert_int_equal(e2.file_off, blk0);
	assert_int_equal(dio_pread(disk_fd(d), r, sizeof(r), e.file_off), 0);
	assert_memory_equal(r, z, sizeof(r));
	assert_int_equal(disk_read(d, r, 4096, sizeof(r)), 0);
	assert_memory_equal(r, z, sizeof(r));
	/* Another write into the same block: the same extent, nothing allocated again. */
	assert_int_equal(disk_map(d, 512 << 10, 4096, true, &e2), 0);
	assert_int_equal(e2.kind, DISK_EXTENT_FILE);
	assert_int_equal(e2.file_off, blk0 + (512 << 10));
	assert_int_equal(v->file_end, end + (1 << 20));
	fill(w, sizeof(w), 31);
	assert_int_equal(dio_pwrite(disk_fd(d), w, sizeof(w), e.file_off), 0);
	assert_int_equal(disk_flush(d), 0);
	assert_int_equal(v->n_dirty, 0);
	/* The lock held elsewhere (a commit, a discard): the library's, marked as allocating. */
	pthread_mutex_lock(&v->lock);
	assert_int_equal(disk_map(d, 2 << 20, 4096, true, &e2), 0);
	pthread_mutex_unlock(&v->lock);
	assert_int_equal(e2.kind, DISK_EXTENT_LIBRARY);
	assert_true(e2.alloc);
	assert_int_equal(v->bat[vhdx_bat_payload_index(v, 2)] & VHDX_BAT_STATE_MASK,
			 VHDX_PAYLOAD_NOT_PRESENT);
	/* A discard of the whole block and write-zeroes (written zeros) work on it as on any. */
	assert_int_equal(disk_map(d, 3 << 20, 4096, true, &e2), 0);
	assert_int_equal(e2.kind, DISK_EXTENT_FILE);
	assert_int_equal(dio_pwrite(disk_fd(d), w, 4096, e2.file_off), 0);
	assert_int_equal(disk_discard(d, 3 << 20, 1 << 20), 0);
	assert_int_equal(disk_map(d, 3 << 20, 4096, false, &e2), 0);
	assert_int_equal(e2.kind, DISK_EXTENT_ZERO);
	assert_int_equal(disk_map(d, 4 << 20, 4096, true, &e2), 0);
	assert_int_equal(dio_pwrite(disk_fd(d), w, 4096, e2.file_off), 0);
	assert_int_equal(disk_write(d, z, 4 << 20, 4096), 0);
	assert_int_equal(disk_read(d, r, 4 << 20, 4096), 0);
	assert_memory_equal(r, z, 4096);
	/* The file cannot grow: no extent, the library's write fails (as it always did). */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = v->file_grown;
	signal(SIGXFSZ, SIG_IGN);
	v->file_end = v->file_grown; /* the room grown ahead used up */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc[0] = disk_map(d, 5 << 20, 4096, true, &e2);
	rc[1] = disk_write(d, w, 5 << 20, 4096);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc[0], 0);
	assert_int_equal(e2.kind, DISK_EXTENT_LIBRARY);
	assert_true(e2.alloc);
	assert_int_equal(rc[1], -EFBIG);
	assert_int_equal(disk_flush(d), 0);
	disk_close(d);
	assert_int_equal(vhdx_check(a, stderr, NULL), 0);
	assert_int_equal(disk_open(a, DISK_OPEN_RDONLY, &d, NULL), 0);
	assert_int_equal(disk_read(d, r, 4096, sizeof(r)), 0);
	assert_memory_equal(r, w, sizeof(r));
	assert_int_equal(disk_read(d, r, 5 << 20, 4096), 0);
	assert_memory_equal(r, z, 4096);
	disk_close(d);
}

static void test_locking(void **state)
{
	struct disk *a, *b;

	make("lock.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("lock.vhdx"), 0, &a, NULL), 0);
	assert_int_equal(disk_open(tmp("lock.vhdx"), DISK_OPEN_RDONLY, &b, NULL), -EBUSY);
	disk_close(a);
	assert_int_equal(disk_open(tmp("lock.vhdx"), DISK_OPEN_RDONLY, &a, NULL), 0);
	assert_int_equal(disk_open(tmp("lock.vhdx"), DISK_OPEN_RDONLY, &b, NULL), 0);
	disk_close(a);
	disk_close(b);
}

/* Each failure gives the caller its own reason, in the buffer it passed (not a per-thread
 * string, not just an errno); a call that succeeds leaves the buffer empty. */
static void test_reasons(void **state)
{
	static const struct uuid params = VHDX_GUID_FILE_PARAMS;
	struct disk_create_opts o = {.format = DISK_FORMAT_VHDX, .type = DISK_TYPE_DYNAMIC};
	uint8_t three_mib[4] = {0, 0, 0x30, 0};
	struct disk_err why, other;
	struct disk *d, *e;
	uint32_t off, len;
	uint64_t meta;
	int fd;

	/* Metadata: a block size that is not a power of 2 (3 MiB). */
	make("bs.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("bs.vhdx"), DISK_OPEN_RDONLY, &d, &why), 0);
	assert_string_equal(why.msg, "");
	meta = to_vhdx(d)->meta_off;
	assert_int_equal(vhdx_meta_find(to_vhdx(d), &params, &off, &len), 0);
	disk_close(d);
	poke(tmp("bs.vhdx"), meta + off, three_mib, 4);
	assert_int_equal(disk_open(tmp("bs.vhdx"), DISK_OPEN_RDONLY, &d, &why), -EINVAL);
	expect_reason(&why, tmp("bs.vhdx"),
		      ": VHDX metadata: block size 3145728 is not a power of 2 from 1 MiB to "
		      "256 MiB");
	/* Two callers, two buffers: a second failure does not overwrite the first's. */
	make("busy.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("busy.vhdx"), 0, &e, NULL), 0);
	assert_int_equal(disk_open(tmp("busy.vhdx"), DISK_OPEN_RDONLY, &d, &other), -EBUSY);
	expect_reason(&other, tmp("busy.vhdx"), " is in use by another program (open for writing)");
	expect_reason(&why, tmp("bs.vhdx"), "block size 3145728");
	disk_close(e);
	/* A raw file opened as VHDX is never guessed into something else. */
	fd = open(tmp("raw.img"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 << 20), 0);
	close(fd);
	assert_int_equal(disk_open_as(tmp("raw.img"), DISK_FORMAT_VHDX, DISK_OPEN_RDONLY, &d, &why),
			 -EINVAL);
	expect_reason(&why, tmp("raw.img"), ": not a VHDX file (no 'vhdxfile' identifier)");
	/* A differencing disk whose parent is gone. */
	make("gone-base.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	make("orphan.vhdx", 0, 0, DISK_TYPE_DIFFERENCING, tmp("gone-base.vhdx"));
	unlink(tmp("gone-base.vhdx"));
	assert_int_equal(disk_open(tmp("orphan.vhdx"), DISK_OPEN_RDONLY, &d, &why), -ENOENT);
	expect_reason(&why, tmp("orphan.vhdx"), ": parent disk not found (relative_path '");
	/* Offline operations and creation say why too. */
	assert_int_equal(vhdx_resize(tmp("orphan.vhdx"), 16 << 20, &why), -ENOENT);
	expect_reason(&why, tmp("orphan.vhdx"), ": parent disk not found");
	make("base2.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	make("child2.vhdx", 0, 0, DISK_TYPE_DIFFERENCING, tmp("base2.vhdx"));
	assert_int_equal(vhdx_resize(tmp("child2.vhdx"), 16 << 20, &why), -EINVAL);
	expect_reason(&why, "cannot resize ", ": it is a differencing disk");
	assert_int_equal(
		vhdx_merge(tmp("base2.vhdx"), (char[DISK_PATH_MAX]){0}, DISK_PATH_MAX, &why),
		-EINVAL);
	expect_reason(&why, "cannot merge ", ": it is not a differencing VHDX disk");
	o.size = 8 << 20;
	o.block_size = 3 << 20;
	assert_int_equal(disk_create(tmp("new.vhdx"), &o, &why), -EINVAL);
	expect_reason(&why, "cannot create ", ": block size must be a power of 2");
	/* Success empties the buffer. */
	o.block_size = 0;
	assert_int_equal(disk_create(tmp("new.vhdx"), &o, &why), 0);
	assert_string_equal(why.msg, "");
	assert_string_equal(disk_why(&why, -EIO), strerror(EIO));
	assert_string_equal(disk_why(NULL, -EIO), strerror(EIO));
	assert_string_equal(disk_why(&other, -EBUSY), other.msg);
}

/* A chain whose parents the caller opened (keeld for a jailed worker): no parent is opened
 * by path, so renaming them does not matter; each must be the parent its child names, and
 * the chain must have exactly as many as were passed (docs/security.md). */
static int ro(const char *name)
{
	int fd = open(tmp(name), O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static void test_chain_fds(void **state)
{
	uint8_t p[4096], r[4096];
	char paths[4][DISK_PATH_MAX];
	struct disk_err why;
	struct disk *d;
	int fds[3];

	make("cbase.vhdx", 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	assert_int_equal(disk_open(tmp("cbase.vhdx"), 0, &d, NULL), 0);
	fill(p, sizeof(p), 9);
	assert_int_equal(disk_write(d, p, 2 << 20, sizeof(p)), 0);
	disk_close(d);
	make("cmid.vhdx", 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp("cbase.vhdx"));
	make("ctop.vhdx", 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp("cmid.vhdx"));

	/* Passed in order, then the files renamed: the chain still reads the base's data. */
	fds[0] = ro("cmid.vhdx");
	fds[1] = ro("cbase.vhdx");
	assert_int_equal(rename(tmp("cmid.vhdx"), tmp("cmid.moved")), 0);
	assert_int_equal(rename(tmp("cbase.vhdx"), tmp("cbase.moved")), 0);
	assert_int_equal(disk_open(tmp("ctop.vhdx"), DISK_OPEN_RDONLY, &d, NULL), -ENOENT);
	assert_int_equal(disk_open_chain_fd(ro("ctop.vhdx"), tmp("ctop.vhdx"), DISK_FORMAT_VHDX,
					    DISK_OPEN_RDONLY, fds, 2, &d, &why),
			 0);
	assert_int_equal(disk_read(d, r, 2 << 20, sizeof(r)), 0);
	assert_memory_equal(r, p, sizeof(r));
	assert_int_equal(disk_parents(d, paths, 4), 2);
	assert_string_equal(paths[0], tmp("cmid.vhdx")); /* named by the locator, never opened */
	disk_close(d);

	/* The wrong order: the middle's linkage does not name the base. */
	fds[0] = ro("cbase.moved");
	fds[1] = ro("cmid.moved");
	assert_int_equal(disk_open_chain_fd(ro("ctop.vhdx"), tmp("ctop.vhdx"), DISK_FORMAT_VHDX,
					    DISK_OPEN_RDONLY, fds, 2, &d, &why),
			 -ESTALE);
	assert_non_null(strstr(why.msg, "was modified after this disk was made"));
	/* Too few: nothing is looked up by path to make up for it. */
	fds[0] = ro("cmid.moved");
	assert_int_equal(disk_open_chain_fd(ro("ctop.vhdx"), tmp("ctop.vhdx"), DISK_FORMAT_VHDX,
					    DISK_OPEN_RDONLY, fds, 1, &d, &why),
			 -ENOENT);
	assert_non_null(strstr(why.msg, "has more than the 1 parent passed"));
	assert_int_equal(disk_open_chain_fd(ro("ctop.vhdx"), tmp("ctop.vhdx"), DISK_FORMAT_VHDX,
					    DISK_OPEN_RDONLY, fds, 0, &d, &why),
			 -ENOENT);
	/* Too many. */
	fds[0] = ro("cmid.moved");
	fds[1] = ro("cbase.moved");
	fds[2] = ro("cbase.moved");
	assert_int_equal(disk_open_chain_fd(ro("ctop.vhdx"), tmp("ctop.vhdx"), DISK_FORMAT_VHDX,
					    DISK_OPEN_RDONLY, fds, 3, &d, &why),
			 -EINVAL);
	assert_non_null(strstr(why.msg, "3 parents passed, its differencing chain has 2"));
	/* Parents for a raw disk. */
	fds[0] = ro("cbase.moved");
	assert_int_equal(disk_open_chain_fd(ro("ctop.vhdx"), tmp("ctop.vhdx"), DISK_FORMAT_RAW,
					    DISK_OPEN_RDONLY, fds, 1, &d, &why),
			 -EINVAL);
	/* Every descriptor was taken over: none is left open. */
	for (int fd = 3; fd < 64; fd++) {
		char link[64], target[256];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			assert_null(strstr(target, "/c"));
		}
	}
}

/* Every occurrence in file name of from's UTF-16LE encoding replaced by to's (ASCII, the same
 * length): how a locator is made to name another file, or another linkage GUID. */
static void replace_utf16(const char *name, const char *from, const char *to)
{
	size_t n = strlen(from), hits = 0;
	uint8_t f[128], t[128], *buf;
	struct stat st;
	int fd = open(tmp(name), O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0 && n == strlen(to) && 2 * n <= sizeof(f));
	for (size_t i = 0; i < n; i++) {
		f[2 * i] = (uint8_t)from[i], f[2 * i + 1] = 0;
		t[2 * i] = (uint8_t)to[i], t[2 * i + 1] = 0;
	}
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	for (size_t i = 0; i + 2 * n <= (size_t)st.st_size; i++) {
		if (!memcmp(buf + i, f, 2 * n)) {
			memcpy(buf + i, t, 2 * n);
			hits++;
		}
	}
	assert_true(hits > 0);
	assert_int_equal(pwrite(fd, buf, (size_t)st.st_size, 0), st.st_size);
	free(buf);
	close(fd);
}

/* A chain of three files made in one go, names[0] the base, names[2] the top, and each one's
 * DataWriteGuid as text, as a child's locator names it (parent_linkage). */
static void chain3(const char *const names[3], char dw[3][UUID_STR_LEN])
{
	struct disk_info info;

	make(names[0], 8 << 20, 1 << 20, DISK_TYPE_DYNAMIC, NULL);
	make(names[1], 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp(names[0]));
	make(names[2], 0, 1 << 20, DISK_TYPE_DIFFERENCING, tmp(names[1]));
	for (int i = 0; i < 3; i++) {
		read_guids(tmp(names[i]), &info);
		uuid_format(&info.data_write_guid, true, dw[i]);
	}
}

/* The parent walk's bound (vhdx_chain_open): a chain whose parents loop (A's parent B, B's
 * parent A, each linkage matching), by path and passed as descriptors, and a chain one deeper
 * than the bound, every level linked, end in -ELOOP saying so, never a hang or a crash; one
 * at the bound opens. */
static void test_chain_bound(void **state)
{
	static const char *const loop[] = {"loopx.vhdx", "loopb.vhdx", "loopa.vhdx"};
	static const char *const deep[] = {"deep0.vhdx", "deep1.vhdx", "deepe.vhdx"};
	char prev[128], dw[3][UUID_STR_LEN];
	struct disk_err why;
	struct disk *d = NULL;
	int fds[300], r;

	alarm(120);
	/* loopa -> loopb -> loopx, then loopb's locator made to name loopa, with its linkage. */
	chain3(loop, dw);
	replace_utf16("loopb.vhdx", "loopx.vhdx", "loopa.vhdx");
	replace_utf16("loopb.vhdx", dw[0], dw[2]);
	assert_int_equal(disk_open(tmp("loopa.vhdx"), DISK_OPEN_RDONLY, &d, &why), -ELOOP);
	expect_reason(&why, tmp("loopa.vhdx"), "differencing chain deeper than 256 (a loop?)");
	assert_null(d);
	assert_int_equal(disk_open(tmp("loopb.vhdx"), DISK_OPEN_RDONLY, &d, &why), -ELOOP);
	/* The loop passed as descriptors, B, A, B, A ...: the same bound. */
	for (int i = 0; i < 300; i++)
		fds[i] = ro(i % 2 ? "loopa.vhdx" : "loopb.vhdx");
	assert_int_equal(disk_open_chain_fd(ro("loopa.vhdx"), tmp("loopa.vhdx"), DISK_FORMAT_VHDX,
					    DISK_OPEN_RDONLY, fds, 300, &d, &why),
			 -ELOOP);
	assert_non_null(strstr(why.msg, "deeper than 256"));

	/* A chain linked at every level, one longer than the bound: deep0 <- deep1 <- deepe,
	 * and above them deepself, a copy of deepe (the same DataWriteGuid) whose linkage names
	 * that GUID, so that it is its own valid parent, and deepe's. Passed as descriptors
	 * (how keeld hands a worker a chain): deepself, then deepself k times, deepe, deep1,
	 * deep0 has k + 3 parents; 255 (the most) open, 256 end in -ELOOP. Files made once: a
	 * chain of 257 distinct files would write a GiB for the same walk. */
	chain3(deep, dw);
	snprintf(prev, sizeof(prev), "%s", tmp("deepe.vhdx"));
	crash_copy(prev, tmp("deepself.vhdx"));
	replace_utf16("deepself.vhdx", dw[1], dw[2]);
	for (unsigned n = 255; n <= 256; n++) {
		unsigned k = n - 3, i;

		for (i = 0; i < k; i++)
			fds[i] = ro("deepself.vhdx");
		fds[i++] = ro("deepe.vhdx");
		fds[i++] = ro("deep1.vhdx");
		fds[i++] = ro("deep0.vhdx");
		d = NULL;
		r = disk_open_chain_fd(ro("deepself.vhdx"), tmp("deepself.vhdx"), DISK_FORMAT_VHDX,
				       DISK_OPEN_RDONLY, fds, n, &d, &why);
		if (n == 255) {
			char(*paths)[DISK_PATH_MAX] = calloc(n + 1, DISK_PATH_MAX);

			assert_int_equal(r, 0);
			assert_non_null(paths);
			assert_int_equal(disk_parents(d, paths, n + 1), (int)n);
			free(paths);
			disk_close(d);
		} else {
			assert_int_equal(r, -ELOOP);
			expect_reason(&why, tmp("deepself.vhdx"),
				      "differencing chain deeper than 256 (a loop?)");
			assert_null(d);
		}
	}
	alarm(0);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/keel-test-vhdx.XXXXXX");
	log_init("test-vhdx", LOG_ERROR);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),      cmocka_unit_test(test_dynamic_rw),
		cmocka_unit_test(test_guid_rules),    cmocka_unit_test(test_headers),
		cmocka_unit_test(test_log_replay),    cmocka_unit_test(test_differencing),
		cmocka_unit_test(test_locking),	      cmocka_unit_test(test_map),
		cmocka_unit_test(test_map_alloc),     cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_chain_fds),     cmocka_unit_test(test_staged_alloc),
		cmocka_unit_test(test_alloc_ahead),   cmocka_unit_test(test_alloc_ahead_limit),
		cmocka_unit_test(test_staged_bitmap), cmocka_unit_test(test_zero_parent),
		cmocka_unit_test(test_staged_limit),  cmocka_unit_test(test_flush_race),
		cmocka_unit_test(test_log_sequence),  cmocka_unit_test(test_fifo_parent),
		cmocka_unit_test(test_chain_bound),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
