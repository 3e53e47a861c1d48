/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The permission rule for every file a worker receives (docs/security.md, "Files every user
 * may open"): each worker runs as a uid of its own, and the host's "other" permission bits
 * are the ones that uid has on another VM's file. So keeld refuses, at attach and again at
 * every start (the mode may change meanwhile):
 *
 *   - any such file that every user may write (S_IWOTH): another VM's worker could change
 *     this VM's disk, or the medium, kernel or firmware it boots;
 *   - a file the VM writes (a disk or LUN attached read-write, the UEFI variable store) that
 *     every user may read (S_IROTH): another VM's worker could read this VM's data.
 *
 * A file the VM only reads may be readable by everyone: an ISO image (0644) that many VMs
 * share, Debian's firmware images, a kernel.
 */
#ifndef KEEL_DAEMON_FILE_MODE_H
#define KEEL_DAEMON_FILE_MODE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * 0 when a file of st_mode mode at path (what: "disk", "DVD image", ... for the message) is
 * one a worker may receive, opened for writing when writes; else -EINVAL with err saying the
 * path, the mode, why, and the chmod that fixes it.
 */
int file_mode_check(mode_t mode, bool writes, const char *what, const char *path, char *err,
		    size_t errlen) __attribute__((warn_unused_result));

/* The same for the file open on fd (its fstat; -errno with err when that fails). */
int file_mode_check_fd(int fd, bool writes, const char *what, const char *path, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

#endif
