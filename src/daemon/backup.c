/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/backup_layout.h"
#include "daemon/biglock.h"
#include "disk/disk.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/uefi_store.h"

#define BACKUP_DIR_MAX 2048 /* TO/NAME: room left in a path for what goes below it */

/* Hyper-V's name for a backup's recovery checkpoint: "VM - Backup - (2026-12-06 - 11:40:00)". */
static void backup_ckpt_name(const struct vm_def *def, char *buf, size_t size)
{
	ckpt_stamped_name(def, "Backup - ", buf, size);
}

int backup_check(struct ckpt_ctx *cc, const struct vm_def *def, const char *to, uint64_t *total,
		 char *err, size_t errlen)
{
	char name[CKPT_NAME_MAX + 1], path[BACKUP_DIR_MAX];
	struct vm_disk *disks[BACKUP_DISKS_MAX];
	struct stat st;
	unsigned nd;
	int ret;

	*total = 0;
	if (to[0] != '/') {
		error_set(err, errlen, "the backup's destination '%.200s' is not an absolute path",
			  to);
		return -EINVAL;
	}
	if (stat(to, &st) < 0 || !S_ISDIR(st.st_mode)) {
		error_set(err, errlen, "the backup's destination '%.200s' is not a directory", to);
		return -EINVAL;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", to, def->name) >= sizeof(path)) {
		error_set(err, errlen, "the backup's destination '%.200s' is too long", to);
		return -EINVAL;
	}
	if (lstat(path, &st) == 0) {
		error_set(err, errlen,
			  "%.300s exists already: a backup of VM '%s' goes into a new "
			  "directory",
			  path, def->name);
		return -EEXIST;
	}
	/* The checks of the checkpoint it takes (VHDX disks, the VM's state, room for one
	 * more): the same for a VM that is off, so that every backup can be taken. */
	backup_ckpt_name(def, name, sizeof(name));
	ret = ckpt_create_check(cc, def, name, CKPT_PRODUCTION, err, errlen);
	if (ret)
		return ret;
	nd = ckpt_vm_disks(def, disks);
	for (unsigned i = 0; i < nd; i++) {
		struct disk_err why;
		struct disk *d;

		ret = disk_open_as(
			disks[i]->path,
			disks[i]->format == VM_DISK_VHDX ? DISK_FORMAT_VHDX : DISK_FORMAT_RAW,
			/* only its size, which a running worker never changes */
			DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT | DISK_OPEN_NOLOCK, &d, &why);
		if (ret) {
			error_set(err, errlen, "cannot read %sdisk %s of VM '%s': %s",
				  i < def->ndisks ? "" : "SCSI ", disks[i]->path, def->name,
				  disk_why(&why, ret));
			return ret;
		}
		*total += disk_size(d);
		disk_close(d);
	}
	return 0;
}

/* The job's progress: the size of BACKUP_PROGRESS_FILE is the bytes copied (jobs.h). */
struct backup_progress {
	int fd;
	uint64_t base; /* the disks before this one */
	uint64_t last; /* this one's bytes done */
};

static void backup_on_progress(void *arg, uint64_t done)
{
	struct backup_progress *p = arg;

	p->last = done;
	if (p->fd >= 0 && ftruncate(p->fd, (off_t)(p->base + done)) < 0)
		p->fd = -1; /* the progress stops; the copy goes on */
}

/* config.json: the VM's description with the copies as its disks (tmp, fsync, rename). */
static int write_config(const struct vm_def *def, const char *dir, char (*copies)[PATH_MAX],
			char *err, size_t errlen)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
	struct vm_def c;
	json_object *o;
	const char *text;
	int fd, ret = vmdef_copy(&c, def);

	struct vm_disk *disks[BACKUP_DISKS_MAX];
	unsigned nd;

	if (ret)
		return ret;
	/* The copies in the order they were made: the disks stay on their LUNs. */
	nd = ckpt_vm_disks(&c, disks);
	for (unsigned i = 0; i < nd; i++) {
		char *p = strdup(copies[i]);

		if (!p) {
			vmdef_free(&c);
			return -ENOMEM;
		}
		free(disks[i]->path);
		disks[i]->path = p;
		disks[i]->format = VM_DISK_VHDX;
	}
	o = vmdef_to_json(&c);
	vmdef_free(&c);
	if (!o)
		return -ENOMEM;
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	snprintf(tmp, sizeof(tmp), "%s/.config.json.tmp", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	ret = fd < 0 ? -errno : 0;
	if (!ret && (write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
		     write(fd, "\n", 1) != 1 || fsync(fd) < 0))
		ret = errno ? -errno : -EIO;
	if (fd >= 0)
		close(fd);
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		error_set(err, errlen, "cannot write %s: %s", path, strerror(-ret));
	}
	json_object_put(o);
	return ret;
}

