/* SPDX-License-Identifier: Apache-2.0 */
/* A worker uid claimed atomically across processes (uid_claim.h). */
#include "daemon/uid_claim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/uid_scan.h"

/* A new open file description of the lock file (its directory made when missing). */
static int open_lock(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd >= 0 || errno != ENOENT || strlen(path) >= sizeof(dir))
		return fd < 0 ? -errno : fd;
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -ENOENT;
	*slash = '\0';
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* Byte uid of fd's file locked for writing by fd's description: 0, -EBUSY when another
 * description holds it, or -errno. */
static int lock_byte(int fd, uid_t uid)
{
	struct flock l = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)uid, .l_len = 1};

	if (!fcntl(fd, F_OFD_SETLK, &l))
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
}

int uid_claim_hold(const char *lock_path, uid_t uid, int *fd)
{
	int r, h = open_lock(lock_path);

	if (h < 0)
		return h;
	r = lock_byte(h, uid);
	if (r) {
		close(h);
		return r;
	}
	*fd = h;
	return 0;
}

/* Under the flock: the lowest free uid held through hold (a description of the lock file). */
static int pick(int hold, const char *proc, uid_t first, unsigned n,
		bool (*taken)(uid_t uid, void *arg), void *arg, uid_t *uid, const char **step)
{
	unsigned char *used = calloc(((size_t)n + 7) / 8, 1);
	int r;

	if (!used)
		return -ENOMEM;
	r = uid_scan(proc, first, n, used);
	if (r < 0) {
		*step = "scan /proc";
		goto out;
	}
	r = -EAGAIN;
	for (unsigned i = 0; i < n; i++) {
		uid_t u = first + i;

		if ((used[i / 8] & (1u << (i % 8))) || (taken && taken(u, arg)))
			continue;
		r = lock_byte(hold, u);
		if (r == -EBUSY) {
			r = -EAGAIN;
			continue; /* another holder's claim */
		}
		if (r)
			*step = "lock";
		else
			*uid = u;
		break;
	}
out:
	free(used);
	return r;
}

/* The flock of fd, tried every 10 ms for UID_CLAIM_WAIT_MS: keeld waits here with its
 * global lock held, so a holder that stopped (a lab launcher under a debugger, SIGSTOP) must
 * not hang it. 0, -EBUSY when it stayed held, or -errno. */
static int flock_bounded(int fd)
{
	const struct timespec tick = {.tv_nsec = 10 * 1000 * 1000};

	for (unsigned i = 0;; i++) {
		if (!flock(fd, LOCK_EX | LOCK_NB))
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (i >= UID_CLAIM_WAIT_MS / 10)
			return -EBUSY;
		nanosleep(&tick, NULL);
	}
}

int uid_claim(const char *lock_path, const char *proc, uid_t first, unsigned n,
	      bool (*taken)(uid_t uid, void *arg), void *arg, uid_t *uid, int *fd,
	      const char **step)
{
	int all, hold, r;

	*step = "open";
	all = open_lock(lock_path);
	if (all < 0)
		return all;
	hold = open_lock(lock_path);
	if (hold < 0) {
		close(all);
		return hold;
	}
	*step = "flock";
	r = flock_bounded(all);
	if (!r)
		r = pick(hold, proc, first, n, taken, arg, uid, step);
	close(all); /* the flock goes; the claim stays with hold */
	if (r) {
		close(hold);
		return r;
	}
	*fd = hold;
	return 0;
}
