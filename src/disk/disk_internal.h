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

/*
 * Opens path (oflags: O_RDONLY or O_RDWR) for a disk, never waiting and never taking a
 * controlling terminal: only a regular file, or a block device when blk_ok. The type is looked
 * at before the file is opened (O_PATH: opening a FIFO blocks, opening some devices acts), and
 * checked again on what was opened; O_NONBLOCK is dropped once it is known to be such a file.
 * The fd, or -errno with why (one phrase: "No such file or directory", "it is a FIFO, not a
 * regular file"); -EINVAL when the file is of another type. Logs nothing (the caller says).
 */
int disk_open_file(const char *path, int oflags, bool blk_ok, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/* A failure's reason: logged (one line, lib/log.h) and, when err is not NULL, written into
 * it, so that the caller can say why (the API, keel-vmm's messages). */
void disk_fail(struct disk_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A public entry point's first step: err (if any) holds no reason yet. */
void disk_err_clear(struct disk_err *err);

#endif
