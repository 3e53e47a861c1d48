/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A new or changed VM's MAC addresses (create, change, import): each NIC without one gets a
 * new one that no VM uses, a MAC given must be no other VM's, and an adapter on a switch gets
 * its tap named after its MAC (vmdef_switch_tap); then the switches it names are checked
 * (switches_check_def).
 */
#ifndef KEEL_DAEMON_VM_MACS_H
#define KEEL_DAEMON_VM_MACS_H

#include <stddef.h>

#include "config/vmdef.h"
#include "daemon/store.h"

/* 0, -EEXIST (a MAC given is another VM's: err says which), -EIO (none free) or the
 * switches' -EINVAL, with err. */
int vm_macs_assign(struct store *st, struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
