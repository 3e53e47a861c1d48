/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VHDX file identifier and the two headers: choosing the current one by CRC-32C and
 * sequence number, and the two-slot update that keeps one valid header at every moment.
 */
#include <errno.h>
#include <string.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx_internal.h"
#include "lib/crc32c.h"
#include "lib/log.h"

static const uint64_t slot_off[2] = {VHDX_HEADER1_OFF, VHDX_HEADER2_OFF};

void vhdx_header_build(uint8_t *buf, uint64_t seq, const struct uuid *file_write,
		       const struct uuid *data_write, const struct uuid *log_guid, uint64_t log_off,
		       uint32_t log_len)
{
	memset(buf, 0, VHDX_HEADER_SIZE);
	memcpy(buf, VHDX_HEADER_SIG, 4);
	le64_store(buf + VHDX_HDR_SEQ, seq);
	memcpy(buf + VHDX_HDR_FILE_WRITE, file_write->b, 16);
	memcpy(buf + VHDX_HDR_DATA_WRITE, data_write->b, 16);
	memcpy(buf + VHDX_HDR_LOG_GUID, log_guid->b, 16);
	le16_store(buf + VHDX_HDR_LOG_VERSION, 0);
	le16_store(buf + VHDX_HDR_VERSION, 1);
	le32_store(buf + VHDX_HDR_LOG_LENGTH, log_len);
	le64_store(buf + VHDX_HDR_LOG_OFFSET, log_off);
	le32_store(buf + VHDX_HDR_CHECKSUM, crc32c(0, buf, VHDX_HEADER_SIZE));
}

/* Why a header slot is unusable, or NULL when it is valid. */
static const char *header_invalid(uint8_t *buf)
{
	uint32_t sum = le32_load(buf + VHDX_HDR_CHECKSUM);

	if (memcmp(buf, VHDX_HEADER_SIG, 4) != 0)
		return "no 'head' signature";
	le32_store(buf + VHDX_HDR_CHECKSUM, 0);
	uint32_t calc = crc32c(0, buf, VHDX_HEADER_SIZE);

	le32_store(buf + VHDX_HDR_CHECKSUM, sum);
	if (calc != sum)
		return "checksum mismatch";
	if (le16_load(buf + VHDX_HDR_VERSION) != 1)
		return "version is not 1";
	if (le16_load(buf + VHDX_HDR_LOG_VERSION) != 0)
		return "log version is not 0";
	return NULL;
}

