/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk (virtio 1.2, 5.2) on keel's disk library (raw or VHDX, detected from the file).
 * One request queue served on the device's I/O thread; every request's layout is checked
 * here on top of the chain walker's checks: a 16-byte header in the readable part, a status
 * byte at the end of the writable part, data lengths in whole sectors inside the disk.
 * Flush completes only after disk_flush() (fdatasync, and the VHDX log) has returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "lib/le.h"
#include "lib/log.h"
#include "vmm/device.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/virtio.h"
#include "config/vmdef_device.h"
#include "vmm/machine.h"

#define BLK_F_SEG_MAX	   2
#define BLK_F_RO	   5
#define BLK_F_BLK_SIZE	   6
#define BLK_F_FLUSH	   9
#define BLK_F_DISCARD	   13
#define BLK_F_WRITE_ZEROES 14

#define BLK_QUEUE_SIZE	   256
#define BLK_SEG_MAX	   (BLK_QUEUE_SIZE - 2)
#define BLK_MAX_DISCARD	   0x3fffffu /* sectors per discard segment (and write-zeroes by discard) */
#define BLK_MAX_DZ_SEGS	   32
/* Write-zeroes that writes zeros (not a discard): one segment of at most BLK_MAX_REQUEST,
 * so that it takes no longer than the largest write and a pause, reset or quit never waits
 * for gigabytes of zeros. */
#define BLK_MAX_WZ_WRITTEN (BLK_MAX_REQUEST / 512)
#define BLK_MAX_REQUEST	   (32u << 20) /* bytes of one read or write */
#define BLK_WORKERS	   3	       /* requests served in parallel */
#define BLK_SLOTS	   16 /* requests taken from the queue and not yet completed, at most */
#define BLK_BOUNCE_MAX	   (4u << 20) /* requests with unaligned buffers, at most */
#define BLK_ZERO_CHUNK	   (1u << 20)
#define BLK_CONFIG_SIZE	   0x3c

static struct log_ratelimit blk_rl = LOG_RATELIMIT_INIT(5000, 5);

/* A run of guest buffers holding a request's data. */
struct blk_data {
	struct iovec seg[VQ_MAX_SEGS];
	unsigned n;
	uint64_t len;
	bool aligned; /* every buffer a whole number of sectors */
};

struct virtio_blk {
	struct disk *disk;
	char path[4096]; /* for messages */
	bool ro;
	bool zeroes_by_discard; /* raw files: a punched hole reads as zeros */
	char serial[20];
	uint64_t sectors;
	uint32_t sector_size;
	uint8_t config[BLK_CONFIG_SIZE];
	struct blk_data data; /* virtio_blk_request() (one caller at a time) */
	uint8_t *bounce;      /* BLK_BOUNCE_MAX bytes, allocated on first use */
	uint8_t *zeros;	      /* BLK_ZERO_CHUNK bytes of zeros */

	/* The device: the I/O thread takes chains into slots, workers serve them. */
	struct virtio_dev *vd;
	struct blk_work *slots[BLK_SLOTS];
	pthread_t workers[BLK_WORKERS];
	unsigned nworkers;
	/* wlock protects the lists and counters below; work_cond: work or stop; idle_cond: no
	 * worker is doing I/O. Lock order: vd->lock, then wlock. */
	pthread_mutex_t wlock;
	pthread_cond_t work_cond, idle_cond;
	unsigned pending[BLK_SLOTS], pend_head, npending;
	unsigned freelist[BLK_SLOTS], nfree;
	unsigned active;
	bool starved; /* the I/O thread left chains in the queue for want of a slot */
	bool stopping;
};

/* One request in flight: its chain, its data buffers, and the reset epoch it began in. */
struct blk_work {
	struct vq_chain chain;
	struct blk_data data;
	uint8_t *bounce;
	uint32_t epoch;
};

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

