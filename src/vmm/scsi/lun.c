/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logical units: opening a disk or a DVD drive's medium on keel's disk library, the host's
 * media changes (insert, change, eject) with the unit attention and media event the guest
 * sees, resets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "lib/iso.h"
#include "lib/log.h"
#include "vmm/machine.h"
#include "vmm/parse_euid.h"
#include "vmm/scsi/scsi.h"

/* Open path (or take fd) as a raw, read-only ISO image: checked first. O_NONBLOCK: a FIFO
 * (or a device whose open waits) must not hold up the caller, who may hold the
 * controller's lock (a media change); iso_check then refuses what is not a file. */
static int open_iso(const char *path, int fd, struct disk **out, char *err, size_t errlen)
{
	struct disk_err why;
	int r;

	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "DVD image %s: %s", path, strerror(errno));
		return r;
	}
	r = iso_check(fd, path, err, errlen);
	if (r) {
		close(fd);
		return r;
	}
	r = disk_open_fd_as(fd, path, DISK_FORMAT_RAW, DISK_OPEN_RDONLY | DISK_OPEN_NOLOCK, out,
			    &why);
	if (r)
		snprintf(err, errlen, "DVD image %s: %s", path, disk_why(&why, r));
	return r;
}

static void set_medium(struct scsi_lun *l, struct disk *d, const char *path, bool passed)
{
	l->passed = d && passed;
	l->disk = d;
	l->blocks = d ? disk_size(d) / l->block_size : 0;
	snprintf(l->path, sizeof(l->path), "%s", d ? path : "");
}

/* A passed disk with no chain passed: it must have no parent. */
static const int no_parents[1] = {-1};

int scsi_lun_open(struct scsi_target *t, unsigned i, const struct vm_lun *spec, int fd,
		  const struct machine_chain *chain, char *err, size_t errlen)
{
	struct scsi_lun *l = &t->lun[i];
	struct disk *d = NULL;
	int r;

	*l = (struct scsi_lun){
		.type = spec->type,
		.ro = spec->type == VM_LUN_DVD || spec->disk.readonly,
		.cache = spec->disk.cache,
		.block_size = spec->type == VM_LUN_DVD ? SCSI_DVD_BLOCK : SCSI_DISK_BLOCK,
	};
	memcpy(l->serial, spec->disk.serial, sizeof(l->serial));
	if (spec->type == VM_LUN_DVD) {
		if (spec->disk.path) {
			r = open_iso(spec->disk.path, fd, &d, err, errlen);
			if (r)
				return r;
		} else if (fd >= 0) {
			close(fd);
		}
	} else {
		enum disk_format f =
			spec->disk.format == VM_DISK_VHDX ? DISK_FORMAT_VHDX : DISK_FORMAT_RAW;
		unsigned flags = spec->disk.readonly ? DISK_OPEN_RDONLY : 0;

		struct disk_err why;

		/* Opened by its path: a chain passed with it is not taken (and not left open). */
		for (unsigned j = 0; fd < 0 && chain && j < chain->n; j++)
			close(chain->fd[j]);
		parse_euid_note(PARSE_DISK);
		r = fd >= 0 ? disk_open_chain_fd(fd, spec->disk.path, f, flags,
						 chain ? chain->fd : no_parents,
						 chain ? chain->n : 0, &d, &why)
			    : disk_open_as(spec->disk.path, f, flags, &d, &why);
		if (r) {
			snprintf(err, errlen, "SCSI disk %s: %s", spec->disk.path,
				 disk_why(&why, r));
			return r;
		}
	}
	set_medium(l, d, spec->disk.path, fd >= 0);
	if (i >= t->nluns)
		t->nluns = i + 1;
	return 0;
}

void scsi_target_close(struct scsi_target *t)
{
	for (unsigned i = 0; i < t->nluns; i++) {
		struct scsi_lun *l = &t->lun[i];

		if (!l->disk)
			continue;
		if (!l->ro && disk_flush(l->disk))
			log_err("%s: final flush failed", l->path);
		disk_close(l->disk);
		l->disk = NULL;
	}
}

int scsi_lun_change_medium(struct scsi_lun *l, const char *path, int fd, char *err, size_t errlen)
{
	struct disk *d = NULL;
	int r;

	if (l->type != VM_LUN_DVD) {
		snprintf(err, errlen, "LUN is a disk, not a DVD drive");
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	if (path) {
		bool passed = fd >= 0;

		r = open_iso(path, fd, &d, err, errlen);
		if (r)
			return r;
		if (l->disk)
			disk_close(l->disk);
		set_medium(l, d, path, passed);
	} else {
		if (l->disk)
			disk_close(l->disk);
		set_medium(l, NULL, NULL, false);
	}
	l->tray_open = false;
	if (d) {
		l->ua = SENSE_MEDIUM_CHANGED;
		l->media_event = MMC_EVENT_NEW_MEDIA;
	} else {
		l->ua = (struct scsi_sense){0};
		l->media_event = MMC_EVENT_MEDIA_REMOVAL;
	}
	return 0;
}

void scsi_lun_reset(struct scsi_lun *l)
{
	l->ua = (struct scsi_sense){0};
	l->prevent = false;
	l->tray_open = false;
	l->media_event = MMC_EVENT_NONE;
}
