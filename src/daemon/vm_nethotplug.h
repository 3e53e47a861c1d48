/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Adapters added to and taken out of a running VM (Hyper-V's Add-VMNetworkAdapter and
 * Remove-VMNetworkAdapter; docs/networking.md, "Hot plug"): keeld makes an added adapter's
 * tap, puts it on its switch with its guards as for a cold adapter, and passes it to the
 * worker ("nic-add"), which gives the guest a new virtio NIC; an adapter taken out is asked
 * of the guest ("nic-remove"), and the worker tears it down (its tap goes) once the guest
 * ejects it. The caller stores the new description once this succeeded.
 */
#ifndef KEEL_DAEMON_VM_NETHOTPLUG_H
#define KEEL_DAEMON_VM_NETHOTPLUG_H

#include <stdbool.h>
#include <stddef.h>

#include "config/vmdef.h"
#include "daemon/store.h"
#include "daemon/sup.h"

/* Add nd's adapters in added (bit j: nd's nets[j], MACs assigned; each gets the slot the
 * worker gave it) and ask for def's in removed (bit i: def's nets[i]) to go, on the running
 * VM def (vmdef_net_hotplug_change); force: take them away at once, without the guest (a
 * surprise removal). Adds first: a failed add takes the ones added back (forced) and
 * nothing is removed. 0, or -errno with err saying which adapter and why. */
int vm_net_hotplug(struct store *st, struct sup *sup, const struct vm_def *def, struct vm_def *nd,
		   unsigned removed, unsigned added, bool force, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* keel vm net remove --force on the running (or paused) VM def: its adapter with MAC mac
 * taken away at once, without the guest (vm_net_hotplug forced) and the description stored
 * without it; or, when the description no longer has it, the adapter whose removal the
 * guest never finished (the worker's nic-list says "removing"), so that a guest that never
 * ejects cannot block a save forever. -ENOENT when the worker has no such adapter. */
int vm_net_remove_force(struct store *st, struct sup *sup, const struct vm_def *def,
			const char *mac, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Take nd's adapters in added back out of the running VM def (forced; the description
 * unchanged: a store that failed after vm_net_hotplug), their guards with them. */
void vm_net_hotplug_undo(struct store *st, struct sup *sup, const struct vm_def *def,
			 const struct vm_def *nd, unsigned added);

#endif
