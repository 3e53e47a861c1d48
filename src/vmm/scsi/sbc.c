/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Block commands (SBC-3) of disks and DVD drives alike: READ CAPACITY(10) and (16), READ and
 * WRITE (6, 10, 12, 16), SYNCHRONIZE CACHE(10) and (16), checked here and run by
 * scsi_io_run() on the disk library; and the mode pages of a disk (caching, control).
 */
#include <stdlib.h>
#include <string.h>

#include "disk/disk.h"
#include "vmm/scsi/scsi.h"

#define OP_READ_6	     0x08
#define OP_WRITE_6	     0x0a
#define OP_READ_CAPACITY_10  0x25
#define OP_READ_10	     0x28
#define OP_WRITE_10	     0x2a
#define OP_SYNC_CACHE_10     0x35
#define OP_READ_16	     0x88
#define OP_WRITE_16	     0x8a
#define OP_SYNC_CACHE_16     0x91
#define OP_SERVICE_ACTION_IN 0x9e
#define SAI_READ_CAPACITY_16 0x10
#define OP_READ_12	     0xa8
#define OP_WRITE_12	     0xaa

bool scsi_medium_ready(const struct scsi_lun *l, struct scsi_req *r)
{
	if (l->disk && !l->tray_open)
		return true;
	scsi_fail(r, l->tray_open ? SENSE_NO_MEDIUM_TRAY_OPEN : SENSE_NO_MEDIUM);
	return false;
}

static void read_capacity(const struct scsi_lun *l, struct scsi_req *r, bool sixteen)
{
	uint8_t b[32] = {0};
	uint64_t last = l->blocks ? l->blocks - 1 : 0;

	if (sixteen) {
		if (r->cdb[14] & 0x01) { /* PMI (obsolete in SBC-3) */
			scsi_fail(r, SENSE_INVALID_FIELD);
			return;
		}
	} else if (r->cdb[8] & 0xfe || (!(r->cdb[8] & 1) && scsi_be(r->cdb + 2, 4))) {
		scsi_fail(r, SENSE_INVALID_FIELD); /* an LBA without PMI */
		return;
	}
	if (!scsi_medium_ready(l, r))
		return;
	if (sixteen) {
		scsi_put_be(b, last, 8);
		scsi_put_be(b + 8, l->block_size, 4);
		scsi_reply(r, b, 32, scsi_be(r->cdb + 10, 4));
		return;
	}
	scsi_put_be(b, last > 0xffffffff ? 0xffffffff : last, 4);
	scsi_put_be(b + 4, l->block_size, 4);
	scsi_reply(r, b, 8, 8);
}

/* Are the first len bytes of b in whole 512-byte pieces (the disk library's unit)? */
static bool buf_in_sectors(const struct scsi_buf *b, uint64_t len)
{
	for (unsigned i = 0; i < b->n && len; i++) {
		uint64_t take = b->iov[i].iov_len < len ? b->iov[i].iov_len : len;

		if (take % 512)
			return false;
		len -= take;
	}
	return true;
}

/* A read or write of count blocks at lba: checked, then prepared for scsi_io_run. */
static int read_write(const struct scsi_lun *l, struct scsi_req *r, bool write, uint64_t lba,
		      uint64_t count, bool fua)
{
	const struct scsi_buf *b = write ? &r->out : &r->in;
	uint64_t bytes;

	if (!scsi_medium_ready(l, r))
		return SCSI_EXEC_DONE;
	if (write && l->ro) {
		scsi_fail(r, SENSE_WRITE_PROTECTED);
		return SCSI_EXEC_DONE;
	}
	if (lba > l->blocks || count > l->blocks - lba) {
		scsi_fail(r, SENSE_LBA_OUT_OF_RANGE);
		return SCSI_EXEC_DONE;
	}
	bytes = count * l->block_size; /* count < 2^32, block_size <= 2048 */
	if (bytes > SCSI_MAX_TRANSFER || (bytes > SCSI_BOUNCE_MAX && !buf_in_sectors(b, bytes))) {
		scsi_fail(r, SENSE_INVALID_FIELD);
		return SCSI_EXEC_DONE;
	}
	if (b->len < bytes) { /* the initiator's buffers are smaller than the transfer */
		r->overrun = true;
		return SCSI_EXEC_DONE;
	}
	if (!bytes)
		return SCSI_EXEC_DONE;
	r->op = write ? SCSI_IO_WRITE : SCSI_IO_READ;
	r->disk = l->disk;
	r->off = lba * l->block_size;
	r->len = bytes;
	r->fua = write && fua && l->cache != VM_DISK_CACHE_UNSAFE;
	return SCSI_EXEC_IO;
}

/* SYNCHRONIZE CACHE: the range is checked, the whole disk is flushed. */
static int sync_cache(const struct scsi_lun *l, struct scsi_req *r, uint64_t lba, uint64_t count)
{
	if (!scsi_medium_ready(l, r))
		return SCSI_EXEC_DONE;
	if (lba > l->blocks || count > l->blocks - lba) {
		scsi_fail(r, SENSE_LBA_OUT_OF_RANGE);
		return SCSI_EXEC_DONE;
	}
	if (l->ro)
		return SCSI_EXEC_DONE;
	r->op = SCSI_IO_FLUSH;
	r->disk = l->disk;
	r->skip_flush = l->cache == VM_DISK_CACHE_UNSAFE;
	return SCSI_EXEC_IO;
}

