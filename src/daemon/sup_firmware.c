/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The files of a VM that boots through firmware, opened by keeld and passed to its worker
 * (docs/firmware.md): the firmware image (--fd firmware=N) and, for Generation 2, the
 * directory of the VM's UEFI variable store (--fd nvram=N). The store is
 * STATE_DIR/vms/UUID/nvram/OVMF_VARS.fd, created here from Debian's template on first use
 * (lib/uefi_store.c: a new file, fsync, rename, fsync of the directory) and checked before
 * every start; one that is not a store is set aside to vms/UUID/nvram.bad/ and replaced by
 * the template (the VM's log says so). The worker, jailed, reads it and replaces it by rename
 * inside that directory only, which keeld gives it for the worker's life (or until a start
 * fails) and takes back after: root's again, everything but the store removed
 * (sup_nvram_take_back). Deleting the VM removes both directories whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/pools.h"
#include "daemon/sup_internal.h"
#include "daemon/file_mode.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/uefi_store.h"

#define NVRAM_DIR  "nvram"
#define NVRAM_FILE "OVMF_VARS.fd"
#define NVRAM_NEW  NVRAM_FILE ".new"
#define NVRAM_BAD  "nvram.bad" /* stores found not to be one, set aside (move_aside) */

int sup_nvram_path(const struct sup *sup, const char *uuid, char *buf, size_t size)
{
	return sup_path(sup, uuid, NVRAM_DIR "/" NVRAM_FILE, buf, size);
}

