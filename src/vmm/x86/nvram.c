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

const char *nvram_check(const uint8_t *buf, size_t size)
{
	return uefi_store_check(buf, size);
}

/* The whole of a file into a new buffer, checked. */
static int read_store(int dirfd, const char *name, const char *shown, bool nofollow, uint8_t **data,
		      size_t *size, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO is refused below instead of blocking the open. */
	int fd = openat(dirfd, name,
			O_RDONLY | O_CLOEXEC | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
	struct stat st;
	const char *why;
	ssize_t got;

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
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > UEFI_STORE_MAX_SIZE ||
	    st.st_size < UEFI_STORE_MIN_SIZE) {
		snprintf(err, errlen, "NVRAM file %s: %s", shown,
			 nvram_check((const uint8_t *)"", 0));
		close(fd);
		return -EINVAL;
	}
	*data = malloc((size_t)st.st_size);
	if (!*data) {
		close(fd);
		snprintf(err, errlen, "NVRAM file %s: out of memory", shown);
		return -ENOMEM;
	}
	got = pread(fd, *data, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		snprintf(err, errlen, "NVRAM file %s: cannot read it", shown);
		free(*data);
		*data = NULL;
		return -EIO;
	}
	why = nvram_check(*data, (size_t)st.st_size);
	if (why) {
		snprintf(err, errlen, "NVRAM file %s: %s", shown, why);
		free(*data);
		*data = NULL;
		return -EINVAL;
	}
	*size = (size_t)st.st_size;
	return 0;
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

int nvram_save(const struct nvram *n, const uint8_t *data, size_t size)
{
	size_t done = 0;
	int fd, r = 0;

	/* A new file, never one found at the temporary name (a link there is not followed). */
	if (unlinkat(n->dirfd, n->tmpname, 0) && errno != ENOENT)
		return -errno;
	fd = openat(n->dirfd, n->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	while (done < size && !r) {
		ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);

		if (w < 0 && errno != EINTR)
			r = -errno;
		else if (w > 0)
			done += (size_t)w;
	}
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (!r && renameat(n->dirfd, n->tmpname, n->dirfd, n->name))
		r = -errno;
	if (!r && fsync(n->dirfd))
		r = -errno;
	return r;
}

void nvram_close(struct nvram *n)
{
	if (n->dirfd >= 0)
		close(n->dirfd);
	n->dirfd = -1;
}
