/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What keeld decides about a disk when it is attached (create, or a change that lists it):
 * its format, pinned once and kept with the disk (docs/vm-config.md). The storage pools and
 * path policy of docs/security.md come here too.
 */
#ifndef KEEL_DAEMON_DISK_POLICY_H
#define KEEL_DAEMON_DISK_POLICY_H

#include <stddef.h>

#include "config/vmdef.h"

/*
 * Pin the format of every disk of nd: a disk old (the description before the change; NULL
 * at create) had at the same path keeps its format unless the request names one; any other
 * is taken from its name (*.vhdx, *.avhdx: VHDX; else raw) or from the request, and must
 * agree with the file: VHDX must open as VHDX, and a file the name calls raw that begins
 * with a VHDX header is refused, so that the administrator says which it is. The contents
 * of a disk already attached are never looked at again (the guest writes them). 0 or
 * -EINVAL with err naming the file and what to do.
 */
int disk_policy_pin_formats(struct vm_def *nd, const struct vm_def *old, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
