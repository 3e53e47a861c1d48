/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The files of a VM that boots through firmware, opened by keeld and passed to its worker
 * (docs/firmware.md): the firmware image (--fd firmware=N) and, for Generation 2, the
 * directory of the VM's UEFI variable store (--fd nvram=N). The store is
 * STATE_DIR/vms/UUID/nvram/OVMF_VARS.fd, created here from Debian's template on first use
 * (written to a new file, fsync, rename, fsync of the directory) and checked before every
 * start; the worker, jailed, reads it and replaces it by rename inside that directory only,
 * which keeld gives it for the worker's life and takes back after (sup_nvram_take_back).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/pools.h"
#include "daemon/sup_internal.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/uefi_store.h"

#define NVRAM_DIR  "nvram"
#define NVRAM_FILE "OVMF_VARS.fd"
#define NVRAM_NEW  NVRAM_FILE ".new"

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
			error_set(err, errlen,
				  "%s's firmware file %s is missing: install Debian's '%s' package",
				  vmdef_boot_source(def), path,
				  def->firmware == VM_FIRMWARE_BIOS ? VMDEF_SEABIOS_PKG
								    : VMDEF_OVMF_PKG);
		else
			error_set(err, errlen, "firmware file %s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		error_set(err, errlen, "firmware file %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* The whole file at fd, checked as a variable store; what names it in messages. */
static int read_store(int fd, const char *what, uint8_t **data, size_t *size, char *err,
		      size_t errlen)
{
	struct stat st;
	const char *why;

	*data = NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < UEFI_STORE_MIN_SIZE ||
	    st.st_size > UEFI_STORE_MAX_SIZE) {
		error_set(err, errlen, "NVRAM file %s: %s", what,
			  uefi_store_check((const uint8_t *)"", 0));
		return -EINVAL;
	}
	*size = (size_t)st.st_size;
	*data = malloc(*size);
	if (!*data)
		return -ENOMEM;
	if (pread(fd, *data, *size, 0) != (ssize_t)*size) {
		error_set(err, errlen, "NVRAM file %s: cannot read it", what);
		free(*data);
		*data = NULL;
		return -EIO;
	}
	why = uefi_store_check(*data, *size);
	if (why) {
		error_set(err, errlen, "NVRAM file %s: %s", what, why);
		free(*data);
		*data = NULL;
		return -EINVAL;
	}
	return 0;
}

/* A new store from Debian's template, in place crash-safely. */
static int create_store(int dirfd, const char *shown, char *err, size_t errlen)
{
	int fd = open(VMDEF_OVMF_VARS_FILE, O_RDONLY | O_CLOEXEC | O_NONBLOCK), out, r;
	uint8_t *data;
	size_t size;

	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			error_set(err, errlen,
				  "UEFI variable store template %s is missing: install Debian's "
				  "'%s' package",
				  VMDEF_OVMF_VARS_FILE, VMDEF_OVMF_PKG);
		else
			error_set(err, errlen, "%s: %s", VMDEF_OVMF_VARS_FILE, strerror(-r));
		return r;
	}
	r = read_store(fd, VMDEF_OVMF_VARS_FILE, &data, &size, err, errlen);
	close(fd);
	if (r)
		return r;
	unlinkat(dirfd, NVRAM_NEW, 0);
	out = openat(dirfd, NVRAM_NEW, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	r = out < 0 ? -errno : 0;
	if (!r && (write(out, data, size) != (ssize_t)size || fsync(out)))
		r = -EIO;
	if (out >= 0)
		close(out);
	if (!r && (renameat(dirfd, NVRAM_NEW, dirfd, NVRAM_FILE) || fsync(dirfd)))
		r = -errno;
	if (r) {
		unlinkat(dirfd, NVRAM_NEW, 0);
		error_set(err, errlen, "NVRAM file %s: cannot create it: %s", shown, strerror(-r));
	}
	free(data);
	return r;
}

int sup_nvram_open(struct sup *sup, const struct sup_vm *vm, const struct vm_def *def, char *err,
		   size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX];
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
	if (fd < 0) {
		r = -errno;
		error_set(err, errlen, "NVRAM file %s: %s", path, strerror(-r));
		goto fail;
	}
	r = read_store(fd, path, &data, &size, err, errlen);
	free(data);
	/* The jailed worker reads the store and replaces it inside this directory only. */
	if (!r && vm->jail_uid &&
	    (fchown(fd, vm->jail_uid, vm->jail_uid) || fchown(dirfd, vm->jail_uid, vm->jail_uid))) {
		r = -errno;
		error_set(err, errlen, "cannot give %s to the worker: %s", dir, strerror(-r));
	}
	close(fd);
	if (r)
		goto fail;
	return dirfd;
fail:
	close(dirfd);
	return r;
}

void sup_nvram_take_back(struct sup *sup, const struct sup_vm *vm)
{
	char dir[PATH_MAX];
	int dirfd, fd;

	if (sup_path(sup, vm->uuid, NVRAM_DIR, dir, sizeof(dir)))
		return;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return;
	if (fchown(dirfd, 0, 0) || fchmod(dirfd, 0700))
		log_warn("VM %s: cannot take %s back from its worker: %s", vm->name, dir,
			 strerror(errno));
	/* A save the worker did not finish; the store itself is root's again. */
	unlinkat(dirfd, NVRAM_NEW, 0);
	fd = openat(dirfd, NVRAM_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		if (fchown(fd, 0, 0) || fchmod(fd, 0600))
			log_warn("VM %s: cannot take %s/%s back: %s", vm->name, dir, NVRAM_FILE,
				 strerror(errno));
		close(fd);
	}
	close(dirfd);
}

void sup_nvram_remove(struct sup *sup, const char *uuid)
{
	char path[PATH_MAX];

	if (!sup_path(sup, uuid, NVRAM_DIR "/" NVRAM_NEW, path, sizeof(path)))
		unlink(path);
	if (!sup_nvram_path(sup, uuid, path, sizeof(path)))
		unlink(path);
	if (!sup_path(sup, uuid, NVRAM_DIR, path, sizeof(path)))
		rmdir(path);
}
