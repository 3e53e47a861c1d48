/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SCSI target layer (vmm/scsi) on CDBs: an 8 MiB raw disk at LUN 0 and a DVD drive with
 * a small ISO image at LUN 1 (an ISO 9660 volume descriptor at sector 16, each block filled
 * with its number). Every answer is checked as a guest driver would read it: status, sense
 * key/ASC/ASCQ, the bytes returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/iso.h"
#include "vmm/scsi/scsi.h"
#include "vmm/virtio/scsi.h"

#define DISK_SIZE  (8u << 20)
#define ISO_BLOCKS 40

static char disk_path[64], iso_path[64], iso2_path[64], bad_path[64];
static struct scsi_target t;
static uint8_t inbuf[8192], outbuf[8192];
static struct iovec in_iov, out_iov;
static struct scsi_req r;

static void make_file(char *path, const char *tmpl, unsigned blocks, bool iso, uint8_t salt)
{
	uint8_t b[SCSI_DVD_BLOCK];
	int fd;

	snprintf(path, 64, "%s", tmpl);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (unsigned i = 0; i < blocks; i++) {
		memset(b, (uint8_t)(i + salt), sizeof(b));
		if (iso && i == 16) {
			b[0] = 1;
			memcpy(b + 1, "CD001", 5);
		}
		assert_int_equal(write(fd, b, sizeof(b)), sizeof(b));
	}
	close(fd);
}

static int setup(void **state)
{
	struct vm_lun disk = {.type = VM_LUN_DISK, .disk = {.format = VM_DISK_RAW}};
	struct vm_lun dvd = {.type = VM_LUN_DVD};
	char err[256];

	make_file(disk_path, "/tmp/keel-scsi-disk-XXXXXX", DISK_SIZE / SCSI_DVD_BLOCK, false, 0);
	make_file(iso_path, "/tmp/keel-scsi-iso-XXXXXX", ISO_BLOCKS, true, 0);
	make_file(iso2_path, "/tmp/keel-scsi-iso2-XXXXXX", ISO_BLOCKS * 2, true, 0x40);
	make_file(bad_path, "/tmp/keel-scsi-bad-XXXXXX", ISO_BLOCKS, false, 0);
	memset(&t, 0, sizeof(t));
	disk.disk.path = disk_path;
	snprintf(disk.disk.serial, sizeof(disk.disk.serial), "SER1");
	dvd.disk.path = iso_path;
	assert_int_equal(scsi_lun_open(&t, 0, &disk, -1, err, sizeof(err)), 0);
	assert_int_equal(scsi_lun_open(&t, 1, &dvd, -1, err, sizeof(err)), 0);
	assert_int_equal(t.nluns, 2);
	return 0;
}

static int teardown(void **state)
{
	scsi_target_close(&t);
	unlink(disk_path);
	unlink(iso_path);
	unlink(iso2_path);
	unlink(bad_path);
	return 0;
}

/* Run a CDB on lun with in_len bytes of data-in room (or out_len bytes of data-out). */
static enum scsi_exec_result run(unsigned lun, const uint8_t *cdb, size_t n, size_t in_len,
				 size_t out_len)
{
	enum scsi_exec_result res;

	memset(&r, 0, sizeof(r));
	memset(inbuf, 0xee, sizeof(inbuf));
	memcpy(r.cdb, cdb, n);
	r.cdb_len = SCSI_CDB_MAX;
	in_iov = (struct iovec){inbuf, in_len};
	out_iov = (struct iovec){outbuf, out_len};
	r.in = (struct scsi_buf){&in_iov, in_len ? 1 : 0, in_len};
	r.out = (struct scsi_buf){&out_iov, out_len ? 1 : 0, out_len};
	res = scsi_exec(&t, lun, &r);
	if (res == SCSI_EXEC_IO)
		scsi_io_run(&r);
	return res;
}

