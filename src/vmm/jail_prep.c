/* SPDX-License-Identifier: Apache-2.0 */
/* Descriptors a jailed worker opens while root for use inside its jail (jail_prep.h). */
#include "vmm/jail_prep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/unix_socket.h"

enum prep_kind { PREP_LISTEN, PREP_OPEN, PREP_REOPEN };

/* A handful per VM: the control, serial, console and vsock sockets, two saved-state files, the
 * NVRAM template, one O_DIRECT descriptor per disk. */
#define PREP_MAX 64

static struct prep {
	enum prep_kind kind;
	char *path; /* PREP_LISTEN, PREP_OPEN */
	dev_t dev;  /* PREP_REOPEN: the file */
	ino_t ino;
	int flags;
	int fd; /* or -errno */
	bool taken;
} preps[PREP_MAX];
static unsigned nprep;

static void prep_add(enum prep_kind kind, const char *path, const struct stat *st, int flags,
		     int fd)
{
	struct prep *p;

	if (nprep == PREP_MAX) {
		/* Not prepared: the taker opens it itself, and inside the jail that fails with
		 * a message naming the file. */
		if (fd >= 0)
			close(fd);
		return;
	}
	p = &preps[nprep];
	*p = (struct prep){.kind = kind, .flags = flags, .fd = fd};
	if (path) {
		p->path = strdup(path);
		if (!p->path) {
			if (fd >= 0)
				close(fd);
			return;
		}
	}
	if (st) {
		p->dev = st->st_dev;
		p->ino = st->st_ino;
	}
	nprep++;
}

void jail_prep_listen(const char *path, int given, int backlog)
{
	prep_add(PREP_LISTEN, path, NULL, 0,
		 given >= 0 ? unix_listen_on(given, path, backlog) : unix_listen(path, backlog));
}

/* Never a directory of the host's into the jail: ".." from it would climb past the jail's
 * root (a saved state's "state" that is a directory is an error anyway). */
void jail_prep_give(const char *path, int flags, int fd)
{
	struct stat st;

	if (fd >= 0 && (fstat(fd, &st) || S_ISDIR(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = EISDIR;
	}
	prep_add(PREP_OPEN, path, NULL, flags, fd < 0 ? -errno : fd);
}

void jail_prep_open(const char *path, int flags, mode_t mode)
{
	jail_prep_give(path, flags, open(path, flags, mode));
}

static int proc_reopen(int fd, int flags)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	return open(p, flags);
}

void jail_prep_reopen(int fd, int flags)
{
	struct stat st;
	int nfd;

	if (fstat(fd, &st))
		return;
	nfd = proc_reopen(fd, flags);
	prep_add(PREP_REOPEN, NULL, &st, flags, nfd < 0 ? -errno : nfd);
}

/* The untaken entry of KIND for PATH (or the file ST) and FLAGS, taken now; or NULL. */
static struct prep *prep_take(enum prep_kind kind, const char *path, const struct stat *st,
			      int flags)
{
	for (unsigned i = 0; i < nprep; i++) {
		struct prep *p = &preps[i];

		if (p->taken || p->kind != kind || p->flags != flags)
			continue;
		if (path ? strcmp(p->path, path) : (p->dev != st->st_dev || p->ino != st->st_ino))
			continue;
		p->taken = true;
		return p;
	}
	return NULL;
}

/* A prepared result as open(2) gives it. */
static int prep_result(const struct prep *p)
{
	if (p->fd >= 0)
		return p->fd;
	errno = -p->fd;
	return -1;
}

int jail_listen(const char *path, int backlog)
{
	struct prep *p = prep_take(PREP_LISTEN, path, NULL, 0);

	return p ? p->fd : unix_listen(path, backlog);
}

int jail_open(const char *path, int flags, mode_t mode)
{
	struct prep *p = prep_take(PREP_OPEN, path, NULL, flags);

	return p ? prep_result(p) : open(path, flags, mode);
}

int jail_reopen(int fd, int flags)
{
	struct stat st;
	struct prep *p;

	if (fstat(fd, &st))
		return -1;
	p = prep_take(PREP_REOPEN, NULL, &st, flags);
	return p ? prep_result(p) : proc_reopen(fd, flags);
}

void jail_prep_close(void)
{
	for (unsigned i = 0; i < nprep; i++) {
		if (!preps[i].taken && preps[i].fd >= 0)
			close(preps[i].fd);
		free(preps[i].path);
	}
	nprep = 0;
}
