/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a jailed worker opens while it is still root, for use once it has become its own uid
 * inside its root (jail.h, docs/security.md): the sockets it serves at paths in its VM's
 * directory (which its uid may not write: keeld binds them and passes them, and the worker
 * only listens; a jailed worker run without them binds them here), files named by
 * host path (a saved state to carry on from, the UEFI variable store's template) and a
 * disk's descriptor again with O_DIRECT (through /proc, which the jail has not). The code
 * that would open one takes it with jail_listen, jail_open or jail_reopen; with nothing
 * prepared (keel-vmm not jailed, or a restore through the control socket) those open it as
 * they always did. So the worker parses no file it was handed (disks, saved state, NVRAM)
 * before it gives up root.
 */
#ifndef KEEL_VMM_JAIL_PREP_H
#define KEEL_VMM_JAIL_PREP_H

#include <sys/types.h>

/* Before jail_enter: listen on PATH, on GIVEN (a socket keeld bound there and passed:
 * unix_listen_on) or, GIVEN -1, on a socket bound here (unix_listen); a failure is kept for
 * the taker. With jail_listen, the one way a worker gets a socket it serves. */
void jail_prep_listen(const char *path, int given, int backlog);

/* Before jail_enter: open PATH with FLAGS (and MODE, for O_CREAT); a failure is kept, and a
 * directory is one (EISDIR). */
void jail_prep_open(const char *path, int flags, mode_t mode);

/* FD, a file keeld opened and passed (--fd), for PATH and FLAGS: what jail_open(PATH, FLAGS)
 * then gives, as if prepared here (a directory is refused, EISDIR, as jail_prep_open's). So
 * a file the worker reads has one way in, whoever opened it. */
void jail_prep_give(const char *path, int flags, int fd);

/* Before jail_enter: open FD's file again with FLAGS, through /proc/self/fd. */
void jail_prep_reopen(int fd, int flags);

/* The socket prepared for PATH, or unix_listen(PATH, BACKLOG): a descriptor or -errno. */
int jail_listen(const char *path, int backlog) __attribute__((warn_unused_result));

/* The file prepared for PATH and FLAGS, or open(PATH, FLAGS, MODE): as open(2) returns. */
int jail_open(const char *path, int flags, mode_t mode) __attribute__((warn_unused_result));

/* FD's file prepared again with FLAGS (the same file: device and inode), or opened through
 * /proc/self/fd: as open(2) returns. */
int jail_reopen(int fd, int flags) __attribute__((warn_unused_result));

/* Close what was prepared and not taken (before the first guest instruction). */
void jail_prep_close(void);

#endif
