/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The commands every unit has (SPC-4): INQUIRY with VPD pages 00h, 80h and 83h, TEST UNIT
 * READY, REQUEST SENSE, REPORT LUNS, MODE SENSE(6) and (10), START STOP UNIT, PREVENT ALLOW
 * MEDIUM REMOVAL; and scsi_exec(), which reports unit attentions and hands every other
 * opcode to the block (sbc.c) and multimedia (mmc.c) command sets.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/scsi/scsi.h"

#define OP_TEST_UNIT_READY   0x00
#define OP_REQUEST_SENSE     0x03
#define OP_INQUIRY	     0x12
#define OP_MODE_SENSE_6	     0x1a
#define OP_START_STOP_UNIT   0x1b
#define OP_PREVENT_ALLOW     0x1e
#define OP_GET_CONFIGURATION 0x46
#define OP_GET_EVENT_STATUS  0x4a
#define OP_MODE_SENSE_10     0x5a
#define OP_REPORT_LUNS	     0xa0

#define INQUIRY_LEN	     36

/* The bytes a CDB of this opcode has (SAM-5 5.2: the opcode's group). */
static unsigned cdb_length(uint8_t op)
{
	switch (op >> 5) {
	case 0:
		return 6;
	case 1:
	case 2:
		return 10;
	case 4:
		return 16;
	case 5:
		return 12;
	default:
		return 0; /* reserved and vendor-specific groups: none here */
	}
}

static void inquiry_standard(const struct scsi_lun *l, uint8_t *b)
{
	memset(b, 0, INQUIRY_LEN);
	if (!l) {
		b[0] = 0x7f; /* no unit at this LUN (qualifier 3, type 1Fh) */
	} else if (l->type == VM_LUN_DVD) {
		b[0] = 0x05; /* MMC */
		b[1] = 0x80; /* removable */
	}
	b[2] = 0x05; /* SPC-3 */
	b[3] = 0x02; /* response data format 2 */
	b[4] = INQUIRY_LEN - 5;
	b[7] = 0x02; /* CMDQUE */
	memcpy(b + 8, "KEEL    ", 8);
	memcpy(b + 16, l && l->type == VM_LUN_DVD ? "VIRTUAL DVD-ROM " : "VIRTUAL DISK    ", 16);
	memcpy(b + 32, "1.0 ", 4);
}

/* The unit's serial number: the configured one, else "lunN" (stable: the LUN is). */
static size_t unit_serial(const struct scsi_lun *l, unsigned lun, char *out, size_t len)
{
	int n = l->serial[0] ? snprintf(out, len, "%s", l->serial)
			     : snprintf(out, len, "lun%u", lun);

	return n < 0 ? 0 : (size_t)n;
}