int scsi_sbc_exec(struct scsi_lun *l, struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	uint8_t op = c[0];
	bool write =
		op == OP_WRITE_6 || op == OP_WRITE_10 || op == OP_WRITE_12 || op == OP_WRITE_16;

	/* RDPROTECT/WRPROTECT (protection information) is not supported; nor is DPO's
	 * neighbour bit 2 of READ(10) in SBC-2 (reserved). */
	switch (op) {
	case OP_READ_6:
	case OP_WRITE_6:
		return read_write(l, r, write, scsi_be(c + 1, 3) & 0x1fffff, c[4] ? c[4] : 256,
				  false);
	case OP_READ_10:
	case OP_WRITE_10:
	case OP_READ_12:
	case OP_WRITE_12:
	case OP_READ_16:
	case OP_WRITE_16: {
		bool ten = op == OP_READ_10 || op == OP_WRITE_10;
		bool sixteen = op == OP_READ_16 || op == OP_WRITE_16;

		if (c[1] & 0xe0) {
			scsi_fail(r, SENSE_INVALID_FIELD);
			return SCSI_EXEC_DONE;
		}
		return read_write(l, r, write, sixteen ? scsi_be64(c + 2) : scsi_be(c + 2, 4),
				  sixteen ? scsi_be(c + 10, 4)
				  : ten	  ? scsi_be(c + 7, 2)
					  : scsi_be(c + 6, 4),
				  c[1] & 0x08);
	}
	case OP_READ_CAPACITY_10:
		read_capacity(l, r, false);
		return SCSI_EXEC_DONE;
	case OP_SERVICE_ACTION_IN:
		if ((c[1] & 0x1f) != SAI_READ_CAPACITY_16) {
			scsi_fail(r, SENSE_INVALID_FIELD);
			return SCSI_EXEC_DONE;
		}
		read_capacity(l, r, true);
		return SCSI_EXEC_DONE;
	case OP_SYNC_CACHE_10:
		return sync_cache(l, r, scsi_be(c + 2, 4), scsi_be(c + 7, 2));
	case OP_SYNC_CACHE_16:
		return sync_cache(l, r, scsi_be64(c + 2), scsi_be(c + 10, 4));
	default:
		return -1;
	}
}

/* The disk library reads and writes whole sectors: buffers that are not in sectors go
 * through a copy (at most SCSI_BOUNCE_MAX, read_write checked). */
static int io_rw(struct scsi_req *r, bool write)
{
	const struct scsi_buf *b = write ? &r->out : &r->in;
	uint64_t off = r->off, left = r->len;
	uint8_t *bounce;
	int ret = 0;

	if (buf_in_sectors(b, r->len)) {
		for (unsigned i = 0; i < b->n && left && !ret; i++) {
			size_t take = b->iov[i].iov_len < left ? b->iov[i].iov_len : (size_t)left;

			ret = write ? disk_write(r->disk, b->iov[i].iov_base, off, take)
				    : disk_read(r->disk, b->iov[i].iov_base, off, take);
			off += take;
			left -= take;
		}
		return ret;
	}
	bounce = malloc((size_t)r->len);
	if (!bounce)
		return -1;
	if (write) {
		scsi_buf_read(b, 0, bounce, (size_t)r->len);
		ret = disk_write(r->disk, bounce, r->off, (size_t)r->len);
	} else {
		ret = disk_read(r->disk, bounce, r->off, (size_t)r->len);
		if (!ret)
			scsi_buf_write(b, 0, bounce, (size_t)r->len);
	}
	free(bounce);
	return ret;
}

void scsi_io_run(struct scsi_req *r)
{
	int ret;

	switch (r->op) {
	case SCSI_IO_READ:
		if (io_rw(r, false)) {
			scsi_fail(r, SENSE_READ_ERROR);
			return;
		}
		r->in_done = r->len;
		break;
	case SCSI_IO_WRITE:
		ret = io_rw(r, true);
		if (!ret && r->fua)
			ret = disk_flush(r->disk);
		if (ret) {
			scsi_fail(r, SENSE_WRITE_ERROR);
			return;
		}
		r->out_done = r->len;
		break;
	case SCSI_IO_FLUSH:
		if (!r->skip_flush && disk_flush(r->disk)) {
			scsi_fail(r, SENSE_WRITE_ERROR);
			return;
		}
		break;
	}
	r->status = SCSI_GOOD;
}

/* Caching (08h: write cache enabled, so that the guest flushes) and control (0Ah). */
static const uint8_t page_caching[20] = {0x08, 0x12, 0x04};
static const uint8_t page_control[12] = {0x0a, 0x0a};

int scsi_mode_pages(const struct scsi_lun *l, uint8_t pc, bool changeable, uint8_t *out)
{
	int n = 0;

	if (l->type == VM_LUN_DVD)
		return pc == 0x2a || pc == 0x3f ? scsi_mmc_capabilities_page(l, changeable, out)
						: -1;
	if (pc != 0x08 && pc != 0x0a && pc != 0x3f)
		return -1;
	if (pc == 0x08 || pc == 0x3f) {
		memcpy(out + n, page_caching, sizeof(page_caching));
		if (changeable)
			memset(out + n + 2, 0, sizeof(page_caching) - 2);
		n += sizeof(page_caching);
	}
	if (pc == 0x0a || pc == 0x3f) {
		memcpy(out + n, page_control, sizeof(page_control));
		n += sizeof(page_control);
	}
	return n;
}
