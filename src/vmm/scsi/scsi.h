/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SCSI target behind virtio-scsi (docs/virtio.md): one target with up to SCSI_MAX_LUNS
 * logical units, each a disk (SBC: 512-byte blocks on keel's disk library, raw or VHDX) or
 * a DVD drive (MMC: 2048-byte blocks on an ISO image, read-only, a medium that comes and
 * goes). No transport in here: a request is a CDB plus the initiator's data buffers, and
 * the answer a SAM status with fixed-format sense data.
 *
 * Every CDB is untrusted (the guest writes it): each field is checked (opcode, service
 * action, reserved bits that select what we do not do, LBA plus length against the medium,
 * the transfer against SCSI_MAX_TRANSFER and the buffers given, allocation lengths), and
 * whatever is not right or not known is CHECK CONDITION with ILLEGAL REQUEST sense.
 *
 * Commands split in two: scsi_exec() does everything that needs no disk I/O at once and
 * leaves reads, writes and cache flushes prepared in the request (SCSI_EXEC_IO) for
 * scsi_io_run(), a blocking call the transport runs on a block-backend thread. The LUNs'
 * state (units attention, the medium, the tray) is the caller's to lock (virtio-scsi:
 * vd->lock); scsi_io_run touches only the request and the medium it was prepared on, which
 * stays open until every request on it is done (media changes wait for an idle device).
 *
 * Files: lun.c (units, media, unit attentions), spc.c (commands every unit has, the
 * dispatch), sbc.c (block commands: capacity, read, write, synchronize cache), mmc.c (the
 * DVD drive's commands), sense.c (sense data and data buffers), iso.c (what an ISO image
 * is).
 */
#ifndef KEEL_VMM_SCSI_SCSI_H
#define KEEL_VMM_SCSI_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config/vmdef.h"

#define SCSI_MAX_LUNS	  VMDEF_MAX_LUNS
#define SCSI_MAX_TRANSFER (4u << 20) /* bytes of one read or write */
#define SCSI_BOUNCE_MAX	  (1u << 20) /* ... through a copy, when buffers are not in blocks */
#define SCSI_SENSE_LEN	  18	     /* fixed format */
#define SCSI_CDB_MAX	  32
#define SCSI_DISK_BLOCK	  512
#define SCSI_DVD_BLOCK	  2048
#define SCSI_PATH_MAX	  4096

/* SAM status codes. */
#define SCSI_GOOD	     0x00
#define SCSI_CHECK_CONDITION 0x02

/* Sense keys. */
#define SENSE_NO_SENSE	      0x0
#define SENSE_NOT_READY	      0x2
#define SENSE_MEDIUM_ERROR    0x3
#define SENSE_HARDWARE_ERROR  0x4
#define SENSE_ILLEGAL_REQUEST 0x5
#define SENSE_UNIT_ATTENTION  0x6
#define SENSE_DATA_PROTECT    0x7

struct disk;

/* Key, additional sense code and qualifier: all zero is "no sense". */
struct scsi_sense {
	uint8_t key, asc, ascq;
};

