/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper for tests/disk: drives the disk library the way the VMM will.
 *   disktool dump FILE                      whole disk to stdout
 *   disktool write FILE OFF LEN SEED        write a pattern (seeded) at OFF
 *   disktool discard FILE OFF LEN
 *   disktool zero FILE OFF LEN              disk_zero(); exit 3 when the disk cannot
 *   disktool ops FILE REF N SEED            N random writes (block and sector edges) to
 *                                           FILE and the same to raw REF
 *   disktool crash FILE JOURNAL SEED [N [flush]]
 *                                           write forever; after each completed flush,
 *                                           append the acknowledged writes to JOURNAL;
 *                                           with N, SIGKILL itself after N writes (after
 *                                           a flush of them with "flush")
 *   disktool verify FILE JOURNAL            every journaled write reads back
 *   disktool scan FILE [END]                every 512-byte sector of the disk is zeros or
 *                                           whole pattern data of its own offset (what a
 *                                           write or crash writer put there): no garbage;
 *                                           below END (a parent's data) never zeros
 *   disktool threads FILE N                 N threads writing and reading back at once
 *   disktool logpending FILE OFF            write a sector, flush, exit without closing
 *                                           (leaves a log that the next open replays)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/disk_io.h"
#include "lib/dio_align.h"
#include "lib/log.h"

#define SLOT (64 * 1024)

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void pattern(uint8_t *buf, size_t len, uint64_t off, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t x = (off + i) * 0x9E3779B97F4A7C15ull ^ seed;

		x ^= x >> 29;
		memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
	}
}

static struct disk *open_or_die(const char *path, unsigned flags)
{
	struct disk *d;

	if (disk_open(path, flags, &d, NULL) != 0)
		exit(1);
	return d;
}

/* How the crash writer writes: through the library, or as keel-vmm's virtio-blk does
 * (disk_map: file extents written on disk_fd() by the caller, a disk without parent's new
 * blocks allocated by the map), optionally with a flush between the map and the data write
 * (the new block's entry logged before its first write lands, as a guest's flush can do
 * while that write is in flight). */
enum write_via { VIA_LIBRARY, VIA_MAP, VIA_MAP_FLUSH };

/* buf at disk offset off as keel-vmm does it (disk_map, then pwrite or the library). */
static int map_write(struct disk *d, const uint8_t *buf, uint64_t off, uint64_t len,
		     bool flush_between)
{
	for (uint64_t done = 0; done < len;) {
		struct disk_extent e;
		int r = disk_map(d, off + done, len - done, true, &e);

		if (r == 0 && flush_between && e.kind == DISK_EXTENT_FILE)
			r = disk_flush(d);
		if (r)
			return r;
		if (e.kind == DISK_EXTENT_FILE)
			r = dio_pwrite(disk_fd(d), buf + done, (size_t)e.len, e.file_off);
		else
			r = disk_write(d, buf + done, off + done, (size_t)e.len);
		if (r)
			return r;
		done += e.len;
	}
	return 0;
}

static int do_write_via(struct disk *d, uint64_t off, uint64_t len, uint64_t seed,
			enum write_via via)
{
	uint8_t *buf;
	int r;

	/* Page-aligned, as a guest's buffers are: O_DIRECT can take them (disk_set_direct). */
	if (posix_memalign((void **)&buf, 4096, len ? len : 1))
		return -ENOMEM;
	pattern(buf, len, off, seed);
	r = via == VIA_LIBRARY ? disk_write(d, buf, off, len)
			       : map_write(d, buf, off, len, via == VIA_MAP_FLUSH);
	free(buf);
	return r;
}

static int do_write(struct disk *d, uint64_t off, uint64_t len, uint64_t seed)
{
	return do_write_via(d, off, len, seed, VIA_LIBRARY);
}

