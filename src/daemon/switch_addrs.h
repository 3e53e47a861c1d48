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

/* Write value into the sysctl file path: 0 or -errno. */
int switch_sysctl(const char *path, const char *value) __attribute__((warn_unused_result));
/* Turn IPv6 on or off on link ifname (off: every IPv6 address and route of its gone). */
int switch_link_ipv6(const char *ifname, bool on) __attribute__((warn_unused_result));
/* Is token (a whole entry) in sw's record? */
bool switch_addrs_recorded(const struct store_switch *sw, const char *token);
/* Record what sw's adapter has (its IPv4 and IPv6 addresses, IPv4 default route, IPv6
 * routes, whether IPv6 is on), stored in the switch's row (st; the row exists) before
 * anything moves; then take it off the adapter (IPv4 addresses deleted, IPv6 turned off).
 * An adapter with nothing that is not recorded already (keeld's restart, or a delete that
 * ended halfway) keeps the record as it is. */
int switch_addrs_take(struct store *st, struct store_switch *sw)
	__attribute__((warn_unused_result));
/* Put the recorded addresses and routes on link ifname (what is there already is left
 * alone: nothing twice), or take them off. Every entry is tried: the first error. */
int switch_addrs_put(const struct store_switch *sw, const char *ifname, bool add)
	__attribute__((warn_unused_result));

#endif
