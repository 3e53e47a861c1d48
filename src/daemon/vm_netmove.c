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
