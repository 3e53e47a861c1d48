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

/* One adapter: its data path chosen, its tap made and on its switch as at a start
 * (sup_spawn.c), then passed with its /dev/vhost-net. */
static int add_one(struct store *st, struct sup *sup, const struct vm_def *def, struct vm_nic *nic,
		   char *err, size_t errlen)
{
	char ifname[IFNAMSIZ], adapter[64];
	unsigned slot = 0;
	int fd, vhost = -1, ret = 0;

	/* A running VM takes an adapter with one queue pair: the worker gets one tap queue
	 * (docs/virtio.md); the description says so, so that a save restores into the same. */
	if (nic->queues > 1) {
		error_set(err, errlen,
			  "adapter %s: hot plug adds an adapter with one queue pair (queues=1); "
			  "add one with queues=%u while the VM is off",
			  nic->mac, nic->queues);
		return -EINVAL;
	}
	nic->queues = 1;
	/* The kernel's data path as for an adapter the VM starts with (worker_files_vhost), before
	 * anything is made: vhost=on without vhost-net changes nothing. */
	snprintf(adapter, sizeof(adapter), "network adapter %s (tap %s)", nic->mac, nic->tap);
	if (worker_vhost_open(def->name, adapter, nic->vhost, 1, &vhost, err, errlen) < 0)
		return -EINVAL;
	fd = tap_open(nic->tap, ifname, err, errlen);
	if (fd < 0) {
		if (vhost >= 0)
			close(vhost);
		return fd;
	}
	/* Fail closed: its guards are in the rules before its tap is a port, though the store
	 * has it only once every add was taken. */
	if (nic->sw[0]) {
		ret = switches_port_adding(nic);
		if (ret)
			error_set(err, errlen, "adapter %s: %s", nic->mac, strerror(-ret));
		ret = ret ?: switches_port_attach(st, nic, ifname, err, errlen);
	}
	ret = ret ?: sup_nic_add(sup, def, nic, fd, vhost, &slot, err, errlen);
	close(fd); /* the worker has its own: the tap lives as long as the card */
	if (vhost >= 0)
		close(vhost);
	if (ret)
		return ret;
	nic->pci_slot = (uint8_t)slot;
	log_info("VM %s: adapter %s added at PCI slot %u (hot plug)", def->name, nic->mac, slot);
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
		ret = add_one(st, sup, def, &nd->nics[j], err, errlen);
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