static uint8_t blk_rw(struct virtio_blk *b, bool write, uint64_t sector, const struct blk_data *d,
		      uint8_t **bounce_p)
{
	uint64_t off = sector * 512;
	unsigned i;
	int r = 0;

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
	if (d->aligned) {
		for (i = 0; i < d->n && !r; i++) {
			r = write ? disk_write(b->disk, d->seg[i].iov_base, off, d->seg[i].iov_len)
				  : disk_read(b->disk, d->seg[i].iov_base, off, d->seg[i].iov_len);
			off += d->seg[i].iov_len;
		}
		return r ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	}
	if (d->len > BLK_BOUNCE_MAX)
		return VIRTIO_BLK_S_IOERR;
	if (!*bounce_p && !(*bounce_p = malloc(BLK_BOUNCE_MAX)))
		return VIRTIO_BLK_S_IOERR;
	uint8_t *bounce = *bounce_p;

	if (write) {
		uint64_t at = 0;

		for (i = 0; i < d->n; at += d->seg[i].iov_len, i++)
			memcpy(bounce + at, d->seg[i].iov_base, d->seg[i].iov_len);
		r = disk_write(b->disk, bounce, off, d->len);
	} else {
		uint64_t at = 0;

		r = disk_read(b->disk, bounce, off, d->len);
		for (i = 0; !r && i < d->n; at += d->seg[i].iov_len, i++)
			memcpy(d->seg[i].iov_base, bounce + at, d->seg[i].iov_len);
	}
	return r ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

static int blk_write_zeroes(struct virtio_blk *b, uint64_t off, uint64_t len)
{
	int r = 0;

	if (b->zeroes_by_discard)
		return disk_discard(b->disk, off, len);
	while (len && !r) {
		size_t n = len < BLK_ZERO_CHUNK ? (size_t)len : BLK_ZERO_CHUNK;

		r = disk_write(b->disk, b->zeros, off, n);
		off += n;
		len -= n;
	}
	return r;
}

/* Discard or write-zeroes: segments of {le64 sector, le32 sectors, le32 flags}. */
static uint8_t blk_discard_zeroes(struct virtio_blk *b, const struct vq_chain *c, bool zeroes)
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
		r = zeroes ? blk_write_zeroes(b, sector * 512, (uint64_t)count * 512)
			   : disk_discard(b->disk, sector * 512, (uint64_t)count * 512);
		if (r)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint32_t blk_request(struct virtio_blk *b, const struct vq_chain *c, struct blk_data *data,
			    uint8_t **bounce)
{
	uint8_t hdr[VIRTIO_BLK_HDR_SIZE], status;
	uint32_t type, written = 0;
	uint64_t sector;

	if (c->in_len < VIRTIO_BLK_HDR_SIZE || c->out_len < 1) {
		log_warn_ratelimited(&blk_rl, "%s: request without a header or a status byte",
				     b->path);
		return 0;
	}
	vq_chain_read(c, 0, hdr, sizeof(hdr));
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	switch (type) {
	case VIRTIO_BLK_T_IN:
		blk_data_segs(c, true, 0, c->out_len - 1, data);
		status = blk_rw(b, false, sector, data, bounce);
		if (status == VIRTIO_BLK_S_OK)
			written = (uint32_t)data->len;
		break;
	case VIRTIO_BLK_T_OUT:
		if (b->ro) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		blk_data_segs(c, false, VIRTIO_BLK_HDR_SIZE, c->in_len - VIRTIO_BLK_HDR_SIZE, data);
		status = blk_rw(b, true, sector, data, bounce);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = disk_flush(b->disk) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t n = c->out_len - 1 < 20 ? c->out_len - 1 : 20;

		written = (uint32_t)vq_chain_write(c, 0, b->serial, (size_t)n);
		status = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = b->ro ? VIRTIO_BLK_S_IOERR
			       : blk_discard_zeroes(b, c, type == VIRTIO_BLK_T_WRITE_ZEROES);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	vq_chain_write(c, c->out_len - 1, &status, 1);
	return written + 1;
}

uint32_t virtio_blk_request(struct virtio_blk *b, const struct vq_chain *c)
{
	return blk_request(b, c, &b->data, &b->bounce);
}

/* I/O thread, vd->lock held: take chains into free slots and hand them to the workers. */
static void blk_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_blk *b = vd->priv;

	for (;;) {
		unsigned idx;
		int r;

		pthread_mutex_lock(&b->wlock);
		if (!b->nfree) {
			b->starved = true; /* a completing worker kicks the queue again */
			pthread_mutex_unlock(&b->wlock);
			return;
		}
		idx = b->freelist[--b->nfree];
		pthread_mutex_unlock(&b->wlock);
		r = virtio_pop(vd, q, &b->slots[idx]->chain);
		if (r <= 0) {
			pthread_mutex_lock(&b->wlock);
			b->freelist[b->nfree++] = idx;
			pthread_mutex_unlock(&b->wlock);
			if (virtio_queue_ready(vd, q) && vq_rearm(&vd->q[q].vq))
				continue;
			return;
		}
		b->slots[idx]->epoch = vd->epoch;
		pthread_mutex_lock(&b->wlock);
		b->pending[(b->pend_head + b->npending++) % BLK_SLOTS] = idx;
		pthread_cond_signal(&b->work_cond);
		pthread_mutex_unlock(&b->wlock);
	}
}

static void *blk_worker(void *arg)
{
	struct virtio_blk *b = arg;
	struct virtio_dev *vd = b->vd;

	pthread_setname_np(pthread_self(), "vio-blk-worker");
	pthread_mutex_lock(&b->wlock);
	while (!b->stopping) {
		struct blk_work *w;
		unsigned idx;
		uint32_t used;
		bool kick;

		if (!b->npending) {
			pthread_cond_wait(&b->work_cond, &b->wlock);
			continue;
		}
		idx = b->pending[b->pend_head];
		b->pend_head = (b->pend_head + 1) % BLK_SLOTS;
		b->npending--;
		b->active++;
		pthread_mutex_unlock(&b->wlock);

		w = b->slots[idx];
		used = blk_request(b, &w->chain, &w->data, &w->bounce); /* no lock held */

		pthread_mutex_lock(&b->wlock);
		if (--b->active == 0)
			pthread_cond_broadcast(&b->idle_cond);
		pthread_mutex_unlock(&b->wlock);
		pthread_mutex_lock(&vd->lock);
		if (w->epoch == vd->epoch) { /* else the device was reset meanwhile */
			vq_push(&vd->q[0].vq, w->chain.head, used);
			virtio_queue_interrupt(vd, 0);
		}
		pthread_mutex_unlock(&vd->lock);
		pthread_mutex_lock(&b->wlock);
		b->freelist[b->nfree++] = idx;
		kick = b->starved;
		b->starved = false;
		pthread_mutex_unlock(&b->wlock);
		if (kick)
			virtio_kick(vd, 0);
		pthread_mutex_lock(&b->wlock);
	}
	pthread_mutex_unlock(&b->wlock);
	return NULL;
}

/* Device reset (vd->lock held): forget queued work, wait for I/O in progress to end, so no
 * buffer of the old driver instance is touched afterwards. */
static void blk_reset(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;

	pthread_mutex_lock(&b->wlock);
	while (b->npending) {
		b->freelist[b->nfree++] = b->pending[b->pend_head];
		b->pend_head = (b->pend_head + 1) % BLK_SLOTS;
		b->npending--;
	}
	while (b->active)
		pthread_cond_wait(&b->idle_cond, &b->wlock);
	b->starved = false;
	pthread_mutex_unlock(&b->wlock);
}

static void blk_config_read(struct virtio_dev *vd, unsigned off, void *buf, unsigned len)
{
	struct virtio_blk *b = vd->priv;

	if (off <= BLK_CONFIG_SIZE && len <= BLK_CONFIG_SIZE - off)
		memcpy(buf, b->config + off, len);
}

void virtio_blk_free(struct virtio_blk *b)
{
	unsigned i;

	if (!b)
		return;
	pthread_mutex_lock(&b->wlock);
	b->stopping = true;
	pthread_cond_broadcast(&b->work_cond);
	pthread_mutex_unlock(&b->wlock);
	for (i = 0; i < b->nworkers; i++)
		pthread_join(b->workers[i], NULL);
	for (i = 0; i < BLK_SLOTS; i++) {
		if (b->slots[i])
			free(b->slots[i]->bounce);
		free(b->slots[i]);
	}
	if (b->disk) {
		if (!b->ro && disk_flush(b->disk))
			log_err("%s: final flush failed", b->path);
		disk_close(b->disk);
	}
	free(b->bounce);
	free(b->zeros);
	free(b);
}

static void blk_release(struct virtio_dev *vd)
{
	virtio_blk_free(vd->priv);
}

static const struct virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.device_type = VIRTIO_ID_BLOCK,
	.class_code = 0x018000, /* mass storage, other */
	.queue_notify = blk_queue_notify,
	.config_read = blk_config_read,
	.reset = blk_reset,
	.release = blk_release,
};

