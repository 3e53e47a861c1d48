/* SPDX-License-Identifier: Apache-2.0 */
/* SCSI sense data (SPC-4 4.5.3, fixed format) and the initiator's data buffers. */
#include <string.h>

#include "vmm/scsi/scsi.h"

void scsi_sense_fixed(struct scsi_sense s, uint8_t out[SCSI_SENSE_LEN])
{
	memset(out, 0, SCSI_SENSE_LEN);
	out[0] = 0x70; /* current error, fixed format */
	out[2] = s.key & 0x0f;
	out[7] = SCSI_SENSE_LEN - 8; /* additional sense length */
	out[12] = s.asc;
	out[13] = s.ascq;
}

void scsi_fail(struct scsi_req *r, struct scsi_sense s)
{
	r->status = SCSI_CHECK_CONDITION;
	r->sense = s;
	r->in_done = 0;
}

/* Copy len bytes between p and b's bytes from off on: into b (in) or out of it. */
static size_t buf_copy(const struct scsi_buf *b, uint64_t off, uint8_t *p, size_t len, bool in)
{
	size_t done = 0;

	for (unsigned i = 0; i < b->n && done < len; i++) {
		size_t sl = b->iov[i].iov_len, take;
		uint8_t *at;

		if (off >= sl) {
			off -= sl;
			continue;
		}
		at = (uint8_t *)b->iov[i].iov_base + off;
		take = sl - off < len - done ? sl - off : len - done;
		memcpy(in ? at : p + done, in ? p + done : at, take);
		done += take;
		off = 0;
	}
	return done;
}

size_t scsi_buf_write(const struct scsi_buf *b, uint64_t off, const void *src, size_t len)
{
	return buf_copy(b, off, (uint8_t *)src, len, true);
}

size_t scsi_buf_read(const struct scsi_buf *b, uint64_t off, void *dst, size_t len)
{
	return buf_copy(b, off, dst, len, false);
}

void scsi_reply(struct scsi_req *r, const void *data, size_t len, uint64_t alloc)
{
	if (len > alloc)
		len = (size_t)alloc;
	r->status = SCSI_GOOD;
	r->in_done = scsi_buf_write(&r->in, 0, data, len);
}
