/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which uids of the workers' range some process runs as (docs/security.md): keeld hands a
 * worker no uid or gid that any process on the host has, not only its own workers, so a
 * leftover process (an earlier keeld's worker it lost track of, anything an administrator
 * started as that uid) can never reach the new VM's files or signal its worker.
 */
#ifndef KEEL_DAEMON_UID_SCAN_H
#define KEEL_DAEMON_UID_SCAN_H

#include <sys/types.h>

/*
 * Set bit i of used (a bitmap of n bits, zeroed by the caller) for each uid first + i that a
 * process under proc (a procfs mount: "/proc") has as a real, effective, saved or file-system
 * uid or gid, from each /proc/PID/status and each of its threads' /proc/PID/task/TID/status
(the kernel's word). A process that ends while it is
 * read is skipped. Returns how many processes were read, or -errno when proc cannot be
 * listed.
 */
int uid_scan(const char *proc, uid_t first, unsigned n, unsigned char *used)
	__attribute__((warn_unused_result));

#endif
