/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vm_macs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "daemon/switch.h"

int vm_macs_assign(struct store *st, struct vm_def *def, char *err, size_t errlen)
{
	for (unsigned i = 0; i < def->nnics; i++) {
		bool used = false;
		int ret;

		if (def->nics[i].mac[0]) {
			ret = store_mac_used(st, def->nics[i].mac, def->uuid, &used);
			if (ret)
				return ret;
			if (used) {
				snprintf(err, errlen, "MAC %s is already used by another VM",
					 def->nics[i].mac);
				return -EEXIST;
			}
			continue;
		}
		for (int tries = 0; tries < 16; tries++) {
			bool dup = false;
			ret = vmdef_gen_mac(def->nics[i].mac);
			if (ret)
				return ret;
			for (unsigned j = 0; j < def->nnics; j++)
				dup |= j != i && !strcmp(def->nics[j].mac, def->nics[i].mac);
			ret = store_mac_used(st, def->nics[i].mac, NULL, &used);
			if (ret)
				return ret;
			if (!used && !dup)
				break;
			def->nics[i].mac[0] = '\0';
		}
		if (!def->nics[i].mac[0]) {
			snprintf(err, errlen, "cannot find a free MAC address");
			return -EIO;
		}
	}
	/* An adapter on a switch: its tap is named after its MAC (vmdef_switch_tap). */
	for (unsigned i = 0; i < def->nnics; i++)
		if (def->nics[i].sw[0])
			vmdef_switch_tap(def->nics[i].mac, def->nics[i].tap);
	return switches_check_def(st, def, err, errlen);
}