int virtio_blk_open(const struct vm_disk *spec, int fd, struct virtio_blk **out, char *err,
		    size_t errlen)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	struct disk_info info;
	int r;

	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->wlock, NULL);
	pthread_cond_init(&b->work_cond, NULL);
	pthread_cond_init(&b->idle_cond, NULL);
	b->zeros = calloc(1, BLK_ZERO_CHUNK);
	if (!b->zeros) {
		free(b);
		return -ENOMEM;
	}
	snprintf(b->path, sizeof(b->path), "%s", spec->path);
	b->ro = spec->readonly;
	disk_error_reset();
	/* As recorded in the description (vm_disk.format): never guessed from the contents. */
	if (fd >= 0 && !spec->readonly && (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR) {
		snprintf(err, errlen, "disk %s: its passed descriptor is not open for writing",
			 spec->path);
		close(fd);
		free(b->zeros);
		free(b);
		return -EBADF;
	}
	if (fd >= 0) {
		r = disk_open_fd_as(fd, spec->path,
				    spec->format == VM_DISK_VHDX ? DISK_FORMAT_VHDX
								 : DISK_FORMAT_RAW,
				    spec->readonly ? DISK_OPEN_RDONLY : 0, &b->disk);
	} else {
		r = disk_open_as(spec->path,
				 spec->format == VM_DISK_VHDX ? DISK_FORMAT_VHDX : DISK_FORMAT_RAW,
				 spec->readonly ? DISK_OPEN_RDONLY : 0, &b->disk);
	}
	if (r) {
		const char *busy = r == -EWOULDBLOCK || r == -EAGAIN
					   ? " (another program has it open for writing)"
					   : "";

		if (disk_error()[0]) /* the library's reason names the file */
			snprintf(err, errlen, "%s%s", disk_error(), busy);
		else
			snprintf(err, errlen, "disk %s: %s%s", spec->path, strerror(-r), busy);
		free(b->zeros);
		free(b);
		return r;
	}
	r = disk_info(b->disk, &info);
	if (r) {
		snprintf(err, errlen, "--disk %s: cannot read its format information: %s",
			 spec->path, strerror(-r));
		virtio_blk_free(b);
		return r;
	}
	b->zeroes_by_discard = info.format == DISK_FORMAT_RAW;
	b->sector_size = info.logical_sector >= 512 ? info.logical_sector : 512;
	b->sectors = disk_size(b->disk) / 512;
	memcpy(b->serial, spec->serial, strnlen(spec->serial, sizeof(b->serial)));
	le_store(b->config + 0x00, b->sectors, 8);	     /* capacity */
	le_store(b->config + 0x0c, BLK_SEG_MAX, 4);	     /* seg_max */
	le_store(b->config + 0x14, b->sector_size, 4);	     /* blk_size */
	le_store(b->config + 0x24, BLK_MAX_DISCARD, 4);	     /* max_discard_sectors */
	le_store(b->config + 0x28, BLK_MAX_DZ_SEGS, 4);	     /* max_discard_seg */
	le_store(b->config + 0x2c, b->sector_size / 512, 4); /* discard_sector_alignment */
	le_store(b->config + 0x30, b->zeroes_by_discard ? BLK_MAX_DISCARD : BLK_MAX_WZ_WRITTEN,
		 4); /* max_write_zeroes_sectors */
	le_store(b->config + 0x34, b->zeroes_by_discard ? BLK_MAX_DZ_SEGS : 1,
		 4);				/* max_write_zeroes_seg */
	b->config[0x38] = b->zeroes_by_discard; /* write_zeroes_may_unmap */
	*out = b;
	return 0;
}

