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
	/* Whether a NEWGEN's pid other than self is keeld's all the same (NULL: no): the kernel
	 * names the thread that sent the transaction, and keeld's API and job threads send
	 * some. */
	bool (*own)(uint32_t pid);
};

/* What the notifications read say. */
enum switch_nftmon_news {
	SWITCH_NFTMON_NONE,    /* nothing that concerns keel */
	SWITCH_NFTMON_LOST,    /* some were lost (the socket's buffer overran, or a datagram was
				* cut short): whose they were is not known, so check the rules */
	SWITCH_NFTMON_CHANGED, /* another process changed keel's rules: load them all again */
};

/* The socket, non-blocking (0 or -errno; *fd -1 then). */
int switch_nftmon_open(int *fd) __attribute__((warn_unused_result));
/* Read every pending notification: CHANGED when a transaction of another process than keeld
 * changed something in keel's tables ("keel", any family: a table, chain, rule, set, element,
 * object or flowtable added or deleted) or in Docker's DOCKER-USER chain; else LOST when
 * notifications were lost (the socket's buffer overran, or a datagram was cut short: keeld's
 * own reload of many ports' rules can overrun it, so a loss alone is not taken for another
 * process's change, which would load everything again and overrun it again); else NONE.
 * keeld's own transactions (their NEWGEN's NFTA_GEN_PROC_PID is keeld's pid or one of its
 * threads') are not news. */
enum switch_nftmon_news switch_nftmon_read(int fd, struct switch_nftmon *m);
/* One datagram of netlink messages (len bytes): true when it ends a transaction of another
 * process than self (keeld's pid; m->own asked for other pids) that changed keel's rules (for
 * switch_nftmon_read and its unit test and fuzz target). */
bool switch_nftmon_msgs(struct switch_nftmon *m, const void *buf, size_t len, uint32_t self);

#endif
