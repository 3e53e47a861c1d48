/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the formats. Internal to src/disk. */
#ifndef KEEL_DISK_DISK_INTERNAL_H
#define KEEL_DISK_DISK_INTERNAL_H

#include <stdbool.h>

#include "disk/disk.h"

/*
 * Takes the advisory lock that keeps a writer apart from everyone else (flock: shared for
 * readers, exclusive for a writer), unless flags has DISK_OPEN_NOLOCK.
 */
int disk_lock_fd(int fd, const char *path, bool rdonly, unsigned flags, struct disk_err *err)
	__attribute__((warn_unused_result));

/* A failure's reason: logged (one line, lib/log.h) and, when err is not NULL, written into
 * it, so that the caller can say why (the API, keel-vmm's messages). */
void disk_fail(struct disk_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A public entry point's first step: err (if any) holds no reason yet. */
void disk_err_clear(struct disk_err *err);

#endif
