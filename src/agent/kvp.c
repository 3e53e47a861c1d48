/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key-value exchange, the host's side of it: set, get, delete and list pairs. The host may
 * change only the host pool; it reads all three (auto: the guest's facts, gathered at each
 * request; guest: pairs set in the guest; host: its own).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/agent.h"

/* One value of /etc/os-release (NAME, VERSION_ID...), quotes taken off; "" when absent. */
static void os_release(const char *field, char *out, size_t n)
{
	char line[512];
	size_t flen = strlen(field);
	FILE *f = fopen("/etc/os-release", "re");

	out[0] = '\0';
	if (!f)
		f = fopen("/usr/lib/os-release", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v = line + flen + 1;
		size_t len;

		if (strncmp(line, field, flen) || line[flen] != '=')
			continue;
		len = strcspn(v, "\n");
		v[len] = '\0';
		if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
			v[len - 1] = '\0';
			v++;
		}
		snprintf(out, n, "%s", v);
		break;
	}
	fclose(f);
}

/* The host name, with the domain of /etc/resolv.conf when the name has none. */
static void fqdn(char *out, size_t n)
{
	char host[256] = "", line[512], domain[256] = "";
	FILE *f;

	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	f = strchr(host, '.') ? NULL : fopen("/etc/resolv.conf", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if ((!strncmp(line, "domain", 6) || !strncmp(line, "search", 6)) &&
		    (line[6] == ' ' || line[6] == '\t')) {
			if (sscanf(line + 7, " %255s", domain) == 1)
				break;
			domain[0] = '\0';
		}
	}
	if (f)
		fclose(f);
	snprintf(out, n, domain[0] ? "%s.%s" : "%s", host, domain);
}

/* "mac=52:54:00:12:34:56 ipv4=10.0.0.2/24 ipv6=fe80::1/64,..." per interface. */
struct iface_fact {
	char name[IFNAMSIZ];
	char mac[18];
	char v4[960];
	char v6[960];
};