int vhdx_header_load(struct vhdx *v)
{
	uint8_t id[8], h[2][VHDX_HEADER_SIZE];
	const char *why[2];
	int r, cur;

	r = vhdx_pread(v, id, sizeof(id), VHDX_FILE_ID_OFF);
	if (r == 0 && memcmp(id, VHDX_FILE_SIG, 8) != 0)
		r = -EINVAL;
	if (r) {
		disk_fail(v->base.err, "%s: not a VHDX file (no 'vhdxfile' identifier)",
			  v->base.path);
		return r == -ENODATA ? -EINVAL : r;
	}
	for (int i = 0; i < 2; i++) {
		r = vhdx_pread(v, h[i], VHDX_HEADER_SIZE, slot_off[i]);
		if (r == -ENODATA) {
			disk_fail(v->base.err, "%s: file ends inside the VHDX header section",
				  v->base.path);
			return -EINVAL;
		}
		if (r) {
			disk_fail(v->base.err, "%s: cannot read VHDX header %d: %s", v->base.path,
				  i + 1, strerror(-r));
			return r;
		}
		why[i] = header_invalid(h[i]);
	}
	if (why[0] && why[1]) {
		disk_fail(v->base.err,
			  "%s: both VHDX headers are invalid (header 1: %s; header 2: %s)",
			  v->base.path, why[0], why[1]);
		return -EINVAL;
	}
	if (why[0])
		cur = 1;
	else if (why[1])
		cur = 0;
	else {
		uint64_t s0 = le64_load(h[0] + VHDX_HDR_SEQ), s1 = le64_load(h[1] + VHDX_HDR_SEQ);

		if (s0 == s1 && memcmp(h[0], h[1], VHDX_HEADER_SIZE) != 0) {
			disk_fail(v->base.err,
				  "%s: both VHDX headers have sequence number %llu but differ",
				  v->base.path, (unsigned long long)s0);
			return -EINVAL;
		}
		cur = s1 > s0 ? 1 : 0;
	}
	const uint8_t *c = h[cur];

	v->cur_slot = cur;
	v->seq = le64_load(c + VHDX_HDR_SEQ);
	memcpy(v->file_write.b, c + VHDX_HDR_FILE_WRITE, 16);
	memcpy(v->data_write.b, c + VHDX_HDR_DATA_WRITE, 16);
	memcpy(v->log_guid.b, c + VHDX_HDR_LOG_GUID, 16);
	v->log_len = le32_load(c + VHDX_HDR_LOG_LENGTH);
	v->log_off = le64_load(c + VHDX_HDR_LOG_OFFSET);
	if (v->log_len % VHDX_MiB || v->log_off % VHDX_MiB || v->log_off < VHDX_SECTION_SIZE ||
	    v->log_len > VHDX_LOG_MAX_SIZE || v->log_off > VHDX_MAX_SIZE * 2) {
		disk_fail(v->base.err,
			  "%s: VHDX log at offset %llu, length %u is misplaced (need 1 MiB "
			  "multiples, "
			  "after the header section, at most %llu MiB)",
			  v->base.path, (unsigned long long)v->log_off, v->log_len,
			  VHDX_LOG_MAX_SIZE / VHDX_MiB);
		return -EINVAL;
	}
	return 0;
}

int vhdx_header_update(struct vhdx *v)
{
	uint8_t buf[VHDX_HEADER_SIZE];
	int r;

	/* Write the non-current slot, flush, then the other: one valid header at all times. */
	for (int i = 0; i < 2; i++) {
		int slot = 1 - v->cur_slot;

		vhdx_header_build(buf, v->seq + 1, &v->file_write, &v->data_write, &v->log_guid,
				  v->log_off, v->log_len);
		r = dio_pwrite(v->fd, buf, sizeof(buf), slot_off[slot]);
		if (r == 0)
			r = vhdx_sync(v);
		if (r) {
			disk_fail(v->base.err, "%s: cannot update VHDX header %d: %s", v->base.path,
				  slot + 1, strerror(-r));
			return r;
		}
		v->seq++;
		v->cur_slot = slot;
	}
	return 0;
}

int vhdx_session_begin(struct vhdx *v, bool data)
{
	int r;

	if (v->session && (!data || v->data_changed))
		return 0;
	if (v->base.rdonly)
		return -EROFS;
	if (!v->session) {
		r = uuid_generate(&v->file_write);
		if (r == 0)
			r = uuid_generate(&v->log_guid);
		if (r)
			return r;
		v->log_seq = 0;
		v->log_head = 0;
	}
	if (data) {
		r = uuid_generate(&v->data_write);
		if (r)
			return r;
	}
	r = vhdx_header_update(v);
	if (r)
		return r;
	v->session = true;
	__atomic_store_n(&v->data_changed, v->data_changed || data, __ATOMIC_RELEASE);
	return 0;
}

int vhdx_session_end(struct vhdx *v)
{
	int r;

	if (!v->session)
		return 0;
	r = vhdx_bat_commit(v);
	if (r)
		return r;
	/* Everything the log describes is in place once this flush returns: drop the log. */
	r = vhdx_sync(v);
	if (r) {
		disk_fail(v->base.err, "%s: cannot flush: %s", v->base.path, strerror(-r));
		return r;
	}
	memset(&v->log_guid, 0, sizeof(v->log_guid));
	r = vhdx_header_update(v);
	if (r)
		return r;
	v->session = false;
	v->apply_unsynced = false;
	return 0;
}