static void inquiry(const struct scsi_lun *l, unsigned lun, struct scsi_req *r)
{
	uint8_t b[64] = {0};
	uint32_t alloc = scsi_be(r->cdb + 3, 2);
	char serial[VMDEF_SERIAL_MAX + 8];
	size_t n, len;

	if (r->cdb[1] & 0xfe) { /* CMDDT (obsolete) and reserved bits */
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	if (!(r->cdb[1] & 1)) {
		if (r->cdb[2]) {
			scsi_fail(r, SENSE_INVALID_FIELD);
			return;
		}
		inquiry_standard(l, b);
		scsi_reply(r, b, INQUIRY_LEN, alloc);
		return;
	}
	if (!l) {
		scsi_fail(r, SENSE_LUN_NOT_SUPPORTED);
		return;
	}
	b[0] = l->type == VM_LUN_DVD ? 0x05 : 0x00;
	b[1] = r->cdb[2];
	switch (r->cdb[2]) {
	case 0x00: /* supported VPD pages */
		b[3] = 3;
		b[4] = 0x00;
		b[5] = 0x80;
		b[6] = 0x83;
		len = 7;
		break;
	case 0x80: /* unit serial number */
		n = unit_serial(l, lun, serial, sizeof(serial));
		b[3] = (uint8_t)n;
		memcpy(b + 4, serial, n);
		len = 4 + n;
		break;
	case 0x83: /* device identification: one T10 vendor ID designator */
		n = unit_serial(l, lun, serial, sizeof(serial));
		b[4] = 0x02; /* ASCII */
		b[5] = 0x01; /* associated with the unit, T10 vendor ID */
		b[7] = (uint8_t)(8 + n);
		memcpy(b + 8, "KEEL    ", 8);
		memcpy(b + 16, serial, n);
		b[3] = (uint8_t)(4 + 8 + n);
		len = 16 + n;
		break;
	default:
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	scsi_reply(r, b, len, alloc);
}

static void report_luns(const struct scsi_target *t, struct scsi_req *r)
{
	uint8_t b[8 + 8 * SCSI_MAX_LUNS] = {0};
	uint32_t alloc = scsi_be(r->cdb + 6, 4);

	if (r->cdb[2] > 2 || alloc < 16) { /* select report 0-2; SPC: at least 16 bytes */
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	scsi_put_be(b, 8 * t->nluns, 4);
	for (unsigned i = 0; i < t->nluns; i++)
		b[8 + 8 * i + 1] = (uint8_t)i; /* peripheral device addressing, bus 0 */
	scsi_reply(r, b, 8 + 8 * t->nluns, alloc);
}

/* REQUEST SENSE: a unit attention not reported yet (and then no longer), no medium, or no
 * sense (each CHECK CONDITION already carried its sense: autosense). */
static void request_sense(struct scsi_lun *l, struct scsi_req *r)
{
	uint8_t b[SCSI_SENSE_LEN];
	struct scsi_sense s = {0};

	if (r->cdb[1] & 1) { /* DESC: descriptor format is not supported */
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	if (!l) {
		s = SENSE_LUN_NOT_SUPPORTED;
	} else if (l->ua.key) {
		s = l->ua;
		l->ua = (struct scsi_sense){0};
	} else if (l->type == VM_LUN_DVD && (!l->disk || l->tray_open)) {
		s = l->tray_open ? SENSE_NO_MEDIUM_TRAY_OPEN : SENSE_NO_MEDIUM;
	}
	scsi_sense_fixed(s, b);
	scsi_reply(r, b, sizeof(b), r->cdb[4]);
}

/* MODE SENSE(6) and (10): a header, the block descriptor (disks, unless DBD), the pages. */
static void mode_sense(const struct scsi_lun *l, struct scsi_req *r, bool ten)
{
	uint8_t b[8 + 8 + 256] = {0};
	uint8_t pc = r->cdb[2] >> 6, page = r->cdb[2] & 0x3f, sub = r->cdb[3];
	bool dbd = r->cdb[1] & 0x08 || l->type == VM_LUN_DVD;
	unsigned hdr = ten ? 8 : 4, bd = dbd ? 0 : 8;
	uint32_t alloc = ten ? scsi_be(r->cdb + 7, 2) : r->cdb[4];
	int n;

	if (pc == 3) {
		scsi_fail(r, SENSE_SAVING_NOT_SUPPORTED);
		return;
	}
	if ((sub && sub != 0xff) || (sub == 0xff && page != 0x3f)) {
		scsi_fail(r, SENSE_INVALID_FIELD); /* no subpages */
		return;
	}
	n = scsi_mode_pages(l, page, pc == 1, b + hdr + bd);
	if (n < 0) {
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	if (bd) {
		uint64_t blocks = l->disk ? l->blocks : 0;

		scsi_put_be(b + hdr + 1, blocks > 0xffffff ? 0xffffff : blocks, 3);
		scsi_put_be(b + hdr + 5, l->block_size, 3);
	}
	if (ten) {
		scsi_put_be(b, hdr + bd + (unsigned)n - 2, 2);
		b[3] = l->type == VM_LUN_DISK && l->ro ? 0x80 : 0x00; /* WP */
		scsi_put_be(b + 6, bd, 2);
	} else {
		b[0] = (uint8_t)(hdr + bd + (unsigned)n - 1);
		b[2] = l->type == VM_LUN_DISK && l->ro ? 0x80 : 0x00;
		b[3] = (uint8_t)bd;
	}
	scsi_reply(r, b, hdr + bd + (unsigned)n, alloc);
}

/* START STOP UNIT: a DVD drive's tray opens (LOEJ, not START) unless the guest locked it,
 * and closes (LOEJ and START) with its medium, which is then new to the guest. Power
 * conditions and a disk's start and stop change nothing here. */
static void start_stop(struct scsi_lun *l, struct scsi_req *r)
{
	bool loej = r->cdb[4] & 0x02, start = r->cdb[4] & 0x01;

	r->status = SCSI_GOOD;
	if (l->type != VM_LUN_DVD || !loej || r->cdb[4] >> 4)
		return;
	if (!start) {
		if (l->prevent) {
			scsi_fail(r, SENSE_REMOVAL_PREVENTED);
			return;
		}
		if (!l->tray_open && l->disk)
			l->media_event = MMC_EVENT_MEDIA_REMOVAL;
		l->tray_open = true;
	} else if (l->tray_open) {
		l->tray_open = false;
		if (l->disk)
			l->media_event = MMC_EVENT_NEW_MEDIA;
	}
}

/* Commands a pending unit attention does not stop (SPC-4 5.14, MMC-6 4.1.6.1). */
static bool ua_exempt(uint8_t op)
{
	return op == OP_INQUIRY || op == OP_REPORT_LUNS || op == OP_REQUEST_SENSE ||
	       op == OP_GET_CONFIGURATION || op == OP_GET_EVENT_STATUS;
}

enum scsi_exec_result scsi_exec(struct scsi_target *t, unsigned lun, struct scsi_req *r)
{
	struct scsi_lun *l = lun < t->nluns ? &t->lun[lun] : NULL;
	uint8_t op = r->cdb[0];
	unsigned len = cdb_length(op);
	int res;

	r->status = SCSI_GOOD;
	r->sense = (struct scsi_sense){0};
	r->in_done = r->out_done = 0;
	r->overrun = false;
	r->disk = NULL;
	if (!len || len > sizeof(r->cdb)) {
		scsi_fail(r, SENSE_INVALID_OPCODE);
		return SCSI_EXEC_DONE;
	}
	if (r->cdb[len - 1] & 0x05) { /* control byte: NACA and LINK are not supported */
		scsi_fail(r, SENSE_INVALID_FIELD);
		return SCSI_EXEC_DONE;
	}
	switch (op) {
	case OP_INQUIRY:
		inquiry(l, lun, r);
		return SCSI_EXEC_DONE;
	case OP_REPORT_LUNS:
		report_luns(t, r);
		return SCSI_EXEC_DONE;
	case OP_REQUEST_SENSE:
		request_sense(l, r);
		return SCSI_EXEC_DONE;
	default:
		break;
	}
	if (!l) {
		scsi_fail(r, SENSE_LUN_NOT_SUPPORTED);
		return SCSI_EXEC_DONE;
	}
	if (l->ua.key && !ua_exempt(op)) {
		scsi_fail(r, l->ua);
		l->ua = (struct scsi_sense){0};
		return SCSI_EXEC_DONE;
	}
	switch (op) {
	case OP_TEST_UNIT_READY:
		scsi_medium_ready(l, r);
		return SCSI_EXEC_DONE;
	case OP_MODE_SENSE_6:
	case OP_MODE_SENSE_10:
		mode_sense(l, r, op == OP_MODE_SENSE_10);
		return SCSI_EXEC_DONE;
	case OP_START_STOP_UNIT:
		start_stop(l, r);
		return SCSI_EXEC_DONE;
	case OP_PREVENT_ALLOW:
		if (r->cdb[4] & 0xfc) {
			scsi_fail(r, SENSE_INVALID_FIELD);
			return SCSI_EXEC_DONE;
		}
		l->prevent = l->type == VM_LUN_DVD && (r->cdb[4] & 0x01);
		return SCSI_EXEC_DONE;
	default:
		break;
	}
	res = scsi_sbc_exec(l, r);
	if (res < 0 && l->type == VM_LUN_DVD)
		res = scsi_mmc_exec(l, r);
	if (res < 0) {
		scsi_fail(r, SENSE_INVALID_OPCODE);
		return SCSI_EXEC_DONE;
	}
	return (enum scsi_exec_result)res;
}