static int prefix_len(const struct sockaddr *mask)
{
	const uint8_t *p;
	size_t n;
	int bits = 0;

	if (!mask)
		return 0;
	if (mask->sa_family == AF_INET) {
		p = (const uint8_t *)&((const struct sockaddr_in *)mask)->sin_addr;
		n = 4;
	} else {
		p = (const uint8_t *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
		n = 16;
	}
	for (size_t i = 0; i < n; i++)
		bits += __builtin_popcount(p[i]);
	return bits;
}

static void append(char *dst, size_t n, const char *s)
{
	size_t len = strlen(dst);

	if (len + strlen(s) + 2 < n)
		snprintf(dst + len, n - len, "%s%s", len ? "," : "", s);
}

#define MAX_IFACES 32

static int facts_interfaces(struct iface_fact *ifs, int max)
{
	struct ifaddrs *all, *a;
	int count = 0;

	if (getifaddrs(&all) < 0)
		return -errno;
	for (a = all; a; a = a->ifa_next) {
		struct iface_fact *f = NULL;
		char addr[INET6_ADDRSTRLEN + 8];

		if (!a->ifa_addr || (a->ifa_flags & IFF_LOOPBACK))
			continue;
		for (int i = 0; i < count; i++)
			if (!strcmp(ifs[i].name, a->ifa_name))
				f = &ifs[i];
		if (!f) {
			if (count == max)
				continue;
			f = &ifs[count++];
			memset(f, 0, sizeof(*f));
			snprintf(f->name, sizeof(f->name), "%s", a->ifa_name);
		}
		if (a->ifa_addr->sa_family == AF_PACKET) {
			const struct sockaddr_ll *ll = (const struct sockaddr_ll *)a->ifa_addr;

			if (ll->sll_halen == 6)
				snprintf(f->mac, sizeof(f->mac), "%02x:%02x:%02x:%02x:%02x:%02x",
					 ll->sll_addr[0], ll->sll_addr[1], ll->sll_addr[2],
					 ll->sll_addr[3], ll->sll_addr[4], ll->sll_addr[5]);
		} else if (a->ifa_addr->sa_family == AF_INET ||
			   a->ifa_addr->sa_family == AF_INET6) {
			bool v4 = a->ifa_addr->sa_family == AF_INET;
			const void *src =
				v4 ? (const void *)&((struct sockaddr_in *)a->ifa_addr)->sin_addr
				   : (const void *)&((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
			size_t len;

			if (!inet_ntop(a->ifa_addr->sa_family, src, addr, INET6_ADDRSTRLEN))
				continue;
			len = strlen(addr);
			snprintf(addr + len, sizeof(addr) - len, "/%d", prefix_len(a->ifa_netmask));
			append(v4 ? f->v4 : f->v6, v4 ? sizeof(f->v4) : sizeof(f->v6), addr);
		}
	}
	freeifaddrs(all);
	return count;
}

int kvp_facts_each(int (*fn)(const char *key, const char *value, void *arg), void *arg)
{
	static struct iface_fact ifs[MAX_IFACES];
	char value[AP_MAX_VALUE], key[64], all4[AP_MAX_VALUE] = "", all6[AP_MAX_VALUE] = "";
	struct utsname u;
	int r, n;

	fqdn(value, sizeof(value));
	if ((r = fn("FullyQualifiedDomainName", value, arg)))
		return r;
	os_release("NAME", value, sizeof(value));
	if ((r = fn("OSName", value, arg)))
		return r;
	os_release("VERSION_ID", value, sizeof(value));
	if ((r = fn("OSVersion", value, arg)))
		return r;
	os_release("PRETTY_NAME", value, sizeof(value));
	if ((r = fn("OSPrettyName", value, arg)))
		return r;
	if (uname(&u) == 0) {
		if ((r = fn("OSKernelVersion", u.release, arg)) ||
		    (r = fn("ProcessorArchitecture", u.machine, arg)))
			return r;
	}
	if ((r = fn("IntegrationServicesVersion", KEEL_VERSION, arg)))
		return r;
	n = facts_interfaces(ifs, MAX_IFACES);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "NetworkInterface.%s", ifs[i].name);
		snprintf(value, sizeof(value), "mac=%s ipv4=%s ipv6=%s", ifs[i].mac, ifs[i].v4,
			 ifs[i].v6);
		if ((r = fn(key, value, arg)))
			return r;
		if (ifs[i].v4[0])
			append(all4, sizeof(all4), ifs[i].v4);
		if (ifs[i].v6[0])
			append(all6, sizeof(all6), ifs[i].v6);
	}
	if ((r = fn("NetworkAddressIPv4", all4, arg)) || (r = fn("NetworkAddressIPv6", all6, arg)))
		return r;
	return 0;
}

/* KVP_LIST replies: as many pairs as fit in a frame, with MORE on all but the last. */
struct kvp_lister {
	struct conn *c;
	const struct ap_msg *m;
	int err;
};

static int kvp_list_one(const char *key, const char *value, void *arg)
{
	struct kvp_lister *l = arg;
	struct ap_out *o = &l->c->out;

	if (kvp_check(key, value))
		return 0; /* a fact too long for the protocol (a huge address list) is left out */
	if (!ap_room(o, strlen(key) + strlen(value) + 2 + 4)) {
		o->buf[6] |= AP_F_MORE;
		if (ap_end(o) || conn_send(l->c)) {
			l->err = -EIO;
			return -EIO;
		}
		ap_begin(o, l->m->type, AP_F_REPLY, l->m->id);
	}
	ap_put_str(o, AP_A_KEY, key);
	ap_put_str(o, AP_A_VALUE, value);
	return 0;
}

static int kvp_list(struct conn *c, const struct ap_msg *m, uint32_t pool)
{
	struct kvp_lister l = {c, m, 0};
	int r;

	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	r = pool == AP_POOL_AUTO ? kvp_facts_each(kvp_list_one, &l)
				 : kvp_pool_each((int)pool, kvp_list_one, &l);
	if (l.err)
		return l.err;
	if (r < 0)
		return conn_error(c, m, -r, "cannot read the %s pool: %s",
				  pool == AP_POOL_GUEST ? "guest" : "host", strerror(-r));
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

/* kvp_get's search through the facts. */
struct kvp_fact_find {
	const char *key;
	char *value;
	bool found;
};

static int kvp_fact_match(const char *key, const char *value, void *arg)
{
	struct kvp_fact_find *f = arg;

	if (strcmp(key, f->key))
		return 0;
	snprintf(f->value, AP_MAX_VALUE, "%s", value);
	f->found = true;
	return 1;
}

int kvp_handle(struct conn *c, const struct ap_msg *m)
{
	static char value[AP_MAX_VALUE];
	const char *key = ap_get_str(m, AP_A_KEY), *val = ap_get_str(m, AP_A_VALUE), *bad;
	uint32_t pool;
	int r;

	if (ap_get_u32(m, AP_A_POOL, &pool) || pool >= AP_POOL_COUNT)
		return conn_error(c, m, EINVAL, "%s needs pool 0 (auto), 1 (guest) or 2 (host)",
				  ap_type_name(m->type));
	if (m->type == AP_T_KVP_LIST)
		return kvp_list(c, m, pool);
	if (!key || ap_count(m, AP_A_KEY) != 1)
		return conn_error(c, m, EINVAL, "%s needs one key", ap_type_name(m->type));
	if ((bad = kvp_check(key, m->type == AP_T_KVP_SET ? (val ? val : "") : NULL)))
		return conn_error(c, m, EINVAL, "%s", bad);
	if (m->type != AP_T_KVP_GET && pool != AP_POOL_HOST)
		return conn_error(c, m, EPERM, "the host may change only the host pool (2)");
	switch (m->type) {
	case AP_T_KVP_SET:
		if (!val || ap_count(m, AP_A_VALUE) != 1)
			return conn_error(c, m, EINVAL, "kvp-set needs one value");
		r = kvp_pool_set((int)pool, key, val);
		break;
	case AP_T_KVP_DELETE:
		r = kvp_pool_delete((int)pool, key);
		break;
	default:
		if (pool == AP_POOL_AUTO) {
			struct kvp_fact_find f = {key, value, false};

			kvp_facts_each(kvp_fact_match, &f);
			r = f.found ? 0 : -ENOENT;
		} else {
			r = kvp_pool_get((int)pool, key, value);
		}
		if (r)
			break;
		ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
		ap_put_str(&c->out, AP_A_VALUE, value);
		if (ap_end(&c->out))
			return -EIO;
		return conn_send(c);
	}
	if (r == -ENOENT)
		return conn_error(c, m, ENOENT, "no key '%s' in that pool", key);
	if (r)
		return conn_error(c, m, -r, "%s: %s", ap_type_name(m->type), strerror(-r));
	return conn_ok(c, m);
}