static int cmd_dump(const char *path)
{
	struct disk *d = open_or_die(path, DISK_OPEN_RDONLY);
	uint64_t size = disk_size(d);
	uint8_t *buf = malloc(1 << 20);

	for (uint64_t off = 0; off < size; off += 1 << 20) {
		size_t n = size - off < (1 << 20) ? size - off : 1 << 20;

		if (disk_read(d, buf, off, n) != 0 || fwrite(buf, 1, n, stdout) != n)
			return 1;
	}
	free(buf);
	disk_close(d);
	return 0;
}

static int cmd_ops(const char *path, const char *ref, unsigned n, uint64_t seed)
{
	struct disk *d = open_or_die(path, 0), *r = open_or_die(ref, 0);
	struct disk_info info;
	uint64_t size = disk_size(d), s = seed * 2654435761u + 1, bs;

	if (disk_info(d, &info) != 0)
		return 1;
	bs = info.block_size ? info.block_size : 1 << 20;
	for (unsigned i = 0; i < n; i++) {
		uint64_t kind = rng(&s) % 4, off, len;

		if (kind == 0) { /* straddling a block edge */
			uint64_t edge = (rng(&s) % (size / bs - 1) + 1) * bs;

			off = edge - (rng(&s) % 16 + 1) * 512;
			len = (rng(&s) % 32 + 1) * 512;
		} else if (kind == 1) { /* a whole block */
			off = rng(&s) % (size / bs) * bs;
			len = bs;
		} else { /* a few sectors anywhere */
			off = rng(&s) % (size / 512) * 512;
			len = (rng(&s) % 64 + 1) * 512;
		}
		if (off + len > size)
			len = size - off;
		if (do_write(d, off, len, seed + i) != 0 || do_write(r, off, len, seed + i) != 0)
			return 1;
	}
	if (disk_flush(d) || disk_flush(r))
		return 1;
	disk_close(d);
	disk_close(r);
	return 0;
}

/* Gives d the O_DIRECT descriptor keel-vmm's cache=none gives it (virtio/blk.c), so that
 * the library's own data writes (a new block's first write) go through it. Returns 0 when
 * the file system has no direct I/O (then everything goes through the page cache). */
