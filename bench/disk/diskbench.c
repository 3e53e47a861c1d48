/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host disk benchmark driver for bench/disk/run.sh: one phase of I/O on one image through
 * keel's disk library, issued the way keel-vmm's virtio-blk does it at queue depth 1: each
 * request is mapped (disk_map); file extents go to an O_DIRECT descriptor of the image, the
 * rest (allocation, zeros) to disk_read/disk_write; a flush every FLUSH requests and at the
 * end is disk_flush.
 *   diskbench FILE PHASE COUNT FLUSH [SEED]
 * PHASE: seqwrite, seqread (1 MiB requests from offset 0), stridewrite (4 KiB at COUNT
 * evenly spaced offsets: one in every block, to give a parent data everywhere), randwrite, randread
 * (4 KiB requests at random 4 KiB-aligned offsets of the whole disk). Prints "PHASE SECONDS
 * MIB_PER_S IOPS".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "disk/disk.h"
#include "lib/log.h"

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One request, split at the extents disk_map() gives. */
static int request(struct disk *d, int dfd, uint8_t *buf, uint64_t off, uint64_t len, bool write)
{
	while (len) {
		struct disk_extent e;
		ssize_t n;
		int r = disk_map(d, off, len, write, &e);

		if (r)
			return r;
		switch (e.kind) {
		case DISK_EXTENT_FILE:
			n = write ? pwrite(dfd, buf, e.len, (off_t)e.file_off)
				  : pread(dfd, buf, e.len, (off_t)e.file_off);
			if (n != (ssize_t)e.len)
				return n < 0 ? -errno : -EIO;
			break;
		case DISK_EXTENT_ZERO:
			memset(buf, 0, e.len);
			break;
		default:
			r = write ? disk_write(d, buf, off, e.len) : disk_read(d, buf, off, e.len);
			if (r)
				return r;
		}
		buf += e.len;
		off += e.len;
		len -= e.len;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct disk *d;
	char fdpath[64];
	uint8_t *buf;
	uint64_t count, flush, seed, size, bs, s;
	bool write, rand, stride;
	double t0, t;
	int dfd, r = 0;

	log_init("diskbench", LOG_WARN);
	if (argc < 5 || argc > 6) {
		fprintf(stderr,
			"usage: diskbench FILE seqwrite|seqread|stridewrite|randwrite|randread "
			"COUNT FLUSH [SEED]\n");
		return 2;
	}
	write = strstr(argv[2], "write") != NULL;
	rand = strncmp(argv[2], "rand", 4) == 0;
	stride = !strcmp(argv[2], "stridewrite");
	if ((!write && !strstr(argv[2], "read")) ||
	    (!rand && !stride && strncmp(argv[2], "seq", 3))) {
		fprintf(stderr, "diskbench: unknown phase %s\n", argv[2]);
		return 2;
	}
	count = strtoull(argv[3], NULL, 0);
	flush = strtoull(argv[4], NULL, 0);
	seed = argc == 6 ? strtoull(argv[5], NULL, 0) : 1;
	bs = rand || stride ? 4096 : 1 << 20;
	if (disk_open(argv[1], write ? 0 : DISK_OPEN_RDONLY, &d, NULL) != 0)
		return 1;
	size = disk_size(d);
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", disk_fd(d));
	dfd = open(fdpath, (write ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "diskbench: cannot open %s with O_DIRECT: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	/* As keel-vmm's cache=none does (virtio/blk.c): the library writes new blocks through
	 * the same direct descriptor. */
	if (write && disk_set_direct(d, dfd, 4096, 4096) != 0)
		return 1;
	if (posix_memalign((void **)&buf, 4096, bs))
		return 1;
	memset(buf, 0x5a, bs);
	s = seed * 2654435761u + 7;
	t0 = now();
	for (uint64_t i = 0; i < count && r == 0; i++) {
		uint64_t off = rand	? rng(&s) % (size / bs) * bs
			       : stride ? i * (size / count) / bs * bs
					: i * bs % size;

		if (write)
			buf[0] = (uint8_t)i;
		r = request(d, dfd, buf, off, bs, write);
		if (r == 0 && write && flush && (i + 1) % flush == 0)
			r = disk_flush(d);
	}
	if (r == 0 && write)
		r = disk_flush(d);
	t = now() - t0;
	if (r) {
		fprintf(stderr, "diskbench: %s on %s failed: %s\n", argv[2], argv[1], strerror(-r));
		return 1;
	}
	printf("%s %.3f %.1f %.0f\n", argv[2], t, (double)(count * bs) / t / (1 << 20),
	       (double)count / t);
	close(dfd);
	disk_close(d);
	free(buf);
	return 0;
}
