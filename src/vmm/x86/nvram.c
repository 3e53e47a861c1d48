/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/nvram.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/uefi_store.h"
#include "vmm/jail_prep.h"
#include "vmm/parse_euid.h"

const char *nvram_check(const uint8_t *buf, size_t size)
{
	return uefi_store_check(buf, size);
}

/* The whole of a file into a new buffer, checked. */
static int read_store(int dirfd, const char *name, const char *shown, bool nofollow, uint8_t **data,
		      size_t *size, char *err, size_t errlen)
{
	/* A template by its host path may have been opened before the jail (nvram_prepare). */
	int flags = NVRAM_READ_FLAGS | (nofollow ? O_NOFOLLOW : 0),
	    fd = dirfd == AT_FDCWD ? jail_open(name, flags, 0) : openat(dirfd, name, flags), r;

	if (fd < 0) {
		int e = errno;

		if (e == ELOOP && nofollow)
			snprintf(err, errlen,
				 "NVRAM file %s: is a symbolic link (saving would replace the "
				 "link): "
				 "give the file it points to",
				 shown);
		else
			snprintf(err, errlen, "NVRAM file %s: %s", shown, strerror(e));
		return -e;
	}
	parse_euid_note(PARSE_NVRAM);
	r = uefi_store_read(fd, shown, data, size, err, errlen);
	close(fd);
	return r;
}

int nvram_open(struct nvram *n, const char *path, int dirfd, const char *template, uint8_t **data,
	       size_t *size, char *err, size_t errlen)
{
	char dir[PATH_MAX], base[PATH_MAX];
	int r;

	n->dirfd = dirfd;
	if (strlen(path) >= sizeof(dir)) {
		snprintf(err, errlen, "NVRAM file %s: the path is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(dir, path);
	strcpy(base, path);
	if (strlen(basename(base)) + 5 > NAME_MAX) {
		snprintf(err, errlen, "NVRAM file %s: the name is too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(n->name, sizeof(n->name), "%s", basename(base));
	snprintf(n->tmpname, sizeof(n->tmpname), "%s.new", n->name);
	if (n->dirfd < 0)
		n->dirfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (n->dirfd < 0) {
		snprintf(err, errlen, "NVRAM file %s: its directory: %s", path, strerror(errno));
		return -errno;
	}
	/* The VM's own store is replaced by rename: a symbolic link there is refused. The
	 * template (opened this way when there is no file) may be one, as packages ship them. */
	if (faccessat(n->dirfd, n->name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return read_store(n->dirfd, n->name, path, strcmp(path, template) != 0, data, size,
				  err, errlen);
	if (errno != ENOENT) {
		snprintf(err, errlen, "NVRAM file %s: %s", path, strerror(errno));
		return -errno;
	}
	/* Missing: a new store from the template, saved the same crash-safe way. */
	r = read_store(AT_FDCWD, template, template, false, data, size, err, errlen);
	if (r)
		return r;
	r = nvram_save(n, *data, *size);
	if (r) {
		snprintf(err, errlen, "NVRAM file %s: cannot create it: %s", path, strerror(-r));
		free(*data);
		*data = NULL;
	}
	return r;
}

int nvram_read_template(const char *template, uint8_t **data, size_t *size, char *err,
			size_t errlen)
{
	return read_store(AT_FDCWD, template, template, false, data, size, err, errlen);
}

void nvram_prepare(const char *template)
{
	jail_prep_open(template, NVRAM_READ_FLAGS, 0);
}

void nvram_give(const char *template, int fd)
{
	jail_prep_give(template, NVRAM_READ_FLAGS, fd);
}

int nvram_save(const struct nvram *n, const uint8_t *data, size_t size)
{
	/* What the guest wrote is saved only when it is a store keeld will start the VM with
	 * again: else the last good file stays. */
	if (nvram_check(data, size))
		return -EINVAL;
	return uefi_store_write(n->dirfd, n->name, n->tmpname, data, size);
}

void nvram_close(struct nvram *n)
{
	if (n->dirfd >= 0)
		close(n->dirfd);
	n->dirfd = -1;
}
