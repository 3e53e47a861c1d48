/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network adapters added to and removed from a running VM (docs/networking.md, "Hot plug"):
 * the ACPI PCI hot plug controller's registers (dev/pcihp_regs.h) at PORT_PCIHP, its GPE
 * (the ACPI PM's GPE0 bit PCIHP_GPE), and the control commands' side: an added virtio-net
 * card goes on a free hot-pluggable slot and the guest is told (a device check); a removal
 * tells the guest (an eject request) and the card is torn down when the guest ejects it
 * (its _EJ0), or at once when forced. Main thread, but for the registers (vCPU threads).
 */
#ifndef KEEL_VMM_HOTPLUG_H
#define KEEL_VMM_HOTPLUG_H

#include <stdbool.h>
#include <stddef.h>

#include "config/vmdef.h"

struct vm;
struct hotplug;

int hotplug_create(struct vm *vm, char *err, size_t errlen) __attribute__((warn_unused_result));
void hotplug_destroy(struct vm *vm);

/* Add a virtio-net card with npairs queue pairs (1 to VMDEF_NET_QUEUES_MAX, at most the VM's
 * vCPUs) on taps[0..npairs) (the tap's queues keeld attached, one per pair, taken over also
 * on failure; or taps[0] -1: the tap named tapname, its queues attached here) with MAC mac
 * ("": the default for the tap's name) at slot *slot (a free hot-pluggable one; 0: the lowest
 * such, returned in *slot), and to the description with its queues (which a save records).
 * Its data path as a boot-time adapter's (nets[].vhost vhost, docs/virtio.md): vhost-net on
 * vhosts[0..npairs) (keeld's /dev/vhost-nets, pair k's on vhosts[k], taken over also on
 * failure; NULL: none passed), else the user-space path, said why; vhost on without it fails
 * the add. 0, or -errno with err saying why. */
int hotplug_nic_add(struct vm *vm, const char *tapname, const char *mac, enum vm_vhost vhost,
		    unsigned npairs, const int *taps, const int *vhosts, unsigned *slot, char *err,
		    size_t errlen) __attribute__((warn_unused_result));
/* Ask the guest to let an adapter go (hot-added or not, at a hot-pluggable slot): the one at
 * slot, or with MAC mac when slot is 0. force: take it away now, without waiting for the
 * guest (surprise removal). Once it is gone it is out of the description too. */
int hotplug_nic_remove(struct vm *vm, unsigned slot, const char *mac, bool force, char *err,
		       size_t errlen) __attribute__((warn_unused_result));
/* The index in the description of the adapter with MAC mac: 0, or -ENOENT. */
int hotplug_nic_index(struct vm *vm, const char *mac, unsigned *index)
	__attribute__((warn_unused_result));
/* Why a save must wait (a hot plug event the guest has not handled: an adapter added it has
 * not seen, a removal under way), or NULL. */
const char *hotplug_save_blocker(struct vm *vm);
/* The VM's network adapters, for the control command's reply: emit(ctx, slot, tap, MAC,
 * removal under way) for each. */
void hotplug_nic_list(struct vm *vm,
		      void (*emit)(void *ctx, unsigned slot, const char *tap, const char *mac,
				   bool removing),
		      void *ctx);

#endif
