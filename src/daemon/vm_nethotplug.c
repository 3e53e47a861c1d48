/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vm_nethotplug.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon/switch.h"
#include "daemon/worker_exec.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/tap.h"

/* Close the first n of fds. */
static void close_fds(const int *fds, int n)
{
	for (int k = 0; k < n; k++)
		close(fds[k]);
}

/* Adapter j of nd, the description a running VM takes: its data path chosen, its tap's queues
 * made and on its switch as at a start (sup_spawn.c), then passed with its /dev/vhost-nets. */
static int add_one(struct store *st, struct sup *sup, const struct vm_def *def, struct vm_def *nd,
		   unsigned j, char *err, size_t errlen)
{
	struct vm_nic *nic = &nd->nics[j];
	char ifname[IFNAMSIZ], adapter[64];
	/* A queue pair per vCPU unless it says (docs/virtio.md), as for an adapter the VM
	 * starts with: the worker gets a tap queue (and a vhost-net) per pair. */
	unsigned slot = 0, nq = vmdef_nic_queues(nd, j), pairs = nq;
	int taps[VMDEF_NET_QUEUES_MAX], vhosts[VMDEF_NET_QUEUES_MAX], nv, ret;

	/* The kernel's data path as for an adapter the VM starts with (worker_files_vhost), before
	 * anything is made: vhost=on without vhost-net changes nothing. */
	snprintf(adapter, sizeof(adapter), "network adapter %s (tap %s)", nic->mac, nic->tap);
	nv = worker_vhost_open(def->name, adapter, nic->vhost, nq, vhosts, err, errlen);
	if (nv < 0)
		return -EINVAL;
	ret = tap_open_queues(nic->tap, nq, taps, ifname, err, errlen);
	if (ret) {
		close_fds(vhosts, nv);
		return ret == -ENOENT ? -ENODEV : ret; /* no /dev/net/tun: not "no such VM" (404) */
	}
	/* Fail closed: its guards are in the rules before its tap is a port, though the store
	 * has it only once every add was taken. */
	if (nic->sw[0]) {
		ret = switches_port_adding(nic);
		if (ret)
			error_set(err, errlen, "adapter %s: %s", nic->mac, strerror(-ret));
		ret = ret ?: switches_port_attach(st, nic, ifname, err, errlen);
	}
	ret = ret
		      ?: sup_nic_add(sup, def, nic, taps, nv ? vhosts : NULL, &pairs, &slot, err,
				     errlen);
	/* The worker has its own: the tap lives as long as the card (an older worker's one
	 * pair: the tap goes down to one queue with the ones closed here). */
	close_fds(taps, (int)nq);
	close_fds(vhosts, nv);
	if (ret)
		return ret;
	nic->pci_slot = (uint8_t)slot;
	/* The description says what the worker made, so that a save restores into the same. */
	if (pairs != nq)
		nic->queues = (uint8_t)pairs;
	log_info("VM %s: adapter %s added at PCI slot %u with %u queue pair%s (hot plug)",
		 def->name, nic->mac, slot, pairs, pairs == 1 ? "" : "s");
	return 0;
}

void vm_net_hotplug_undo(struct store *st, struct sup *sup, const struct vm_def *def,
			 const struct vm_def *nd, unsigned added)
{
	for (unsigned j = 0; j < nd->nnics; j++) {
		char why[300];

		if ((added >> j & 1) &&
		    sup_nic_remove(sup, def, nd->nics[j].mac, true, why, sizeof(why)))
			log_err("VM %s: adapter %s could not be taken back: %s", def->name,
				nd->nics[j].mac, why);
	}
	switches_moves_end(nd);
	switches_ports_changed(st, nd, def); /* the rules as the store has them */
}

int vm_net_hotplug(struct store *st, struct sup *sup, const struct vm_def *def, struct vm_def *nd,
		   unsigned removed, unsigned added, bool force, char *err, size_t errlen)
{
	unsigned done = 0;
	int ret = 0;

	for (unsigned j = 0; j < nd->nnics && !ret; j++) {
		if (!(added >> j & 1))
			continue;
		ret = add_one(st, sup, def, nd, j, err, errlen);
		if (!ret)
			done |= 1u << j;
	}
	if (ret) {
		vm_net_hotplug_undo(st, sup, def, nd, done);
		return ret;
	}
	for (unsigned i = 0; i < def->nnics; i++) {
		if (!(removed >> i & 1))
			continue;
		ret = sup_nic_remove(sup, def, def->nics[i].mac, force, err, errlen);
		/* Off its switch now: its guards go with the description, the card only once
		 * the guest ejects it (if ever; forced: at once, its tap gone with it). Failing,
		 * the description and guards stay. */
		ret = ret ?: switches_port_leave(&def->nics[i], err, errlen);
		if (ret)
			return ret;
		log_info("VM %s: adapter %s: %s (hot plug)", def->name, def->nics[i].mac,
			 force ? "taken away without the guest (forced)"
			       : "the guest is asked to let it go");
	}
	return 0;
}

int vm_net_remove_force(struct store *st, struct sup *sup, const struct vm_def *def,
			const char *mac, char *err, size_t errlen)
{
	struct vm_def nd;
	bool removing = false;
	int i = -1, ret;

	for (unsigned k = 0; k < def->nnics; k++)
		if (def->nics[k].mac[0] && !strcasecmp(def->nics[k].mac, mac))
			i = (int)k;
	if (i < 0) {
		/* Out of the description already: a removal the guest has not finished. */
		ret = sup_nic_removing(sup, def, mac, &removing, err, errlen);
		if (!ret && !removing) {
			error_set(
				err, errlen,
				"VM '%s' has no network adapter with MAC %s, nor one whose removal "
				"is under way (keel vm net list %s shows its adapters)",
				def->name, mac, def->name);
			return -ENOENT;
		}
		ret = ret ?: sup_nic_remove(sup, def, mac, true, err, errlen);
		if (!ret)
			log_info("VM %s: adapter %s, which the guest had not let go, taken away "
				 "without it (forced)",
				 def->name, mac);
		return ret;
	}
	ret = vmdef_copy(&nd, def);
	if (ret) {
		error_set(err, errlen, "out of memory");
		return ret;
	}
	memmove(&nd.nics[i], &nd.nics[i + 1], (nd.nnics - (unsigned)i - 1) * sizeof(nd.nics[0]));
	nd.nnics--;
	nd.revision = def->revision + 1;
	ret = vm_net_hotplug(st, sup, def, &nd, 1u << i, 0, true, err, errlen);
	/* The card is gone whatever the store says: a failed store is logged by the caller. */
	ret = ret ?: store_vm_update(st, &nd, err, errlen);
	if (!ret)
		switches_ports_changed(st, def, &nd);
	vmdef_free(&nd);
	return ret;
}