static int use_direct(struct disk *d)
{
	struct dio_align a = {512, 512};
	char fdpath[64];
	int fd, r;

	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", disk_fd(d));
	fd = open(fdpath, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return 0;
	r = dio_align_of(fd, &a);
	if (r >= 0 && a.mem && a.off)
		r = disk_set_direct(d, fd, a.mem, a.off);
	close(fd);
	return r < 0 ? r : 0;
}

/* The crash writer: never overwrites a slot that the journal already holds. Odd seeds write
 * through a direct descriptor (use_direct), even ones through the library's own. Seeds that
 * are multiples of 3 write as keel-vmm does (map_write), one write in eight of them with a
 * flush between the map that allocates its block and the data. */
static int cmd_crash(const char *path, const char *journal, uint64_t seed, uint64_t stop,
		     bool flush_at_stop)
{
	struct disk *d = open_or_die(path, 0);

	if (seed % 2 && use_direct(d) != 0)
		return 1;
	uint64_t slots = disk_size(d) / SLOT, s = seed * 2654435761u + 7;
	uint8_t *used = calloc(slots, 1);
	uint64_t pend[64][3];
	unsigned np = 0;
	FILE *j = fopen(journal, "a+");
	uint64_t a, b, c;

	rewind(j);
	while (fscanf(j, "%" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b, &c) == 3)
		used[a / SLOT] = 1;
	uint64_t nused = 0, runs = 0;

	for (uint64_t i = 0; i < slots; i++)
		nused += used[i];
	for (;;) {
		uint64_t slot = rng(&s) % slots, off, len;

		/* Enough for one run, or the disk is nearly full of journaled writes: wait. */
		if (nused >= slots * 3 / 4 || ++runs > 480)
			pause();
		if (used[slot])
			continue;
		used[slot] = 1;
		nused++;
		len = (rng(&s) % (SLOT / 512) + 1) * 512;
		off = slot * SLOT + (rng(&s) % ((SLOT - len) / 512 + 1)) * 512;
		if (do_write_via(d, off, len, seed ^ off,
				 seed % 3	    ? VIA_LIBRARY
				 : rng(&s) % 8 == 0 ? VIA_MAP_FLUSH
						    : VIA_MAP) != 0)
			return 1;
		pend[np][0] = off;
		pend[np][1] = len;
		pend[np][2] = seed ^ off;
		if (stop && --stop == 0 && !flush_at_stop)
			raise(SIGKILL); /* between the writes and their flush */
		if (++np == 64 || rng(&s) % 8 == 0 || (stop == 0 && flush_at_stop)) {
			if (disk_flush(d) != 0)
				return 1;
			for (unsigned i = 0; i < np; i++)
				fprintf(j, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", pend[i][0],
					pend[i][1], pend[i][2]);
			fflush(j);
			fsync(fileno(j));
			np = 0;
			if (stop == 0 && flush_at_stop)
				raise(SIGKILL); /* after the flush */
		}
	}
}

static int cmd_verify(const char *path, const char *journal)
{
	struct disk *d = open_or_die(path, 0);
	FILE *j = fopen(journal, "r");
	uint8_t *want = malloc(SLOT), *got = malloc(SLOT);
	uint64_t off, len, seed, n = 0, bad = 0;

	if (!j) {
		disk_close(d);
		return 0;
	}
	while (fscanf(j, "%" SCNu64 " %" SCNu64 " %" SCNu64, &off, &len, &seed) == 3) {
		pattern(want, len, off, seed);
		if (disk_read(d, got, off, len) != 0 || memcmp(want, got, len) != 0) {
			fprintf(stderr,
				"verify: write of %" PRIu64 " bytes at %" PRIu64
				" acknowledged by a flush is lost\n",
				len, off);
			bad++;
		}
		n++;
	}
	printf("verify: %" PRIu64 " acknowledged writes checked, %" PRIu64 " lost\n", n, bad);
	fclose(j);
	free(want);
	free(got);
	disk_close(d);
	return bad ? 1 : 0;
}

/* Is the sector at off zeros, or pattern() data of off with some seed (derived from its
 * first 8 bytes)? Anything else is data no write put there. */
static bool sector_ok(const uint8_t *p, uint64_t off)
{
	uint8_t want[512];
	uint64_t x0, seed;

	if (p[0] == 0 && memcmp(p, p + 1, 511) == 0)
		return true;
	memcpy(&x0, p, 8);
	x0 ^= x0 >> 29 ^ x0 >> 58; /* undo pattern()'s x ^= x >> 29 */
	seed = x0 ^ off * 0x9E3779B97F4A7C15ull;
	pattern(want, sizeof(want), off, seed);
	return memcmp(want, p, sizeof(want)) == 0;
}

static int cmd_scan(const char *path, uint64_t data_end)
{
	struct disk *d = open_or_die(path, DISK_OPEN_RDONLY);
	uint64_t size = disk_size(d), data = 0, bad = 0;
	uint8_t *buf = malloc(1 << 20);

	for (uint64_t off = 0; off < size; off += 1 << 20) {
		size_t n = size - off < (1 << 20) ? (size_t)(size - off) : 1 << 20;

		if (disk_read(d, buf, off, n) != 0) {
			fprintf(stderr, "scan: cannot read at %" PRIu64 "\n", off);
			bad++;
			break;
		}
		if (off >= data_end && buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0)
			continue; /* all zeros (most of a sparse disk) */
		for (size_t i = 0; i + 512 <= n; i += 512) {
			bool zero = buf[i] == 0 && memcmp(buf + i, buf + i + 1, 511) == 0;

			if (zero && off + i < data_end) {
				if (bad++ < 5)
					fprintf(stderr,
						"scan: sector at %" PRIu64
						" reads zeros over its parent's data\n",
						off + i);
			} else if (!sector_ok(buf + i, off + i)) {
				if (bad++ < 5)
					fprintf(stderr,
						"scan: sector at %" PRIu64
						" holds data no write put there\n",
						off + i);
			} else if (buf[i] || memcmp(buf + i, buf + i + 1, 511)) {
				data++;
			}
		}
	}
	printf("scan: %" PRIu64 " sectors of written data, %" PRIu64 " of garbage\n", data, bad);
	free(buf);
	disk_close(d);
	return bad ? 1 : 0;
}

struct thr {
	struct disk *d;
	unsigned id, n;
	int result;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	uint64_t size = disk_size(t->d), s = t->id * 977 + 3;
	uint8_t *want = malloc(SLOT), *got = malloc(SLOT);

	for (unsigned i = 0; i < 200 && !t->result; i++) {
		/* Thread k owns slots k, k+n, ...: concurrent writers never share bytes. */
		uint64_t slot = (rng(&s) % (size / SLOT / t->n)) * t->n + t->id;
		uint64_t off = slot * SLOT, len = (rng(&s) % (SLOT / 512) + 1) * 512;

		pattern(want, len, off, i);
		if (disk_write(t->d, want, off, len) != 0 || disk_read(t->d, got, off, len) != 0 ||
		    memcmp(want, got, len) != 0)
			t->result = 1;
	}
	free(want);
	free(got);
	return NULL;
}

static int cmd_threads(const char *path, unsigned n)
{
	struct disk *d = open_or_die(path, 0);
	pthread_t th[16];
	struct thr t[16];
	int bad = 0;

	for (unsigned i = 0; i < n && i < 16; i++) {
		t[i] = (struct thr){d, i, n, 0};
		pthread_create(&th[i], NULL, thr_main, &t[i]);
	}
	for (unsigned i = 0; i < n && i < 16; i++) {
		pthread_join(th[i], NULL);
		bad |= t[i].result;
	}
	if (disk_flush(d))
		bad = 1;
	disk_close(d);
	return bad;
}

int main(int argc, char **argv)
{
	log_init("disktool", LOG_WARN);
	if (argc == 3 && !strcmp(argv[1], "dump"))
		return cmd_dump(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "write")) {
		struct disk *d = open_or_die(argv[2], 0);
		int r = do_write(d, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
				 strtoull(argv[5], NULL, 0));

		r = r ? r : disk_flush(d);
		disk_close(d);
		return r ? 1 : 0;
	}
	if (argc == 5 && !strcmp(argv[1], "discard")) {
		struct disk *d = open_or_die(argv[2], 0);
		int r = disk_discard(d, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));

		disk_close(d);
		return r ? 1 : 0;
	}
	if (argc == 5 && !strcmp(argv[1], "zero")) {
		struct disk *d = open_or_die(argv[2], 0);
		int r = disk_zero(d, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));

		disk_close(d);
		return r == -EOPNOTSUPP ? 3 : r ? 1 : 0;
	}
	if (argc == 6 && !strcmp(argv[1], "ops"))
		return cmd_ops(argv[2], argv[3], (unsigned)atoi(argv[4]),
			       strtoull(argv[5], NULL, 0));
	if (argc >= 5 && argc <= 7 && !strcmp(argv[1], "crash"))
		return cmd_crash(argv[2], argv[3], strtoull(argv[4], NULL, 0),
				 argc >= 6 ? strtoull(argv[5], NULL, 0) : 0,
				 argc == 7 && !strcmp(argv[6], "flush"));
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "scan"))
		return cmd_scan(argv[2], argc == 4 ? strtoull(argv[3], NULL, 0) : 0);
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "logpending")) {
		struct disk *d = open_or_die(argv[2], 0);

		if (do_write(d, strtoull(argv[3], NULL, 0), 512, 1) != 0 || disk_flush(d) != 0)
			return 1;
		_exit(0);
	}
	if (argc == 4 && !strcmp(argv[1], "threads"))
		return cmd_threads(argv[2], (unsigned)atoi(argv[3]));
	fprintf(stderr, "usage: see the comment at the top of tests/disk/disktool.c\n");
	return 2;
}
