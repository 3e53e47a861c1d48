/* SPDX-License-Identifier: Apache-2.0 */
/* An external switch's adapter addresses: recorded, moved and given back (switch_addrs.h). */
#include "daemon/switch_addrs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/rtnetlink.h>

#include "daemon/netlink.h"
#include "daemon/switch_record.h"
#include "lib/log.h"

int switch_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int switch_link_ipv6(const char *ifname, bool on)
{
	char path[128];

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	return switch_sysctl(path, on ? "0" : "1");
}

/* Link ifname's IPv6 setting key (/proc/sys/net/ipv6/conf/IF/KEY) into buf: its length, or
 * 0 when the kernel has none (no IPv6, no such setting) or it cannot be read. */
static size_t ipv6_conf_read(const char *ifname, const char *key, char *buf, size_t size)
{
	char path[128];
	ssize_t n;
	int fd;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s", ifname, key);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (size_t)n;
}

/* Has link ifname IPv6 on? (A kernel without IPv6: no.) */
static bool ipv6_on(const char *ifname)
{
	char was[4];

	return ipv6_conf_read(ifname, "disable_ipv6", was, sizeof(was)) && was[0] == '0';
}

int switch_addrs_ipv6_conf(const char *from, const char *to)
{
	/* what makes a link take router advertisements and autoconfigure from them */
	static const char *const keys[] = {"accept_ra", "accept_ra_defrtr", "accept_ra_pinfo",
					   "autoconf", "use_tempaddr"};
	int ret = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char path[128], value[16];
		int r;

		if (!ipv6_conf_read(from, keys[i], value, sizeof(value)))
			continue; /* a kernel without it (or without IPv6) */
		snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s", to, keys[i]);
		r = switch_sysctl(path, value);
		ret = ret || r == -ENOENT ? ret : r;
	}
	return ret;
}

bool switch_addrs_recorded(const struct store_switch *sw, const char *token)
{
	return switch_record_has(sw->adapter_addrs, token);
}

/* Is r the prefix route the kernel made for one of addresses a[0..n) (protocol kernel, the
 * address's network and metric, the address without noprefixroute)? Another program's
 * route like it (NetworkManager's, for an address with noprefixroute) is not. */
static bool own_route(const struct nl_route4 *r, const struct nl_ifaddr4 *a, size_t n)
{
	if (r->proto != RTPROT_KERNEL || r->table != RT_TABLE_MAIN)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint32_t mask = a[i].p.len ? 0xffffffffu << (32 - a[i].p.len) : 0;

		if (!(a[i].flags & NL_ADDR4_FLAGS) && r->dst.len == a[i].p.len &&
		    r->dst.addr == (a[i].p.addr & mask) && r->metric == a[i].metric)
			return true;
	}
	return false;
}

/* The record of what the adapter has now into rec; *fresh: something of it is not in sw's
 * record yet. */
