/* SPDX-License-Identifier: Apache-2.0 */
/* The permission rule for every file a worker receives (file_mode.h). */
#include "daemon/file_mode.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/error.h"

int file_mode_check(mode_t mode, bool writes, const char *what, const char *path, char *err,
		    size_t errlen)
{
	unsigned perm = (unsigned)(mode & 07777);

	if (mode & S_IWOTH) {
		error_set(err, errlen,
			  "%s %s is writable by every user (mode %04o): another VM's worker could "
			  "change it; take that away with 'chmod o-w %s'",
			  what, path, perm, path);
		return -EINVAL;
	}
	if (writes && (mode & S_IROTH)) {
		error_set(err, errlen,
			  "%s %s is readable by every user (mode %04o) and the VM writes it: "
			  "another VM's worker could read it; take that away with 'chmod o-r %s'%s",
			  what, path, perm, path,
			  strcmp(what, "disk") ? "" : ", or attach it read-only");
		return -EINVAL;
	}
	return 0;
}

int file_mode_check_fd(int fd, bool writes, const char *what, const char *path, char *err,
		       size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st)) {
		int e = -errno;

		error_set(err, errlen, "%s %s: cannot read its mode: %s", what, path, strerror(-e));
		return e;
	}
	return file_mode_check(st.st_mode, writes, what, path, err, errlen);
}