/* The disk files to copy (virtio-blk and SCSI disks, in ckpt_vm_disks' order, which is the
 * checkpoint's): the checkpoint's (running) or the VM's own (not running). *n: how many. */
static int backup_sources(const struct vm_def *def, json_object *ck, char (*src)[PATH_MAX],
			  unsigned *n)
{
	struct vm_disk *disks[BACKUP_DISKS_MAX];
	json_object *arr = NULL;

	*n = ckpt_vm_disks(def, disks);
	if (!ck) {
		for (unsigned i = 0; i < *n; i++)
			snprintf(src[i], PATH_MAX, "%s", disks[i]->path);
		return 0;
	}
	if (!json_object_object_get_ex(ck, "disks", &arr) || json_object_array_length(arr) != *n)
		return -EIO;
	for (unsigned i = 0; i < *n; i++)
		snprintf(src[i], PATH_MAX, "%s",
			 json_object_get_string(json_object_array_get_idx(arr, i)));
	return 0;
}

/* A Generation 2 VM's UEFI variable store (keeld's lock held): the file its worker last
 * renamed into place, read whole and checked. A running VM's is read after the recovery
 * checkpoint, whose save wrote the store as the guest had it when its disks were frozen; the
 * guest runs again by then, and a variable it changed since (the new worker writes the store
 * again only then) is in this copy, not in the disks' (docs/backup.md). None (*data NULL, 0):
 * not Generation 2, or no store yet (never started: an import makes one from the template,
 * as a first start would), or one that is no store (the next start sets it aside and makes a
 * new one; keeld's log says so). */
static int backup_nvram_read(struct ckpt_ctx *cc, const struct vm_def *def, struct ckpt_nvram *nv,
			     char *err, size_t errlen)
{
	if (def->firmware != VM_FIRMWARE_UEFI)
		return 0;
	/* A running VM's was read by its checkpoint while no worker ran; an Off, Saved or
	 * Crashed VM's has no worker writing it. */
	if (!nv->taken)
		nv->ret = sup_nvram_read(cc->sup, def->uuid, &nv->data, &nv->size, nv->why,
					 sizeof(nv->why));
	if (nv->ret == -ENOENT || nv->ret == -EINVAL) {
		if (nv->ret == -EINVAL)
			log_warn("VM %s: backup: its UEFI variable store is not copied: %s",
				 def->name, nv->why);
		return 0;
	}
	if (nv->ret)
		error_set(err, errlen, "VM '%s': %s", def->name, nv->why);
	return nv->ret;
}

/* The store into DIR/nvram/OVMF_VARS.fd (a new file, fsync, rename, as keeld writes one). */
static int backup_nvram_write(const char *dir, const uint8_t *data, size_t size, char *err,
			      size_t errlen)
{
	char sub[BACKUP_DIR_MAX + 16];
	int r;

	snprintf(sub, sizeof(sub), "%s/" BACKUP_NVRAM_DIR, dir);
	r = uefi_store_write_in(sub, 0750, BACKUP_NVRAM_NAME, "." BACKUP_NVRAM_NAME ".tmp", data,
				size);
	if (r)
		error_set(err, errlen, "cannot write %s/" BACKUP_NVRAM_NAME ": %s", sub,
			  strerror(-r));
	return r;
}

/* Take the VM's operation again after the copy (keeld's lock held): a request that holds it
 * meanwhile (a stop, say) ends, so this waits for it, letting the lock go. */
static void backup_retake(struct ckpt_ctx *cc, const struct vm_def *def)
{
	char busy[256];

	for (unsigned i = 0;
	     sup_op_begin(cc->sup, def->uuid, def->name, "backup", busy, sizeof(busy)); i++) {
		if (i % 600 == 599)
			log_warn("VM %s: backup: waiting to merge its checkpoint: %s", def->name,
				 busy);
		keeld_unlock();
		usleep(100000);
		keeld_lock();
	}
}

