/* SPDX-License-Identifier: Apache-2.0 */
/* The record of an external switch's adapter addresses, made and read (switch_record.h). */
#include "daemon/switch_record.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/rtnetlink.h>

#include "lib/parse.h"

bool switch_record_has(const char *list, const char *key)
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

/* Entry t's key (tl bytes of it) into key: an address's "a6:ADDR/N" without its flags and
 * lifetimes, a route's entry without its expiry, any other entry whole. */
static void entry_key(const char *t, size_t tl, char *key, size_t size)
{
	char *e;

	snprintf(key, size, "%.*s", (int)tl, t);
	if (!strncmp(key, "a6:", 3) || (key[0] >= '0' && key[0] <= '9'))
		key[strcspn(key, ",")] = '\0'; /* an address, IPv6 or IPv4 */
	else if (!strncmp(key, "r6:", 3) && (e = strstr(key, ",e=")))
		memmove(e, e + 3 + strcspn(e + 3, ","), strlen(e + 3 + strcspn(e + 3, ",")) + 1);
}

/* Has list an entry whose key is key? */
static bool has_key(const char *list, const char *key)
{
	char k[SWITCH_RECORD_ENTRY_MAX];

	for (const char *t = list; *t;) {
		size_t tl = strcspn(t, " ");

		entry_key(t, tl, k, sizeof(k));
		if (tl && !strcmp(k, key))
			return true;
		t += tl;
		t += strspn(t, " ");
	}
	return false;
}

int switch_record_merge(char *list, size_t size, const char *old, time_t now)
{
	char k[SWITCH_RECORD_ENTRY_MAX], entry[SWITCH_RECORD_ENTRY_MAX];
	struct switch_record_entry e;
	int ret = 0;

	for (const char *t = old; *t && !ret;) {
		size_t tl = strcspn(t, " ");

		entry_key(t, tl, k, sizeof(k));
		snprintf(entry, sizeof(entry), "%.*s", (int)tl, t);
		/* (one that does not read, or has ended, is not carried on) */
		if (tl && tl < sizeof(entry) && !switch_record_entry(entry, now, &e) &&
		    !e.expired && !has_key(list, k))
			ret = switch_record_append(list, size, entry);
		t += tl;
		t += strspn(t, " ");
	}
	return ret;
}

int switch_record_append(char *list, size_t size, const char *token)
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

void switch_record_addr4(const struct nl_ifaddr4 *a, time_t now, char *out, size_t size)
{
	size_t len;

	nl_prefix4_format(a->p, out, size);
	len = strlen(out);
	if (a->flags & NL_ADDR4_FLAGS)
		snprintf(out + len, size - len, ",f=%x", a->flags & NL_ADDR4_FLAGS);
	len = strlen(out);
	if (a->metric)
		snprintf(out + len, size - len, ",m=%u", a->metric);
	put_end(out, size, "p", a->preferred, now);
	put_end(out, size, "v", a->valid, now);
}

void switch_record_addr6_key(const struct nl_addr6 *a, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "";

	inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
	snprintf(out, size, "a6:%s/%u", ip, a->len);
}

void switch_record_addr6(const struct nl_addr6 *a, time_t now, char *out, size_t size)
{
	size_t len;

	switch_record_addr6_key(a, out, size);
	len = strlen(out);
	if (a->flags & NL_ADDR6_FLAGS)
		snprintf(out + len, size - len, ",f=%x", a->flags & NL_ADDR6_FLAGS);
	put_end(out, size, "p", a->preferred, now);
	put_end(out, size, "v", a->valid, now);
}

/* ",t=TABLE" onto out for a routing table other than main (0 or RT_TABLE_MAIN). */
static void put_table(char *out, size_t size, unsigned table)
{
	size_t len = strlen(out);

	if (table && table != RT_TABLE_MAIN)
		snprintf(out + len, size - len, ",t=%u", table);
}

void switch_record_route6(const struct nl_route6 *r, time_t now, char *out, size_t size)
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
	len = strlen(out);
	if (r->onlink)
		snprintf(out + len, size - len, ",on=1");
	put_table(out, size, r->table);
}

/* "a.b.c.d" of addr (host byte order) after prefix onto out. */
static void put_ip4(char *out, size_t size, const char *prefix, uint32_t addr)
{
	size_t len = strlen(out);

	snprintf(out + len, size - len, "%s%u.%u.%u.%u", prefix, addr >> 24, (addr >> 16) & 255,
		 (addr >> 8) & 255, addr & 255);
}

void switch_record_route4(const struct nl_route4 *r, char *out, size_t size)
{
	size_t len;

	snprintf(out, size, "r4:");
	len = strlen(out);
	nl_prefix4_format(r->dst, out + len, size - len);
	if (r->gateway)
		put_ip4(out, size, ",via=", r->gateway);
	len = strlen(out);
	snprintf(out + len, size - len, ",m=%u,pr=%u,sc=%u", r->metric, r->proto, r->scope);
	if (r->prefsrc)
		put_ip4(out, size, ",src=", r->prefsrc);
	len = strlen(out);
	if (r->onlink)
		snprintf(out + len, size - len, ",on=1");
	put_table(out, size, r->table);
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
	if (end <= (uint64_t)now)
		return 0;
	/* UINT32_MAX is forever: a time that far is the longest finite one */
	return end - (uint64_t)now < UINT32_MAX ? (uint32_t)(end - (uint64_t)now) : UINT32_MAX - 1;
}

/* "a.b.c.d" into *addr (host byte order). */
static int parse_ip4(const char *s, uint32_t *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*addr = ntohl(a.s_addr);
	return 0;
}

