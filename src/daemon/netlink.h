/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rtnetlink through libmnl, for the virtual switches (switch.c, docs/networking.md): bridges,
 * links, IPv4 addresses and routes. No `ip` subprocess. Every call opens its own socket,
 * waits for the kernel's answer and returns 0 or a negative errno.
 */
#ifndef KEEL_DAEMON_NETLINK_H
#define KEEL_DAEMON_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An IPv4 prefix, the address in host byte order. */
struct nl_prefix4 {
	uint32_t addr;
	unsigned len;
};

struct nl_route4 {
	struct nl_prefix4 dst;
	uint32_t gateway; /* 0: none */
	unsigned oif;	  /* the output interface's index, 0: none (a multipath route) */
	unsigned table;	  /* the routing table (RTA_TABLE); 0: main */
	unsigned metric, proto, scope; /* RTA_PRIORITY, rtm_protocol, rtm_scope */
	uint32_t prefsrc;	       /* RTA_PREFSRC, host byte order; 0: none */
	bool onlink;		       /* RTNH_F_ONLINK: the gateway is on the link, unrouted */
};

/* Create bridge name (down, no ports): -EEXIST when a link of that name exists. */
int nl_bridge_add(const char *name) __attribute__((warn_unused_result));
/* Is link name a bridge? 0 (and *bridge) or -ENODEV. */
int nl_link_is_bridge(const char *name, bool *bridge) __attribute__((warn_unused_result));
/* The index of link name's bridge (0: none). 0 (and *master) or -ENODEV. */
int nl_link_master_of(const char *name, unsigned *master) __attribute__((warn_unused_result));
int nl_link_del(const char *name) __attribute__((warn_unused_result));
int nl_link_up(const char *name) __attribute__((warn_unused_result));
/* Make link name a port of bridge master, or (master NULL) of none. */
int nl_link_master(const char *name, const char *master) __attribute__((warn_unused_result));
/* Turn VLAN filtering on for bridge name (ports untagged in VLAN 1 until told otherwise). */
int nl_bridge_vlan_filtering(const char *name) __attribute__((warn_unused_result));
/* Add (or delete) VLAN vid on bridge port name: as its untagged PVID (access), or tagged. */
int nl_port_vlan(const char *name, uint16_t vid, bool access, bool add)
	__attribute__((warn_unused_result));
/* Add (or delete) VLANs lo to hi on bridge port name, tagged, in one message. */
int nl_port_vlan_range(const char *name, uint16_t lo, uint16_t hi, bool add)
	__attribute__((warn_unused_result));
/* Limit what link name sends to rate bits per second: a tbf qdisc at its root (replacing
 * any), with a burst of 10 ms of the rate (at least 16 KiB) and 50 ms of queue. Rate 0:
 * the root qdisc deleted (the link's default back; none there is no error). */
int nl_tbf(const char *name, uint64_t rate) __attribute__((warn_unused_result));
/* Port mirroring: everything link name receives (ingress) and sends (egress) copied out of
 * each of the n links dests (tc: a clsact qdisc, on each hook a u32 filter that matches all
 * with one mirred egress mirror action per destination). Any clsact qdisc of name's is
 * replaced; n 0 only deletes it (none there is no error). At most NL_MIRROR_MAX dests. */
#define NL_MIRROR_MAX 32 /* TCA_ACT_MAX_PRIO: actions in one filter */
int nl_mirror(const char *name, const char *const *dests, size_t n)
	__attribute__((warn_unused_result));
/* Set bridge port name's `isolated` flag: isolated ports do not reach each other. */
int nl_port_isolated(const char *name, bool isolated) __attribute__((warn_unused_result));
/* Bridge port name forwarding, or disabled (nothing in or out of it; the bridge has no STP). */
int nl_port_forwarding(const char *name, bool forward) __attribute__((warn_unused_result));
/* Give link name the MAC address mac (kept: a bridge no longer follows its ports'). */
int nl_link_set_mac(const char *name, const uint8_t mac[6]) __attribute__((warn_unused_result));
/* Add or delete an IPv4 address on link ifname. Adding one that is there is 0. */
int nl_addr4(const char *ifname, bool add, struct nl_prefix4 p) __attribute__((warn_unused_result));
/* An IPv4 address of a link's with what makes it again: its flags (IFA_F_*), the metric of
 * the prefix route the kernel makes for it (IFA_RT_PRIORITY) and its lifetimes (seconds
 * left; UINT32_MAX: forever). */
struct nl_ifaddr4 {
	struct nl_prefix4 p;
	uint32_t flags, metric;
	uint32_t preferred, valid;
};
/* The flags an IPv4 address can be given again: noprefixroute. */
#define NL_ADDR4_FLAGS 0x200u
/* Add an IPv4 address on link ifname with its flags (NL_ADDR4_FLAGS of them), prefix route
 * metric and lifetimes: -EEXIST when the link has it, unless replace (then in its place). */
