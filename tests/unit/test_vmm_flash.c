/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OVMF's variable flash: the CFI command state machine (read array, program, block erase
 * with its confirm, status, identifier, the CFI query, a read-only chip), OVMF's own
 * detection sequence and byte writes (QemuFlashFvbServicesRuntimeDxe), and the NVRAM file:
 * created from the template, a file that is not a variable store refused, and saves that a
 * SIGKILL at any moment leaves whole (the old store or the new one, never a mix).
 */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/dev/cfi_flash.h"
#include "vmm/x86/nvram.h"

#define SIZE  (64u << 10)
#define BLOCK 4096u

static uint8_t data[SIZE];
static struct cfi_flash f;

static void fresh(bool readonly)
{
	for (unsigned i = 0; i < SIZE; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	cfi_flash_init(&f, data, SIZE, BLOCK, readonly);
}

static void wr(uint64_t off, uint8_t v)
{
	cfi_flash_write(&f, off, 1, v);
}

static uint8_t rd(uint64_t off)
{
	return (uint8_t)cfi_flash_read(&f, off, 1);
}

static void test_array_and_program(void **state)
{
	fresh(false);
	assert_int_equal(rd(5), (uint8_t)(5 * 7 + 3));
	assert_int_equal(cfi_flash_read(&f, 8, 8), *(uint64_t *)(data + 8));
	/* Program: the next write is data, then reads give the status until read array. */
	wr(100, CFI_CMD_PROGRAM);
	assert_false(f.dirty);
	wr(100, 0x42);
	assert_int_equal(data[100], 0x42);
	assert_true(f.dirty);
	assert_int_equal(rd(100) & CFI_STATUS_READY, CFI_STATUS_READY);
	assert_false(cfi_flash_array_mode(&f));
	wr(100, CFI_CMD_READ_ARRAY);
	assert_true(cfi_flash_array_mode(&f));
	assert_int_equal(rd(100), 0x42);
	/* A wide program stores every byte. */
	wr(200, CFI_CMD_PROGRAM_ALT);
	cfi_flash_write(&f, 200, 4, 0xdeadbeef);
	wr(0, 0x00); /* 0x00 is read array too */
	assert_int_equal(cfi_flash_read(&f, 200, 4), 0xdeadbeef);
	/* A write in read-array mode is a command, never data. */
	wr(300, 0x33);
	assert_int_equal(rd(300), (uint8_t)(300 * 7 + 3));
}

static void test_erase(void **state)
{
	fresh(false);
	wr(BLOCK + 17, CFI_CMD_ERASE);
	wr(BLOCK + 99, CFI_CMD_ERASE_CONFIRM); /* any address in the same block */
	assert_int_equal(rd(0), CFI_STATUS_READY);
	wr(0, CFI_CMD_READ_ARRAY);
	for (unsigned i = BLOCK; i < 2 * BLOCK; i++)
		assert_int_equal(data[i], 0xff);
	assert_int_equal(data[BLOCK - 1], (uint8_t)((BLOCK - 1) * 7 + 3));
	assert_int_equal(data[2 * BLOCK], (uint8_t)((2 * BLOCK) * 7 + 3));
	/* No confirm, or a confirm in another block: a sequence error, nothing erased. */
	fresh(false);
	wr(0, CFI_CMD_ERASE);
	wr(0, 0x12);
	assert_int_equal(rd(0) & (CFI_STATUS_ERASE_ERR | CFI_STATUS_PROG_ERR),
			 CFI_STATUS_ERASE_ERR | CFI_STATUS_PROG_ERR);
	wr(0, CFI_CMD_ERASE);
	wr(BLOCK, CFI_CMD_ERASE_CONFIRM);
	wr(0, CFI_CMD_CLEAR_STATUS);
	assert_int_equal(rd(0), 3);
	assert_false(f.dirty);
	wr(0, CFI_CMD_READ_STATUS);
	assert_int_equal(rd(0), 0); /* cleared */
}

static void test_id_query_readonly(void **state)
{
	fresh(false);
	wr(0, CFI_CMD_READ_ID);
	assert_int_equal(rd(0), CFI_MANUFACTURER);
	assert_int_equal(rd(1), CFI_DEVICE);
	wr(0, CFI_CMD_QUERY);
	assert_int_equal(rd(0x10), 'Q');
	assert_int_equal(rd(0x11), 'R');
	assert_int_equal(rd(0x12), 'Y');
	assert_int_equal(rd(0x27), 16); /* 2^16 bytes */
	assert_int_equal(rd(0x2c), 1);
	assert_int_equal(rd(0x2d) | rd(0x2e) << 8, SIZE / BLOCK - 1);
	assert_int_equal((rd(0x2f) | rd(0x30) << 8) * 256, BLOCK);
	wr(0, CFI_CMD_READ_ARRAY);
	/* A read-only chip: program and erase change nothing and say the block is locked. */
	fresh(true);
	wr(7, CFI_CMD_PROGRAM);
	wr(7, 0x99);
	assert_int_equal(rd(7) & CFI_STATUS_LOCKED, CFI_STATUS_LOCKED);
	wr(0, CFI_CMD_ERASE);
	wr(0, CFI_CMD_ERASE_CONFIRM);
	wr(0, CFI_CMD_READ_ARRAY);
	assert_int_equal(rd(7), (uint8_t)(7 * 7 + 3));
	assert_int_equal(rd(0), 3);
	assert_false(f.dirty);
	/* Out of range writes and reads do nothing (the device keeps accesses inside). */
	cfi_flash_write(&f, SIZE, 1, CFI_CMD_PROGRAM);
	assert_true(cfi_flash_array_mode(&f));
	assert_true(cfi_flash_state_valid(&f));
}

/* OVMF's QemuFlashDetected and QemuFlashWrite, step by step: the chip must be found as
 * FLASH (not ROM or RAM), and a write must land and leave read-array mode. */
static void test_ovmf_sequences(void **state)
{
	uint8_t orig, probe;
	unsigned off = 0;
	const uint8_t buf[] = "BootOrder";

	fresh(false);
	while (data[off] == 0x00 || data[off] == 0x50 || data[off] == 0x70)
		off++;
	orig = rd(off);
	wr(off, CFI_CMD_CLEAR_STATUS);
	probe = rd(off);
	assert_false(orig != CFI_CMD_CLEAR_STATUS && probe == CFI_CMD_CLEAR_STATUS); /* "RAM" */
	wr(off, CFI_CMD_READ_STATUS);
	probe = rd(off);
	assert_int_not_equal(probe, orig);		  /* "ROM" */
	assert_int_not_equal(probe, CFI_CMD_READ_STATUS); /* "RAM" */
	assert_int_equal(probe, 0x00);			  /* "FLASH" */
	wr(off, CFI_CMD_READ_ARRAY);
	for (unsigned i = 0; i < sizeof(buf); i++) {
		wr(2 * BLOCK + i, CFI_CMD_PROGRAM);
		wr(2 * BLOCK + i, buf[i]);
	}
	wr(2 * BLOCK + sizeof(buf) - 1, CFI_CMD_READ_ARRAY);
	assert_true(cfi_flash_array_mode(&f));
	assert_memory_equal(data + 2 * BLOCK, buf, sizeof(buf));
}

/* A store the checks accept: the template's size class, an NV data firmware volume header
 * (bytes 16 to 50) and an authenticated variable store header at 72 (to 88), as Debian's
 * OVMF_VARS_4M.fd begins. */
#define STORE_HDR_FIRST 16
#define STORE_HDR_END	88
static void make_store(uint8_t *buf, size_t size, uint8_t fill)
{
	static const uint8_t fv_guid[16] = {0x8d, 0x2b, 0xf1, 0xff, 0x96, 0x76, 0x8b, 0x4c,
					    0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50};
	static const uint8_t var_guid[16] = {0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
					     0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92};

	memset(buf, fill, size);
	memcpy(buf + 16, fv_guid, 16);
	memset(buf + 32, 0, 8);
	buf[32 + 1] = (uint8_t)(size >> 8);
	buf[32 + 2] = (uint8_t)(size >> 16);
	memcpy(buf + NVRAM_FVH_OFFSET, "_FVH", 4);
	buf[48] = 0x48;
	buf[49] = 0;
	memcpy(buf + 72, var_guid, 16);
}

static char dir[] = "/tmp/keel-nvram-XXXXXX";

static void test_nvram_create_and_check(void **state)
{
	static uint8_t tmpl[SIZE], bad[SIZE];
	char tpath[128], spath[128], bpath[128], err[256];
	struct nvram n;
	uint8_t *got = NULL;
	size_t size = 0;
	FILE *fp;

	snprintf(tpath, sizeof(tpath), "%s/template.fd", dir);
	snprintf(spath, sizeof(spath), "%s/vm.fd", dir);
	snprintf(bpath, sizeof(bpath), "%s/bad.fd", dir);
	make_store(tmpl, sizeof(tmpl), 0x5a);
	fp = fopen(tpath, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(tmpl, 1, sizeof(tmpl), fp), sizeof(tmpl));
	fclose(fp);
	/* Missing: created from the template, on disk and in memory. */
	assert_int_equal(nvram_open(&n, spath, -1, tpath, &got, &size, err, sizeof(err)), 0);
	assert_int_equal(size, sizeof(tmpl));
	assert_memory_equal(got, tmpl, size);
	nvram_close(&n);
	free(got);
	got = NULL;
	assert_int_equal(access(spath, F_OK), 0);
	/* Not a variable store: refused with a clear reason. */
	memset(bad, 0, sizeof(bad));
	fp = fopen(bpath, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(bad, 1, sizeof(bad), fp), sizeof(bad));
	fclose(fp);
	assert_int_equal(nvram_open(&n, bpath, -1, tpath, &got, &size, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a UEFI variable store"));
	assert_null(got);
	nvram_close(&n);
	assert_int_equal(truncate(bpath, 100), 0);
	assert_int_equal(nvram_open(&n, bpath, -1, tpath, &got, &size, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a UEFI variable store"));
	nvram_close(&n);
}

/* A symbolic link as the NVRAM file is refused with a clear error (saving would replace the
 * link, not write its target); a FIFO is refused without blocking; a link left at the
 * temporary name is not written through. */
static void test_nvram_links(void **state)
{
	static uint8_t tmpl[SIZE], victim[100];
	char tpath[128], lpath[128], fpath[128], npath[128], ntmp[128], vpath[128], err[256];
	struct nvram n;
	uint8_t *got = NULL;
	size_t size = 0;
	struct stat st;
	FILE *fp;

	snprintf(tpath, sizeof(tpath), "%s/template2.fd", dir);
	snprintf(lpath, sizeof(lpath), "%s/link.fd", dir);
	snprintf(fpath, sizeof(fpath), "%s/fifo.fd", dir);
	snprintf(npath, sizeof(npath), "%s/new.fd", dir);
	snprintf(ntmp, sizeof(ntmp), "%s/new.fd.new", dir);
	snprintf(vpath, sizeof(vpath), "%s/victim", dir);
	make_store(tmpl, sizeof(tmpl), 0x3c);
	fp = fopen(tpath, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(tmpl, 1, sizeof(tmpl), fp), sizeof(tmpl));
	fclose(fp);
	assert_int_equal(symlink(tpath, lpath), 0);
	assert_int_equal(nvram_open(&n, lpath, -1, tpath, &got, &size, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "symbolic link"));
	assert_null(got);
	nvram_close(&n);
	assert_int_equal(mkfifo(fpath, 0600), 0);
	assert_int_equal(nvram_open(&n, fpath, -1, tpath, &got, &size, err, sizeof(err)), -EINVAL);
	assert_null(got);
	nvram_close(&n);
	memset(victim, 0x77, sizeof(victim));
	fp = fopen(vpath, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(victim, 1, sizeof(victim), fp), sizeof(victim));
	fclose(fp);
	assert_int_equal(symlink(vpath, ntmp), 0);
	assert_int_equal(nvram_open(&n, npath, -1, tpath, &got, &size, err, sizeof(err)), 0);
	nvram_close(&n);
	free(got);
	assert_int_equal(stat(vpath, &st), 0);
	assert_int_equal(st.st_size, sizeof(victim));
	assert_int_equal(lstat(npath, &st), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_size == SIZE);
}

/* A child saves stores of alternating contents as fast as it can; SIGKILL at random
 * moments, twenty times: the file is always one whole store. */
static void test_nvram_sigkill(void **state)
{
	char spath[128], tpath[128], err[256];
	static uint8_t a[SIZE], b[SIZE], got[SIZE];
	struct timespec ts;

	snprintf(spath, sizeof(spath), "%s/kill.fd", dir);
	snprintf(tpath, sizeof(tpath), "%s/template.fd", dir);
	make_store(a, sizeof(a), 0xaa);
	make_store(b, sizeof(b), 0xbb);
	{
		/* The store exists (from the template) before the first child starts. */
		struct nvram n;
		uint8_t *d = NULL;
		size_t size;

		assert_int_equal(nvram_open(&n, spath, -1, tpath, &d, &size, err, sizeof(err)), 0);
		nvram_close(&n);
		free(d);
	}
	for (int round = 0; round < 20; round++) {
		pid_t pid = fork();
		int fd, st;

		assert_true(pid >= 0);
		if (pid == 0) {
			struct nvram n;
			uint8_t *d = NULL;
			size_t size;

			if (nvram_open(&n, spath, -1, tpath, &d, &size, err, sizeof(err)))
				_exit(2);
			for (unsigned i = 0;; i++)
				if (nvram_save(&n, i & 1 ? b : a, SIZE))
					_exit(3);
		}
		ts = (struct timespec){0, (long)(1 + rand() % 20) * 1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st));
		fd = open(spath, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(read(fd, got, sizeof(got)), SIZE);
		close(fd);
		assert_null(nvram_check(got, SIZE));
		assert_true(!memcmp(got, a, SIZE) || !memcmp(got, b, SIZE) ||
			    got[0] == 0x5a /* the template, if killed before the first save */);
		for (unsigned i = 1; i < SIZE; i++)
			if (i < STORE_HDR_FIRST || i >= STORE_HDR_END)
				assert_int_equal(got[i], got[0]); /* never a mix */
	}
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_array_and_program),
		cmocka_unit_test(test_erase),
		cmocka_unit_test(test_id_query_readonly),
		cmocka_unit_test(test_ovmf_sequences),
		cmocka_unit_test(test_nvram_create_and_check),
		cmocka_unit_test(test_nvram_links),
		cmocka_unit_test(test_nvram_sigkill),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