/* An entry's text after its kind's prefix (modified) into out (its kind set); expired: it
 * has passed its valid lifetime or expiry. */
static int parse_entry(char *t, time_t now, struct switch_record_entry *out)
{
	enum switch_record_kind k = out->kind;
	bool addr = k == SWITCH_RECORD_ADDR4 || k == SWITCH_RECORD_ADDR6;
	uint32_t *flags = k == SWITCH_RECORD_ADDR4 ? &out->a4.flags : &out->a6.flags;
	uint32_t *pref = k == SWITCH_RECORD_ADDR4 ? &out->a4.preferred : &out->a6.preferred;
	uint32_t *valid = k == SWITCH_RECORD_ADDR4 ? &out->a4.valid : &out->a6.valid;
	unsigned *metric = k == SWITCH_RECORD_ADDR4    ? &out->a4.metric
			   : k == SWITCH_RECORD_ROUTE4 ? &out->r4.metric
						       : &out->r6.metric;
	char *save = NULL, *f = strtok_r(t, ",", &save);
	int ret = !f			      ? -EINVAL
		  : k == SWITCH_RECORD_ADDR4  ? nl_prefix4_parse(f, false, &out->a4.p)
		  : k == SWITCH_RECORD_ADDR6  ? parse_prefix6(f, out->a6.addr, &out->a6.len)
		  : k == SWITCH_RECORD_ROUTE6 ? parse_prefix6(f, out->r6.dst, &out->r6.len)
					      : nl_prefix4_parse(f, false, &out->r4.dst);

	if (addr)
		*pref = *valid = UINT32_MAX;
	out->expired = false;
	while (!ret && (f = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(f, '=');
		uint64_t v = 0;

		if (!eq)
			return -EINVAL;
		*eq++ = '\0';
		if (k == SWITCH_RECORD_ROUTE6 && !strcmp(f, "via")) {
			if (inet_pton(AF_INET6, eq, out->r6.gateway) != 1)
				ret = -EINVAL;
			continue;
		}
		if (k == SWITCH_RECORD_ROUTE4 && (!strcmp(f, "via") || !strcmp(f, "src"))) {
			ret = parse_ip4(eq,
					!strcmp(f, "via") ? &out->r4.gateway : &out->r4.prefsrc);
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
		if (addr && !strcmp(f, "f"))
			*flags = (uint32_t)v;
		else if (addr && !strcmp(f, "p"))
			*pref = left(v, now);
		else if (addr && !strcmp(f, "v")) {
			*valid = left(v, now);
			out->expired = !*valid;
		} else if (k != SWITCH_RECORD_ADDR6 && !strcmp(f, "m") && v <= UINT32_MAX)
			*metric = (unsigned)v;
		else if (k == SWITCH_RECORD_ROUTE6 && !strcmp(f, "pr") && v <= 255)
			out->r6.proto = (unsigned)v;
		else if (k == SWITCH_RECORD_ROUTE6 && !strcmp(f, "on") && v <= 1)
			out->r6.onlink = v;
		else if (k == SWITCH_RECORD_ROUTE6 && !strcmp(f, "e")) {
			out->r6.expires = left(v, now);
			out->expired = !out->r6.expires;
		} else if (k == SWITCH_RECORD_ROUTE6 && !strcmp(f, "pf") && v <= 255)
			out->r6.pref = (uint8_t)v;
		else if (k == SWITCH_RECORD_ROUTE4 && !strcmp(f, "pr") && v <= 255)
			out->r4.proto = (unsigned)v;
		else if (k == SWITCH_RECORD_ROUTE4 && !strcmp(f, "sc") && v <= 255)
			out->r4.scope = (unsigned)v;
		else if (k == SWITCH_RECORD_ROUTE4 && !strcmp(f, "on") && v <= 1)
			out->r4.onlink = v;
		else if ((k == SWITCH_RECORD_ROUTE4 || k == SWITCH_RECORD_ROUTE6) &&
			 !strcmp(f, "t") && v && v <= UINT32_MAX && v != RT_TABLE_MAIN &&
			 v != RT_TABLE_LOCAL)
			*(k == SWITCH_RECORD_ROUTE4 ? &out->r4.table : &out->r6.table) =
				(unsigned)v;
		else
			ret = -EINVAL;
	}
	return ret;
}

int switch_record_entry(const char *text, time_t now, struct switch_record_entry *out)
{
	char t[SWITCH_RECORD_ENTRY_MAX];

	memset(out, 0, sizeof(*out));
	if (strlen(text) >= sizeof(t))
		return -EINVAL;
	snprintf(t, sizeof(t), "%s", text);
	if (!strcmp(t, "ipv6")) {
		out->kind = SWITCH_RECORD_IPV6_ON;
		return 0;
	}
	if (!strncmp(t, "a6:", 3) || !strncmp(t, "r6:", 3) || !strncmp(t, "r4:", 3)) {
		out->kind = t[0] == 'a'	  ? SWITCH_RECORD_ADDR6
			    : t[1] == '6' ? SWITCH_RECORD_ROUTE6
					  : SWITCH_RECORD_ROUTE4;
		return parse_entry(t + 3, now, out);
	}
	/* a record from before the r4: entries: the default route's gateway alone */
	if (!strncmp(t, "via:", 4)) {
		out->kind = SWITCH_RECORD_ROUTE4;
		return parse_ip4(t + 4, &out->r4.gateway);
	}
	out->kind = SWITCH_RECORD_ADDR4;
	return parse_entry(t, now, out);
}