int nl_addr4_add(const char *ifname, const struct nl_ifaddr4 *a, bool replace)
	__attribute__((warn_unused_result));
/* The IPv4 addresses of link ifname (at most max; -E2BIG when it has more). */
int nl_addrs4(const char *ifname, struct nl_ifaddr4 *out, size_t max, size_t *n)
	__attribute__((warn_unused_result));
/* A neighbour (ARP or NDP entry) of a link: its address as text and its MAC. */
struct nl_neigh {
	char addr[46]; /* INET6_ADDRSTRLEN */
	uint8_t mac[6];
};
/* The IPv4 and IPv6 neighbours of link ifname that the kernel holds valid (reachable,
 * stale, delay, probe or permanent; not failed, incomplete or noarp), IPv6 link-local ones
 * (fe80::/10) left out, at most max. */
int nl_neighbours(const char *ifname, struct nl_neigh *out, size_t max, size_t *n)
	__attribute__((warn_unused_result));
/* Every IPv4 unicast route of every table (at most max). */
int nl_routes4(struct nl_route4 *out, size_t max, size_t *n) __attribute__((warn_unused_result));
/* The IPv4 unicast routes out of link ifname, of every table but local (main's, and a
 * policy routing table's: the kernel drops them all with the link's last address), single
 * path; protocol kernel ones too (what the kernel made for an address, or another program
 * like it), at most max (-E2BIG when it has more). */
int nl_routes4_of(const char *ifname, struct nl_route4 *out, size_t max, size_t *n)
	__attribute__((warn_unused_result));
/* Add (-EEXIST when that very route is there; another link's route to the same prefix with
 * the same metric stays) or delete route r of table r->table (0: main) out of link r->oif. */
int nl_route4(bool add, const struct nl_route4 *r) __attribute__((warn_unused_result));

/* An IPv6 address of a link's (global or unique-local: scope universe), with what makes it
 * again: its flags (IFA_F_*) and lifetimes (seconds left; UINT32_MAX: forever). */
struct nl_addr6 {
	uint8_t addr[16];
	unsigned len;
	uint32_t flags;
	uint32_t preferred, valid;
};
/* An IPv6 route out of one link (not the kernel's own: those come with the addresses),
 * single path. */
struct nl_route6 {
	uint8_t dst[16], gateway[16]; /* gateway all zero: none (on-link) */
	unsigned len;
	unsigned oif, metric, proto;
	unsigned table;	  /* the routing table (RTA_TABLE); 0: main */
	uint32_t expires; /* seconds left, 0: none */
	uint8_t pref;	  /* RTA_PREF (an RA's router preference), 0: none given */
	bool onlink;	  /* RTNH_F_ONLINK */
};
/* The flags an address can be given again (RTM_NEWADDR takes only these): nodad,
 * noprefixroute, mngtmpaddr. */
#define NL_ADDR6_FLAGS 0x302u
/* The IPv6 addresses of link ifname of scope universe but temporary ones (privacy
 * addresses, which the kernel makes again from their mngtmpaddr), at most max (-E2BIG
 * when it has more). */
int nl_addrs6(const char *ifname, struct nl_addr6 *out, size_t max, size_t *n)
	__attribute__((warn_unused_result));
/* Add (-EEXIST when it is there) or delete an IPv6 address on link ifname, with its flags
 * (NL_ADDR6_FLAGS of them) and lifetimes. */
int nl_addr6(const char *ifname, bool add, const struct nl_addr6 *a)
	__attribute__((warn_unused_result));
/* The IPv6 unicast routes out of link ifname, of every table but local (main's, and a
 * policy routing table's: the kernel drops them all when the link's IPv6 is turned off),
 * but protocol kernel, at most max (-E2BIG when it has more). */
int nl_routes6(const char *ifname, struct nl_route6 *out, size_t max, size_t *n)
	__attribute__((warn_unused_result));
/* Add (-EEXIST when a route to that prefix with that metric is there) or delete an IPv6
 * route of the main table out of link ifname. */
int nl_route6(const char *ifname, bool add, const struct nl_route6 *r)
	__attribute__((warn_unused_result));

/* "a.b.c.d/N" into p (the bits right of N must be zero when net): 0 or -EINVAL. */
int nl_prefix4_parse(const char *s, bool net, struct nl_prefix4 *p)
	__attribute__((warn_unused_result));
void nl_prefix4_format(struct nl_prefix4 p, char *out, size_t size);
/* Do the two prefixes share an address? */
bool nl_prefix4_overlap(struct nl_prefix4 a, struct nl_prefix4 b);

#endif
