/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VHDX metadata log.
 *
 * Reading (every open): when the header names a log (LogGuid != 0), find the active
 * sequence: the valid entry with the highest sequence number, and the run of valid entries
 * with consecutive sequence numbers from its Tail up to it. A writable open replays it into
 * the file, flushes and clears LogGuid; a read-only open keeps it as an in-memory overlay.
 *
 * Writing: each transaction is one entry, written after the previous one (log_head) and
 * flushed, then written in place without a flush. Its Tail names the previous entry, whose
 * in-place writes were not yet durable when it was written (the flush that makes the new
 * entry durable makes them durable too), so the active sequence is at most two entries
 * and each transaction costs one flush. An entry that would not fit before the end of the
 * log starts over at offset 0 with Tail pointing at itself, after a flush that makes every
 * earlier in-place write durable and a new LogGuid (header update) that invalidates every
 * older entry. A crash at any moment leaves either the old state, or valid entries whose
 * replay yields the new state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/disk_io.h"
#include "disk/vhdx_internal.h"
#include "lib/crc32c.h"
#include "lib/log.h"

#define SEC VHDX_LOG_SECTOR

struct log_entry {
	uint64_t pos; /* byte offset within the log */
	uint32_t len;
	uint32_t tail;
	uint64_t seq;
	uint32_t ndesc;
	uint64_t flushed, last;
};

static uint32_t desc_sectors(uint64_t ndesc)
{
	return (uint32_t)((VHDX_LOG_HDR_SIZE + ndesc * VHDX_LOG_DESC_SIZE + SEC - 1) / SEC);
}

unsigned vhdx_log_capacity(const struct vhdx *v)
{
	uint64_t sectors = v->log_len / SEC;
	unsigned n = 0;

	while (desc_sectors(n + 1) + n + 1 <= sectors)
		n++;
	return n;
}

/* Copies the entry at pos (wrapping around the log) into out[len]. */
static void entry_bytes(const uint8_t *log, uint32_t log_len, uint64_t pos, uint8_t *out,
			uint32_t len)
{
	for (uint32_t done = 0; done < len; done += SEC)
		memcpy(out + done, log + (pos + done) % log_len, SEC);
}

/* Is a full, consistent entry at pos? Fills *e. buf has room for log_len bytes. */
static bool entry_valid(const struct vhdx *v, const uint8_t *log, uint64_t pos, struct log_entry *e,
			uint8_t *buf)
{
	const uint8_t *h = log + pos;
	uint32_t sum, ndata = 0;

	if (memcmp(h, VHDX_LOG_ENTRY_SIG, 4) != 0)
		return false;
	e->pos = pos;
	e->len = le32_load(h + 8);
	e->tail = le32_load(h + 12);
	e->seq = le64_load(h + 16);
	e->ndesc = le32_load(h + 24);
	e->flushed = le64_load(h + 48);
	e->last = le64_load(h + 56);
	if (e->len < SEC || e->len % SEC || e->len > v->log_len || e->tail % SEC ||
	    e->tail >= v->log_len || e->seq == 0 || memcmp(h + 32, v->log_guid.b, 16) != 0)
		return false;
	if ((uint64_t)desc_sectors(e->ndesc) * SEC > e->len)
		return false;
	entry_bytes(log, v->log_len, pos, buf, e->len);
	sum = le32_load(buf + 4);
	le32_store(buf + 4, 0);
	if (crc32c(0, buf, e->len) != sum)
		return false;
	for (uint32_t i = 0; i < e->ndesc; i++) {
		const uint8_t *d = buf + VHDX_LOG_HDR_SIZE + i * VHDX_LOG_DESC_SIZE;
		uint64_t foff = le64_load(d + 16);

		if (le64_load(d + 24) != e->seq || foff % SEC)
			return false;
		if (memcmp(d, VHDX_LOG_ZERO_SIG, 4) == 0) {
			uint64_t zl = le64_load(d + 8);

			if (zl % SEC || zl > VHDX_MAX_BLOCK)
				return false;
		} else if (memcmp(d, VHDX_LOG_DESC_SIG, 4) == 0) {
			const uint8_t *s = buf + ((uint64_t)desc_sectors(e->ndesc) + ndata) * SEC;

			if ((uint64_t)(desc_sectors(e->ndesc) + ndata + 1) * SEC > e->len)
				return false;
			if (memcmp(s, VHDX_LOG_DATA_SIG, 4) != 0 ||
			    le32_load(s + 4) != (uint32_t)(e->seq >> 32) ||
			    le32_load(s + SEC - 4) != (uint32_t)e->seq)
				return false;
			ndata++;
		} else {
			return false;
		}
	}
	return (uint64_t)(desc_sectors(e->ndesc) + ndata) * SEC == e->len;
}

/* Refuses targets that would overwrite the headers or the log itself. */
static bool target_ok(const struct vhdx *v, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;

	if (off < VHDX_REGION1_OFF || end < off || end > 2 * VHDX_MAX_SIZE)
		return false;
	return !(off < v->log_off + v->log_len && v->log_off < end);
}

