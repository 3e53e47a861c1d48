/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DVD drive's multimedia commands (MMC-6) that Linux's sr_mod and cdrom, OVMF and
 * SeaBIOS send: READ TOC/PMA/ATIP (formats 0 and 1), GET CONFIGURATION, GET EVENT STATUS
 * NOTIFICATION (media events, polled), READ DISC INFORMATION, and mode page 2Ah (the
 * drive's capabilities). The medium is a finished single-session disc with one data track:
 * a CD-ROM up to 80 minutes' worth of blocks, a DVD-ROM above, as its size says.
 */
#include <string.h>

#include "vmm/scsi/scsi.h"

#define OP_READ_TOC		 0x43
#define OP_GET_CONFIGURATION	 0x46
#define OP_GET_EVENT_STATUS	 0x4a
#define OP_READ_DISC_INFORMATION 0x51

#define PROFILE_CD_ROM		 0x0008
#define PROFILE_DVD_ROM		 0x0010
#define CD_MAX_BLOCKS		 (80u * 60 * 75) /* an 80-minute CD */

static bool medium_present(const struct scsi_lun *l)
{
	return l->disk && !l->tray_open;
}

static uint16_t current_profile(const struct scsi_lun *l)
{
	if (!medium_present(l))
		return 0;
	return l->blocks > CD_MAX_BLOCKS ? PROFILE_DVD_ROM : PROFILE_CD_ROM;
}

/* An address of a TOC: an LBA, or minutes, seconds and frames (2 seconds of lead-in). */
static void toc_address(uint8_t *p, uint64_t lba, bool msf)
{
	if (!msf) {
		scsi_put_be(p, lba, 4);
		return;
	}
	lba += 150;
	p[0] = 0;
	p[1] = (uint8_t)(lba / (75 * 60));
	p[2] = (uint8_t)(lba / 75 % 60);
	p[3] = (uint8_t)(lba % 75);
}

static void read_toc(const struct scsi_lun *l, struct scsi_req *r)
{
	uint8_t b[4 + 2 * 8] = {0};
	bool msf = r->cdb[1] & 0x02;
	uint8_t format = r->cdb[2] & 0x0f, track = r->cdb[6];
	unsigned n = 4;

	if (!scsi_medium_ready(l, r))
		return;
	b[2] = b[3] = 1; /* first and last track, or session */
	if (format == 0) {
		if (track > 1 && track != 0xaa) {
			scsi_fail(r, SENSE_INVALID_FIELD);
			return;
		}
		if (track <= 1) {
			b[n + 1] = 0x14; /* ADR 1 (position), control 4 (data track) */
			b[n + 2] = 1;
			toc_address(b + n + 4, 0, msf);
			n += 8;
		}
		b[n + 1] = 0x14;
		b[n + 2] = 0xaa; /* lead-out */
		toc_address(b + n + 4, l->blocks, msf);
		n += 8;
	} else if (format == 1) { /* session information: one session, its first track */
		b[n + 1] = 0x14;
		b[n + 2] = 1;
		toc_address(b + n + 4, 0, msf);
		n += 8;
	} else {
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	scsi_put_be(b, n - 2, 2);
	scsi_reply(r, b, n, scsi_be(r->cdb + 7, 2));
}

/* One feature descriptor: code, version, persistent, current, then len bytes of data. */
static unsigned feature(uint8_t *p, uint16_t code, uint8_t version, bool persistent, bool current,
			const uint8_t *data, uint8_t len)
{
	scsi_put_be(p, code, 2);
	p[2] = (uint8_t)(version << 2 | persistent << 1 | current);
	p[3] = len;
	memcpy(p + 4, data, len);
	return 4u + len;
}

static void get_configuration(const struct scsi_lun *l, struct scsi_req *r)
{
	uint8_t rt = r->cdb[1] & 0x03, b[128] = {0}, d[8];
	uint16_t sfn = (uint16_t)scsi_be(r->cdb + 2, 2), profile = current_profile(l);
	struct {
		uint16_t code;
		uint8_t version;
		bool persistent, current;
		uint8_t len, data[8];
	} f[] = {
		{0x0000,
		 0,
		 true,
		 true,
		 8,
		 {PROFILE_DVD_ROM >> 8, PROFILE_DVD_ROM & 0xff, profile == PROFILE_DVD_ROM, 0,
		  PROFILE_CD_ROM >> 8, PROFILE_CD_ROM & 0xff, profile == PROFILE_CD_ROM, 0}},
		{0x0001, 2, true, true, 8, {0, 0, 0, 1}}, /* core: SCSI */
		{0x0002, 1, true, true, 4, {0x02}},	  /* morphing: OCEvent (polled events) */
		{0x0003, 0, true, true, 4, {0x29}},	  /* removable: tray, eject, lock */
		{0x0010,
		 0,
		 false,
		 profile != 0,
		 8,
		 {0, 0, 0x08, 0x00, 0, profile == PROFILE_DVD_ROM ? 16 : 1}},
		{0x001e, 2, false, profile == PROFILE_CD_ROM, 4, {0}},	/* CD read */
		{0x001f, 0, false, profile == PROFILE_DVD_ROM, 4, {0}}, /* DVD read */
	};
	unsigned n = 8;

	if (rt == 3) {
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (f[i].code < sfn || (rt == 1 && !f[i].current) || (rt == 2 && f[i].code != sfn))
			continue;
		memcpy(d, f[i].data, sizeof(d));
		n += feature(b + n, f[i].code, f[i].version, f[i].persistent, f[i].current, d,
			     f[i].len);
	}
	scsi_put_be(b, n - 4, 4);
	scsi_put_be(b + 6, profile, 2);
	scsi_reply(r, b, n, scsi_be(r->cdb + 7, 2));
}

/* GET EVENT STATUS NOTIFICATION, polled only: the media class, its event reported once. */
static void get_event_status(struct scsi_lun *l, struct scsi_req *r)
{
	uint8_t b[8] = {0};

	if (!(r->cdb[1] & 0x01)) { /* asynchronous notification is not supported */
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	b[3] = 0x10; /* supported classes: media */
	if (!(r->cdb[4] & 0x10)) {
		b[1] = 2;
		b[2] = 0x80; /* no event available of the classes asked for */
		scsi_reply(r, b, 4, scsi_be(r->cdb + 7, 2));
		return;
	}
	b[1] = 6;
	b[2] = 0x04; /* media class */
	b[4] = l->media_event;
	b[5] = (uint8_t)(medium_present(l) << 1 | l->tray_open);
	l->media_event = MMC_EVENT_NONE;
	scsi_reply(r, b, 8, scsi_be(r->cdb + 7, 2));
}

static void read_disc_information(const struct scsi_lun *l, struct scsi_req *r)
{
	uint8_t b[34] = {0};

	if (r->cdb[1] & 0x07) { /* data types other than standard disc information */
		scsi_fail(r, SENSE_INVALID_FIELD);
		return;
	}
	if (!scsi_medium_ready(l, r))
		return;
	b[1] = 32;
	b[2] = 0x0e; /* last session complete, disc finalized */
	b[3] = 1;    /* first track */
	b[4] = 1;    /* sessions */
	b[5] = 1;    /* first and last track of the last session */
	b[6] = 1;
	scsi_reply(r, b, sizeof(b), scsi_be(r->cdb + 7, 2));
}

int scsi_mmc_capabilities_page(const struct scsi_lun *l, bool changeable, uint8_t *out)
{
	memset(out, 0, 22);
	out[0] = 0x2a;
	out[1] = 20;
	if (changeable)
		return 22;
	out[2] = 0x3b; /* reads CD-R, CD-RW, method 2, DVD-ROM, DVD-R */
	out[4] = 0x71; /* mode 2 form 1 and 2, multi-session, audio play */
	out[5] = 0xff;
	out[6] = (uint8_t)(0x2d | l->prevent << 1); /* tray, eject, lock (and its state) */
	scsi_put_be(out + 8, 706, 2);		    /* maximum read speed (kB/s, obsolete) */
	scsi_put_be(out + 10, 2, 2);		    /* volume levels */
	scsi_put_be(out + 12, 2048, 2);		    /* buffer (KiB) */
	scsi_put_be(out + 14, 706, 2);		    /* current read speed */
	return 22;
}

int scsi_mmc_exec(struct scsi_lun *l, struct scsi_req *r)
{
	switch (r->cdb[0]) {
	case OP_READ_TOC:
		read_toc(l, r);
		return SCSI_EXEC_DONE;
	case OP_GET_CONFIGURATION:
		get_configuration(l, r);
		return SCSI_EXEC_DONE;
	case OP_GET_EVENT_STATUS:
		get_event_status(l, r);
		return SCSI_EXEC_DONE;
	case OP_READ_DISC_INFORMATION:
		read_disc_information(l, r);
		return SCSI_EXEC_DONE;
	default:
		return -1;
	}
}
