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

#include "daemon/netlink.h"
#include "lib/parse.h"

#define ROUTES_MAX 4096
#define ADDRS_MAX  32

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

/* Has link ifname IPv6 on? (A kernel without IPv6: no.) */
static bool ipv6_on(const char *ifname)
{
	char path[128], was[4] = "";
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read(fd, was, sizeof(was) - 1) < 0)
		was[0] = '\0';
	close(fd);
	return was[0] == '0';
}

/* Is an entry of list key, or key followed by ',' (an IPv6 entry's address or route, its
 * lifetimes aside)? */
static bool has_entry(const char *list, const char *key)
{
	size_t len = strlen(key);

	for (const char *t = list; *t;) {
		size_t tl = strcspn(t, " ");

		if (tl >= len && !strncmp(t, key, len) && (tl == len || t[len] == ','))
			return true;
		t += tl;
		t += strspn(t, " ");
	}
	return false;
}

bool switch_addrs_recorded(const struct store_switch *sw, const char *token)
{
	return has_entry(sw->adapter_addrs, token);
}

static int append(char *list, size_t size, const char *token)
{
	size_t len = strlen(list);

	if (len + strlen(token) + 2 > size)
		return -ENOSPC;
	snprintf(list + len, size - len, "%s%s", len ? " " : "", token);
	return 0;
}

/* ",K=N" onto buf, for a lifetime in seconds from now (none for forever) as its end. */
static void put_end(char *buf, size_t size, const char *k, uint32_t left, time_t now)
{
	size_t len = strlen(buf);

	if (left != UINT32_MAX)
		snprintf(buf + len, size - len, ",%s=%lld", k, (long long)now + left);
}

static void addr6_key(const struct nl_addr6 *a, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "";

	inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
	snprintf(out, size, "a6:%s/%u", ip, a->len);
}

static void addr6_token(const struct nl_addr6 *a, time_t now, char *out, size_t size)
{
	size_t len;

	addr6_key(a, out, size);
	len = strlen(out);
	if (a->flags & NL_ADDR6_FLAGS)
		snprintf(out + len, size - len, ",f=%x", a->flags & NL_ADDR6_FLAGS);
	put_end(out, size, "p", a->preferred, now);
	put_end(out, size, "v", a->valid, now);
}

static void route6_token(const struct nl_route6 *r, time_t now, char *out, size_t size)
{
	static const uint8_t none[16];
	char ip[INET6_ADDRSTRLEN] = "";
	size_t len;

	inet_ntop(AF_INET6, r->dst, ip, sizeof(ip));
	snprintf(out, size, "r6:%s/%u", ip, r->len);
	len = strlen(out);
	if (memcmp(r->gateway, none, 16)) {
		inet_ntop(AF_INET6, r->gateway, ip, sizeof(ip));
		snprintf(out + len, size - len, ",via=%s", ip);
		len = strlen(out);
	}
	snprintf(out + len, size - len, ",m=%u,pr=%u", r->metric, r->proto);
	if (r->expires)
		put_end(out, size, "e", r->expires, now);
	len = strlen(out);
	if (r->pref)
		snprintf(out + len, size - len, ",pf=%u", r->pref);
}