/* Applies one entry (buf holds its bytes) to the file or the overlay. */
static int entry_apply(struct vhdx *v, const struct log_entry *e, const uint8_t *buf)
{
	uint32_t ndata = 0;
	int r = 0;

	for (uint32_t i = 0; i < e->ndesc; i++) {
		const uint8_t *d = buf + VHDX_LOG_HDR_SIZE + i * VHDX_LOG_DESC_SIZE;
		uint64_t foff = le64_load(d + 16);
		bool zero = memcmp(d, VHDX_LOG_ZERO_SIG, 4) == 0;
		uint64_t len = zero ? le64_load(d + 8) : SEC;
		uint8_t sector[SEC];

		if (!target_ok(v, foff, len)) {
			disk_fail(
				v->base.err,
				"%s: VHDX log entry %llu writes to offset %llu, inside the headers "
				"or "
				"the log",
				v->base.path, (unsigned long long)e->seq, (unsigned long long)foff);
			return -EINVAL;
		}
		if (!zero) {
			const uint8_t *s = buf + ((uint64_t)desc_sectors(e->ndesc) + ndata++) * SEC;

			memcpy(sector, d + 8, 8); /* leading bytes */
			memcpy(sector + 8, s + 8, VHDX_LOG_DATA_PAYLOAD);
			memcpy(sector + SEC - 4, d + 4, 4); /* trailing bytes */
		}
		if (v->base.rdonly) {
			struct vhdx_overlay *o =
				realloc(v->overlay, (v->n_overlay + 1) * sizeof(*o));

			if (!o)
				return -ENOMEM;
			v->overlay = o;
			o = &v->overlay[v->n_overlay];
			o->off = foff;
			o->len = len;
			o->data = NULL;
			if (!zero) {
				o->data = malloc(SEC);
				if (!o->data)
					return -ENOMEM;
				memcpy(o->data, sector, SEC);
			}
			v->n_overlay++;
			continue;
		}
		if (zero) {
			memset(sector, 0, SEC);
			for (uint64_t k = 0; k < len && r == 0; k += SEC)
				r = dio_pwrite(v->fd, sector, SEC, foff + k);
		} else {
			r = dio_pwrite(v->fd, sector, SEC, foff);
		}
		if (r) {
			disk_fail(v->base.err, "%s: cannot replay the VHDX log: %s", v->base.path,
				  strerror(-r));
			return r;
		}
	}
	return 0;
}

void vhdx_log_free_overlay(struct vhdx *v)
{
	for (size_t i = 0; i < v->n_overlay; i++)
		free(v->overlay[i].data);
	free(v->overlay);
	v->overlay = NULL;
	v->n_overlay = 0;
}

int vhdx_log_open(struct vhdx *v)
{
	const char *path = v->base.path;
	uint8_t *log = NULL, *buf = NULL;
	struct log_entry best = {0}, e;
	struct stat st;
	uint64_t nsec, pos, fsize;
	unsigned count = 0;
	int r = 0;

	if (uuid_is_zero(&v->log_guid) || v->log_len == 0)
		return 0;
	if (fstat(v->fd, &st) < 0)
		return -errno;
	fsize = (uint64_t)st.st_size;
	log = malloc(v->log_len);
	buf = malloc(v->log_len);
	if (!log || !buf) {
		r = -ENOMEM;
		goto out;
	}
	r = dio_pread(v->fd, log, v->log_len, v->log_off);
	if (r) {
		disk_fail(v->base.err, "%s: cannot read the VHDX log: %s", path,
			  r == -ENODATA ? "it lies beyond the end of the file" : strerror(-r));
		r = r == -ENODATA ? -EINVAL : r;
		goto out;
	}
	nsec = v->log_len / SEC;
	for (uint64_t i = 0; i < nsec; i++)
		if (entry_valid(v, log, i * SEC, &e, buf) && e.seq > best.seq)
			best = e;
	if (best.seq == 0)
		goto out; /* no valid entry: nothing to replay */
	/* Walk the active sequence from the tail, checking it ends at the best entry. */
	pos = best.tail;
	for (uint64_t seq = 0;; count++) {
		if (!entry_valid(v, log, pos, &e, buf) || (seq && e.seq != seq + 1) ||
		    count >= nsec) {
			disk_fail(
				v->base.err,
				"%s: the VHDX log is corrupt: the sequence from its tail does not "
				"reach "
				"entry %llu",
				path, (unsigned long long)best.seq);
			r = -EINVAL;
			goto out;
		}
		if (e.seq == best.seq)
			break;
		seq = e.seq;
		pos = (pos + e.len) % v->log_len;
	}
	count++;
	if (best.flushed > fsize) {
		disk_fail(v->base.err,
			  "%s: the VHDX log says the file was %llu bytes but it is %llu: the file "
			  "was "
			  "truncated",
			  path, (unsigned long long)best.flushed, (unsigned long long)fsize);
		r = -EINVAL;
		goto out;
	}
	if (best.last > 2 * VHDX_MAX_SIZE) {
		disk_fail(v->base.err, "%s: the VHDX log names an implausible file size %llu", path,
			  (unsigned long long)best.last);
		r = -EINVAL;
		goto out;
	}
	/* Apply in order, from the tail. */
	pos = best.tail;
	for (unsigned i = 0; i < count; i++) {
		if (!entry_valid(v, log, pos, &e, buf)) {
			r = -EINVAL;
			goto out;
		}
		r = entry_apply(v, &e, buf);
		if (r)
			goto out;
		pos = (pos + e.len) % v->log_len;
	}
	v->replayed_entries = count;
	if (v->base.rdonly) {
		v->overlay_size = best.last > fsize ? best.last : fsize;
		log_info("%s: replayed %u VHDX log entr%s in memory (open it writable to apply)",
			 path, count, count == 1 ? "y" : "ies");
		goto out;
	}
	if (best.last > fsize && ftruncate(v->fd, (off_t)best.last) < 0) {
		r = -errno;
		disk_fail(v->base.err, "%s: cannot extend the file while replaying the log: %s",
			  path, strerror(-r));
		goto out;
	}
	r = vhdx_sync(v);
	if (r)
		goto out;
	/* The log is applied: a new FileWriteGuid, and no log. */
	r = uuid_generate(&v->file_write);
	if (r)
		goto out;
	memset(&v->log_guid, 0, sizeof(v->log_guid));
	r = vhdx_header_update(v);
	if (r == 0)
		log_info("%s: replayed %u VHDX log entr%s", path, count, count == 1 ? "y" : "ies");
out:
	free(log);
	free(buf);
	return r;
}