static int record_adapter(const struct store_switch *sw, char *rec, size_t size, bool *fresh)
{
	struct nl_ifaddr4 a4[SWITCH_ADDRS_MAX];
	struct nl_addr6 a6[SWITCH_ADDRS_MAX];
	struct nl_route6 *r6 = calloc(SWITCH_ROUTES_MAX, sizeof(*r6));
	struct nl_route4 *r4 = calloc(SWITCH_ROUTES_MAX, sizeof(*r4));
	size_t n4 = 0, n6 = 0, nr6 = 0, nr4 = 0;
	time_t now = time(NULL);
	bool v6 = ipv6_on(sw->adapter);
	char t[SWITCH_RECORD_ENTRY_MAX];
	int ret = r6 && r4 ? nl_addrs4(sw->adapter, a4, SWITCH_ADDRS_MAX, &n4) : -ENOMEM;

	if (!ret && v6)
		ret = nl_addrs6(sw->adapter, a6, SWITCH_ADDRS_MAX, &n6);
	if (!ret && v6)
		ret = nl_routes6(sw->adapter, r6, SWITCH_ROUTES_MAX, &nr6);
	if (!ret)
		ret = nl_routes4_of(sw->adapter, r4, SWITCH_ROUTES_MAX, &nr4);
	rec[0] = '\0';
	*fresh = false;
	if (!ret && (v6 || switch_addrs_recorded(sw, "ipv6")))
		ret = switch_record_append(rec, size, "ipv6");
	for (size_t i = 0; !ret && i < n4; i++) {
		nl_prefix4_format(a4[i].p, t, sizeof(t));
		*fresh |= !switch_addrs_recorded(sw, t);
		switch_record_addr4(&a4[i], now, t, sizeof(t));
		ret = switch_record_append(rec, size, t);
	}
	for (size_t i = 0; !ret && i < nr4; i++) {
		if (own_route(&r4[i], a4, n4))
			continue; /* comes back with its address */
		switch_record_route4(&r4[i], t, sizeof(t));
		ret = switch_record_append(rec, size, t);
	}
	for (size_t i = 0; !ret && i < n6; i++) {
		switch_record_addr6_key(&a6[i], t, sizeof(t));
		*fresh |= !switch_record_has(sw->adapter_addrs, t);
		switch_record_addr6(&a6[i], now, t, sizeof(t));
		ret = switch_record_append(rec, size, t);
	}
	for (size_t i = 0; !ret && i < nr6; i++) {
		/* A router advertisement's (proto ra) is learnt again on the link that has the
		 * advertisements (the bridge sends a solicitation when its IPv6 comes on): put
		 * there by keeld it would lack the kernel's RTF_ADDRCONF, and every advertisement
		 * after would be dropped half read ("failed to add default route": its prefixes
		 * not renewed, the SLAAC addresses left to expire). */
		if (r6[i].proto == RTPROT_RA)
			continue;
		switch_record_route6(&r6[i], now, t, sizeof(t));
		ret = switch_record_append(rec, size, t);
	}
	free(r6);
	free(r4);
	return ret;
}

/* Address a, which link ifname has already, left as it is there (renewed there, or put by
 * an earlier keeld), or given a's flags, metric and lifetimes when its lease ends later
 * (renewed on the adapter since). */
static int renew_addr4(const char *ifname, const struct nl_ifaddr4 *a)
{
	struct nl_ifaddr4 have[SWITCH_ADDRS_MAX];
	size_t n = 0;
	int ret = nl_addrs4(ifname, have, SWITCH_ADDRS_MAX, &n);

	for (size_t i = 0; (!ret || ret == -E2BIG) && i < n; i++) {
		if (have[i].p.addr == a->p.addr && have[i].p.len == a->p.len)
			return have[i].valid >= a->valid ? 0 : nl_addr4_add(ifname, a, true);
	}
	return ret;
}

enum switch_put { SWITCH_PUT_ALL, SWITCH_PUT_IPV4 };

/* One entry t onto or off ifname (which: all of them, or the IPv4 ones alone). */
static int put_one(const char *t, const char *ifname, bool add, enum switch_put which, time_t now)
{
	struct switch_record_entry e;
	int ret = switch_record_entry(t, now, &e);

	if (ret || (add && e.expired))
		return ret; /* gone by now, as it would have on the adapter */
	if (which == SWITCH_PUT_IPV4 && e.kind != SWITCH_RECORD_ADDR4 &&
	    e.kind != SWITCH_RECORD_ROUTE4)
		return 0;
	switch (e.kind) {
	case SWITCH_RECORD_IPV6_ON:
		return 0;
	case SWITCH_RECORD_ADDR6:
		ret = nl_addr6(ifname, add, &e.a6);
		return (add && ret == -EEXIST) || (!add && ret == -EADDRNOTAVAIL) ? 0 : ret;
	case SWITCH_RECORD_ROUTE6:
		if (e.r6.proto == RTPROT_RA)
			return 0; /* (an older record's: see record_adapter) */
		ret = nl_route6(ifname, add, &e.r6);
		return (add && ret == -EEXIST) || (!add && ret == -ESRCH) ? 0 : ret;
	case SWITCH_RECORD_ROUTE4:
		e.r4.oif = if_nametoindex(ifname);
		ret = e.r4.oif ? nl_route4(add, &e.r4) : -ENODEV;
		return (add && ret == -EEXIST) || (!add && ret == -ESRCH) ? 0 : ret;
	case SWITCH_RECORD_ADDR4:
		break;
	}
	ret = add ? nl_addr4_add(ifname, &e.a4, false) : nl_addr4(ifname, false, e.a4.p);
	if (add && ret == -EEXIST)
		return renew_addr4(ifname, &e.a4);
	return !add && ret == -EADDRNOTAVAIL ? 0 : ret;
}

