/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-scsi's DVD media as the host sees them: the control socket's "dvd" command lists
 * the drives and changes their media (machine_media_ops), and the saved-state section
 * "virtio-scsi-luns.SS" keeps each unit's medium and what the guest was told about it
 * (unit attention, media event, tray, lock), so that a restored VM has the DVD it had.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/state.h"
#include "vmm/virtio/scsi_internal.h"
#include "vmm/virtio/virtio.h"

/* The index of DVD drive i among the LUNs, or -1. */
static int dvd_lun(const struct virtio_scsi *s, unsigned i)
{
	for (unsigned l = 0; l < s->t.nluns; l++)
		if (s->t.lun[l].type == VM_LUN_DVD && i-- == 0)
			return (int)l;
	return -1;
}

static unsigned media_count(void *opaque)
{
	const struct virtio_scsi *s = opaque;
	unsigned n = 0;

	for (unsigned l = 0; l < s->t.nluns; l++)
		n += s->t.lun[l].type == VM_LUN_DVD;
	return n;
}

static void media_get(void *opaque, unsigned i, struct machine_medium *out)
{
	struct virtio_scsi *s = opaque;
	int l = dvd_lun(s, i);

	memset(out, 0, sizeof(*out));
	if (l < 0)
		return;
	pthread_mutex_lock(&s->vd->lock);
	out->lun = (unsigned)l;
	out->tray_open = s->t.lun[l].tray_open;
	out->locked = s->t.lun[l].prevent;
	snprintf(out->path, sizeof(out->path), "%s", s->t.lun[l].path);
	pthread_mutex_unlock(&s->vd->lock);
}

/* The medium changes once no request is in flight (none reads the old one any more). */
static int media_change(void *opaque, unsigned i, const char *path, int fd, char *err,
			size_t errlen)
{
	struct virtio_scsi *s = opaque;
	int l = dvd_lun(s, i), r;

	if (l < 0) {
		snprintf(err, errlen, "the VM has %u DVD drive%s, no drive %u", media_count(s),
			 media_count(s) == 1 ? "" : "s", i);
		if (fd >= 0)
			close(fd);
		return -ENOENT;
	}
	if (virtio_lock_idle(s->vd)) {
		snprintf(err, errlen,
			 "the SCSI controller stayed busy for %u ms; the medium was not changed "
			 "(try again)",
			 VIRTIO_IDLE_WAIT_MS);
		if (fd >= 0)
			close(fd);
		return -EBUSY;
	}
	r = scsi_lun_change_medium(&s->t.lun[l], path, fd, err, errlen);
	pthread_mutex_unlock(&s->vd->lock);
	if (!r)
		log_info("virtio-scsi lun %d: %s%s", l, path ? "medium " : "medium ejected",
			 path ? path : "");
	return r;
}

const struct machine_media_ops virtio_scsi_media_ops = {
	.count = media_count,
	.get = media_get,
	.change = media_change,
};

/* One unit's state in the section. */
struct lun_state {
	uint8_t type;
	uint16_t path_len;
	char path[SCSI_PATH_MAX];
	uint64_t blocks;
	uint8_t key, asc, ascq, media_event;
	bool prevent, tray_open;
};

static void lun_io(struct state_io *io, const struct scsi_lun *l, struct lun_state *st)
{
	if (state_saving(io)) {
		st->type = (uint8_t)l->type;
		st->path_len = (uint16_t)strlen(l->path);
		memcpy(st->path, l->path, st->path_len);
		st->blocks = l->blocks;
		st->key = l->ua.key;
		st->asc = l->ua.asc;
		st->ascq = l->ua.ascq;
		st->media_event = l->media_event;
		st->prevent = l->prevent;
		st->tray_open = l->tray_open;
	}
	st->type = state_u8(io, &st->type, VM_LUN_DVD);
	st->path_len = state_u16(io, &st->path_len, SCSI_PATH_MAX - 1);
	state_blob(io, st->path, st->path_len);
	st->path[st->path_len] = '\0';
	st->blocks = state_u64(io, &st->blocks, UINT64_MAX);
	st->key = state_u8(io, &st->key, 0x0f);
	st->asc = state_u8(io, &st->asc, UINT8_MAX);
	st->ascq = state_u8(io, &st->ascq, UINT8_MAX);
	st->media_event = state_u8(io, &st->media_event, MMC_EVENT_MEDIA_REMOVAL);
	st->prevent = state_bool(io, &st->prevent);
	st->tray_open = state_bool(io, &st->tray_open);
}

/* A unit that must be as it was (a disk: the same size), or a DVD drive whose saved medium
 * can be opened again. A medium given as a descriptor (keeld's, from the VM's description)
 * stays: the description is what the VM has now. */