int backup_run(struct ckpt_ctx *cc, const struct vm_def *def, const char *to, json_object **out,
	       char *err, size_t errlen)
{
	char(*src)[PATH_MAX] = calloc(BACKUP_DISKS_MAX, PATH_MAX);
	char(*dst)[PATH_MAX] = calloc(BACKUP_DISKS_MAX, PATH_MAX);
	char dir[BACKUP_DIR_MAX], sub[BACKUP_DIR_MAX + 32], name[CKPT_NAME_MAX + 1],
		vmdir[PATH_MAX] = "", progress[PATH_MAX + 32] = "";
	struct backup_progress bp = {-1, 0, 0};
	const char *consistency = "off", *fallback = NULL;
	json_object *ck = NULL, *v;
	struct sup_status st;
	char ckid[VMDEF_UUID_LEN + 1] = "";
	unsigned copied = 0, ndisks = 0;
	bool complete = false; /* every copy and config.json written: never deleted */
	bool released = false; /* the VM let go during the copy */
	/* A Generation 2 VM's variable store, at the point of the disks' copies. */
	struct ckpt_nvram nv = {.taken = false};
	struct ckpt_ctx ncc = *cc;
	int ret;

	*out = NULL;
	if (!src || !dst) {
		free(src);
		free(dst);
		return -ENOMEM;
	}
	snprintf(dir, sizeof(dir), "%s/%s", to, def->name);
	snprintf(sub, sizeof(sub), "%s/disks", dir);
	if (mkdir(dir, 0750) < 0 || mkdir(sub, 0750) < 0) {
		ret = -errno;
		error_set(err, errlen, "cannot create %s: %s", errno == EEXIST ? dir : sub,
			  strerror(-ret));
		if (ret != -EEXIST)
			rmdir(dir);
		free(src);
		free(dst);
		return ret;
	}
	sup_status(cc->sup, def->uuid, &st);
	if (st.state != VM_OFF)
		consistency = "crash"; /* Saved or Crashed: the disks as the guest left them */
	if (st.state == VM_RUNNING || st.state == VM_PAUSED) {
		/* The guest frozen while its disks move onto children; it writes to those
		 * while the frozen files are copied. */
		backup_ckpt_name(def, name, sizeof(name));
		ncc.nvram = &nv;
		ret = ckpt_create(&ncc, def, name, CKPT_PRODUCTION, &ck, err, errlen);
		if (ret)
			goto fail;
		fallback = json_object_object_get_ex(ck, "fallback", &v) ? json_object_get_string(v)
									 : NULL;
		consistency = fallback ? "crash" : "application";
		if (json_object_object_get_ex(ck, "id", &v))
			snprintf(ckid, sizeof(ckid), "%s", json_object_get_string(v));
		/* The checkpoint waited for the new worker to run; it is watched again once
		 * the copy lets the VM go. */
	}
	ret = backup_sources(def, ck, src, &ndisks);
	if (ret) {
		error_set(err, errlen, "the backup's checkpoint of VM '%s' has no disk list",
			  def->name);
		goto merge;
	}
	ret = backup_nvram_read(cc, def, &nv, err, errlen);
	if (ret)
		goto merge;
	if (!sup_vm_dir(cc->sup, def->uuid, vmdir, sizeof(vmdir))) {
		snprintf(progress, sizeof(progress), "%s/%s", vmdir, BACKUP_PROGRESS_FILE);
		bp.fd = open(progress, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	/* The copy lets keeld's lock go. A running VM's copy reads its checkpoint's files,
	 * which nothing writes while the checkpoint is pinned: the job lets the VM go meanwhile
	 * (the main loop watches its worker, stop, save and turn-off work) and takes it again
	 * for the delete. An Off VM's are its own disks: the job keeps it, so nobody starts it. */
	if (ck) {
		sup_pin(cc->sup, def->uuid, "backup");
		sup_op_end(cc->sup, def->uuid);
		released = true;
	}
	keeld_unlock();
#ifdef KEEL_TEST_HOOKS
	/* Test builds: the copy waits while the VM's directory holds this file (60 s at most),
	 * for a test to act on the VM during it. */
	if (released && vmdir[0]) {
		char hook[PATH_MAX + 32];

		snprintf(hook, sizeof(hook), "%s/test-backup-hold", vmdir);
		for (int i = 0; i < 600 && access(hook, F_OK) == 0; i++)
			usleep(100000);
	}
#endif
	for (; copied < ndisks && !ret; copied++) {
		const struct disk_create_opts o = {.format = DISK_FORMAT_VHDX,
						   .type = DISK_TYPE_DYNAMIC};

		snprintf(dst[copied], PATH_MAX, "%s/disk%u.vhdx", sub, copied);
		struct disk_err why;

		bp.last = 0;
		ret = disk_convert_progress(src[copied], dst[copied], &o, backup_on_progress, &bp,
					    &why);
		if (ret)
			error_set(err, errlen, "cannot copy %s to %s: %s", src[copied], dst[copied],
				  disk_why(&why, ret));
		bp.base += bp.last;
	}
	keeld_lock();
	if (released) {
		backup_retake(cc, def);
		sup_pin(cc->sup, def->uuid, NULL);
	}
	if (!ret && nv.data)
		ret = backup_nvram_write(dir, nv.data, nv.size, err, errlen);
	if (!ret)
		ret = write_config(def, dir, dst, err, errlen);
	complete = !ret;
merge:
	if (ck) {
		char why[768];
		struct vm_def cur;
		int r;

		r = store_vm_get(cc->store, def->uuid, &cur);

		/* Deleting the checkpoint merges the children into its files: the VM goes
		 * back onto the files it had, with everything written meanwhile. By its id:
		 * the user may have given another checkpoint the same name meanwhile. */
		if (!r) {
			r = ckpt_delete(cc, &cur, ckid[0] ? ckid : name, false, why, sizeof(why));
			vmdef_free(&cur);
			/* Starting or Stopping (a stop asked during the copy): let the main loop
			 * finish that, and try again. */
			for (int i = 0; r == -EBUSY && released && i < 120; i++) {
				sup_op_end(cc->sup, def->uuid);
				keeld_unlock();
				usleep(500000);
				keeld_lock();
				backup_retake(cc, def);
				r = store_vm_get(cc->store, def->uuid, &cur);
				if (r)
					break;
				r = ckpt_delete(cc, &cur, ckid[0] ? ckid : name, false, why,
						sizeof(why));
				vmdef_free(&cur);
			}
#ifdef KEEL_TEST_HOOKS
			/* Test builds: the merge reports a failure when the VM's directory
			 * holds this file. */
			if (!r && vmdir[0]) {
				char hook[PATH_MAX + 32];

				snprintf(hook, sizeof(hook), "%s/test-fail-backup-merge", vmdir);
				if (access(hook, F_OK) == 0) {
					snprintf(why, sizeof(why), "test hook");
					r = -EIO;
				}
			}
#endif
		} else {
			snprintf(why, sizeof(why), "cannot read VM '%s' from the store", def->name);
		}
		if (r) {
			log_err("VM %s: backup: cannot delete checkpoint '%s': %s", def->name, name,
				why);
			if (complete) {
				/* The backup stays: only the VM is left on the checkpoint's
				 * differencing disks until its delete is done again. */
				error_set(
					err, errlen,
					"the backup in %s is complete and kept, but its checkpoint "
					"'%s' could not be merged back: %s. VM '%s' still runs on "
					"the checkpoint's differencing disks; merge them with "
					"'keel checkpoint delete %s %s'",
					dir, name, why, def->name, def->name,
					ckid[0] ? ckid : name);
				ret = r;
			}
		}
	}
	if (bp.fd >= 0)
		close(bp.fd);
	if (progress[0])
		unlink(progress);
	if (!ret) {
		json_object *o = json_object_new_object(), *disks = json_object_new_array();

		for (unsigned i = 0; i < ndisks; i++)
			json_object_array_add(disks, json_object_new_string(dst[i]));
		json_object_object_add(o, "dir", json_object_new_string(dir));
		snprintf(sub, sizeof(sub), "%s/config.json", dir);
		json_object_object_add(o, "config", json_object_new_string(sub));
		json_object_object_add(o, "disks", disks);
		if (nv.data) {
			snprintf(sub, sizeof(sub), "%s/" BACKUP_NVRAM_FILE, dir);
			json_object_object_add(o, "nvram", json_object_new_string(sub));
		}
		json_object_object_add(o, "consistency", json_object_new_string(consistency));
		if (fallback)
			json_object_object_add(o, "fallback", json_object_new_string(fallback));
		*out = o;
		log_info("VM %s: backup (consistency: %s) in %s", def->name, consistency, dir);
		json_object_put(ck);
		free(nv.data);
		free(src);
		free(dst);
		return 0;
	}
	json_object_put(ck);
	free(nv.data);
	if (complete) {
		log_warn("VM %s: backup in %s kept (its checkpoint's merge failed)", def->name,
			 dir);
		free(src);
		free(dst);
		return ret;
	}
fail:
	for (unsigned i = 0; i < copied; i++)
		unlink(dst[i]);
	snprintf(sub, sizeof(sub), "%s/" BACKUP_NVRAM_FILE, dir);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/" BACKUP_NVRAM_DIR, dir);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/disks", dir);
	rmdir(sub);
	rmdir(dir);
	free(src);
	free(dst);
	return ret;
}
