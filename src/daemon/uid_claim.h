/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A worker uid claimed atomically across processes (docs/security.md): keeld and the lab's
 * launcher (tests/lab/jailrun.c) both hand workers uids of the same range, each scanning /proc
 * for the uids in use (uid_scan.h). A uid picked but not yet taken by its worker is in no
 * /proc/PID/status, so two scans at once could pick the same one. A claim closes that gap:
 *
 *   - the scan and the pick run under an exclusive flock of one lock file, so no two run at
 *     once on the host;
 *   - the uid picked is then held as a write lock on the lock file's byte number uid
 *     (an open file description lock, F_OFD_SETLK), through a descriptor of its own, until
 *     that descriptor is closed: its holder closes it once the worker that runs as the uid
 *     has ended. A pick skips every uid another descriptor holds, so a uid is claimed by one
 *     holder at a time, also while its worker has not yet taken it.
 *
 * The lock goes with the holder's process: a keeld that dies releases its claims, and the
 * workers still running keep their uids in /proc, which the next scan sees.
 */
#ifndef KEEL_DAEMON_UID_CLAIM_H
#define KEEL_DAEMON_UID_CLAIM_H

#include <stdbool.h>
#include <sys/types.h>

/* The host's one lock file for the workers' uids (keeld's run directory, made when missing). */
#define UID_CLAIM_LOCK "/run/keel/worker-uids.lock"
/* How long a claim waits for the lock file's flock (held only for a scan of /proc). */
#define UID_CLAIM_WAIT_MS 5000

/*
 * Claim a uid of [first, first + n) (n >= 1, first + n - 1 <= 0xfffffffe): the lowest that no
 * process under proc (uid_scan) runs as, that taken (when not NULL) does not call taken for
 * arg, and that no other claim holds. On success *uid is the uid and *fd the descriptor that
 * holds it (O_CLOEXEC; close it to let the uid go). Returns 0; -EAGAIN when every uid of the
 * range is taken; -EBUSY with *step "flock" when another process held the lock file's flock
 * for UID_CLAIM_WAIT_MS (a stopped holder never hangs the caller); or -errno of what failed,
 * and then *step names it ("open", "flock", "scan /proc", "lock"), for the caller's
 * message. lock_path's directory is made (0755) when missing; the file is made 0600.
 */
int uid_claim(const char *lock_path, const char *proc, uid_t first, unsigned n,
	      bool (*taken)(uid_t uid, void *arg), void *arg, uid_t *uid, int *fd,
	      const char **step) __attribute__((warn_unused_result));

/*
 * Hold uid (one a worker already runs as: keeld re-attached to it) as a claim does. Returns
 * 0 and the descriptor in *fd, -EBUSY when another holds it, or -errno.
 */
int uid_claim_hold(const char *lock_path, uid_t uid, int *fd) __attribute__((warn_unused_result));

#endif