static void lun_check(struct state_io *io, unsigned i, const struct scsi_lun *l,
		      const struct lun_state *st)
{
	struct scsi_target probe = {0};
	struct vm_lun spec = {.type = VM_LUN_DVD};
	char err[256];

	if (st->type != l->type) {
		state_fail(io, "LUN %u was saved as a %s", i,
			   st->type == VM_LUN_DVD ? "DVD drive" : "disk");
		return;
	}
	if (l->type == VM_LUN_DISK) {
		if (st->tray_open || st->prevent) /* a disk has no tray the guest could close */
			state_fail(io, "SCSI disk %u was saved with a DVD drive's tray %s", i,
				   st->tray_open ? "open" : "locked");
		else if (st->blocks != l->blocks)
			state_fail(io, "SCSI disk %u had %llu blocks at the save, %llu now", i,
				   (unsigned long long)st->blocks, (unsigned long long)l->blocks);
		return;
	}
	if (l->passed || !st->path_len || !strcmp(st->path, l->path))
		return;
	spec.disk.path = (char *)st->path;
	if (scsi_lun_open(&probe, 0, &spec, -1, err, sizeof(err)))
		state_fail(io, "DVD drive (LUN %u): the saved medium: %s", i, err);
	else if (probe.lun[0].blocks != st->blocks)
		state_fail(io, "DVD drive (LUN %u): %s has %llu blocks, %llu at the save", i,
			   st->path, (unsigned long long)probe.lun[0].blocks,
			   (unsigned long long)st->blocks);
	scsi_target_close(&probe);
}

static void lun_apply(struct scsi_lun *l, unsigned i, const struct lun_state *st)
{
	bool other = l->type == VM_LUN_DVD && strcmp(st->path, l->path);
	/* The same file, but not the medium the guest had: the image was replaced or resized
	 * since the save (the guest's idea of its capacity and contents is stale). */
	bool resized = l->type == VM_LUN_DVD && !other && l->disk && st->blocks != l->blocks;
	char err[256];

	if (other && !l->passed &&
	    scsi_lun_change_medium(l, st->path_len ? st->path : NULL, -1, err, sizeof(err)))
		log_err("virtio-scsi lun %u: the saved medium is gone: %s; the drive is empty", i,
			err);
	l->ua = (struct scsi_sense){st->key, st->asc, st->ascq};
	l->media_event = st->media_event;
	l->prevent = st->prevent;
	l->tray_open = st->tray_open;
	if (resized) {
		log_warn("virtio-scsi lun %u: %s has %llu blocks, %llu at the save: the guest is "
			 "told of a new medium",
			 i, l->path, (unsigned long long)l->blocks, (unsigned long long)st->blocks);
		l->ua = SENSE_MEDIUM_CHANGED;
		l->media_event = MMC_EVENT_NEW_MEDIA;
		l->tray_open = false;
	} else if (other && l->passed) { /* the description's medium: new to the guest */
		log_info("virtio-scsi lun %u: saved with %s, restored with %s", i,
			 st->path_len ? st->path : "no medium", l->path);
		l->ua = SENSE_MEDIUM_CHANGED;
		l->media_event = MMC_EVENT_NEW_MEDIA;
		l->tray_open = false;
	}
}

int virtio_scsi_state(struct state_io *io, void *opaque)
{
	static struct lun_state st[SCSI_MAX_LUNS]; /* main thread only: save and restore */
	struct virtio_scsi *s = ((struct virtio_dev *)opaque)->priv;
	uint32_t nluns = s->t.nluns, cdb = s->cdb_size, sense = s->sense_size;

	if (state_saving(io))
		pthread_mutex_lock(&s->vd->lock);
	nluns = state_u32(io, &nluns, SCSI_MAX_LUNS);
	cdb = state_u32(io, &cdb, VSCSI_CDB_MAX);
	sense = state_u32(io, &sense, VSCSI_SENSE_MAX);
	if (!state_error(io) && nluns != s->t.nluns)
		state_fail(io, "saved with %u LUNs, the controller has %u", nluns, s->t.nluns);
	for (unsigned i = 0; i < s->t.nluns && !state_error(io); i++) {
		lun_io(io, &s->t.lun[i], &st[i]);
		if (!state_error(io) && !state_saving(io))
			lun_check(io, i, &s->t.lun[i], &st[i]);
	}
	if (state_saving(io))
		pthread_mutex_unlock(&s->vd->lock);
	if (!state_applying(io))
		return state_error(io);
	pthread_mutex_lock(&s->vd->lock);
	s->cdb_size = cdb;
	s->sense_size = sense;
	for (unsigned i = 0; i < s->t.nluns; i++)
		lun_apply(&s->t.lun[i], i, &st[i]);
	pthread_mutex_unlock(&s->vd->lock);
	return state_error(io);
}