int sup_firmware_open(struct sup *sup, const struct vm_def *def, char *err, size_t errlen)
{
	const char *path = vmdef_firmware_file(def);
	struct stat st;
	int fd;

	/* Another image than Debian's comes from a storage pool, as disks do. */
	if (def->firmware_file)
		return pools_open(sup->cfg.store, "firmware file", path, O_RDONLY, false, err,
				  errlen);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT)
			vmdef_firmware_missing(def, err, errlen);
		else
			error_set(err, errlen, "firmware file %s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		error_set(err, errlen, "firmware file %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	/* The system's image too: not one every user (another VM's worker) may change. */
	if (file_mode_check(st.st_mode, false, "firmware file", path, err, errlen)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* A new store from Debian's template, in place crash-safely. */
static int create_store(int dirfd, const char *shown, char *err, size_t errlen)
{
	int fd = open(VMDEF_OVMF_VARS_FILE, O_RDONLY | O_CLOEXEC | O_NONBLOCK), r;
	uint8_t *data;
	size_t size;

	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			vmdef_vars_template_missing(err, errlen);
		else
			error_set(err, errlen, "%s: %s", VMDEF_OVMF_VARS_FILE, strerror(-r));
		return r;
	}
	r = uefi_store_read(fd, VMDEF_OVMF_VARS_FILE, &data, &size, err, errlen);
	close(fd);
	if (r)
		return r;
	r = uefi_store_write(dirfd, NVRAM_FILE, NVRAM_NEW, data, size);
	if (r)
		error_set(err, errlen, "NVRAM file %s: cannot create it: %s", shown, strerror(-r));
	free(data);
	return r;
}

/* A store that is not one (written by a worker keeld no longer trusts, or damaged) goes to
 * the VM's NVRAM_BAD directory, root's and never the worker's, named by the time; the VM gets
 * a new store from the template. 0, or -errno with err. */
static int move_aside(struct sup *sup, const struct sup_vm *vm, int dirfd, const char *path,
		      const char *why, char *err, size_t errlen)
{
	char bad[PATH_MAX], name[64];
	time_t now = time(NULL);
	struct tm tm;
	int bfd, r = 0;

	if (sup_path(sup, vm->uuid, NVRAM_BAD, bad, sizeof(bad)))
		return -ENAMETOOLONG;
	if (mkdir(bad, 0700) < 0 && errno != EEXIST)
		r = -errno;
	bfd = r ? -1 : open(bad, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (!r && bfd < 0)
		r = -errno;
	gmtime_r(&now, &tm);
	strftime(name, sizeof(name), NVRAM_FILE ".%Y%m%dT%H%M%SZ", &tm);
	if (!r && (renameat(dirfd, NVRAM_FILE, bfd, name) || fsync(bfd) || fsync(dirfd)))
		r = -errno;
	if (bfd >= 0)
		close(bfd);
	if (r) {
		error_set(err, errlen, "%s; it cannot be moved aside to %s: %s", why, bad,
			  strerror(-r));
		return r;
	}
	log_warn("VM %s: %s: moved to %s/%s, a new store made from %s", vm->name, why, bad, name,
		 VMDEF_OVMF_VARS_FILE);
	sup_vm_log(sup, vm,
		   "%s: moved to %s/%s; the VM starts with a new store from %s (its UEFI "
		   "variables, boot entries among them, are the template's)",
		   why, bad, name, VMDEF_OVMF_VARS_FILE);
	return create_store(dirfd, path, err, errlen);
}

int sup_nvram_open(struct sup *sup, const struct sup_vm *vm, const struct vm_def *def, char *err,
		   size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX], why[PATH_MAX + 200];
	uint8_t *data = NULL;
	size_t size;
	int dirfd, fd, r;

	if (sup_path(sup, def->uuid, NVRAM_DIR, dir, sizeof(dir)) ||
	    sup_nvram_path(sup, def->uuid, path, sizeof(path)))
		return -ENAMETOOLONG;
	/* keeld chose the store's place; the description says the same (api.c). */
	if (!def->nvram || strcmp(def->nvram, path)) {
		error_set(err, errlen, "NVRAM file %s: keeld keeps the store at %s",
			  def->nvram ? def->nvram : "(none)", path);
		return -EINVAL;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		error_set(err, errlen, "cannot create %s: %s", dir, strerror(-r));
		return r;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0) {
		r = -errno;
		error_set(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	fd = openat(dirfd, NVRAM_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		r = create_store(dirfd, path, err, errlen);
		if (r)
			goto fail;
		fd = openat(dirfd, NVRAM_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	}
	if (fd < 0 && errno == ELOOP) {
		r = -EINVAL;
		snprintf(why, sizeof(why), "NVRAM file %s: is a symbolic link", path);
	} else if (fd < 0) {
		r = -errno;
		error_set(err, errlen, "NVRAM file %s: %s", path, strerror(-r));
		goto fail;
	} else {
		r = uefi_store_read(fd, path, &data, &size, why, sizeof(why));
		free(data);
		close(fd);
	}
	/* Not a store: set aside, the VM starts with a new one (a guest must not make its VM
	 * unstartable; keel-vmm saves only valid stores, this is for anything else). */
	if (r == -EINVAL) {
		r = move_aside(sup, vm, dirfd, path, why, err, errlen);
		if (r)
			goto fail;
	} else if (r) {
		error_set(err, errlen, "%s", why);
		goto fail;
	}
	/* The jailed worker reads the store and replaces it inside this directory only; the
	 * directory first, so that a failure leaves nothing of the worker's in a directory
	 * that is root's (sup_nvram_take_back sweeps only a directory it finds given). */
	if (vm->jail_uid) {
		fd = openat(dirfd, NVRAM_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		/* Its alone, whatever was done to it meanwhile: the VM writes the store, so no
		 * other user (another VM's worker) may read or write it (file_mode.h). */
		if (fd < 0 || fchown(dirfd, vm->jail_uid, vm->jail_uid) || fchmod(dirfd, 0700) ||
		    fchown(fd, vm->jail_uid, vm->jail_uid) || fchmod(fd, 0600)) {
			r = -errno;
			error_set(err, errlen, "cannot give %s to the worker: %s", dir,
				  strerror(-r));
		}
		if (fd >= 0)
			close(fd);
		if (r)
			goto fail;
	}
	return dirfd;
fail:
	close(dirfd);
	return r;
}

int sup_nvram_read(struct sup *sup, const char *uuid, uint8_t **data, size_t *size, char *err,
		   size_t errlen)
{
	char path[PATH_MAX];
	int fd, r;

	*data = NULL;
	if (sup_nvram_path(sup, uuid, path, sizeof(path)))
		return -ENAMETOOLONG;
	/* The worker replaces the store by rename only: this open gets one whole version. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ELOOP ? -EINVAL : -errno;
		error_set(err, errlen, "NVRAM file %s: %s", path,
			  r == -EINVAL ? "is a symbolic link" : strerror(-r));
		return r;
	}
	r = uefi_store_read(fd, path, data, size, err, errlen);
	close(fd);
	return r;
}

int sup_nvram_install(struct sup *sup, const char *uuid, const uint8_t *data, size_t size,
		      char *err, size_t errlen)
{
	char vmdir[PATH_MAX], dir[PATH_MAX];
	int r;

	if (sup_vm_dir(sup, uuid, vmdir, sizeof(vmdir)) ||
	    sup_path(sup, uuid, NVRAM_DIR, dir, sizeof(dir)))
		return -ENAMETOOLONG;
	if (mkdir(vmdir, 0750) < 0 && errno != EEXIST) {
		r = -errno;
		error_set(err, errlen, "cannot create %s: %s", vmdir, strerror(-r));
		return r;
	}
	r = uefi_store_write_in(dir, 0700, NVRAM_FILE, NVRAM_NEW, data, size);
	if (r)
		error_set(err, errlen, "NVRAM file %s/%s: cannot write it: %s", dir, NVRAM_FILE,
			  strerror(-r));
	return r;
}

static bool nvram_name(const char *name)
{
	return !strcmp(name, NVRAM_FILE);
}

void sup_nvram_take_back(struct sup *sup, const struct sup_vm *vm)
{
	char dir[PATH_MAX];

	/* Root's again; only the store stays, a regular file with one link; whatever else the
	 * worker made there (its unfinished save among them) is removed. */
	if (!sup_path(sup, vm->uuid, NVRAM_DIR, dir, sizeof(dir)))
		sup_jail_take_dir_keep(dir, nvram_name);
}

void sup_nvram_remove(struct sup *sup, const char *uuid)
{
	char path[PATH_MAX];

	if (!sup_path(sup, uuid, NVRAM_DIR, path, sizeof(path)))
		sup_remove_tree(path);
	if (!sup_path(sup, uuid, NVRAM_BAD, path, sizeof(path)))
		sup_remove_tree(path);
}
