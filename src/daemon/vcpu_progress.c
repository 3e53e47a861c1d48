/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vcpu_progress.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A small /proc file (comm, schedstat) into buf, NUL-terminated. Its length, or -errno. */
static ssize_t read_small(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

int vcpu_run_ns(const char *procdir, pid_t pid, uint64_t *ns)
{
	char path[256], buf[128];
	unsigned found = 0;
	struct dirent *d;
	DIR *dir;

	*ns = 0;
	if (pid <= 0)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/%d/task", procdir, (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		int tfd;
		char *end;
		uint64_t v;

		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		tfd = openat(dirfd(dir), d->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tfd < 0)
			continue; /* the thread ended meanwhile */
		if (read_small(tfd, "comm", buf, sizeof(buf)) > 0 && !strncmp(buf, "vcpu", 4) &&
		    buf[4] >= '0' && buf[4] <= '9' &&
		    read_small(tfd, "schedstat", buf, sizeof(buf)) > 0) {
			errno = 0;
			v = strtoull(buf, &end, 10);
			if (!errno && end != buf) {
				*ns += v;
				found++;
			}
		}
		close(tfd);
	}
	closedir(dir);
	return found ? 0 : -ENOENT;
}