/* "ADDR/N" into addr and len (len at most 128). */
static int parse_prefix6(const char *s, uint8_t addr[16], unsigned *len)
{
	char ip[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	uint64_t n;

	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (inet_pton(AF_INET6, ip, addr) != 1 || parse_uint(slash + 1, 0, 128, &n))
		return -EINVAL;
	*len = (unsigned)n;
	return 0;
}

/* Seconds from now to end (an epoch time; 0 when it has passed). */
static uint32_t left(uint64_t end, time_t now)
{
	return end > (uint64_t)now ? (uint32_t)(end - (uint64_t)now) : 0;
}

/* An a6: or r6: entry (its text after the colon, modified) into a or r; expired: it has
 * passed its valid lifetime or expiry. */
static int parse6(char *t, struct nl_addr6 *a, struct nl_route6 *r, time_t now, bool *expired)
{
	char *save = NULL, *f = strtok_r(t, ",", &save);
	int ret = a ? parse_prefix6(f, a->addr, &a->len) : parse_prefix6(f, r->dst, &r->len);

	*expired = false;
	while (!ret && (f = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(f, '=');
		uint64_t v = 0;

		if (!eq)
			return -EINVAL;
		*eq++ = '\0';
		if (r && !strcmp(f, "via")) {
			if (inet_pton(AF_INET6, eq, r->gateway) != 1)
				ret = -EINVAL;
			continue;
		}
		if (!strcmp(f, "f")) {
			char *end = NULL;

			errno = 0;
			v = strtoull(eq, &end, 16);
			ret = !*eq || *end || errno || v > UINT32_MAX ? -EINVAL : 0;
		} else
			ret = parse_uint(eq, 0, INT64_MAX, &v);
		if (ret)
			break;
		if (a && !strcmp(f, "f"))
			a->flags = (uint32_t)v;
		else if (a && !strcmp(f, "p"))
			a->preferred = left(v, now);
		else if (a && !strcmp(f, "v")) {
			a->valid = left(v, now);
			*expired = !a->valid;
		} else if (r && !strcmp(f, "m") && v <= UINT32_MAX)
			r->metric = (unsigned)v;
		else if (r && !strcmp(f, "pr") && v <= 255)
			r->proto = (unsigned)v;
		else if (r && !strcmp(f, "e")) {
			r->expires = left(v, now);
			*expired = !r->expires;
		} else if (r && !strcmp(f, "pf") && v <= 255)
			r->pref = (uint8_t)v;
		else
			ret = -EINVAL;
	}
	return ret;
}

/* The adapter's IPv4 default route's gateway (0: none). */
static int default_gw4(unsigned index, uint32_t *gw)
{
	struct nl_route4 *routes = calloc(ROUTES_MAX, sizeof(*routes));
	size_t n = 0;
	int ret = routes ? nl_routes4(routes, ROUTES_MAX, &n) : -ENOMEM;

	*gw = 0;
	for (size_t i = 0; !ret && i < n; i++)
		if (!routes[i].dst.len && routes[i].oif == index && routes[i].gateway &&
		    routes[i].table == 254)
			*gw = routes[i].gateway;
	free(routes);
	return ret;
}

/* The record of what the adapter has now into rec; *fresh: something of it is not in sw's
 * record yet. */
static int record_adapter(const struct store_switch *sw, char *rec, size_t size, bool *fresh)
{
	struct nl_prefix4 a4[ADDRS_MAX];
	struct nl_addr6 a6[ADDRS_MAX];
	struct nl_route6 *r6 = calloc(ROUTES_MAX, sizeof(*r6));
	size_t n4 = 0, n6 = 0, nr6 = 0;
	time_t now = time(NULL);
	uint32_t gw = 0;
	bool v6 = ipv6_on(sw->adapter);
	char t[160];
	int ret = r6 ? nl_addrs4(sw->adapter, a4, ADDRS_MAX, &n4) : -ENOMEM;

	if (!ret && v6)
		ret = nl_addrs6(sw->adapter, a6, ADDRS_MAX, &n6);
	if (!ret && v6)
		ret = nl_routes6(sw->adapter, r6, ROUTES_MAX, &nr6);
	if (!ret)
		ret = default_gw4(if_nametoindex(sw->adapter), &gw);
	rec[0] = '\0';
	*fresh = false;
	if (!ret && (v6 || switch_addrs_recorded(sw, "ipv6")))
		ret = append(rec, size, "ipv6");
	for (size_t i = 0; !ret && i < n4; i++) {
		nl_prefix4_format(a4[i], t, sizeof(t));
		*fresh |= !switch_addrs_recorded(sw, t);
		ret = append(rec, size, t);
	}
	if (!ret && gw) {
		snprintf(t, sizeof(t), "via:%u.%u.%u.%u", gw >> 24, (gw >> 16) & 255,
			 (gw >> 8) & 255, gw & 255);
		ret = append(rec, size, t);
	}
	for (size_t i = 0; !ret && i < n6; i++) {
		addr6_key(&a6[i], t, sizeof(t));
		*fresh |= !has_entry(sw->adapter_addrs, t);
		addr6_token(&a6[i], now, t, sizeof(t));
		ret = append(rec, size, t);
	}
	for (size_t i = 0; !ret && i < nr6; i++) {
		route6_token(&r6[i], now, t, sizeof(t));
		ret = append(rec, size, t);
	}
	free(r6);
	return ret;
}

int switch_addrs_take(struct store *st, struct store_switch *sw)
{
	char rec[STORE_SWITCH_ADDRS_MAX];
	struct nl_prefix4 a4[ADDRS_MAX];
	size_t n4 = 0;
	bool fresh, v6 = ipv6_on(sw->adapter);
	int ret = record_adapter(sw, rec, sizeof(rec), &fresh);

	if (ret)
		return ret;
	/* Nothing new on the adapter: keeld took it all before (a restart), or gave part of
	 * it back when a delete ended halfway: the record stays whole. */
	if (!fresh) {
		snprintf(rec, sizeof(rec), "%s", sw->adapter_addrs);
		if (v6 && !switch_addrs_recorded(sw, "ipv6"))
			ret = append(rec, sizeof(rec), "ipv6");
	}
	/* Stored before anything moves: keeld ending at any point after can give it back. */
	if (!ret && strcmp(rec, sw->adapter_addrs)) {
		ret = store_switch_set_addrs(st, sw->name, rec);
		if (!ret)
			snprintf(sw->adapter_addrs, sizeof(sw->adapter_addrs), "%s", rec);
	}
	if (!ret)
		ret = nl_addrs4(sw->adapter, a4, ADDRS_MAX, &n4);
	for (size_t i = 0; !ret && i < n4; i++)
		ret = nl_addr4(sw->adapter, false, a4[i]);
	/* Its IPv6 addresses and routes go with its IPv6, link-local and SLAAC included. */
	if (!ret && v6)
		ret = switch_link_ipv6(sw->adapter, false);
	return ret;
}

/* One entry t (modified) onto or off ifname. */
static int put_one(char *t, const char *ifname, bool add, time_t now)
{
	struct nl_prefix4 p;
	bool expired = false;
	int ret;

	if (!strcmp(t, "ipv6"))
		return 0;
	if (!strncmp(t, "a6:", 3)) {
		struct nl_addr6 a = {.preferred = UINT32_MAX, .valid = UINT32_MAX};

		ret = parse6(t + 3, &a, NULL, now, &expired);
		if (ret || (add && expired))
			return ret; /* gone by now, as it would have on the adapter */
		ret = nl_addr6(ifname, add, &a);
		return (add && ret == -EEXIST) || (!add && ret == -EADDRNOTAVAIL) ? 0 : ret;
	}
	if (!strncmp(t, "r6:", 3)) {
		struct nl_route6 r = {0};

		ret = parse6(t + 3, NULL, &r, now, &expired);
		if (ret || (add && expired))
			return ret;
		ret = nl_route6(ifname, add, &r);
		return (add && ret == -EEXIST) || (!add && ret == -ESRCH) ? 0 : ret;
	}
	if (!strncmp(t, "via:", 4)) {
		struct nl_route4 r = {{0, 0}, 0, if_nametoindex(ifname), 254};
		char g[40];

		/* the default route, after the addresses that reach its gateway; it goes with
		 * them */
		snprintf(g, sizeof(g), "%s/32", t + 4);
		if (!add || nl_prefix4_parse(g, false, &p))
			return 0;
		r.gateway = p.addr;
		return nl_route4_add(&r);
	}
	if (nl_prefix4_parse(t, false, &p))
		return -EINVAL;
	ret = nl_addr4(ifname, add, p);
	return !add && ret == -EADDRNOTAVAIL ? 0 : ret;
}

int switch_addrs_put(const struct store_switch *sw, const char *ifname, bool add)
{
	char copy[STORE_SWITCH_ADDRS_MAX], *save = NULL;
	time_t now = time(NULL);
	int ret = 0;

	snprintf(copy, sizeof(copy), "%s", sw->adapter_addrs);
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		int r = put_one(t, ifname, add, now);

		ret = ret ? ret : r;
	}
	return ret;
}
