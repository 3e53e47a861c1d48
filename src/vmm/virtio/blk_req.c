/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk requests (virtio 1.2, 5.2.6): every request's layout is checked here on top of
 * the chain walker's checks: a 16-byte header in the readable part, a status byte at the end
 * of the writable part, data lengths in whole sectors inside the disk. The device (blk.c)
 * does reads, writes and flushes itself where it can; everything else is executed here,
 * synchronously through the disk library (on the block backend's pool threads).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk.h"
#include "lib/log.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/blk_internal.h"

static struct log_ratelimit blk_rl = LOG_RATELIMIT_INIT(5000, 5);

/* The data part of c: writable (reads) or readable (writes) bytes from skip, len bytes. */
static void blk_data_segs(const struct vq_chain *c, bool writable, uint64_t skip, uint64_t len,
			  struct blk_data *d)
{
	unsigned i = writable ? c->nin : 0, end = writable ? c->nin + c->nout : c->nin;

	d->n = 0;
	d->len = 0;
	d->aligned = true;
	for (; i < end && d->len < len; i++) {
		uint64_t sl = c->seg[i].iov_len, take;

		if (skip >= sl) {
			skip -= sl;
			continue;
		}
		take = sl - skip;
		if (take > len - d->len)
			take = len - d->len;
		d->seg[d->n] = (struct iovec){(uint8_t *)c->seg[i].iov_base + skip, take};
		d->aligned &= take % 512 == 0;
		d->n++;
		d->len += take;
		skip = 0;
	}
}

static unsigned blk_check_rw(struct virtio_blk *b, bool write, uint64_t sector,
			     const struct blk_data *d)
{
	if (d->len > BLK_MAX_REQUEST) {
		/* Aliased descriptors make any size cheap for the guest; real drivers send at
		 * most a few MiB. A bounded request keeps reset and stop prompt. */
		log_warn_ratelimited(&blk_rl, "%s: %s of %llu bytes is larger than %u MiB", b->path,
				     write ? "write" : "read", (unsigned long long)d->len,
				     BLK_MAX_REQUEST >> 20);
		return VIRTIO_BLK_S_IOERR;
	}
	if (d->len % 512 || sector > b->sectors || d->len / 512 > b->sectors - sector) {
		log_warn_ratelimited(&blk_rl,
				     "%s: %s of %llu bytes at sector %llu is outside the "
				     "disk or not whole sectors",
				     b->path, write ? "write" : "read", (unsigned long long)d->len,
				     (unsigned long long)sector);
		return VIRTIO_BLK_S_IOERR;
	}
	if (!d->aligned && d->len > BLK_BOUNCE_MAX)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

/* The bytes a write-zeroes that writes its zeros (one segment) asks for, which storage QoS
 * charges; 0 for a chain that is not one segment (blk_discard_zeroes refuses it). */
static uint64_t blk_zeroes_len(const struct vq_chain *c)
{
	uint8_t seg[16];
	uint32_t count;

	if (c->in_len - VIRTIO_BLK_HDR_SIZE != 16)
		return 0;
	vq_chain_read(c, VIRTIO_BLK_HDR_SIZE, seg, 16);
	memcpy(&count, seg + 8, 4);
	return count <= BLK_MAX_WZ_WRITTEN ? (uint64_t)count * 512 : 0;
}

unsigned blk_check(struct virtio_blk *b, const struct vq_chain *c, uint32_t *type, uint64_t *sector,
		   struct blk_data *d)
{
	uint8_t hdr[VIRTIO_BLK_HDR_SIZE];

	if (c->in_len < VIRTIO_BLK_HDR_SIZE || c->out_len < 1) {
		log_warn_ratelimited(&blk_rl, "%s: request without a header or a status byte",
				     b->path);
		return BLK_NO_STATUS;
	}
	vq_chain_read(c, 0, hdr, sizeof(hdr));
	memcpy(type, hdr, 4);
	memcpy(sector, hdr + 8, 8);
	d->n = 0;
	d->len = 0;
	switch (*type) {
	case VIRTIO_BLK_T_IN:
		blk_data_segs(c, true, 0, c->out_len - 1, d);
		return blk_check_rw(b, false, *sector, d);
	case VIRTIO_BLK_T_OUT:
		if (b->ro)
			return VIRTIO_BLK_S_IOERR;
		blk_data_segs(c, false, VIRTIO_BLK_HDR_SIZE, c->in_len - VIRTIO_BLK_HDR_SIZE, d);
		return blk_check_rw(b, true, *sector, d);
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_GET_ID:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!b->ro && !b->zeroes_by_discard)
			d->len = blk_zeroes_len(c);
		/* fall through */
	case VIRTIO_BLK_T_DISCARD:
		return b->ro ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* A checked read or write through the disk library; unaligned buffers through a copy. */
static uint8_t blk_rw(struct virtio_blk *b, bool write, uint64_t sector, const struct blk_data *d)
{
	uint64_t off = sector * 512, at = 0;
	uint8_t *bounce;
	unsigned i;
	int r = 0;

	if (d->aligned) {
		for (i = 0; i < d->n && !r; i++) {
			r = write ? disk_write(b->disk, d->seg[i].iov_base, off, d->seg[i].iov_len)
				  : disk_read(b->disk, d->seg[i].iov_base, off, d->seg[i].iov_len);
			off += d->seg[i].iov_len;
		}
		return r ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	}
	bounce = malloc(d->len ? d->len : 1); /* at most BLK_BOUNCE_MAX (blk_check_rw) */
	if (!bounce)
		return VIRTIO_BLK_S_IOERR;
	if (write) {
		for (i = 0; i < d->n; at += d->seg[i].iov_len, i++)
			memcpy(bounce + at, d->seg[i].iov_base, d->seg[i].iov_len);
		r = disk_write(b->disk, bounce, off, d->len);
	} else {
		r = disk_read(b->disk, bounce, off, d->len);
		for (i = 0; !r && i < d->n; at += d->seg[i].iov_len, i++)
			memcpy(d->seg[i].iov_base, bounce + at, d->seg[i].iov_len);
	}
	free(bounce);
	return r ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

static int blk_write_zeroes(struct virtio_blk *b, uint64_t off, uint64_t len)
{
	int r = 0;

	/* Where the file cannot make the range read as zeros by itself, write them, as long as
	 * that takes no longer than the largest write (BLK_MAX_WZ_WRITTEN); a larger range is
	 * refused as unsupported, and the guest writes the zeros itself (Linux does). */
	if (b->zeroes_by_discard) {
		r = disk_zero(b->disk, off, len);
		if (r != -EOPNOTSUPP || len > BLK_MAX_REQUEST)
			return r;
		r = 0;
	}
	while (len && !r) {
		size_t n = len < BLK_ZERO_CHUNK ? (size_t)len : BLK_ZERO_CHUNK;

		r = disk_write(b->disk, b->zeros, off, n);
		off += n;
		len -= n;
	}
	return r;
}

/* Discard or write-zeroes: segments of {le64 sector, le32 sectors, le32 flags}. */
static uint8_t blk_discard_zeroes(struct virtio_blk *b, const struct vq_chain *c, bool zeroes,
				  const struct blk_data *d)
{
	uint64_t n = (c->in_len - VIRTIO_BLK_HDR_SIZE) / 16, i;
	bool written = zeroes && !b->zeroes_by_discard;
	uint32_t max_count = written ? BLK_MAX_WZ_WRITTEN : BLK_MAX_DISCARD;

	if ((c->in_len - VIRTIO_BLK_HDR_SIZE) % 16 || n == 0 || n > (written ? 1 : BLK_MAX_DZ_SEGS))
		return VIRTIO_BLK_S_IOERR;
	for (i = 0; i < n; i++) {
		uint8_t seg[16];
		uint64_t sector;
		uint32_t count, flags;
		int r;

		vq_chain_read(c, VIRTIO_BLK_HDR_SIZE + 16 * i, seg, 16);
		memcpy(&sector, seg, 8);
		memcpy(&count, seg + 8, 4);
		memcpy(&flags, seg + 12, 4);
		if (flags & ~1u || (!zeroes && flags))
			return VIRTIO_BLK_S_UNSUPP;
		if (count > max_count || sector > b->sectors || count > b->sectors - sector)
			return VIRTIO_BLK_S_IOERR;
		/* The length blk_check took (and storage QoS charged): a driver that changed
		 * it since gets an error, not more zeros than it paid for. */
		if (written && (uint64_t)count * 512 != d->len)
			return VIRTIO_BLK_S_IOERR;
		r = zeroes ? blk_write_zeroes(b, sector * 512, (uint64_t)count * 512)
			   : disk_discard(b->disk, sector * 512, (uint64_t)count * 512);
		if (r)
			return r == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

uint8_t blk_execute(struct virtio_blk *b, const struct vq_chain *c, uint32_t type, uint64_t sector,
		    const struct blk_data *d, uint32_t *written)
{
	uint8_t status;

	*written = 0;
	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = blk_rw(b, false, sector, d);
		if (status == VIRTIO_BLK_S_OK)
			*written = (uint32_t)d->len;
		return status;
	case VIRTIO_BLK_T_OUT:
		return blk_rw(b, true, sector, d);
	case VIRTIO_BLK_T_FLUSH:
		if (b->cache == VM_DISK_CACHE_UNSAFE)
			return VIRTIO_BLK_S_OK; /* said at start-up */
		return disk_flush(b->disk) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t n = c->out_len - 1 < 20 ? c->out_len - 1 : 20;

		*written = (uint32_t)vq_chain_write(c, 0, b->serial, (size_t)n);
		return VIRTIO_BLK_S_OK;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_discard_zeroes(b, c, type == VIRTIO_BLK_T_WRITE_ZEROES, d);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

uint32_t virtio_blk_request(struct virtio_blk *b, const struct vq_chain *c)
{
	uint32_t type = 0, written = 0;
	uint64_t sector = 0;
	unsigned st = blk_check(b, c, &type, &sector, &b->data);
	uint8_t status;

	if (st == BLK_NO_STATUS)
		return 0;
	status = st == VIRTIO_BLK_S_OK ? blk_execute(b, c, type, sector, &b->data, &written)
				       : (uint8_t)st;
	vq_chain_write(c, c->out_len - 1, &status, 1);
	return written + 1;
}
