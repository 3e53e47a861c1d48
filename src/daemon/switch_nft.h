/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A switch's firewall through libnftables (docs/networking.md): in keel's own tables
 * `inet keel` (BRIDGE_fwd, BRIDGE_in, BRIDGE_out, BRIDGE_nat: what is routed) and
 * `bridge keel` (BRIDGE_guard: the adapters' guards, on frames as they enter the switch),
 * each switch's chains are replaced in one atomic batch; nothing else of the host's ruleset
 * is touched.
 */
#ifndef KEEL_DAEMON_SWITCH_NFT_H
#define KEEL_DAEMON_SWITCH_NFT_H

#include <stdbool.h>
#include <stddef.h>

#include "config/vmdef.h"
#include "daemon/store.h"

#define SWITCH_NFT_TABLE "keel"

/* What a switch's rules are made of besides the switch: its adapters (tap, mac, guards) and
 * its port forwards. */
struct switch_nft_in {
	const struct vm_nic *ports;
	size_t nports;
	const struct store_forward *fwds;
	size_t nfwds;
};

/* The batch that installs sw's rules (in: may be NULL for none), or (remove) takes them
 * away, into buf: its length, or -ENOSPC. */
int switch_nft_script(const struct store_switch *sw, const struct switch_nft_in *in, bool remove,
		      char *buf, size_t size) __attribute__((warn_unused_result));
/* Run that batch: 0, or -errno with nft's message in err. */
int switch_nft_apply(const struct store_switch *sw, const struct switch_nft_in *in, bool remove,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/* What a check of the switches' rules reads of nftables, once for all of them: the listings
 * of keel's two tables and of Docker's DOCKER-USER chain (NULL: not there). unknown: nftables
 * could not be asked (every switch is taken as present: no rebuild on a guess). */
struct switch_nft_view {
	char *tables[2]; /* inet keel, bridge keel */
	char *docker;
	bool unknown;
};
void switch_nft_view_read(struct switch_nft_view *v);
void switch_nft_view_free(struct switch_nft_view *v);
/* Are sw's chains there in v, each with its marker rule (a host firewall reload flushes the
 * whole ruleset), and its DOCKER-USER rules where that chain is? */
bool switch_nft_present(const struct switch_nft_view *v, const struct store_switch *sw);

#endif
