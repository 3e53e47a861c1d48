/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vm_netmove.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/switch.h"
#include "lib/error.h"
#include "lib/log.h"

/* One adapter, index i, from `from` to `to` (tap: from's), its link down around it. The
 * link comes back up whatever happens: the adapter is on one switch or the other. */
static int move_one(struct store *st, struct sup *sup, const struct vm_def *def, unsigned i,
		    const struct vm_nic *from, const struct vm_nic *to, char *err, size_t errlen)
{
	struct vm_nic dst = *to;
	char why[512];
	int ret;

	memcpy(dst.tap, from->tap, sizeof(dst.tap));
	ret = sup_link(sup, def, i, false, err, errlen);
	if (ret)
		return ret;
	ret = switches_port_move(st, from, &dst, err, errlen);
	if (sup_link(sup, def, i, true, why, sizeof(why)))
		log_err("%s", why);
	if (!ret)
		log_info("VM %s: adapter %s moved from switch '%s' to '%s'", def->name, from->mac,
			 from->sw, to->sw);
	return ret;
}

int vm_net_move(struct store *st, struct sup *sup, const struct vm_def *def,
		const struct vm_def *nd, unsigned moves, char *err, size_t errlen)
{
	unsigned done = 0;
	int ret = 0;

	for (unsigned i = 0; i < def->nnics && i < nd->nnics; i++) {
		if (!(moves >> i & 1))
			continue;
		ret = move_one(st, sup, def, i, &def->nics[i], &nd->nics[i], err, errlen);
		if (ret)
			break;
		done |= 1u << i;
	}
	if (ret)
		vm_net_unmove(st, sup, def, nd, done);
	return ret;
}

void vm_net_unmove(struct store *st, struct sup *sup, const struct vm_def *def,
		   const struct vm_def *nd, unsigned moves)
{
	for (unsigned i = 0; i < def->nnics && i < nd->nnics; i++) {
		struct vm_nic from = nd->nics[i];
		char err[512];

		if (!(moves >> i & 1))
			continue;
		memcpy(from.tap, def->nics[i].tap, sizeof(from.tap));
		if (move_one(st, sup, def, i, &from, &def->nics[i], err, sizeof(err)))
			log_err("VM %s: adapter %s could not go back to switch '%s': %s", def->name,
				def->nics[i].mac, def->nics[i].sw, err);
	}
}

void vm_net_recover(struct store *st, struct sup *sup)
{
	struct vm_def *defs = NULL;
	size_t n = 0;

	if (store_vm_list(st, &defs, &n)) {
		log_err("cannot list VMs in the store to check their adapters' switches");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct sup_status ss;

		sup_status(sup, defs[i].uuid, &ss);
		if (ss.pid <= 0)
			continue;
		for (unsigned j = 0; j < defs[i].nnics; j++) {
			const struct vm_nic *nic = &defs[i].nics[j];
			char err[512];
			int r;

			if (!nic->sw[0] || !nic->tap[0])
				continue;
			r = switches_port_recover(st, nic, err, sizeof(err));
			if (r < 0)
				log_err("VM %s: %s", defs[i].name, err);
			/* A move may have ended between the link's down and its up (an up that
			 * changes nothing is nothing to the worker; one from before the link
			 * command refuses it). */
			if (sup_link(sup, &defs[i], j, true, err, sizeof(err))) {
				if (r > 0)
					log_err("%s", err);
				else
					log_debug("%s", err);
			}
		}
	}
	store_vm_list_free(defs, n);
}