/*
 * The next entry does not fit before the log's end: make every in-place write durable and
 * take a new LogGuid, so that no entry left in the log (whose Tail the new one could
 * overwrite) is valid any more, then start at offset 0.
 */
static int start_over(struct vhdx *v)
{
	int r = vhdx_sync(v);

	if (r == 0)
		r = uuid_generate(&v->log_guid);
	if (r == 0)
		r = vhdx_header_update(v);
	if (r)
		return r;
	v->apply_unsynced = false;
	v->log_seq = 0;
	v->log_head = 0;
	return 0;
}

int vhdx_log_commit(struct vhdx *v, const struct vhdx_log_item *items, unsigned n)
{
	uint32_t dsec = desc_sectors(n), total = (dsec + n) * SEC, tail;
	uint8_t *buf;
	uint64_t durable;
	int r;

	if (n == 0)
		return 0;
	if (n > vhdx_log_capacity(v))
		return -E2BIG;
	r = vhdx_session_begin(v, false);
	if (r)
		return r;
	if ((uint64_t)v->log_head + total > v->log_len) {
		r = start_over(v);
		if (r)
			goto fail;
	}
	/* The previous entry stays in the sequence until this one's flush. */
	tail = v->apply_unsynced ? v->log_prev : v->log_head;
	buf = calloc(1, total);
	if (!buf)
		return -ENOMEM;
	v->log_seq++;
	memcpy(buf, VHDX_LOG_ENTRY_SIG, 4);
	le32_store(buf + 8, total);
	le32_store(buf + 12, tail);
	le64_store(buf + 16, v->log_seq);
	le32_store(buf + 24, n);
	memcpy(buf + 32, v->log_guid.b, 16);
	durable = __atomic_load_n(&v->durable_size, __ATOMIC_ACQUIRE);
	le64_store(buf + 48, durable < v->file_end ? durable : v->file_end);
	le64_store(buf + 56, v->file_end);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *d = buf + VHDX_LOG_HDR_SIZE + i * VHDX_LOG_DESC_SIZE;
		uint8_t *s = buf + (uint64_t)(dsec + i) * SEC;

		memcpy(d, VHDX_LOG_DESC_SIG, 4);
		memcpy(d + 4, items[i].data + SEC - 4, 4);
		memcpy(d + 8, items[i].data, 8);
		le64_store(d + 16, items[i].off);
		le64_store(d + 24, v->log_seq);
		memcpy(s, VHDX_LOG_DATA_SIG, 4);
		le32_store(s + 4, (uint32_t)(v->log_seq >> 32));
		memcpy(s + 8, items[i].data + 8, VHDX_LOG_DATA_PAYLOAD);
		le32_store(s + SEC - 4, (uint32_t)v->log_seq);
	}
	le32_store(buf + 4, crc32c(0, buf, total));
	r = dio_pwrite(v->fd, buf, total, v->log_off + v->log_head);
	free(buf);
	/* One flush: this entry, and the previous entry's in-place writes. */
	if (r == 0)
		r = vhdx_sync(v);
	if (r) {
		v->log_seq--; /* the next entry goes here again, in sequence after log_prev */
		goto fail;
	}
	v->log_prev = v->log_head;
	v->log_head += total;
	for (unsigned i = 0; i < n && r == 0; i++)
		r = dio_pwrite(v->fd, items[i].data, SEC, items[i].off);
	v->apply_unsynced = true;
	if (r == 0)
		return 0;
fail:
	disk_fail(v->base.err, "%s: cannot write VHDX metadata through the log: %s", v->base.path,
		  strerror(-r));
	return r;
}
