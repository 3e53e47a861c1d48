/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the formats. Internal to src/disk. */
#ifndef KEEL_DISK_DISK_INTERNAL_H
#define KEEL_DISK_DISK_INTERNAL_H

#include <stdbool.h>

/*
 * Takes the advisory lock that keeps a writer apart from everyone else (flock: shared for
 * readers, exclusive for a writer), unless flags has DISK_OPEN_NOLOCK.
 */
int disk_lock_fd(int fd, const char *path, bool rdonly, unsigned flags)
	__attribute__((warn_unused_result));

#endif
