/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An external switch's adapter addresses (docs/networking.md, "External"): what keeld takes
 * off the adapter when it bridges it, recorded in the switch's row (adapter_addrs) before
 * anything moves, put on the switch's bridge while the management OS is allowed, and given
 * back to the adapter when the switch goes. The record's text: switch_record.h.
 */
#ifndef KEEL_DAEMON_SWITCH_ADDRS_H
#define KEEL_DAEMON_SWITCH_ADDRS_H

#include <stdbool.h>

#include "daemon/store.h"

#define SWITCH_ADDRS_MAX  32   /* addresses of one family an adapter may have */
#define SWITCH_ROUTES_MAX 4096 /* routes of one family out of it */

/* Write value into the sysctl file path: 0 or -errno. */
int switch_sysctl(const char *path, const char *value) __attribute__((warn_unused_result));
/* Turn IPv6 on or off on link ifname (off: every IPv6 address and route of its gone). */
int switch_link_ipv6(const char *ifname, bool on) __attribute__((warn_unused_result));
/* Give link to link from's settings for router advertisements and autoconfiguration
 * (accept_ra, accept_ra_defrtr, accept_ra_pinfo, autoconf, use_tempaddr): 0 or the first
 * error (one the kernel does not have is left out). */
int switch_addrs_ipv6_conf(const char *from, const char *to) __attribute__((warn_unused_result));
/* Is token (a whole entry) in sw's record? */
bool switch_addrs_recorded(const struct store_switch *sw, const char *token);
/* Record what sw's adapter has (its IPv4 and IPv6 addresses and routes, whether IPv6 is
 * on), stored in the switch's row (st; the row exists) before anything moves; then take it
 * off the adapter (the recorded IPv4 addresses and routes deleted, IPv6 turned off). An
 * adapter with nothing that is not recorded already (keeld's restart, or a delete that
 * ended halfway) keeps the record whole, what it has of it as it has it now (a renewed
 * lease's lifetimes); one with something new has it recorded, with the record's entries
 * too when the bridge is the one from before (bridge_kept: it holds them), without them on
 * a new bridge (a host reboot: the adapter's are all). Entries that have ended go. -E2BIG: more
 * addresses or routes than keeld lists (SWITCH_ADDRS_MAX of a family, SWITCH_ROUTES_MAX), -ENOSPC:
 * more than the record holds (STORE_SWITCH_ADDRS_MAX bytes); nothing moved then. */
int switch_addrs_take(struct store *st, struct store_switch *sw, bool bridge_kept)
	__attribute__((warn_unused_result));
/* Put the recorded addresses and routes on link ifname (what is there already is left
 * alone: nothing twice; but an IPv4 address whose recorded lease ends later, renewed on
 * the adapter, takes the record's lifetimes), or take them off. Every entry is tried (a route whose gateway is
 * reached through another recorded route after it, again once that one is on): the first
 * error. */
int switch_addrs_put(const struct store_switch *sw, const char *ifname, bool add)
	__attribute__((warn_unused_result));

#endif
