/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: opening and reading VHDX files (headers, region table, metadata, BAT,
 * sector bitmaps, parent locator, log replay in memory and into the file), the consistency
 * check keel vm import runs on a backup's disks (vhdx_check_disk), then a write, a discard
 * and a close on a writable open.
 *
 * Input: a sparse image, so the fuzzer spends its mutations on structure bytes, not on
 * megabytes of zeros. Records of [u32 LE file offset][u16 LE length][length bytes] are laid
 * over a zero file (at most 64 MiB); tests/disk/make-fuzz-seeds.sh turns real files into
 * seeds.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/vhdx.h"
#include "lib/log.h"

#define MAX_FILE (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int build_file(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.vhdx", MFD_CLOEXEC);
	size_t pos = 0;

	if (fd < 0)
		return -1;
	while (pos + 6 <= size) {
		uint32_t off = (uint32_t)data[pos] | (uint32_t)data[pos + 1] << 8 |
			       (uint32_t)data[pos + 2] << 16 | (uint32_t)data[pos + 3] << 24;
		size_t len = (size_t)data[pos + 4] | (size_t)data[pos + 5] << 8;

		pos += 6;
		if (len > size - pos)
			len = size - pos;
		if (off < MAX_FILE && len &&
		    pwrite(fd, data + pos, len > MAX_FILE - off ? MAX_FILE - off : len, off) < 0)
			break;
		pos += len;
	}
	return fd;
}

static void exercise(struct disk *d)
{
	static uint8_t buf[65536];
	struct disk_info info;
	uint64_t size = disk_size(d), bs;

	if (disk_info(d, &info) != 0)
		return;
	bs = info.block_size ? info.block_size : (1 << 20);
	(void)!disk_read(d, buf, 0, size < sizeof(buf) ? size & ~511ull : sizeof(buf));
	for (uint64_t b = 0; b < 64 && b * bs < size; b++) {
		uint64_t off = b * bs + (b % 3) * 512;

		if (off + 4096 <= size)
			(void)!disk_read(d, buf, off, 4096);
	}
	if (size >= 4096)
		(void)!disk_read(d, buf, (size - 4096) & ~511ull, 4096);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct disk_err why;
	struct disk *d;
	int fd;

	if (!init) {
		log_init("fuzz-vhdx", LOG_ERROR);
		init = 1;
	}
	fd = build_file(data, size);
	if (fd < 0)
		return 0;
	if (disk_open_fd(dup(fd), "fuzz.vhdx",
			 DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT | DISK_OPEN_NOLOCK, &d, &why) == 0) {
		FILE *rep = fopen("/dev/null", "w");

		exercise(d);
		if (rep)
			(void)!vhdx_check_disk(d, rep); /* -EINVAL for a raw one */
		if (rep)
			fclose(rep);
		disk_close(d);
	} else if (!why.msg[0] || memchr(why.msg, '\0', sizeof(why.msg)) == NULL) {
		abort(); /* a refusal always says why, in one terminated line */
	}
	/* Writable: the log is replayed into the file; then a write, a discard and a close. */
	if (disk_open_fd(dup(fd), "fuzz.vhdx", DISK_OPEN_NOPARENT | DISK_OPEN_NOLOCK, &d, &why) ==
	    0) {
		static uint8_t sector[4096] = {1, 2, 3};

		if (disk_size(d) >= 8192) {
			(void)!disk_write(d, sector, 4096, 4096);
			(void)!disk_read(d, sector, 0, 4096);
			(void)!disk_discard(d, 0, disk_size(d) & ~511ull);
		}
		(void)!disk_flush(d);
		disk_close(d);
	}
	close(fd);
	return 0;
}