/* The senses this target reports. */
#define SENSE_INVALID_OPCODE	   ((struct scsi_sense){SENSE_ILLEGAL_REQUEST, 0x20, 0x00})
#define SENSE_LBA_OUT_OF_RANGE	   ((struct scsi_sense){SENSE_ILLEGAL_REQUEST, 0x21, 0x00})
#define SENSE_INVALID_FIELD	   ((struct scsi_sense){SENSE_ILLEGAL_REQUEST, 0x24, 0x00})
#define SENSE_LUN_NOT_SUPPORTED	   ((struct scsi_sense){SENSE_ILLEGAL_REQUEST, 0x25, 0x00})
#define SENSE_SAVING_NOT_SUPPORTED ((struct scsi_sense){SENSE_ILLEGAL_REQUEST, 0x39, 0x00})
#define SENSE_REMOVAL_PREVENTED	   ((struct scsi_sense){SENSE_ILLEGAL_REQUEST, 0x53, 0x02})
#define SENSE_NO_MEDIUM		   ((struct scsi_sense){SENSE_NOT_READY, 0x3a, 0x00})
#define SENSE_NO_MEDIUM_TRAY_OPEN  ((struct scsi_sense){SENSE_NOT_READY, 0x3a, 0x02})
#define SENSE_MEDIUM_CHANGED	   ((struct scsi_sense){SENSE_UNIT_ATTENTION, 0x28, 0x00})
#define SENSE_RESET_OCCURRED	   ((struct scsi_sense){SENSE_UNIT_ATTENTION, 0x29, 0x00})
#define SENSE_I_T_NEXUS_LOSS	   ((struct scsi_sense){SENSE_UNIT_ATTENTION, 0x29, 0x07})
#define SENSE_WRITE_PROTECTED	   ((struct scsi_sense){SENSE_DATA_PROTECT, 0x27, 0x00})
#define SENSE_READ_ERROR	   ((struct scsi_sense){SENSE_MEDIUM_ERROR, 0x11, 0x00})
#define SENSE_WRITE_ERROR	   ((struct scsi_sense){SENSE_MEDIUM_ERROR, 0x0c, 0x00})
#define SENSE_INTERNAL_ERROR	   ((struct scsi_sense){SENSE_HARDWARE_ERROR, 0x44, 0x00})

/* GET EVENT STATUS NOTIFICATION media event codes (MMC-6, 6.6). */
#define MMC_EVENT_NONE		0
#define MMC_EVENT_EJECT_REQUEST 1
#define MMC_EVENT_NEW_MEDIA	2
#define MMC_EVENT_MEDIA_REMOVAL 3

/* A run of the initiator's buffers: data to it (in) or from it (out). */
struct scsi_buf {
	const struct iovec *iov;
	unsigned n;
	uint64_t len;
};

/* One logical unit. */
struct scsi_lun {
	enum vm_lun_type type;
	bool ro;
	enum vm_disk_cache cache;
	uint32_t block_size;
	char serial[VMDEF_SERIAL_MAX + 1];
	/* The medium: a disk's file for good, a DVD drive's ISO image or none (NULL). */
	struct disk *disk;
	uint64_t blocks;
	char path[SCSI_PATH_MAX]; /* the medium's file, "" when none */
	bool passed;		  /* ... given as a descriptor (keeld's), not opened by name */
	/* Unit state the guest sees (and a saved state keeps). */
	struct scsi_sense ua; /* a unit attention not reported yet (key 0: none) */
	bool prevent;	      /* PREVENT ALLOW MEDIUM REMOVAL: the guest locked the tray */
	bool tray_open;	      /* the guest ejected: the medium is in the open tray */
	uint8_t media_event;  /* MMC_EVENT_*: not reported by GET EVENT STATUS yet */
};

struct scsi_target {
	unsigned nluns;
	struct scsi_lun lun[SCSI_MAX_LUNS];
};

enum scsi_io_op { SCSI_IO_READ, SCSI_IO_WRITE, SCSI_IO_FLUSH };

/* A command on its way: the transport fills cdb, in and out; scsi_exec fills the rest. */
struct scsi_req {
	uint8_t cdb[SCSI_CDB_MAX];
	unsigned cdb_len; /* bytes the transport gave (zeros after) */
	struct scsi_buf in, out;
	/* The answer. */
	uint8_t status;		 /* SCSI_GOOD or SCSI_CHECK_CONDITION */
	struct scsi_sense sense; /* for CHECK CONDITION */
	uint64_t in_done;	 /* bytes written into in */
	uint64_t out_done;	 /* bytes taken from out */
	bool overrun;		 /* the buffers cannot hold what the CDB transfers */
	/* SCSI_EXEC_IO: what scsi_io_run does. */
	enum scsi_io_op op;
	struct disk *disk;
	uint64_t off, len;
	bool fua;	 /* a write that must be durable when it completes */
	bool skip_flush; /* cache=unsafe: flushes complete without being done */
};

