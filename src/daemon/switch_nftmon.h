/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nftables' change notifications (netlink group NFNLGRP_NFTABLES, what `nft monitor` reads):
 * a socket that says when keel's rules may have lost something, so that keeld puts them back
 * within milliseconds of a host firewall reload instead of at its next 5-second check
 * (docs/networking.md, "While it runs").
 */
#ifndef KEEL_DAEMON_SWITCH_NFTMON_H
#define KEEL_DAEMON_SWITCH_NFTMON_H

#include <stdbool.h>
#include <stddef.h>

/* The socket, non-blocking (0 or -errno; *fd -1 then). */
int switch_nftmon_open(int *fd) __attribute__((warn_unused_result));
/* Read every pending notification: true when one deleted a table, chain or rule of keel's
 * tables ("keel", any family) or of Docker's DOCKER-USER chain, or when notifications were
 * lost (the socket's buffer overran): keel's rules are to be looked at. */
bool switch_nftmon_read(int fd);
/* Does one netlink message (len bytes) say so? (for switch_nftmon_read and its fuzz
 * target) */
bool switch_nftmon_msgs(const void *buf, size_t len);

#endif
