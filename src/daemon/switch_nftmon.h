/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nftables' change notifications (netlink group NFNLGRP_NFTABLES, what `nft monitor` reads):
 * a socket that says when another process changed keel's rules, so that keeld loads them again
 * within milliseconds of a host firewall reload instead of at its next 5-second check
 * (docs/networking.md, "While it runs").
 */
#ifndef KEEL_DAEMON_SWITCH_NFTMON_H
#define KEEL_DAEMON_SWITCH_NFTMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the reads so far leave open: a transaction whose notifications touched keel's rules
 * and whose end (its NFT_MSG_NEWGEN, which names the process that made it) is not read yet. */
struct switch_nftmon {
	bool touched;
};

/* The socket, non-blocking (0 or -errno; *fd -1 then). */
int switch_nftmon_open(int *fd) __attribute__((warn_unused_result));
/* Read every pending notification: true when a transaction of another process than keeld
 * changed something in keel's tables ("keel", any family: a table, chain, rule, set, element,
 * object or flowtable added or deleted) or in Docker's DOCKER-USER chain, or when
 * notifications were lost (the socket's buffer overran, or a datagram was cut short):
 * keel's rules are to be loaded again. keeld's own transactions (their NEWGEN's
 * NFTA_GEN_PROC_PID is keeld's pid) are not news. */
bool switch_nftmon_read(int fd, struct switch_nftmon *m);
/* The same for one datagram of netlink messages (len bytes), self: keeld's pid (for
 * switch_nftmon_read and its unit test and fuzz target). */
bool switch_nftmon_msgs(struct switch_nftmon *m, const void *buf, size_t len, uint32_t self);

#endif