#define ENTRIES_MAX (STORE_SWITCH_ADDRS_MAX / 2)

/* The recorded entries (which of them) onto or off ifname, every one tried: the first
 * error. Added, a route whose gateway is not reachable yet (through a route recorded
 * after it) is tried again once the others are on, as long as each round adds one. */
static int put_entries(const struct store_switch *sw, const char *ifname, bool add,
		       enum switch_put which)
{
	char copy[STORE_SWITCH_ADDRS_MAX], *save = NULL, *todo[ENTRIES_MAX];
	size_t n = 0, left;
	time_t now = time(NULL);
	int ret = 0;

	snprintf(copy, sizeof(copy), "%s", sw->adapter_addrs);
	for (char *t = strtok_r(copy, " ", &save); t && n < ENTRIES_MAX;
	     t = strtok_r(NULL, " ", &save))
		todo[n++] = t;
	do {
		left = n;
		n = 0;
		for (size_t i = 0; i < left; i++) {
			int r = put_one(todo[i], ifname, add, which, now);

			if (add && (r == -ENETUNREACH || r == -EHOSTUNREACH)) {
				todo[n++] = todo[i]; /* the next round */
				continue;
			}
			if (r)
				log_warn("switch '%s': cannot %s %s %s %s: %s", sw->name,
					 add ? "put" : "take", todo[i], add ? "on" : "off", ifname,
					 strerror(-r));
			ret = ret ? ret : r;
		}
	} while (n && n < left);
	/* (the last round's failures, each tried once more for its error) */
	for (size_t i = 0; i < n; i++) {
		int r = put_one(todo[i], ifname, add, which, now);

		if (r)
			log_warn("switch '%s': cannot put %s on %s: %s", sw->name, todo[i], ifname,
				 strerror(-r));
		ret = ret ? ret : r;
	}
	return ret;
}

int switch_addrs_put(const struct store_switch *sw, const char *ifname, bool add)
{
	return put_entries(sw, ifname, add, SWITCH_PUT_ALL);
}

int switch_addrs_take(struct store *st, struct store_switch *sw, bool bridge_kept)
{
	char rec[STORE_SWITCH_ADDRS_MAX];
	bool fresh, v6 = ipv6_on(sw->adapter);
	int ret = record_adapter(sw, rec, sizeof(rec), &fresh);

	if (ret)
		return ret;
	/* Nothing new on the adapter: keeld took it all before (a restart), or gave part of
	 * it back when a delete ended halfway: the record stays whole, with what the adapter
	 * has of it as it has it now (a lease a DHCP client still running there renewed).
	 * Something new while the bridge from before holds what was moved: that stays
	 * recorded too, to be given back. A new bridge (a host reboot) holds nothing: the
	 * adapter's is all. */
	if (!fresh || bridge_kept)
		ret = switch_record_merge(rec, sizeof(rec), sw->adapter_addrs, time(NULL));
	/* Stored before anything moves: keeld ending at any point after can give it back. */
	if (!ret && strcmp(rec, sw->adapter_addrs)) {
		ret = store_switch_set_addrs(st, sw->name, rec);
		if (!ret)
			snprintf(sw->adapter_addrs, sizeof(sw->adapter_addrs), "%s", rec);
	}
	/* What is recorded goes (its IPv4 routes with the addresses, or after them when some
	 * stay); an address someone adds meanwhile stays, and is recorded at keeld's next
	 * start. */
	if (!ret)
		ret = put_entries(sw, sw->adapter, false, SWITCH_PUT_IPV4);
	/* Its IPv6 addresses and routes go with its IPv6, link-local and SLAAC included. */
	if (!ret && v6)
		ret = switch_link_ipv6(sw->adapter, false);
	return ret;
}