#define assert_sense(k, a, q)                                                                      \
	do {                                                                                       \
		assert_int_equal(r.status, SCSI_CHECK_CONDITION);                                  \
		assert_int_equal(r.sense.key, k);                                                  \
		assert_int_equal(r.sense.asc, a);                                                  \
		assert_int_equal(r.sense.ascq, q);                                                 \
	} while (0)

static void test_inquiry(void **state)
{
	run(0, (uint8_t[]){0x12, 0, 0, 0, 96, 0}, 6, 96, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(r.in_done, 36);
	assert_int_equal(inbuf[0], 0x00);
	assert_memory_equal(inbuf + 8, "KEEL    ", 8);
	run(1, (uint8_t[]){0x12, 0, 0, 0, 96, 0}, 6, 96, 0);
	assert_int_equal(inbuf[0], 0x05); /* MMC */
	assert_int_equal(inbuf[1], 0x80); /* removable */
	/* The allocation length cuts the answer; so does the buffer. */
	run(0, (uint8_t[]){0x12, 0, 0, 0, 5, 0}, 6, 96, 0);
	assert_int_equal(r.in_done, 5);
	assert_int_equal(inbuf[5], 0xee);
	run(0, (uint8_t[]){0x12, 0, 0, 0, 96, 0}, 6, 3, 0);
	assert_int_equal(r.in_done, 3);
	/* VPD pages. */
	run(0, (uint8_t[]){0x12, 1, 0x00, 0, 96, 0}, 6, 96, 0);
	assert_int_equal(r.in_done, 7);
	assert_memory_equal(inbuf + 4, ((uint8_t[]){0x00, 0x80, 0x83}), 3);
	run(0, (uint8_t[]){0x12, 1, 0x80, 0, 96, 0}, 6, 96, 0);
	assert_int_equal(inbuf[3], 4);
	assert_memory_equal(inbuf + 4, "SER1", 4);
	run(1, (uint8_t[]){0x12, 1, 0x80, 0, 96, 0}, 6, 96, 0);
	assert_memory_equal(inbuf + 4, "lun1", 4);
	run(0, (uint8_t[]){0x12, 1, 0x83, 0, 96, 0}, 6, 96, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(inbuf[5] & 0x0f, 1); /* T10 vendor ID */
	assert_memory_equal(inbuf + 8, "KEEL    SER1", 12);
	run(0, (uint8_t[]){0x12, 1, 0xb0, 0, 96, 0}, 6, 96, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	/* A page code without EVPD, CMDDT, a LUN that is not there. */
	run(0, (uint8_t[]){0x12, 0, 0x80, 0, 96, 0}, 6, 96, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	run(0, (uint8_t[]){0x12, 2, 0, 0, 96, 0}, 6, 96, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	run(5, (uint8_t[]){0x12, 0, 0, 0, 96, 0}, 6, 96, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(inbuf[0], 0x7f);
	run(5, (uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, 0, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x25, 0);
}

static void test_report_luns(void **state)
{
	run(0, (uint8_t[]){0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 12, 256, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(r.in_done, 24);
	assert_int_equal(inbuf[3], 16);
	assert_int_equal(inbuf[8 + 1], 0);
	assert_int_equal(inbuf[16 + 1], 1);
	run(0, (uint8_t[]){0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}, 12, 256, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0); /* allocation length below 16 */
	run(0, (uint8_t[]){0xa0, 0, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 12, 256, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0); /* select report 7 */
}

static void test_capacity(void **state)
{
	run(0, (uint8_t[]){0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, 8, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_memory_equal(inbuf, ((uint8_t[]){0, 0, 0x3f, 0xff, 0, 0, 0x02, 0}), 8);
	run(1, (uint8_t[]){0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, 8, 0);
	assert_memory_equal(inbuf, ((uint8_t[]){0, 0, 0, ISO_BLOCKS - 1, 0, 0, 0x08, 0}), 8);
	/* An LBA without PMI. */
	run(0, (uint8_t[]){0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0}, 10, 8, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	run(0, (uint8_t[]){0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 16, 64, 0);
	assert_int_equal(r.in_done, 32);
	assert_memory_equal(inbuf, ((uint8_t[]){0, 0, 0, 0, 0, 0, 0x3f, 0xff, 0, 0, 0x02, 0}), 12);
	run(0, (uint8_t[]){0x9e, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 16, 64, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
}

static void test_read_write(void **state)
{
	uint8_t want[2048];

	/* Disk: write two sectors at LBA 10, read them back. */
	memset(outbuf, 0x5a, 1024);
	assert_int_equal(run(0, (uint8_t[]){0x2a, 0, 0, 0, 0, 10, 0, 0, 2, 0}, 10, 0, 1024),
			 SCSI_EXEC_IO);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(r.out_done, 1024);
	assert_int_equal(run(0, (uint8_t[]){0x28, 0, 0, 0, 0, 10, 0, 0, 2, 0}, 10, 1024, 0),
			 SCSI_EXEC_IO);
	assert_int_equal(r.in_done, 1024);
	assert_memory_equal(inbuf, outbuf, 1024);
	/* DVD: READ(12) of block 3 is 2048 bytes of 3s. */
	run(1, (uint8_t[]){0xa8, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0}, 12, 2048, 0);
	assert_int_equal(r.in_done, 2048);
	memset(want, 3, sizeof(want));
	assert_memory_equal(inbuf, want, 2048);
	/* Buffers that are not in whole sectors go through a copy. */
	run(1, (uint8_t[]){0x28, 0, 0, 0, 0, 5, 0, 0, 1, 0}, 10, 2048 + 7, 0);
	assert_int_equal(r.in_done, 2048);
	memset(want, 5, sizeof(want));
	assert_memory_equal(inbuf, want, 2048);
	/* Beyond the end; an LBA plus length that wraps around. */
	run(0, (uint8_t[]){0x28, 0, 0, 0, 0x3f, 0xff, 0, 0, 2, 0}, 10, 1024, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x21, 0);
	run(0,
	    (uint8_t[]){0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0, 0},
	    16, 1024, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x21, 0);
	run(1, (uint8_t[]){0x28, 0, 0, 0, 0, ISO_BLOCKS, 0, 0, 1, 0}, 10, 2048, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x21, 0);
	/* More than one request may move; buffers smaller than the transfer; protection. */
	run(0, (uint8_t[]){0xa8, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x01, 0, 0}, 12, 1024, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	run(0, (uint8_t[]){0x28, 0, 0, 0, 0, 0, 0, 0, 4, 0}, 10, 1024, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_true(r.overrun);
	assert_int_equal(r.in_done, 0);
	run(0, (uint8_t[]){0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0}, 10, 512, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	/* The DVD is read-only. */
	run(1, (uint8_t[]){0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}, 10, 0, 2048);
	assert_sense(SENSE_DATA_PROTECT, 0x27, 0);
	/* No blocks: nothing moves, GOOD. SYNCHRONIZE CACHE flushes. */
	assert_int_equal(run(0, (uint8_t[]){0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, 0, 0),
			 SCSI_EXEC_DONE);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(run(0, (uint8_t[]){0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, 0, 0),
			 SCSI_EXEC_IO);
	assert_int_equal(r.status, SCSI_GOOD);
	run(0, (uint8_t[]){0x35, 0, 0, 0, 0x40, 0, 0, 0, 1, 0}, 10, 0, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x21, 0);
}

static void test_unknown_and_control(void **state)
{
	run(0, (uint8_t[]){0xe7, 0, 0, 0, 0, 0}, 6, 16, 0); /* vendor-specific group */
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x20, 0);
	run(0, (uint8_t[]){0x43, 0, 0, 0, 0, 0, 0, 0, 16, 0}, 10, 16, 0); /* READ TOC: MMC */
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x20, 0);
	run(0, (uint8_t[]){0x00, 0, 0, 0, 0, 0x04}, 6, 0, 0); /* NACA */
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	run(0, (uint8_t[]){0x03, 1, 0, 0, 18, 0}, 6, 18, 0); /* descriptor sense */
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
}

static void test_mode_sense(void **state)
{
	run(0, (uint8_t[]){0x1a, 0, 0x3f, 0, 255, 0}, 6, 255, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(inbuf[0] + 1, r.in_done);
	assert_int_equal(inbuf[3], 8); /* a block descriptor */
	assert_int_equal(inbuf[4 + 8], 0x08);
	assert_int_equal(inbuf[4 + 8 + 2] & 0x04, 0x04); /* WCE */
	run(0, (uint8_t[]){0x1a, 0x08, 0x08, 0, 255, 0}, 6, 255, 0);
	assert_int_equal(inbuf[3], 0); /* DBD */
	assert_int_equal(inbuf[4], 0x08);
	run(1, (uint8_t[]){0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 255, 0}, 10, 255, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(r.in_done, 8 + 22);
	assert_int_equal(inbuf[8], 0x2a);
	assert_int_equal(inbuf[8 + 6] & 0x08, 0x08); /* eject */
	run(1, (uint8_t[]){0x5a, 0, 0xc0 | 0x2a, 0, 0, 0, 0, 0, 255, 0}, 10, 255, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x39, 0); /* saved values */
	run(1, (uint8_t[]){0x5a, 0, 0x08, 0, 0, 0, 0, 0, 255, 0}, 10, 255, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	run(0, (uint8_t[]){0x1a, 0, 0x08, 0x01, 255, 0}, 6, 255, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0); /* a subpage */
}

static void test_mmc(void **state)
{
	run(1, (uint8_t[]){0x43, 0, 0, 0, 0, 0, 0, 0x03, 0x24, 0}, 10, 804, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(r.in_done, 20);
	assert_int_equal(inbuf[5], 0x14);
	assert_int_equal(inbuf[6], 1);
	assert_int_equal(inbuf[14], 0xaa);
	assert_int_equal(inbuf[19], ISO_BLOCKS);
	run(1, (uint8_t[]){0x43, 0x02, 0, 0, 0, 0, 0, 0x03, 0x24, 0}, 10, 804, 0); /* MSF */
	assert_memory_equal(inbuf + 8, ((uint8_t[]){0, 0, 2, 0}), 4);
	run(1, (uint8_t[]){0x43, 0, 1, 0, 0, 0, 0, 0, 12, 0}, 10, 12, 0);
	assert_int_equal(r.in_done, 12);
	run(1, (uint8_t[]){0x43, 0, 5, 0, 0, 0, 0, 0, 12, 0}, 10, 12, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	run(1, (uint8_t[]){0x43, 0, 0, 0, 0, 0, 2, 0, 12, 0}, 10, 12, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0); /* track 2 */
	/* GET CONFIGURATION: a CD-ROM sized medium. */
	run(1, (uint8_t[]){0x46, 0, 0, 0, 0, 0, 0, 0, 255, 0}, 10, 255, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(inbuf[6] << 8 | inbuf[7], 0x0008);
	assert_int_equal(inbuf[8] << 8 | inbuf[9], 0x0000); /* profile list first */
	run(1, (uint8_t[]){0x46, 2, 0, 0x03, 0, 0, 0, 0, 255, 0}, 10, 255, 0);
	assert_int_equal(r.in_done, 8 + 8);
	assert_int_equal(inbuf[9], 0x03);
	run(1, (uint8_t[]){0x46, 3, 0, 0, 0, 0, 0, 0, 255, 0}, 10, 255, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	/* GET EVENT STATUS NOTIFICATION: polled only; no event yet; other classes. */
	run(1, (uint8_t[]){0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8, 0}, 10, 8, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
	run(1, (uint8_t[]){0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0}, 10, 8, 0);
	assert_int_equal(r.in_done, 8);
	assert_int_equal(inbuf[2], 0x04);
	assert_int_equal(inbuf[4], MMC_EVENT_NONE);
	assert_int_equal(inbuf[5], 0x02); /* medium present, tray closed */
	run(1, (uint8_t[]){0x4a, 1, 0, 0, 0x02, 0, 0, 0, 8, 0}, 10, 8, 0);
	assert_int_equal(r.in_done, 4);
	assert_int_equal(inbuf[2], 0x80);
	run(1, (uint8_t[]){0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0}, 10, 34, 0);
	assert_int_equal(r.in_done, 34);
	assert_int_equal(inbuf[2], 0x0e);
	run(1, (uint8_t[]){0x51, 1, 0, 0, 0, 0, 0, 0, 34, 0}, 10, 34, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
}

static void test_media_change(void **state)
{
	struct scsi_lun *l = &t.lun[1];
	char err[256];

	/* Not an ISO image, or no file: one line, nothing changes. */
	assert_int_equal(scsi_lun_change_medium(l, bad_path, -1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not an ISO 9660 or UDF image"));
	assert_int_equal(scsi_lun_change_medium(l, "/nonexistent.iso", -1, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(l->path, iso_path);
	run(1, (uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, 0, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	/* The disk is not a drive. */
	assert_int_equal(scsi_lun_change_medium(&t.lun[0], iso2_path, -1, err, sizeof(err)),
			 -EINVAL);
	/* Eject: no medium, and a media removal event once. */
	assert_int_equal(scsi_lun_change_medium(l, NULL, -1, err, sizeof(err)), 0);
	run(1, (uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, 0, 0);
	assert_sense(SENSE_NOT_READY, 0x3a, 0);
	run(1, (uint8_t[]){0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, 8, 0);
	assert_sense(SENSE_NOT_READY, 0x3a, 0);
	run(1, (uint8_t[]){0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0}, 10, 8, 0);
	assert_int_equal(inbuf[4], MMC_EVENT_MEDIA_REMOVAL);
	assert_int_equal(inbuf[5], 0);
	run(1, (uint8_t[]){0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0}, 10, 8, 0);
	assert_int_equal(inbuf[4], MMC_EVENT_NONE);
	run(1, (uint8_t[]){0x46, 0, 0, 0, 0, 0, 0, 0, 8, 0}, 10, 8, 0);
	assert_int_equal(inbuf[6] << 8 | inbuf[7], 0); /* no current profile */
	/* A new medium: unit attention 28/00 once, then the new medium's blocks. */
	assert_int_equal(scsi_lun_change_medium(l, iso2_path, -1, err, sizeof(err)), 0);
	run(1, (uint8_t[]){0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0}, 10, 8, 0); /* no UA here */
	assert_int_equal(inbuf[4], MMC_EVENT_NEW_MEDIA);
	run(1, (uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, 0, 0);
	assert_sense(SENSE_UNIT_ATTENTION, 0x28, 0);
	run(1, (uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, 0, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	run(1, (uint8_t[]){0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, 8, 0);
	assert_int_equal(inbuf[3], 2 * ISO_BLOCKS - 1);
	run(1, (uint8_t[]){0x28, 0, 0, 0, 0, 2, 0, 0, 1, 0}, 10, 2048, 0);
	assert_int_equal(inbuf[0], 0x42);
	/* REQUEST SENSE reports a pending unit attention and clears it. */
	assert_int_equal(scsi_lun_change_medium(l, iso_path, -1, err, sizeof(err)), 0);
	run(1, (uint8_t[]){0x03, 0, 0, 0, 18, 0}, 6, 18, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	assert_int_equal(inbuf[2], SENSE_UNIT_ATTENTION);
	assert_int_equal(inbuf[12], 0x28);
	run(1, (uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, 0, 0);
	assert_int_equal(r.status, SCSI_GOOD);
}

static void test_guest_eject(void **state)
{
	/* Locked: the eject is refused. */
	run(1, (uint8_t[]){0x1e, 0, 0, 0, 1, 0}, 6, 0, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	run(1, (uint8_t[]){0x1b, 0, 0, 0, 0x02, 0}, 6, 0, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x53, 0x02);
	run(1, (uint8_t[]){0x1e, 0, 0, 0, 0, 0}, 6, 0, 0);
	run(1, (uint8_t[]){0x1b, 0, 0, 0, 0x02, 0}, 6, 0, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	run(1, (uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, 0, 0);
	assert_sense(SENSE_NOT_READY, 0x3a, 0x02);	      /* tray open */
	run(1, (uint8_t[]){0x1b, 0, 0, 0, 0x03, 0}, 6, 0, 0); /* load */
	run(1, (uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, 0, 0);
	assert_int_equal(r.status, SCSI_GOOD);
	run(1, (uint8_t[]){0x1e, 0, 0, 0, 0x04, 0}, 6, 0, 0);
	assert_sense(SENSE_ILLEGAL_REQUEST, 0x24, 0);
}

static void test_virtio_lun(void **state)
{
	assert_int_equal(virtio_scsi_lun((uint8_t[]){1, 0, 0x40, 3, 0, 0, 0, 0}), 3);
	assert_int_equal(virtio_scsi_lun((uint8_t[]){1, 0, 0, 1, 0, 0, 0, 0}), 1);
	assert_int_equal(virtio_scsi_lun((uint8_t[]){1, 1, 0x40, 0, 0, 0, 0, 0}), -1);
	assert_int_equal(virtio_scsi_lun((uint8_t[]){0, 0, 0x40, 0, 0, 0, 0, 0}), -1);
	/* Peripheral form on a bus other than 0, logical unit and extended addressing: not
	 * LUNs of this target (they used to alias LUN 0 and others). */
	assert_int_equal(virtio_scsi_lun((uint8_t[]){1, 0, 0x01, 0, 0, 0, 0, 0}), -1);
	assert_int_equal(virtio_scsi_lun((uint8_t[]){1, 0, 0x80, 0, 0, 0, 0, 0}), -1);
	assert_int_equal(virtio_scsi_lun((uint8_t[]){1, 0, 0xc0, 1, 0, 0, 0, 0}), -1);
	assert_int_equal(virtio_scsi_lun((uint8_t[]){1, 0, 0x7f, 0xff, 0, 0, 0, 0}), 0x3fff);
}

static void test_iso_check(void **state)
{
	char err[256];
	int fd = open(bad_path, O_RDONLY);

	assert_int_equal(iso_check(fd, bad_path, err, sizeof(err)), -EINVAL);
	close(fd);
	fd = open(iso_path, O_RDONLY);
	assert_int_equal(iso_check(fd, iso_path, err, sizeof(err)), 0);
	close(fd);
}

/* A FIFO (or any file whose open waits) given as the medium: refused at once. The change
 * runs with the controller's lock held, so an open that waited for a writer would stop the
 * VM's I/O and the control socket for good. */
static void test_media_fifo(void **state)
{
	struct scsi_lun *l = &t.lun[1];
	char fifo[64], err[256];

	snprintf(fifo, sizeof(fifo), "/tmp/keel-scsi-fifo-%d", (int)getpid());
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(10); /* the open used to wait for a writer for ever */
	assert_int_equal(scsi_lun_change_medium(l, fifo, -1, err, sizeof(err)), -EINVAL);
	alarm(0);
	assert_non_null(strstr(err, "not a regular file"));
	assert_string_equal(l->path, iso_path);
	unlink(fifo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inquiry),
		cmocka_unit_test(test_report_luns),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_unknown_and_control),
		cmocka_unit_test(test_mode_sense),
		cmocka_unit_test(test_mmc),
		cmocka_unit_test(test_media_change),
		cmocka_unit_test(test_guest_eject),
		cmocka_unit_test(test_virtio_lun),
		cmocka_unit_test(test_iso_check),
		cmocka_unit_test(test_media_fifo),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