uint64_t virtio_blk_features(const struct virtio_blk *b)
{
	uint64_t f = 1ull << BLK_F_SEG_MAX | 1ull << BLK_F_BLK_SIZE | 1ull << BLK_F_FLUSH;

	if (b->ro)
		f |= 1ull << BLK_F_RO;
	else
		f |= 1ull << BLK_F_DISCARD | 1ull << BLK_F_WRITE_ZEROES;
	return f;
}

int virtio_blk_create(struct machine *m, const struct vm_disk *spec, int fd,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	struct virtio_blk *b;
	unsigned i;
	int r = virtio_blk_open(spec, fd, &b, err, errlen);

	if (r)
		return r;
	for (i = 0; i < BLK_SLOTS; i++) {
		b->slots[i] = calloc(1, sizeof(*b->slots[i]));
		if (!b->slots[i]) {
			snprintf(err, errlen, "--disk %s: out of memory", spec->path);
			virtio_blk_free(b);
			return -ENOMEM;
		}
		b->freelist[b->nfree++] = i;
	}
	r = virtio_dev_create(m, spec->pci_slot, &blk_ops, b, virtio_blk_features(b), 1,
			      BLK_QUEUE_SIZE, BLK_CONFIG_SIZE, out);
	if (r) {
		snprintf(err, errlen, "--disk %s: virtio-blk set-up: %s", spec->path, strerror(-r));
		virtio_blk_free(b);
		return r;
	}
	b->vd = *out;
	for (i = 0; i < BLK_WORKERS; i++) {
		if (pthread_create(&b->workers[i], NULL, blk_worker, b))
			break;
		b->nworkers++;
	}
	if (!b->nworkers) {
		snprintf(err, errlen, "--disk %s: cannot start an I/O worker thread", spec->path);
		virtio_dev_destroy(*out); /* frees b */
		return -EAGAIN;
	}
	return 0;
}

static int blk_class_create(struct machine *m, unsigned i, char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int r = virtio_blk_create(m, &m->def->disks[i], m->disk_fds[i], &vd, err, errlen);

	return r ? r : virtio_dev_keep(m, vd);
}

/* One per disk of the description. */
const struct device_class virtio_blk_class = {
	.name = "virtio-blk", .config = &vmdef_disk_kind, .create = blk_class_create};
