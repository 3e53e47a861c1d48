/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The record of an external switch's adapter addresses (switch_addrs.h), as text in the
 * switch's row (adapter_addrs): its entries, space-separated, each made and read here, with
 * no system call, so that the reader is fuzzed (fuzz-switch-record) on any text a damaged
 * store could hold:
 *
 *   a.b.c.d/N[,f=HEX][,m=METRIC][,p=T][,v=T]
 *                                an IPv4 address, its flags (noprefixroute), its prefix
 *                                route's metric, when its lifetimes end (none: forever)
 *   r4:DST/N[,via=GW][,m=METRIC][,pr=PROTO][,sc=SCOPE][,src=A][,on=1][,t=TABLE]
 *                                an IPv4 route out of the adapter (its gateway, metric,
 *                                protocol, scope, preferred source, onlink, its routing
 *                                table when not main: neither 0, main nor local)
 *   via:a.b.c.d                  (read only: a record from before r4:) the IPv4 default
 *                                route's gateway
 *   ipv6                         the adapter had IPv6 on (turned off while it is a port)
 *   a6:ADDR/N[,f=HEX][,p=T][,v=T]
 *                                an IPv6 address (global or unique-local), its flags (nodad,
 *                                noprefixroute, mngtmpaddr) and when its preferred and valid
 *                                lifetimes end (seconds since the epoch; none: forever)
 *   r6:DST/N[,via=GW][,m=METRIC][,pr=PROTO][,e=T][,pf=PREF][,on=1][,t=TABLE]
 *                                an IPv6 route out of the adapter (its table as r4:'s)
 */
#ifndef KEEL_DAEMON_SWITCH_RECORD_H
#define KEEL_DAEMON_SWITCH_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "daemon/netlink.h"

#define SWITCH_RECORD_ENTRY_MAX 160 /* an entry's text, its NUL included */

enum switch_record_kind {
	SWITCH_RECORD_IPV6_ON,
	SWITCH_RECORD_ADDR4,
	SWITCH_RECORD_ROUTE4,
	SWITCH_RECORD_ADDR6,
	SWITCH_RECORD_ROUTE6,
};

struct switch_record_entry {
	enum switch_record_kind kind;
	struct nl_ifaddr4 a4; /* ADDR4: lifetimes as seconds left at now */
	struct nl_route4 r4;  /* ROUTE4 (oif 0) */
	struct nl_addr6 a6;   /* ADDR6: lifetimes as seconds left at now */
	struct nl_route6 r6;  /* ROUTE6: expires as seconds left at now */
	bool expired;	      /* ADDR4, ADDR6, ROUTE6: its valid lifetime or expiry ended by now */
};

/* Is an entry of list key, or key followed by ',' (an IPv6 entry's address or route, its
 * lifetimes aside)? */
bool switch_record_has(const char *list, const char *key);
/* Append to list (size bytes) the entries of old that list has not (by their key: an
 * address's or a route's entry with other lifetimes or expiry is the same one), but those
 * that do not read or have ended by now: 0 or -ENOSPC. */
int switch_record_merge(char *list, size_t size, const char *old, time_t now)
	__attribute__((warn_unused_result));
/* Append entry to list (size bytes): 0 or -ENOSPC. */
int switch_record_append(char *list, size_t size, const char *entry)
	__attribute__((warn_unused_result));
/* An IPv4 address's entry (its key: "a.b.c.d/N"), an IPv6 address's key ("a6:ADDR/N"), its
 * entry, a route's entry; lifetimes left at now. */
void switch_record_addr4(const struct nl_ifaddr4 *a, time_t now, char *out, size_t size);
void switch_record_addr6_key(const struct nl_addr6 *a, char *out, size_t size);
void switch_record_addr6(const struct nl_addr6 *a, time_t now, char *out, size_t size);
void switch_record_route6(const struct nl_route6 *r, time_t now, char *out, size_t size);
void switch_record_route4(const struct nl_route4 *r, char *out, size_t size);
/* Read one entry (its text, not modified) as of now: 0 or -EINVAL. */
int switch_record_entry(const char *text, time_t now, struct switch_record_entry *out)
	__attribute__((warn_unused_result));

#endif
