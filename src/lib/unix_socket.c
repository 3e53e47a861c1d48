/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/unix_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* A stream socket with flags (SOCK_NONBLOCK or 0) connected to path once: the fd or -errno. */
static int connect_once(const char *path, int flags)
{
	struct sockaddr_un sa;
	int fd, r = unix_addr(path, &sa);

	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int unix_connect(const char *path)
{
	return connect_once(path, 0);
}

int unix_connect_now(const char *path)
{
	return connect_once(path, SOCK_NONBLOCK);
}

int unix_connect_timeout(const char *path, int timeout_ms)
{
	struct sockaddr_un sa;
	struct timespec start, now, nap = {0, 5 * 1000000};
	int fd, r = unix_addr(path, &sa);

	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	clock_gettime(CLOCK_MONOTONIC, &start);
	/* A Unix socket connects at once or, with the listener's backlog full, says EAGAIN. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		long long ms;

		if (errno != EAGAIN && errno != EINTR) {
			r = -errno;
			close(fd);
			return r;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms >= timeout_ms) {
			close(fd);
			return -ETIMEDOUT;
		}
		nanosleep(&nap, NULL);
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* A socket bound to path, not yet listening (so a connect is refused until it listens): a
 * socket file left by a process that died is replaced first. The fd or -errno. */
static int bind_path(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r = unix_addr(path, &sa);

	if (r)
		return r;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		fd = unix_connect(path);
		if (fd >= 0) {
			close(fd);
			return -EADDRINUSE;
		}
		unlink(path); /* nobody listens: left over from a process that died */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int unix_listen(const char *path, int backlog)
{
	int fd = bind_path(path);

	return fd < 0 ? fd : unix_listen_on(fd, path, backlog);
}

int unix_bind_for(const char *path, mode_t mode, gid_t gid)
{
	int fd = bind_path(path), r;

	if (fd < 0)
		return fd;
	/* Nothing can connect before the mode is right: the socket does not listen yet. */
	if ((gid != (gid_t)-1 && lchown(path, (uid_t)-1, gid) < 0) || chmod(path, mode) < 0) {
		r = -errno;
		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

int unix_bound_to(int fd, const char *path)
{
	struct sockaddr_un sa, want;
	socklen_t len = sizeof(sa);
	int type = 0, r = unix_addr(path, &want);
	socklen_t tlen = sizeof(type);

	if (r)
		return r;
	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	if (sa.sun_family != AF_UNIX || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
	    type != SOCK_STREAM)
		return -EPROTOTYPE;
	if (len <= offsetof(struct sockaddr_un, sun_path) ||
	    strncmp(sa.sun_path, want.sun_path, sizeof(sa.sun_path)))
		return -EADDRNOTAVAIL;
	return 0;
}

int unix_listen_on(int fd, const char *path, int backlog)
{
	int r = unix_bound_to(fd, path);

	if (!r &&
	    (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 || listen(fd, backlog) < 0))
		r = -errno;
	if (r)
		close(fd);
	return r ? r : fd;
}

ssize_t unix_send_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfd, int flags)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(UNIX_MAX_FDS * sizeof(int))];
	} u;
	struct iovec iov = {(void *)buf, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	if (nfd > UNIX_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	if (!nfd)
		return send(sock, buf, len, flags | MSG_NOSIGNAL);
	memset(&u, 0, sizeof(u));
	msg.msg_control = u.buf;
	msg.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	return sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
}

ssize_t unix_recv_fds(int sock, void *buf, size_t len, int *fds, size_t max, size_t *nfds,
		      int flags)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(UNIX_MAX_FDS * sizeof(int))];
	} u;
	struct iovec iov = {buf, len};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);

	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < max)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	return n;
}
