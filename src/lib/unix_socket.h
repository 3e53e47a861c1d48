/* SPDX-License-Identifier: Apache-2.0 */
/* Unix stream sockets by path: the one place that fills sockaddr_un. */
#ifndef KEEL_LIB_UNIX_SOCKET_H
#define KEEL_LIB_UNIX_SOCKET_H

/*
 * Listen on path (non-blocking, close-on-exec). A socket file left by a process that
 * died is replaced; a live one gives -EADDRINUSE; any other file at path gives -EEXIST;
 * a path too long for sockaddr_un gives -ENAMETOOLONG. Returns the fd or -errno.
 */
int unix_listen(const char *path, int backlog) __attribute__((warn_unused_result));

#include <sys/types.h>

/*
 * For a process that serves path but may not bind it (a jailed keel-vmm, whose keeld makes
 * its sockets): bind path as unix_listen does, give it mode and group gid ((gid_t)-1: keep
 * the caller's) and return the socket without listening, so that a connect is refused until
 * the server listens (unix_listen_on). The fd or -errno (nothing left at path on failure).
 */
int unix_bind_for(const char *path, mode_t mode, gid_t gid) __attribute__((warn_unused_result));
/* Whether fd is a Unix stream socket bound to exactly path: 0, -EPROTOTYPE (not a Unix
 * stream socket), -EADDRNOTAVAIL (bound elsewhere or not bound) or another -errno. */
int unix_bound_to(int fd, const char *path) __attribute__((warn_unused_result));
/* Listen on fd, a socket bound to path (unix_bind_for, unix_bound_to), non-blocking from now
 * on: fd, or -errno with fd closed. Listening again only changes the backlog. */
int unix_listen_on(int fd, const char *path, int backlog) __attribute__((warn_unused_result));

/* Connect to path (blocking, close-on-exec). Returns the fd or -errno. */
int unix_connect(const char *path) __attribute__((warn_unused_result));
/* Connect to path without waiting (non-blocking, close-on-exec), as a device does for its
 * guest: the fd, or -errno (-EAGAIN when the listener's backlog is full). */
int unix_connect_now(const char *path) __attribute__((warn_unused_result));
/* The same, giving up with -ETIMEDOUT after timeout_ms: a listener that accepts nothing (a
 * stopped process, whose backlog is full) cannot hold the caller forever. */
int unix_connect_timeout(const char *path, int timeout_ms) __attribute__((warn_unused_result));

#include <stddef.h>

/* The most descriptors unix_send_fds sends and unix_recv_fds takes in one call. */
#define UNIX_MAX_FDS 64

/* send(2) of buf with fds (nfd <= UNIX_MAX_FDS, 0 for none) as SCM_RIGHTS; flags as send's
 * (MSG_NOSIGNAL is added). The bytes sent, or -1 with errno. */
ssize_t unix_send_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfd, int flags)
	__attribute__((warn_unused_result));
/* recv(2) into buf taking descriptors that come along (close-on-exec): the first max - *nfds
 * go to fds + *nfds (*nfds grows), the rest are closed. The bytes read, or -1 with errno. */
ssize_t unix_recv_fds(int sock, void *buf, size_t len, int *fds, size_t max, size_t *nfds,
		      int flags) __attribute__((warn_unused_result));

#endif