enum scsi_exec_result {
	SCSI_EXEC_DONE, /* the answer is in the request */
	SCSI_EXEC_IO,	/* run scsi_io_run, then the answer is in the request */
};

/* Execute r's CDB on LUN lun of t (a LUN the target does not have gets SPC's answers: INQUIRY
 * says "no unit here", REPORT LUNS lists the others, everything else is refused). Never
 * fails: every outcome is a SCSI status. */
enum scsi_exec_result scsi_exec(struct scsi_target *t, unsigned lun, struct scsi_req *r);
/* The prepared read, write or flush (blocking; any thread). */
void scsi_io_run(struct scsi_req *r);

/* Units (lun.c). */
/* Open LUN i as spec says: a disk, or a DVD drive with spec->path as its medium (NULL:
 * empty). fd >= 0 is the file already open (taken over), with its differencing chain's
 * parents from chain (taken over; NULL: none). -errno with err set. */
struct machine_chain;
int scsi_lun_open(struct scsi_target *t, unsigned i, const struct vm_lun *spec, int fd,
		  const struct machine_chain *chain, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Close every unit's medium. */
void scsi_target_close(struct scsi_target *t);
/* The host changes a DVD drive's medium: path (NULL: eject) checked as an ISO image first,
 * so that a bad file changes nothing. The guest sees a media change (unit attention 28/00 and
 * a media event). Ignores the guest's PREVENT (as a drive's eject pin does). -errno with err
 * set. */
int scsi_lun_change_medium(struct scsi_lun *l, const char *path, int fd, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* A bus reset or power-on: tray closed, removal allowed, no pending event. */
void scsi_lun_reset(struct scsi_lun *l);

/* Sense data and buffers (sense.c). */
/* r gets CHECK CONDITION with s. */
void scsi_fail(struct scsi_req *r, struct scsi_sense s);
/* Fixed-format sense data of s into out (SCSI_SENSE_LEN bytes). */
void scsi_sense_fixed(struct scsi_sense s, uint8_t out[SCSI_SENSE_LEN]);
/* Answer with len bytes of data, cut to alloc (the CDB's allocation length) and to the
 * buffer: sets in_done. */
void scsi_reply(struct scsi_req *r, const void *data, size_t len, uint64_t alloc);
size_t scsi_buf_write(const struct scsi_buf *b, uint64_t off, const void *src, size_t len);
size_t scsi_buf_read(const struct scsi_buf *b, uint64_t off, void *dst, size_t len);

/* Big-endian fields of CDBs and replies. */
static inline uint32_t scsi_be(const uint8_t *p, unsigned n)
{
	uint32_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

static inline uint64_t scsi_be64(const uint8_t *p)
{
	return (uint64_t)scsi_be(p, 4) << 32 | scsi_be(p + 4, 4);
}

static inline void scsi_put_be(uint8_t *p, uint64_t v, unsigned n)
{
	while (n--) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

/* The command sets (internal to src/vmm/scsi). Each returns SCSI_EXEC_* or -1 for an
 * opcode it does not have. */
int scsi_sbc_exec(struct scsi_lun *l, struct scsi_req *r);
int scsi_mmc_exec(struct scsi_lun *l, struct scsi_req *r);
/* MODE SENSE's pages, shared by SPC (the header) and MMC (page 2Ah): the page(s) for
 * page code pc into out (at most 256 bytes); -1 when the unit has no such page. changeable:
 * the mask of changeable bits (all zero). */
int scsi_mode_pages(const struct scsi_lun *l, uint8_t pc, bool changeable, uint8_t *out);
int scsi_mmc_capabilities_page(const struct scsi_lun *l, bool changeable, uint8_t *out);
/* Is there a medium to read (a disk, or a DVD drive with a closed tray and a medium)? When not,
 * r gets NOT READY. */
bool scsi_medium_ready(const struct scsi_lun *l, struct scsi_req *r);

#endif
