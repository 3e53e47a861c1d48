/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Moving a running VM's network adapters to other switches (Hyper-V's
 * Connect-VMNetworkAdapter; docs/networking.md): for each adapter that moves, its link goes
 * down in the guest (the worker's "link"), its tap goes to the new switch with the new
 * switch's rules, VLANs, guards and bandwidth (switches_port_move), and the link comes up.
 */
#ifndef KEEL_DAEMON_VM_NETMOVE_H
#define KEEL_DAEMON_VM_NETMOVE_H

#include <stddef.h>

#include "config/vmdef.h"
#include "daemon/store.h"
#include "daemon/sup.h"

/* Move the adapters in moves (bit i: nets[i], vmdef_net_move_change) of the running VM def
 * to where nd has them. All or none: a failure puts the ones moved back and leaves err
 * saying which adapter could not move, and why. 0 or -errno. */
int vm_net_move(struct store *st, struct sup *sup, const struct vm_def *def,
		const struct vm_def *nd, unsigned moves, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Put the adapters in moves back where def has them (the description could not be stored
 * after vm_net_move). Failures are logged. */
void vm_net_unmove(struct store *st, struct sup *sup, const struct vm_def *def,
		   const struct vm_def *nd, unsigned moves);

/* At keeld's start: each running VM's adapter on a switch whose tap is not on the switch the
 * store has (keeld ended in the middle of a move) goes back there, its link up. */
void vm_net_recover(struct store *st, struct sup *sup);

#endif
