/* SPDX-License-Identifier: Apache-2.0 */
/* Virtual switches: the policy, and bringing them up and down (switch.h). */
#include "daemon/switch.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/events.h"
#include "daemon/netlink.h"
#include "daemon/sup_internal.h"
#include "daemon/switch_addrs.h"
#include "daemon/switch_dhcp.h"
#include "daemon/switch_leases.h"
#include "daemon/switch_mirror.h"
#include "daemon/switch_nft.h"
#include "daemon/switch_nftmon.h"
#include "daemon/switch_record.h"
#include "lib/clock.h"
#include "lib/error.h"
#include "lib/log.h"

#define ROUTES_MAX  4096
#define BRIDGES_MAX 1000
#define LEASES_MAX  (1 << 20)

#define WATCH_MS    5000
#define RETRY_MS    1000 /* the first retry of a failed reload, doubled up to WATCH_MS */

static char switches_dir[PATH_MAX - 64]; /* STATE/switches */
static struct store *watch_store;	 /* switches_init's: the store switches_tick reads */
static long long watch_next;		 /* monotonic ms of the next check */
/* nftables' change notifications (switch_nftmon.h): another process's change of keel's
 * tables makes the next check now, one that loads every switch's rules again; -1: none, the
 * periodic check alone. */
static int watch_fd = -1;
static struct switch_nftmon watch_mon;
static bool watch_told;		/* the next check is one a notification asked for */
static long long watch_told_at; /* monotonic ms: when that notification was read */
static int watch_retry_ms;	/* after a failed reload: when the next check retries */
static long long watch_full_at; /* monotonic ms: the last reload of every switch (told) */

static bool is_type(const struct store_switch *sw, const char *type)
{
	return !strcmp(sw->type, type);
}

static bool has_dhcp(const struct store_switch *sw)
{
	return is_type(sw, "internal") && sw->nat && sw->subnet[0];
}

static void switch_dir(const struct store_switch *sw, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", switches_dir, sw->bridge);
}

/* The host's address on an internal switch: the subnet's first. */
static struct nl_prefix4 gateway(const struct store_switch *sw)
{
	struct nl_prefix4 p = {0, 0};

	if (!nl_prefix4_parse(sw->subnet, true, &p))
		p.addr += 1;
	return p;
}

/* ---- the host's routes and the subnets ---- */

/* Is link index the bridge of switch self (may be NULL)? */
static bool own_bridge(unsigned index, const struct store_switch *self)
{
	char name[IF_NAMESIZE];

	return self && if_indextoname(index, name) && !strcmp(name, self->bridge);
}

/* Does p collide with a route of the host (default routes and self's own aside) or the
 * subnet of another switch than self? The first such in why. */
static int subnet_taken(struct store *st, struct nl_prefix4 p, const struct store_switch *self,
			char *why, size_t len, bool *taken)
{
	struct nl_route4 *routes = NULL;
	struct store_switch *list = NULL;
	size_t n = 0, nsw = 0;
	int ret = store_switch_list(st, &list, &nsw);

	*taken = false;
	for (size_t i = 0; !ret && !*taken && i < nsw; i++) {
		struct nl_prefix4 q;

		if (!list[i].subnet[0] || (self && !strcmp(list[i].name, self->name)) ||
		    nl_prefix4_parse(list[i].subnet, true, &q) || !nl_prefix4_overlap(p, q))
			continue;
		snprintf(why, len, "switch '%s' (%s)", list[i].name, list[i].subnet);
		*taken = true;
	}
	free(list);
	if (ret || *taken)
		return ret;
	routes = calloc(ROUTES_MAX, sizeof(*routes));
	ret = routes ? nl_routes4(routes, ROUTES_MAX, &n) : -ENOMEM;
	for (size_t i = 0; !ret && !*taken && i < n; i++) {
		char dev[IF_NAMESIZE] = "?", dst[32];

		if (!routes[i].dst.len || own_bridge(routes[i].oif, self) ||
		    !nl_prefix4_overlap(p, routes[i].dst))
			continue;
		if (routes[i].oif)
			(void)!if_indextoname(routes[i].oif, dev);
		nl_prefix4_format(routes[i].dst, dst, sizeof(dst));
		snprintf(why, len, "the host's route to %s (dev %s)", dst, dev);
		*taken = true;
	}
	free(routes);
	return ret;
}

/* A /24 no route and no switch uses: 172.30.N.0, 10.97.N.0, then 192.168.N.0. */
static int pick_subnet(struct store *st, char *out, size_t size)
{
	static const uint32_t bases[] = {0xac1e0000u, 0x0a610000u, 0xc0a80000u};
	char why[128];

	for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
		for (uint32_t n = 0; n < 256; n++) {
			struct nl_prefix4 p = {bases[b] | n << 8, 24};
			bool taken;
			int ret = subnet_taken(st, p, NULL, why, sizeof(why), &taken);

			if (ret)
				return ret;
			if (!taken) {
				nl_prefix4_format(p, out, size);
				return 0;
			}
		}
	}
	return -EADDRNOTAVAIL;
}

/* The lowest kbrN neither a switch's nor a link of the host's. */
static int pick_bridge(struct store *st, char *out, size_t size)
{
	struct store_switch *list = NULL;
	size_t n = 0;
	int ret = store_switch_list(st, &list, &n);

	for (unsigned k = 0; !ret && k < BRIDGES_MAX; k++) {
		bool used = false;

		snprintf(out, size, "kbr%u", k);
		for (size_t i = 0; i < n; i++)
			used |= !strcmp(list[i].bridge, out);
		if (!used && !if_nametoindex(out)) {
			free(list);
			return 0;
		}
	}
	free(list);
	return ret ? ret : -ENOSPC;
}

/* ---- bringing a switch up and down ---- */

/* Does a socket of the host's hold port (proto "tcp" or "udp") on some address? Found by
 * binding the wildcard address, IPv4 then IPv6, which fails for a port taken. For TCP with
 * SO_REUSEADDR (a listener's port is still refused, closed connections' TIME_WAIT is kept
 * out of the answer); not for UDP, where it would share the port of a service that set it. */
static bool host_port_in_use(const char *proto, unsigned port)
{
	int type = strcmp(proto, "udp") ? SOCK_STREAM : SOCK_DGRAM;
	bool used = false;

	for (int v6 = 0; v6 < 2 && !used; v6++) {
		struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
					  .sin6_port = htons((uint16_t)port)};
		int fd = socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0), one = 1;

		if (fd < 0)
			continue; /* no IPv6 here: nothing can listen there */
		if (type == SOCK_STREAM)
			(void)!setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (v6)
			(void)!setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if ((v6 ? bind(fd, (struct sockaddr *)&a6, sizeof(a6))
			: bind(fd, (struct sockaddr *)&a4, sizeof(a4))) < 0 &&
		    errno == EADDRINUSE)
			used = true;
		close(fd);
	}
	return used;
}

/* Adapters in the middle of a move (switches_port_move until switches_moves_end): the store
 * has them where they were, their taps are where they go; or hot-added (switches_port_adding),
 * not in the store yet, their taps ports already. Whoever loads a switch's rules
 * meanwhile (a VM started on it, a switch change, the watch; keeld's lock is let go while a
 * move waits on the worker) loads their guards as the move has them. */
static struct vm_nic *moves;
static size_t nmoves;

static struct vm_nic *move_find(const char *tap)
{
	for (size_t i = 0; i < nmoves; i++)
		if (!strcmp(moves[i].tap, tap))
			return &moves[i];
	return NULL;
}

static int move_set(const struct vm_nic *nic)
{
	struct vm_nic *m = move_find(nic->tap), *more;

	if (!m) {
		more = realloc(moves, (nmoves + 1) * sizeof(*moves));
		if (!more)
			return -ENOMEM;
		moves = more;
		m = &moves[nmoves++];
	}
	*m = *nic;
	return 0;
}

static void move_drop(const char *tap)
{
	struct vm_nic *m = move_find(tap);

	if (m)
		*m = moves[--nmoves];
}

void switches_moves_end(const struct vm_def *def)
{
	for (unsigned i = 0; i < def->nnics; i++)
		if (def->nics[i].tap[0])
			move_drop(def->nics[i].tap);
	if (!nmoves) {
		free(moves);
		moves = NULL;
	}
}

/* Switch sw's ports as the store has them, with the adapters moving onto it where they go. */
static int switch_ports(struct store *st, const struct store_switch *sw, struct vm_nic **ports,
			size_t *n)
{
	int ret = store_switch_ports(st, sw->name, ports, n);

	for (size_t j = 0; !ret && j < nmoves; j++) {
		size_t i = 0;

		if (strcmp(moves[j].sw, sw->name))
			continue;
		while (i < *n && strcmp((*ports)[i].tap, moves[j].tap))
			i++;
		if (i == *n) {
			struct vm_nic *more = realloc(*ports, (*n + 1) * sizeof(**ports));

			if (more)
				*ports = more;
			ret = more ? 0 : -ENOMEM;
			*n += !ret;
		}
		if (!ret)
			(*ports)[i] = moves[j];
	}
	return ret;
}

/* Port mirroring on switch sw for its ports[0..n) (switch_ports'; reordered): a tap that
 * the store still has on sw while a move takes it to another switch is no longer sw's to
 * mirror or to mirror to (mirroring stays within the switch a tap is on). */
static void mirror_ports(const struct store_switch *sw, struct vm_nic *ports, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct vm_nic *m = move_find(ports[i].tap);

		if (!m || !strcmp(m->sw, sw->name))
			ports[k++] = ports[i];
	}
	(void)switch_mirror_apply(sw->name, ports, k);
}

/* The switch's rules in nftables, with the guards of the adapters on it. */
static int apply_rules(struct store *st, const struct store_switch *sw, char *err, size_t errlen)
{
	struct vm_nic *ports = NULL;
	struct store_forward *fwds = NULL;
	struct switch_nft_in in = {0};
	int ret = switch_ports(st, sw, &ports, &in.nports);

	if (!ret)
		ret = store_forward_list(st, sw->name, &fwds, &in.nfwds);
	if (ret) {
		error_set(err, errlen, "switch '%s': cannot read its adapters and forwards",
			  sw->name);
		free(ports);
		return ret;
	}
	in.ports = ports;
	in.fwds = fwds;
	/* A service of the host's that took a forward's port since (or before keeld started):
	 * the forward takes its traffic from outside. */
	for (size_t i = 0; i < in.nfwds; i++)
		if (host_port_in_use(fwds[i].proto, fwds[i].host_port))
			log_warn("switch '%s': forward of host port %s/%u to %s:%u: a service of "
				 "the host's listens on %s/%u too, and loses its traffic to the "
				 "forward",
				 sw->name, fwds[i].proto, fwds[i].host_port, fwds[i].address,
				 fwds[i].port, fwds[i].proto, fwds[i].host_port);
	if (has_dhcp(sw)) {
		char dir[PATH_MAX];

		switch_dir(sw, dir, sizeof(dir));
		ret = switch_dhcp_hosts(sw->bridge, dir, fwds, in.nfwds);
		if (ret)
			error_set(err, errlen,
				  "switch '%s': cannot write its DHCP reservations: %s", sw->name,
				  strerror(-ret));
	}
	if (!ret)
		ret = switch_nft_apply(sw, &in, false, err, errlen);
	/* Port mirroring follows the same ports (logged: the frames flow either way). */
	if (!ret)
		mirror_ports(sw, ports, in.nports);
	free(ports);
	free(fwds);
	return ret;
}

/* Port mirroring on switch sw again (a tap went back to it, or left it, without its rules
 * loaded). */
static void mirror_again(struct store *st, const struct store_switch *sw)
{
	struct vm_nic *ports = NULL;
	size_t n = 0;

	if (switch_ports(st, sw, &ports, &n))
		log_err("switch '%s': cannot read its adapters to mirror them", sw->name);
	else
		mirror_ports(sw, ports, n);
	free(ports);
}

/* An internal or private switch's bridge MAC: locally administered (0e:, apart from the VMs' 02:),
 * from the switch's name and creation time (FNV-1a), so that it stays the same across restarts and
 * does not follow the lowest MAC among its ports (the host's neighbours keep a valid entry). */
static void bridge_mac(const struct store_switch *sw, uint8_t mac[6])
{
	uint64_t h = 1469598103934665603ull;

	for (const char *c = sw->name; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ull;
	for (int i = 0; i < 8; i++)
		h = (h ^ ((uint64_t)sw->created >> (8 * i) & 255)) * 1099511628211ull;
	mac[0] = 0x0e;
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
}

/* Link name's MAC (SIOCGIFHWADDR). */
static int link_mac(const char *name, uint8_t mac[6])
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		ret = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return ret;
}

#ifdef KEEL_TEST_HOOKS
/* Test builds only: keeld kills itself at stage of bringing a switch up or down (switch_up,
 * switch_down, a create's, change's or delete's store write) when STATE/switches/test-crash
 * names it (e2e switch-crash, switch-set-crash); "fail:STAGE" makes that stage fail instead
 * (-EIO; where a caller checks it). A release build has no such file check. */
static int crash_point(const char *stage)
{
	char path[PATH_MAX], want[64] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/test-crash", switches_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, want, sizeof(want) - 1);
	close(fd);
	want[n > 0 ? strcspn(want, "\n") : 0] = '\0';
	if (!strcmp(want, stage)) {
		log_warn("test-crash: keeld killed at %s", stage);
		raise(SIGKILL);
	}
	if (!strncmp(want, "fail:", 5) && !strcmp(want + 5, stage)) {
		log_warn("test-crash: failing at %s", stage);
		return -EIO;
	}
	return 0;
}
#else
static inline int crash_point(const char *stage)
{
	(void)stage;
	return 0;
}
#endif

/* Record in into's row (not stored here) that switch from's host address, which its bridge
 * has under from's settings, is to be taken off it (an internal switch's subnet changed):
 * 0 or -ENOSPC. */
static int record_host_addr(struct store_switch *into, const struct store_switch *from)
{
	char t[SWITCH_RECORD_ENTRY_MAX];

	if (!from->subnet[0] || !strcmp(from->subnet, into->subnet))
		return 0;
	nl_prefix4_format(gateway(from), t, sizeof(t));
	return switch_record_has(into->adapter_addrs, t)
		       ? 0
		       : switch_record_append(into->adapter_addrs, sizeof(into->adapter_addrs), t);
}

/* The bridge's IPv4 addresses that keel put there and sw's settings do not give it, taken
 * off: an internal switch's host addresses of the subnets it had (recorded in its row by
 * the change, record_host_addr; the record emptied once they are gone), an external one's
 * adapter addresses while the management OS is not allowed. An address someone else put
 * on the bridge stays. */
static int strip_bridge(struct store *st, struct store_switch *sw)
{
	char copy[STORE_SWITCH_ADDRS_MAX], *save = NULL;
	struct nl_prefix4 gw = gateway(sw);
	int ret;

	if (is_type(sw, "external"))
		return sw->allow_mgmt ? 0 : switch_addrs_put(sw, sw->bridge, false);
	if (!is_type(sw, "internal") || !sw->adapter_addrs[0])
		return 0;
	snprintf(copy, sizeof(copy), "%s", sw->adapter_addrs);
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		struct switch_record_entry e;

		if (switch_record_entry(t, 0, &e) || e.kind != SWITCH_RECORD_ADDR4 ||
		    (e.a4.p.addr == gw.addr && e.a4.p.len == gw.len))
			continue; /* (its own: a failed change's way back) */
		ret = nl_addr4(sw->bridge, false, e.a4.p);
		if (ret && ret != -EADDRNOTAVAIL)
			return ret;
	}
	ret = store_switch_set_addrs(st, sw->name, "");
	if (!ret)
		sw->adapter_addrs[0] = '\0';
	return ret;
}

static int switch_up(struct store *st, struct store_switch *sw, char *err, size_t errlen)
{
	uint8_t mac[6];
	char dir[PATH_MAX];
	bool bridge = false;
	int ret = nl_bridge_add(sw->bridge);
	const char *step = "create bridge";

	if (ret == -EEXIST) {
		ret = nl_link_is_bridge(sw->bridge, &bridge);
		if (!ret && !bridge)
			ret = -EEXIST;
	}
	/* (bridge: the one from before, with what was put on it) */
	if (ret)
		goto fail;
	/* Adapters with a VLAN need it; without it (a kernel built without
	 * CONFIG_BRIDGE_VLAN_FILTERING) the switch works for the others. */
	ret = nl_bridge_vlan_filtering(sw->bridge);
	if (ret == -EOPNOTSUPP)
		log_warn("switch '%s': this kernel has no bridge VLAN filtering: adapters with a "
			 "VLAN cannot start on it",
			 sw->name);
	else if (ret) {
		step = "turn VLAN filtering on for";
		goto fail;
	}
	step = "set the MAC address of";
	/* An external switch's bridge takes its uplink adapter's MAC (as Hyper-V's, libvirt's
	 * and NetworkManager's): the host keeps its address on the network (DHCP
	 * reservations, switch port security, neighbours' caches). */
	if (!is_type(sw, "external") || link_mac(sw->adapter, mac))
		bridge_mac(sw, mac);
	ret = nl_link_set_mac(sw->bridge, mac);
	if (ret)
		goto fail;
	crash_point("up-bridge");
	/* Fail closed: the rules before anything can pass (an address, a port, the link up). */
	ret = apply_rules(st, sw, err, errlen);
	if (ret)
		return ret;
	crash_point("up-nft");
	/* No address of the host's on a private switch, nor on an external one without the
	 * management OS, not even a link-local one (a kernel without IPv6 has none anyway): so
	 * no router advertisement or autoconfiguration can give it one either. */
	step = "set IPv6 on";
	/* The bridge takes router advertisements as the adapter did (a host that forwards
	 * IPv6 has the adapter at accept_ra 2: the bridge's default 1 would ignore them), so
	 * that it learns what they gave the adapter (routes, SLAAC) and keeps it renewed. */
	if (is_type(sw, "external") && sw->allow_mgmt) {
		ret = switch_addrs_ipv6_conf(sw->adapter, sw->bridge);
		if (ret)
			goto fail;
	}
	if (!is_type(sw, "internal")) {
		ret = switch_link_ipv6(sw->bridge, is_type(sw, "external") && sw->allow_mgmt);
		if (ret && ret != -ENOENT)
			goto fail;
	}
	/* What other settings of the switch left (a change keeld ended in the middle of):
	 * gone. */
	step = "take other settings' addresses off";
	ret = strip_bridge(st, sw);
	if (ret)
		goto fail;
	step = "address the bridge";
	if (is_type(sw, "internal") && sw->subnet[0]) {
		struct nl_prefix4 gw = gateway(sw);

		ret = nl_addr4(sw->bridge, true, gw);
		if (ret)
			goto fail;
	}
	step = "bridge the adapter";
	if (is_type(sw, "external")) {
		ret = nl_link_master(sw->adapter, sw->bridge);
		if (!ret)
			ret = nl_link_up(sw->adapter);
		if (!ret)
			ret = switch_addrs_take(st, sw, bridge);
		if (ret == -E2BIG || ret == -ENOSPC) {
			error_set(err, errlen,
				  "switch '%s': adapter %s has more addresses or routes than keel "
				  "moves to the switch (at most %d addresses of each family and %d "
				  "routes, in a record of %d bytes): nothing moved",
				  sw->name, sw->adapter, SWITCH_ADDRS_MAX, SWITCH_ROUTES_MAX,
				  STORE_SWITCH_ADDRS_MAX);
			return ret;
		}
		if (ret)
			goto fail;
		crash_point("up-taken"); /* the adapter's addresses in the record alone */
	}
	step = "bring the bridge up";
	ret = nl_link_up(sw->bridge);
	if (ret)
		goto fail;
	if (is_type(sw, "external") && sw->allow_mgmt) {
		/* IPv4 and IPv6, routes after the addresses that reach their gateways */
		step = "move the adapter's addresses to";
		ret = switch_addrs_put(sw, sw->bridge, true);
		if (ret)
			goto fail;
	}
	if (crash_point("up-addrs")) {
		error_set(err, errlen, "switch '%s': the test hook failed it at up-addrs",
			  sw->name);
		return -EIO;
	}
	if (has_dhcp(sw)) {
		ret = switch_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
		if (ret) {
			error_set(err, errlen, "switch '%s': cannot enable IP forwarding: %s",
				  sw->name, strerror(-ret));
			return ret;
		}
		switch_dir(sw, dir, sizeof(dir));
		ret = switch_dhcp_start(sw, dir, err, errlen);
		if (!ret)
			crash_point("up-dnsmasq");
		return ret;
	}
	/* none without NAT (one a killed keeld left running too) */
	switch_dhcp_stop(sw->bridge);
	switch_dir(sw, dir, sizeof(dir));
	switch_dhcp_kill_stale(dir);
	return 0;
fail:
	error_set(err, errlen, "switch '%s': cannot %s %s: %s", sw->name, step, sw->bridge,
		  strerror(-ret));
	return ret;
}

/* Everything switch_up made, taken away (best effort: each step is tried). */
static void switch_down(const struct store_switch *sw)
{
	char err[512];

	switch_dhcp_stop(sw->bridge);
	crash_point("down-dnsmasq");
	if (switch_nft_apply(sw, NULL, true, err, sizeof(err)))
		log_warn("%s", err);
	crash_point("down-nft");
	if (is_type(sw, "external") && if_nametoindex(sw->adapter)) {
		/* Off the bridge first (its IPv6 routes with its IPv6): an address or route on
		 * both would refuse the adapter its own back. */
		if (if_nametoindex(sw->bridge)) {
			(void)!switch_addrs_put(sw, sw->bridge, false);
			(void)!switch_link_ipv6(sw->bridge, false);
		}
		if (nl_link_master(sw->adapter, NULL))
			log_warn("switch '%s': cannot release adapter %s", sw->name, sw->adapter);
		/* IPv6 on before its addresses go back */
		if ((switch_addrs_recorded(sw, "ipv6") && switch_link_ipv6(sw->adapter, true)) ||
		    switch_addrs_put(sw, sw->adapter, true))
			log_warn("switch '%s': cannot give adapter %s its addresses back (%s)",
				 sw->name, sw->adapter, sw->adapter_addrs);
		crash_point("down-adapter");
	}
	if (if_nametoindex(sw->bridge) && nl_link_del(sw->bridge))
		log_warn("switch '%s': cannot delete bridge %s", sw->name, sw->bridge);
	crash_point("down-bridge");
}

/* Switch sw taken down and forgotten: its row, then its directory (leases, dnsmasq's
 * files). */
static int forget(struct store *st, const struct store_switch *sw)
{
	char dir[PATH_MAX], why[256];
	int ret;

	switch_down(sw);
	ret = store_switch_delete(st, sw->name, why, sizeof(why));
	if (ret) {
		log_err("switch '%s': cannot delete its record: %s", sw->name, why);
		return ret;
	}
	crash_point("delete-store");
	switch_dir(sw, dir, sizeof(dir));
	(void)!sup_remove_tree(dir);
	return 0;
}

/* ---- requests ---- */

struct request {
	const char *name, *type, *subnet, *adapter;
	int allow_mgmt, nat, dflt; /* -1: not given */
};

static int parse_request(json_object *req, struct request *r, char *err, size_t errlen)
{
	*r = (struct request){NULL, NULL, NULL, NULL, -1, -1, -1};
	json_object_object_foreach(req, key, val)
	{
		bool str = json_object_is_type(val, json_type_string);
		bool boolean = json_object_is_type(val, json_type_boolean);

		if (!strcmp(key, "name") && str)
			r->name = json_object_get_string(val);
		else if (!strcmp(key, "type") && str)
			r->type = json_object_get_string(val);
		else if (!strcmp(key, "subnet") && str)
			r->subnet = json_object_get_string(val);
		else if (!strcmp(key, "adapter") && str)
			r->adapter = json_object_get_string(val);
		else if (!strcmp(key, "allow_management_os") && boolean)
			r->allow_mgmt = json_object_get_boolean(val);
		else if (!strcmp(key, "nat") && boolean)
			r->nat = json_object_get_boolean(val);
		else if (!strcmp(key, "default") && boolean)
			r->dflt = json_object_get_boolean(val);
		else {
			error_set(err, errlen,
				  "bad field '%s' for a switch: name, type (external, internal, "
				  "private), subnet (a.b.c.d/N), adapter (a host interface), "
				  "allow_management_os (true, false), nat (true, false)",
				  key);
			return -EINVAL;
		}
	}
	return 0;
}

/* Check r->subnet for an internal switch and write it into sw: a network, free. */
static int take_subnet(struct store *st, struct store_switch *sw, const char *subnet, char *err,
		       size_t errlen)
{
	struct nl_prefix4 p;
	char why[160];
	bool taken;
	int ret;

	if (nl_prefix4_parse(subnet, true, &p) || p.len < 8 || p.len > 30) {
		error_set(err, errlen,
			  "subnet '%s' is not an IPv4 network a.b.c.d/N with N from 8 to 30 and "
			  "no host bits set",
			  subnet);
		return -EINVAL;
	}
	ret = subnet_taken(st, p, sw, why, sizeof(why), &taken);
	if (ret) {
		error_set(err, errlen, "cannot read the host's routes: %s", strerror(-ret));
		return ret;
	}
	if (taken) {
		error_set(err, errlen, "subnet %s overlaps %s: choose another", subnet, why);
		return -EINVAL;
	}
	nl_prefix4_format(p, sw->subnet, sizeof(sw->subnet));
	return 0;
}

static int check_adapter(struct store *st, const char *adapter, char *err, size_t errlen)
{
	struct store_switch *list = NULL;
	size_t n = 0;
	bool bridge = false;
	int ret;

	if (!vmdef_tap_ok(adapter) || !if_nametoindex(adapter)) {
		error_set(err, errlen, "there is no network adapter '%s' on this host", adapter);
		return -EINVAL;
	}
	if (!strcmp(adapter, "lo") || !strncmp(adapter, "kbr", 3) ||
	    (!nl_link_is_bridge(adapter, &bridge) && bridge)) {
		error_set(err, errlen, "'%s' is a loopback or bridge, not a network adapter",
			  adapter);
		return -EINVAL;
	}
	ret = store_switch_list(st, &list, &n);
	for (size_t i = 0; !ret && i < n; i++) {
		if (!strcmp(list[i].adapter, adapter)) {
			error_set(err, errlen, "adapter %s is already bridged by switch '%s'",
				  adapter, list[i].name);
			ret = -EINVAL;
		}
	}
	free(list);
	return ret;
}

int switches_create(struct store *st, json_object *req, char *err, size_t errlen)
{
	struct store_switch sw = {0};
	struct request r;
	int ret = parse_request(req, &r, err, errlen);

	if (!switches_dir[0]) {
		error_set(err, errlen, "virtual switches are not available in this keeld");
		return -EIO;
	}
	if (ret)
		return ret;
	if (!r.name || !vmdef_switch_name_ok(r.name)) {
		error_set(err, errlen,
			  "a switch needs a 'name': 1 to %d letters, digits, spaces, '.', '_' or "
			  "'-', starting with a letter or digit",
			  VMDEF_SWITCH_MAX);
		return -EINVAL;
	}
	snprintf(sw.name, sizeof(sw.name), "%s", r.name);
	if (!store_switch_get(st, r.name, &(struct store_switch){0})) {
		error_set(err, errlen, "a switch named '%s' already exists", r.name);
		return -EEXIST;
	}
	if (r.dflt == 1) {
		/* keeld makes it; there is one (it cannot be deleted) */
		error_set(err, errlen, "there is already a Default Switch ('%s')",
			  SWITCH_DEFAULT_NAME);
		return -EEXIST;
	}
	if (!r.type)
		r.type = r.adapter ? "external" : NULL;
	if (!r.type || (strcmp(r.type, "external") && strcmp(r.type, "internal") &&
			strcmp(r.type, "private"))) {
		error_set(err, errlen, "a switch's 'type' is external, internal or private");
		return -EINVAL;
	}
	snprintf(sw.type, sizeof(sw.type), "%s", r.type);
	if (is_type(&sw, "external")) {
		if (!r.adapter) {
			error_set(err, errlen,
				  "an external switch needs the host 'adapter' it "
				  "bridges");
			return -EINVAL;
		}
		if (r.subnet || r.nat == 1) {
			error_set(err, errlen,
				  "an external switch is on the adapter's network: "
				  "no subnet, no NAT");
			return -EINVAL;
		}
		ret = check_adapter(st, r.adapter, err, errlen);
		if (ret)
			return ret;
		snprintf(sw.adapter, sizeof(sw.adapter), "%s", r.adapter);
		sw.allow_mgmt = r.allow_mgmt != 0;
	} else if (r.adapter || r.allow_mgmt >= 0) {
		error_set(err, errlen,
			  "only an external switch has an adapter and "
			  "allow_management_os");
		return -EINVAL;
	} else if (is_type(&sw, "private")) {
		if (r.subnet || r.nat == 1) {
			error_set(err, errlen,
				  "a private switch has no subnet and no NAT: the host "
				  "is not on it");
			return -EINVAL;
		}
	} else {
		sw.nat = r.nat == 1;
		ret = r.subnet ? take_subnet(st, &sw, r.subnet, err, errlen)
			       : pick_subnet(st, sw.subnet, sizeof(sw.subnet));
		if (ret) {
			if (!r.subnet)
				error_set(err, errlen, "no free subnet for switch '%s'", sw.name);
			return ret;
		}
	}
	ret = pick_bridge(st, sw.bridge, sizeof(sw.bridge));
	if (ret) {
		error_set(err, errlen, "no free bridge name for switch '%s'", sw.name);
		return ret;
	}
	sw.created = (int64_t)time(NULL);
	/* The row first, then the switch: keeld ending at any point after the row is written
	 * makes the whole switch at its next start (switches_init), and before it nothing was
	 * made. */
	ret = store_switch_insert(st, &sw, err, errlen);
	if (ret)
		return ret == -EEXIST || ret == -EINVAL ? ret : -EIO;
	crash_point("create-store");
	ret = switch_up(st, &sw, err, errlen);
	if (ret) {
		forget(st, &sw);
		return ret == -EINVAL ? ret : -EIO;
	}
	log_info("switch '%s' (%s) created: bridge %s%s%s", sw.name, sw.type, sw.bridge,
		 sw.subnet[0] ? ", subnet " : "", sw.subnet);
	return 0;
}

int switches_set(struct store *st, const char *name, json_object *req, char *err, size_t errlen)
{
	struct store_switch old, sw;
	struct request r;
	int ret = parse_request(req, &r, err, errlen);

	if (!switches_dir[0]) {
		error_set(err, errlen, "virtual switches are not available in this keeld");
		return -EIO;
	}
	if (ret)
		return ret;
	if (store_switch_get(st, name, &old)) {
		error_set(err, errlen, "no switch named '%s'", name);
		return -ENOENT;
	}
	sw = old;
	if (old.is_default) {
		error_set(err, errlen, "the Default Switch is not configurable");
		return -EINVAL;
	}
	if ((r.name && strcmp(r.name, name)) || (r.type && strcmp(r.type, old.type)) ||
	    (r.adapter && strcmp(r.adapter, old.adapter)) || r.dflt >= 0) {
		error_set(err, errlen,
			  "a switch's name, type, adapter and default stay as they "
			  "were made: create another switch");
		return -EINVAL;
	}
	if (is_type(&old, "internal")) {
		if (r.allow_mgmt >= 0) {
			error_set(err, errlen, "only an external switch has allow_management_os");
			return -EINVAL;
		}
		if (r.subnet || r.nat == 0) {
			struct store_forward *fwds = NULL;
			size_t nf = 0;

			ret = store_forward_list(st, name, &fwds, &nf);
			free(fwds);
			if (ret)
				return ret;
			if (nf) {
				error_set(err, errlen,
					  "switch '%s' has port forwards: delete them before "
					  "changing "
					  "its subnet or turning NAT off",
					  name);
				return -EINVAL;
			}
		}
		if (r.nat >= 0)
			sw.nat = r.nat;
		if (r.subnet) {
			ret = take_subnet(st, &sw, r.subnet, err, errlen);
			if (ret)
				return ret;
		}
	} else if (is_type(&old, "external")) {
		if (r.subnet || r.nat >= 0) {
			error_set(err, errlen, "an external switch has no subnet and no NAT");
			return -EINVAL;
		}
		if (r.allow_mgmt >= 0)
			sw.allow_mgmt = r.allow_mgmt;
	} else if (r.subnet || r.nat >= 0 || r.allow_mgmt >= 0) {
		error_set(err, errlen, "a private switch has nothing to set");
		return -EINVAL;
	}
	/* The new settings in the row first, then on the switch (switch_up takes away what
	 * the old ones left: an internal switch's old host address, recorded in the row):
	 * keeld ending at any point after the row is written makes the switch as it says at
	 * its next start, and before it nothing changed. */
	ret = is_type(&sw, "internal") ? record_host_addr(&sw, &old) : 0;
	if (!ret)
		ret = store_switch_update(st, &sw);
	if (ret) {
		error_set(err, errlen, "switch '%s': cannot record its new settings: %s", name,
			  strerror(-ret));
		return -EIO;
	}
	crash_point("set-store");
	ret = switch_up(st, &sw, err, errlen);
	if (ret) {
		char again[256];
		int back;

		/* the old settings back, in the row and on the switch (the adapter's record as
		 * switch_up left it; an internal switch's new host address to take off) */
		snprintf(old.adapter_addrs, sizeof(old.adapter_addrs), "%s", sw.adapter_addrs);
		back = is_type(&old, "internal") ? record_host_addr(&old, &sw) : 0;
		if (!back)
			back = store_switch_update(st, &old);
		if (back)
			log_err("switch '%s': cannot record its old settings again: %s", name,
				strerror(-back));
		if (switch_up(st, &old, again, sizeof(again)))
			log_err("switch '%s': %s", name, again);
		return ret == -EINVAL ? ret : -EIO;
	}
	log_info("switch '%s' changed", name);
	return 0;
}

int switches_delete(struct store *st, const char *name, char *err, size_t errlen)
{
	struct store_switch sw;
	char users[1024];
	int ret;

	if (store_switch_get(st, name, &sw)) {
		error_set(err, errlen, "no switch named '%s'", name);
		return -ENOENT;
	}
	if (sw.is_default) {
		error_set(err, errlen, "the Default Switch cannot be deleted");
		return -EBUSY;
	}
	ret = store_switch_users(st, name, users, sizeof(users));
	if (!ret && users[0]) {
		error_set(err, errlen,
			  "switch '%s' is in use by VM %s: move or remove their adapters first",
			  name, users);
		return -EBUSY;
	}
	if (ret)
		return ret;
	/* The switch taken down, then its row: keeld ending at any point before the row goes
	 * makes the whole switch again at its next start; after, only its directory is left,
	 * which that start removes. */
	ret = forget(st, &sw);
	if (ret) {
		error_set(err, errlen, "switch '%s': cannot delete its record: %s", name,
			  strerror(-ret));
		return ret;
	}
	log_info("switch '%s' deleted (bridge %s)", name, sw.bridge);
	return 0;
}

/* ---- keeld's start ---- */

static int make_default(struct store *st, char *err, size_t errlen)
{
	struct store_switch *list = NULL, sw = {0};
	size_t n = 0;
	int ret = store_switch_list(st, &list, &n);

	for (size_t i = 0; !ret && i < n; i++)
		if (list[i].is_default) {
			free(list);
			return 0;
		}
	free(list);
	if (ret)
		return ret;
	snprintf(sw.name, sizeof(sw.name), "%s", SWITCH_DEFAULT_NAME);
	snprintf(sw.type, sizeof(sw.type), "internal");
	sw.nat = true;
	sw.is_default = true;
	sw.created = (int64_t)time(NULL);
	ret = pick_subnet(st, sw.subnet, sizeof(sw.subnet));
	if (!ret)
		ret = pick_bridge(st, sw.bridge, sizeof(sw.bridge));
	if (!ret)
		ret = store_switch_insert(st, &sw, err, errlen);
	if (ret) {
		if (!err[0])
			error_set(err, errlen, "cannot make the Default Switch: %s",
				  strerror(-ret));
		return ret;
	}
	log_info("the Default Switch is on subnet %s (bridge %s), from now on", sw.subnet,
		 sw.bridge);
	return 0;
}

/* The bridges whose VMs' ports keel has blocked: their rules went missing (a flush) and
 * are not back yet. */
static char blocked[64][IFNAMSIZ];

static bool is_blocked(const char *bridge)
{
	for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
		if (!strcmp(blocked[i], bridge))
			return true;
	return false;
}

/* Block the VMs' ports on switch sw (bridge port state disabled: without its guards they
 * would forward unguarded), or let them forward again. */
static void block_ports(struct store *st, const struct store_switch *sw, bool block,
			const char *why)
{
	struct vm_nic *ports = NULL;
	size_t n = 0;
	char(*slot)[IFNAMSIZ] = NULL;

	for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
		if (!strcmp(blocked[i], sw->bridge) || (block && !slot && !blocked[i][0]))
			slot = &blocked[i];
	if (store_switch_ports(st, sw->name, &ports, &n))
		log_err("switch '%s': cannot read its adapters to %s their ports", sw->name,
			block ? "block" : "unblock");
	for (size_t i = 0; i < n; i++) {
		int ret;

		if (!ports[i].tap[0] || !if_nametoindex(ports[i].tap))
			continue; /* its VM is not running */
		ret = nl_port_forwarding(ports[i].tap, !block);
		if (ret)
			log_err("switch '%s': cannot %s port %s: %s", sw->name,
				block ? "block" : "unblock", ports[i].tap, strerror(-ret));
	}
	free(ports);
	if (block && slot && !(*slot)[0]) {
		snprintf(*slot, IFNAMSIZ, "%s", sw->bridge);
		log_warn("switch '%s': %s: its VMs' ports are blocked until they are back",
			 sw->name, why);
		events_switch(sw->name, "blocked", why);
	} else if (!block && slot) {
		(*slot)[0] = '\0';
		log_info("switch '%s': its rules are back: its VMs' ports forward again", sw->name);
		events_switch(sw->name, "restored", "its rules are back");
	}
}

/* The directories of switches that are no more (a delete that ended after the row went):
 * removed, with any dnsmasq still running from one. */
static void sweep_dirs(const struct store_switch *list, size_t n)
{
	DIR *d = opendir(switches_dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[PATH_MAX + 256];
		bool known = false;

		if (strncmp(de->d_name, "kbr", 3))
			continue;
		for (size_t i = 0; i < n && !known; i++)
			known = !strcmp(list[i].bridge, de->d_name);
		if (known)
			continue;
		snprintf(path, sizeof(path), "%s/%s", switches_dir, de->d_name);
		log_info("switches: removing %s, the directory of a switch deleted before", path);
		switch_dhcp_kill_stale(path);
		(void)!sup_remove_tree(path);
	}
	if (d)
		closedir(d);
}

int switches_init(struct store *st, const char *state_dir, char *err, size_t errlen)
{
	struct switch_nft_view view;
	struct store_switch *list = NULL;
	size_t n = 0;
	int ret;

	err[0] = '\0';
	snprintf(switches_dir, sizeof(switches_dir), "%s/switches", state_dir);
	if (mkdir(switches_dir, 0750) < 0 && errno != EEXIST) {
		error_set(err, errlen, "cannot create %s: %s", switches_dir, strerror(errno));
		return -errno;
	}
	watch_store = st;
	watch_next = clock_mono_ms() + WATCH_MS;
	if (watch_fd < 0 && (ret = switch_nftmon_open(&watch_fd)))
		log_warn("nftables' change notifications are unavailable (%s): a firewall reload "
			 "that removes keel's rules is seen at the next check, within %d seconds",
			 strerror(-ret), WATCH_MS / 1000);
	ret = make_default(st, err, errlen);
	if (!ret)
		ret = store_switch_list(st, &list, &n);
	if (!ret)
		sweep_dirs(list, n);
	switch_nft_view_read(&view);
	for (size_t i = 0; !ret && i < n; i++) {
		char why[512];
		/* A bridge from before with VMs running on it, its rules gone: blocked until
		 * they are back. */
		bool block = if_nametoindex(list[i].bridge) && !switch_nft_present(&view, &list[i]);

		if (block)
			block_ports(st, &list[i], true, "its rules were missing at keeld's start");
		if (switch_up(st, &list[i], why, sizeof(why))) {
			log_err("%s; the switch stays down until keeld starts again", why);
			continue;
		}
		if (block)
			block_ports(st, &list[i], false, NULL);
	}
	switch_nft_view_free(&view);
	free(list);
	return ret;
}

int switches_timeout_ms(void)
{
	long long now = clock_mono_ms();

	if (!watch_store)
		return -1;
	return watch_next > now ? (int)(watch_next - now) : 0;
}

size_t switches_pollfds(struct pollfd *fds, size_t max)
{
	if (!watch_store || watch_fd < 0 || !max)
		return 0;
	fds[0] = (struct pollfd){.fd = watch_fd, .events = POLLIN};
	return 1;
}

void switches_events(const struct pollfd *fds, size_t n)
{
	enum switch_nftmon_news news;

	if (!n || fds[0].fd != watch_fd || !(fds[0].revents & POLLIN))
		return;
	news = switch_nftmon_read(watch_fd, &watch_mon);
	if (news == SWITCH_NFTMON_CHANGED) {
		watch_next = watch_told_at = clock_mono_ms(); /* switches_tick looks now */
		watch_told = true;
	} else if (news == SWITCH_NFTMON_LOST) {
		/* Whose they were is not known: check now (the markers, as the periodic check
		 * does) rather than load everything, which could overrun the socket again. */
		watch_next = clock_mono_ms();
	}
}

/* Load switch sw's rules again (its ports blocked: unblocked once they are in); false when
 * nftables refused them: then its ports are blocked (what its chains hold is not known). */
static bool reload(const struct store_switch *sw, bool told)
{
	char why[512];

	if (apply_rules(watch_store, sw, why, sizeof(why))) {
		if (!is_blocked(sw->bridge))
			block_ports(watch_store, sw, true, "its rules could not be loaded again");
		log_err("%s; its VMs' ports stay blocked", why);
		return false;
	}
	if (told)
		log_info("switch '%s': its rules loaded again %lld ms after nftables' notification",
			 sw->name, clock_mono_ms() - watch_told_at);
	if (is_blocked(sw->bridge))
		block_ports(watch_store, sw, false, NULL);
	return true;
}

/* Test builds: the check's read of the switches fails while STATE/switches holds this file
 * (e2e switch-nft-retry). */
static bool list_fails(void)
{
#ifdef KEEL_TEST_HOOKS
	char hook[PATH_MAX];

	snprintf(hook, sizeof(hook), "%s/test-list-fail", switches_dir);
	return access(hook, F_OK) == 0;
#else
	return false;
#endif
}

void switches_tick(void)
{
	struct switch_nft_view view;
	struct store_switch *list = NULL;
	size_t n = 0;
	bool told = watch_told, full, *up, failed = false;
	long long now = clock_mono_ms();

	if (!watch_store || now < watch_next)
		return;
	if (list_fails() || store_switch_list(watch_store, &list, &n) ||
	    !(up = calloc(n ? n : 1, sizeof(*up)))) {
		/* (a notification's reload stays asked for) */
		log_err("switches: cannot read them to check their rules; trying again in %d ms",
			RETRY_MS);
		free(list);
		watch_next = clock_mono_ms() + RETRY_MS;
		return;
	}
	/* A notification's reload of every switch, at most one a second: keeld's own
	 * transactions are known by their pid, which a PID namespace of keeld's own hides from
	 * it (the kernel gives the initial namespace's): each reload would tell keeld to load
	 * again at once. Within the second the check below still blocks and loads the switches
	 * whose rules are gone, and the reload of all follows at its end. */
	full = told && (!watch_full_at || now - watch_full_at >= RETRY_MS);
	watch_told = told && !full;
	/* What nftables holds, listed once for every switch. */
	switch_nft_view_read(&view);
	/* Every switch whose rules are gone has its VMs' ports blocked first, then the rules
	 * are loaded switch by switch: a flush of the ruleset takes all of them at once, and
	 * the last switch's ports would otherwise forward unguarded while the others load. */
	for (size_t i = 0; i < n; i++) {
		/* A switch that is down (it could not come up, or its bridge was deleted) waits
		 * for keeld's next start: retrying it here would only repeat the failure. */
		if (!if_nametoindex(list[i].bridge))
			continue;
		up[i] = true;
		if (switch_nft_present(&view, &list[i]))
			continue;
		/* Its VMs' ports first: without the guards they would forward unguarded until
		 * the rules are back, and for good if nftables refuses them. */
		block_ports(
			watch_store, &list[i], true,
			told ? "its rules were removed (a firewall reload?; nftables told keeld)"
			     : "its rules were removed (a firewall reload?; seen at keeld's "
			       "periodic check)");
	}
	switch_nft_view_free(&view);
	/* Told by nftables that another process changed keel's tables: every switch's rules
	 * again, whatever the markers say (a saved ruleset loaded again brings back old rules
	 * with their markers; a single rule deleted leaves the markers). The batch is atomic
	 * and idempotent. Otherwise those blocked, and those loaded since by a VM's start. */
	for (size_t i = 0; i < n; i++)
		if (up[i] && (full || is_blocked(list[i].bridge)) && !reload(&list[i], told))
			failed = true;
	if (full)
		watch_full_at = now;
	/* A failed reload is tried again, sooner than the periodic check but not at once
	 * (1 s, doubled each time, up to the check's 5 s). */
	watch_retry_ms = failed ? (watch_retry_ms ? watch_retry_ms * 2 : RETRY_MS) : 0;
	if (watch_retry_ms > WATCH_MS)
		watch_retry_ms = WATCH_MS;
	watch_next = clock_mono_ms() + (failed ? watch_retry_ms : WATCH_MS);
	if (watch_told && watch_next > watch_full_at + RETRY_MS)
		watch_next = watch_full_at + RETRY_MS;
	free(up);
	free(list);
}

void switches_shutdown(void)
{
	watch_store = NULL;
	if (watch_fd >= 0)
		close(watch_fd);
	watch_fd = -1;
	switch_dhcp_stop_all();
}

/* ---- what the API shows ---- */

static json_object *one_json(struct store *st, const struct store_switch *sw)
{
	json_object *o = json_object_new_object(), *vms = json_object_new_array();
	char users[4096], dir[PATH_MAX], *save = NULL;
	int pid = switch_dhcp_pid(sw->bridge);

	json_object_object_add(o, "name", json_object_new_string(sw->name));
	json_object_object_add(o, "type", json_object_new_string(sw->type));
	json_object_object_add(o, "default", json_object_new_boolean(sw->is_default));
	json_object_object_add(o, "bridge", json_object_new_string(sw->bridge));
	json_object_object_add(o, "up", json_object_new_boolean(if_nametoindex(sw->bridge) != 0));
	if (sw->subnet[0]) {
		char gw[32];

		nl_prefix4_format(gateway(sw), gw, sizeof(gw));
		gw[strcspn(gw, "/")] = '\0';
		json_object_object_add(o, "subnet", json_object_new_string(sw->subnet));
		json_object_object_add(o, "host_address", json_object_new_string(gw));
	}
	if (is_type(sw, "internal"))
		json_object_object_add(o, "nat", json_object_new_boolean(sw->nat));
	if (is_type(sw, "external")) {
		json_object_object_add(o, "adapter", json_object_new_string(sw->adapter));
		json_object_object_add(o, "allow_management_os",
				       json_object_new_boolean(sw->allow_mgmt));
	}
	if (has_dhcp(sw)) {
		json_object *d = json_object_new_object();

		switch_dir(sw, dir, sizeof(dir));
		json_object_object_add(d, "pid", pid ? json_object_new_int(pid) : NULL);
		json_object_object_add(d, "directory", json_object_new_string(dir));
		json_object_object_add(o, "dhcp", d);
	}
	if (store_switch_users(st, sw->name, users, sizeof(users)) == 0)
		for (char *t = strtok_r(users, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			while (*t == ' ')
				t++;
			/* 'NAME' */
			json_object_array_add(
				vms, json_object_new_string_len(t + 1, (int)strlen(t) - 2));
		}
	json_object_object_add(o, "vms", vms);
	json_object_object_add(o, "created", json_object_new_int64(sw->created));
	return o;
}

json_object *switches_json(struct store *st)
{
	struct store_switch *list = NULL;
	size_t n = 0;
	json_object *arr;

	if (store_switch_list(st, &list, &n))
		return NULL;
	arr = json_object_new_array();
	for (size_t i = 0; arr && i < n; i++)
		json_object_array_add(arr, one_json(st, &list[i]));
	free(list);
	return arr;
}

json_object *switches_one_json(struct store *st, const char *name)
{
	struct store_switch sw;

	return store_switch_get(st, name, &sw) ? NULL : one_json(st, &sw);
}

int switches_check_def(struct store *st, const struct vm_def *def, char *err, size_t errlen)
{
	for (unsigned i = 0; i < def->nnics; i++) {
		struct store_switch sw;

		if (!def->nics[i].sw[0] || !store_switch_get(st, def->nics[i].sw, &sw))
			continue;
		error_set(err, errlen, "nets[%u]: there is no switch named '%s' (keel switch list)",
			  i, def->nics[i].sw);
		return -EINVAL;
	}
	return 0;
}

void switches_ports_changed(struct store *st, const struct vm_def *a, const struct vm_def *b)
{
	const struct vm_def *defs[2] = {a, b};

	/* Forwards to adapters the VM no longer has on their switch go. */
	if (b && store_forward_prune(st, b->uuid))
		log_err("VM %s: cannot drop its port forwards to removed adapters", b->name);
	/* A switch named twice is loaded twice: each load is the whole switch, atomically. */
	for (int d = 0; d < 2; d++) {
		for (unsigned i = 0; defs[d] && i < defs[d]->nnics; i++) {
			struct store_switch sw;
			char err[512];

			if (!defs[d]->nics[i].sw[0] ||
			    store_switch_get(st, defs[d]->nics[i].sw, &sw) ||
			    !if_nametoindex(sw.bridge))
				continue;
			if (apply_rules(st, &sw, err, sizeof(err)))
				log_err("%s", err);
		}
	}
}

/* Trunk mode (Set-VMNetworkAdapterVlan -Trunk): the list's VLANs pass tagged, the native
 * VLAN untagged (its PVID); an external switch carries them tagged on its adapter. */
static int trunk_port(const struct store_switch *sw, const struct vm_nic *nic, const char *ifname,
		      char *err, size_t errlen)
{
	const char *adapter = is_type(sw, "external") ? sw->adapter : NULL;
	uint16_t native = nic->native_vlan ? nic->native_vlan : 1, lo[VMDEF_VLAN_MAX / 2 + 1],
		 hi[VMDEF_VLAN_MAX / 2 + 1];
	int n = vmdef_vlan_ranges(nic->vlan_trunk, native, lo, hi, sizeof(lo) / sizeof(lo[0]));
	int ret = n < 0 ? n : 0;

	/* VLAN 1 off first (the native VLAN is another), so that a list with 1 keeps it. */
	if (!ret && native != 1)
		ret = nl_port_vlan(ifname, 1, false, false);
	for (int i = 0; !ret && i < n; i++) {
		ret = nl_port_vlan_range(ifname, lo[i], hi[i], true);
		/* VLAN 1 is the adapter's own, untagged: kept so (the host's traffic) */
		if (!ret && adapter && hi[i] > 1)
			ret = nl_port_vlan_range(adapter, lo[i] > 1 ? lo[i] : 2, hi[i], true);
	}
	if (!ret)
		ret = nl_port_vlan(ifname, native, true, true);
	if (!ret && adapter && native != 1)
		ret = nl_port_vlan(adapter, native, false, true);
	if (ret)
		error_set(err, errlen,
			  "adapter %s: cannot make tap %s a trunk (%s, native %u) on switch '%s': "
			  "%s",
			  nic->mac, ifname, nic->vlan_trunk, native, sw->name,
			  ret == -EOPNOTSUPP ? "this kernel has no bridge VLAN filtering"
					     : strerror(-ret));
	return ret;
}

/* The port settings of adapter nic on tap ifname, a port of sw's bridge now: isolation,
 * bandwidth in (the tap's tbf; none takes away one that was there, had_bw_in), VLANs. */
static int port_setup(const struct store_switch *sw, const struct vm_nic *nic, const char *ifname,
		      bool had_bw_in, char *err, size_t errlen)
{
	int r;

	if (nic->port_isolation) {
		r = nl_port_isolated(ifname, true);
		if (r) {
			error_set(err, errlen,
				  "adapter %s: cannot isolate tap %s on switch '%s': %s", nic->mac,
				  ifname, sw->name, strerror(-r));
			return r;
		}
	}
	if (nic->bw_in || had_bw_in) {
		r = nl_tbf(ifname, nic->bw_in);
		if (r) {
			error_set(err, errlen,
				  "adapter %s: cannot limit tap %s to %llu bit/s: %s%s", nic->mac,
				  ifname, (unsigned long long)nic->bw_in, strerror(-r),
				  r == -ENOENT ? " (no tbf qdisc in this kernel: sch_tbf)" : "");
			return r;
		}
	}
	if (nic->vlan_trunk[0])
		return trunk_port(sw, nic, ifname, err, errlen);
	if (!nic->vlan)
		return 0;
	/* Access mode: untagged frames of the tap are VLAN N's, and only VLAN N's reach it. An
	 * external switch carries N tagged on its adapter. */
	r = nl_port_vlan(ifname, nic->vlan, true, true);
	if (!r)
		r = nl_port_vlan(ifname, 1, false, false);
	if (!r && is_type(sw, "external"))
		r = nl_port_vlan(sw->adapter, nic->vlan, false, true);
	if (r)
		error_set(err, errlen,
			  "adapter %s: cannot put tap %s in VLAN %u on switch '%s': %s", nic->mac,
			  ifname, nic->vlan, sw->name,
			  r == -EOPNOTSUPP ? "this kernel has no bridge VLAN filtering"
					   : strerror(-r));
	return r;
}

/* Make tap ifname a port of sw's bridge with nic's settings (its rules loaded already). */
static int port_join(const struct store_switch *sw, const struct vm_nic *nic, const char *ifname,
		     bool had_bw_in, char *err, size_t errlen)
{
	int r = nl_link_master(ifname, sw->bridge);

	if (r) {
		error_set(err, errlen,
			  "adapter %s: cannot connect tap %s to switch '%s' (bridge %s): %s",
			  nic->mac, ifname, sw->name, sw->bridge,
			  r == -ENODEV ? "the switch is down" : strerror(-r));
		return r;
	}
	return port_setup(sw, nic, ifname, had_bw_in, err, errlen);
}

int switches_port_attach(struct store *st, const struct vm_nic *nic, const char *ifname, char *err,
			 size_t errlen)
{
	struct store_switch sw;
	int r = store_switch_get(st, nic->sw, &sw);

	if (r) {
		error_set(err, errlen, "adapter %s: there is no switch named '%s'", nic->mac,
			  nic->sw);
		return -EINVAL;
	}
	/* Fail closed: the tap forwards only once its guards are loaded, and a batch that
	 * nftables refuses keeps it off the switch (the VM does not start). */
	r = apply_rules(st, &sw, err, errlen);
	return r ? r : port_join(&sw, nic, ifname, false, err, errlen);
}

int switches_port_adding(const struct vm_nic *nic)
{
	return move_set(nic);
}

int switches_port_leave(const struct vm_nic *nic, char *err, size_t errlen)
{
	int r;

	if (!nic->sw[0])
		return 0;
	r = nl_link_master(nic->tap, NULL);
	if (r == -ENODEV)
		return 0;
	if (r)
		error_set(err, errlen, "adapter %s: cannot take tap %s off switch '%s': %s",
			  nic->mac, nic->tap, nic->sw, strerror(-r));
	return r;
}

int switches_port_move(struct store *st, const struct vm_nic *from, const struct vm_nic *to,
		       char *err, size_t errlen)
{
	struct store_switch old, sw;
	struct vm_nic moving = *to;
	char why[512];
	int r, b;

	if (store_switch_get(st, from->sw, &old)) {
		error_set(err, errlen, "adapter %s: there is no switch named '%s'", from->mac,
			  from->sw);
		return -EINVAL;
	}
	if (store_switch_get(st, to->sw, &sw)) {
		error_set(err, errlen, "adapter %s: there is no switch named '%s'", to->mac,
			  to->sw);
		return -EINVAL;
	}
	if (!if_nametoindex(sw.bridge)) {
		error_set(err, errlen,
			  "adapter %s: switch '%s' is down (bridge %s missing): the adapter stays "
			  "on '%s'",
			  to->mac, sw.name, sw.bridge, old.name);
		return -EBUSY;
	}
	/* Its guards on the new switch before it is a port there (fail closed, as at start);
	 * leaving the old bridge drops the old port's VLANs and isolation with the port (also
	 * when both are one: a new port, with only the new settings). */
	memcpy(moving.tap, from->tap, sizeof(moving.tap));
	r = move_set(&moving);
	if (r)
		error_set(err, errlen, "adapter %s: %s", to->mac, strerror(-r));
	r = r ?: apply_rules(st, &sw, err, errlen);
	if (!r) {
		r = nl_link_master(from->tap, NULL);
		if (r)
			error_set(err, errlen, "adapter %s: cannot take tap %s off switch '%s': %s",
				  from->mac, from->tap, old.name, strerror(-r));
	}
	if (!r)
		r = port_join(&sw, &moving, from->tap, from->bw_in != 0, err, errlen);
	if (!r) {
		/* The old switch's sources no longer mirror to the tap (a move back, after a
		 * failed change, gets no other load of the switch it leaves). */
		if (strcmp(old.name, sw.name))
			mirror_again(st, &old);
		return 0;
	}
	/* Back where it was, as it was: the new switch's rules without the guards loaded for
	 * it (on the same switch: with its old ones back). */
	move_drop(from->tap);
	b = apply_rules(st, &sw, why, sizeof(why));
	if (b)
		log_err("adapter %s: the move to '%s' failed, and its rules could not be loaded "
			"again: %s",
			from->mac, sw.name, why);
	b = nl_link_master(from->tap, NULL);
	if (b)
		snprintf(why, sizeof(why), "cannot take tap %s off switch '%s': %s", from->tap,
			 sw.name, strerror(-b));
	else
		b = port_join(&old, from, from->tap, to->bw_in != 0, why, sizeof(why));
	if (!b)
		mirror_again(st, &old); /* the tap's mirroring as on its old switch */
	if (b) {
		log_err("adapter %s: the move to '%s' failed and the way back too: %s", from->mac,
			sw.name, why);
		return r;
	}
	snprintf(why, sizeof(why), "%s", err);
	error_set(err, errlen, "%s (the adapter stays on '%s')", why, old.name);
	return r;
}

int switches_port_recover(struct store *st, const struct vm_nic *nic, char *err, size_t errlen)
{
	struct store_switch sw;
	unsigned master, bridge;
	int r;

	if (store_switch_get(st, nic->sw, &sw)) {
		error_set(err, errlen, "adapter %s: there is no switch named '%s'", nic->mac,
			  nic->sw);
		return -EINVAL;
	}
	bridge = if_nametoindex(sw.bridge);
	r = nl_link_master_of(nic->tap, &master);
	if (r == -ENODEV || !bridge || master == bridge)
		return 0; /* no tap (the worker is ending), the switch down, or where it should be
			   */
	/* A move that keeld did not finish (it ended in the middle): the tap on another bridge,
	 * or none, where the store has it on sw. Back on sw with its stored settings: the
	 * other bridge's rules (loaded from the store) have no guards for it. */
	log_warn("adapter %s: tap %s is not on switch '%s' (a move keeld did not finish): "
		 "putting it back",
		 nic->mac, nic->tap, sw.name);
	r = r ?: nl_link_master(nic->tap, NULL);
	if (r) {
		error_set(err, errlen, "adapter %s: cannot take tap %s off its bridge: %s",
			  nic->mac, nic->tap, strerror(-r));
		return r;
	}
	r = apply_rules(st, &sw, err, errlen);
	r = r ?: port_join(&sw, nic, nic->tap, true, err, errlen);
	return r ? r : 1;
}

struct lease_match {
	const char *mac;
	json_object *ips;
	int64_t now;
};

static void lease_cb(const struct switch_lease *l, void *data)
{
	struct lease_match *m = data;

	if (!strcmp(l->mac, m->mac) && (!l->expiry || l->expiry > m->now))
		json_object_array_add(m->ips, json_object_new_string(l->ip));
}

/* The guest addresses from the switch's DHCP leases, in m->ips. */
static void nic_leases(const struct store_switch *sw, struct lease_match *m)
{
	char path[PATH_MAX + 64], *buf;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/leases", switches_dir, sw->bridge);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	buf = malloc(LEASES_MAX);
	len = buf ? read(fd, buf, LEASES_MAX) : -1;
	close(fd);
	if (len > 0)
		switch_leases_parse(buf, (size_t)len, lease_cb, m);
	free(buf);
}

static bool has_ip(json_object *ips, const char *ip)
{
	for (size_t i = 0; i < json_object_array_length(ips); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(ips, i)), ip))
			return true;
	return false;
}

/* The guest addresses the host's neighbour table (ARP, NDP) has for the adapter's MAC on
 * the switch's bridge, those not in ips already (a private switch's bridge has no host
 * address, so no neighbours). */
static void nic_neighbours(const struct store_switch *sw, const char *mac, json_object *ips)
{
	struct nl_neigh nb[256];
	size_t n = 0;
	char text[18];

	if (nl_neighbours(sw->bridge, nb, sizeof(nb) / sizeof(nb[0]), &n))
		return;
	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", nb[i].mac[0],
			 nb[i].mac[1], nb[i].mac[2], nb[i].mac[3], nb[i].mac[4], nb[i].mac[5]);
		if (!strcasecmp(text, mac) && !has_ip(ips, nb[i].addr))
			json_object_array_add(ips, json_object_new_string(nb[i].addr));
	}
}

json_object *switches_nic_addresses(struct store *st, const struct vm_nic *nic,
				    json_object **sources)
{
	struct lease_match m = {nic->mac, json_object_new_array(), (int64_t)time(NULL)};
	struct store_switch sw;
	size_t leases;

	*sources = json_object_new_array();
	if (!nic->sw[0] || store_switch_get(st, nic->sw, &sw))
		return m.ips;
	if (has_dhcp(&sw))
		nic_leases(&sw, &m);
	leases = json_object_array_length(m.ips);
	nic_neighbours(&sw, nic->mac, m.ips);
	for (size_t i = 0; i < json_object_array_length(m.ips); i++)
		json_object_array_add(*sources,
				      json_object_new_string(i < leases ? "lease" : "neighbour"));
	return m.ips;
}

/* ---- port forwards ---- */

struct lease_set {
	uint32_t *addrs;
	size_t n, max;
	const char *mac; /* NULL: every lease */
};

static void lease_collect(const struct switch_lease *l, void *data)
{
	struct lease_set *ls = data;
	struct nl_prefix4 p;
	char s[32];

	snprintf(s, sizeof(s), "%s/32", l->ip);
	if ((!ls->mac || !strcmp(ls->mac, l->mac)) && ls->n < ls->max &&
	    !nl_prefix4_parse(s, false, &p))
		ls->addrs[ls->n++] = p.addr;
}

/* The addresses the switch's lease file gives (mac: that MAC's only), at most max. */
static size_t leased(const struct store_switch *sw, const char *mac, uint32_t *addrs, size_t max)
{
	struct lease_set ls = {addrs, 0, max, mac};
	char path[PATH_MAX + 64], *buf;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/leases", switches_dir, sw->bridge);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	buf = malloc(LEASES_MAX);
	len = buf ? read(fd, buf, LEASES_MAX) : -1;
	close(fd);
	if (len > 0)
		switch_leases_parse(buf, (size_t)len, lease_collect, &ls);
	free(buf);
	return ls.n;
}

/* The address to reserve for mac on sw: the one a forward already reserved for it, its
 * lease, else the highest of the range that no lease and no reservation holds. */
static int pick_address(struct store *st, const struct store_switch *sw, const char *mac, char *out,
			size_t size)
{
	static uint32_t addrs[4096];
	struct store_forward *fwds = NULL;
	struct nl_prefix4 net, p;
	size_t nf = 0, nl;
	int ret = store_forward_list(st, sw->name, &fwds, &nf);

	if (ret)
		return ret;
	for (size_t i = 0; i < nf; i++)
		if (!strcmp(fwds[i].mac, mac)) {
			snprintf(out, size, "%s", fwds[i].address);
			free(fwds);
			return 0;
		}
	nl = leased(sw, mac, addrs, 1);
	if (nl) {
		nl_prefix4_format((struct nl_prefix4){addrs[0], 32}, out, size);
		out[strcspn(out, "/")] = '\0';
		free(fwds);
		return 0;
	}
	nl = leased(sw, NULL, addrs, sizeof(addrs) / sizeof(addrs[0]));
	if (nl_prefix4_parse(sw->subnet, true, &net)) {
		free(fwds);
		return -EINVAL;
	}
	for (uint32_t a = (net.addr | (0xffffffffu >> net.len)) - 1; a > net.addr + 1; a--) {
		bool taken = false;

		for (size_t i = 0; i < nl; i++)
			taken |= addrs[i] == a;
		for (size_t i = 0; i < nf; i++) {
			char s[32];

			snprintf(s, sizeof(s), "%s/32", fwds[i].address);
			taken |= !nl_prefix4_parse(s, false, &p) && p.addr == a;
		}
		if (!taken) {
			nl_prefix4_format((struct nl_prefix4){a, 32}, out, size);
			out[strcspn(out, "/")] = '\0';
			free(fwds);
			return 0;
		}
	}
	free(fwds);
	return -EADDRNOTAVAIL;
}

int switches_forward_add(struct store *st, const char *name, json_object *req, char *err,
			 size_t errlen)
{
	struct store_forward f = {.proto = "tcp"};
	struct store_switch sw;
	struct vm_def def;
	const char *vm = NULL;
	int64_t hp = -1, port = -1;
	int ret;

	if (!switches_dir[0]) {
		error_set(err, errlen, "virtual switches are not available in this keeld");
		return -EIO;
	}
	json_object_object_foreach(req, key, val)
	{
		bool str = json_object_is_type(val, json_type_string);
		bool num = json_object_is_type(val, json_type_int);

		if (!strcmp(key, "host_port") && num)
			hp = json_object_get_int64(val);
		else if (!strcmp(key, "port") && num)
			port = json_object_get_int64(val);
		else if (!strcmp(key, "vm") && str)
			vm = json_object_get_string(val);
		else if (!strcmp(key, "proto") && str &&
			 (!strcmp(json_object_get_string(val), "tcp") ||
			  !strcmp(json_object_get_string(val), "udp")))
			snprintf(f.proto, sizeof(f.proto), "%s", json_object_get_string(val));
		else {
			error_set(err, errlen,
				  "bad field '%s' for a port forward: host_port, port (1 to "
				  "65535), vm (a VM's name), proto (tcp, udp)",
				  key);
			return -EINVAL;
		}
	}
	if (hp < 1 || hp > 65535 || port < 1 || port > 65535 || !vm) {
		error_set(err, errlen,
			  "a port forward needs host_port and port (1 to 65535) and vm");
		return -EINVAL;
	}
	if (store_switch_get(st, name, &sw)) {
		error_set(err, errlen, "no switch named '%s'", name);
		return -ENOENT;
	}
	if (!has_dhcp(&sw)) {
		error_set(err, errlen, "switch '%s' has no NAT: port forwards are a NAT switch's",
			  name);
		return -EINVAL;
	}
	ret = store_vm_get(st, vm, &def);
	if (ret) {
		error_set(err, errlen, "there is no VM named '%s'", vm);
		return ret == -ENOENT ? -EINVAL : ret;
	}
	for (unsigned i = 0; i < def.nnics && !f.mac[0]; i++)
		if (!strcmp(def.nics[i].sw, name))
			snprintf(f.mac, sizeof(f.mac), "%s", def.nics[i].mac);
	snprintf(f.vm, sizeof(f.vm), "%s", def.uuid);
	vmdef_free(&def);
	if (!f.mac[0]) {
		error_set(err, errlen, "VM '%s' has no adapter on switch '%s'", vm, name);
		return -EINVAL;
	}
	snprintf(f.sw, sizeof(f.sw), "%s", name);
	f.host_port = (unsigned)hp;
	f.port = (unsigned)port;
	if (host_port_in_use(f.proto, f.host_port)) {
		error_set(err, errlen,
			  "host port %s/%u is in use by a service of the host's: a forward would "
			  "take its traffic",
			  f.proto, f.host_port);
		return -EEXIST;
	}
	ret = pick_address(st, &sw, f.mac, f.address, sizeof(f.address));
	if (ret) {
		error_set(err, errlen, "switch '%s' has no free address to reserve for VM '%s'",
			  name, vm);
		return -EIO;
	}
	ret = store_forward_insert(st, &f, err, errlen);
	if (!ret && apply_rules(st, &sw, err, errlen)) {
		(void)!store_forward_delete(st, name, f.proto, f.host_port);
		(void)!apply_rules(st, &sw, err, errlen);
		return -EIO;
	}
	if (!ret)
		log_info("switch '%s': host port %s/%u forwarded to VM %s (%s, reserved for %s), "
			 "port %u",
			 name, f.proto, f.host_port, vm, f.address, f.mac, f.port);
	return ret;
}

int switches_forward_delete(struct store *st, const char *name, const char *proto,
			    unsigned host_port, char *err, size_t errlen)
{
	struct store_switch sw;
	int ret;

	if (store_switch_get(st, name, &sw)) {
		error_set(err, errlen, "no switch named '%s'", name);
		return -ENOENT;
	}
	ret = store_forward_delete(st, name, proto, host_port);
	if (ret) {
		error_set(err, errlen, "switch '%s' forwards no host port %s/%u", name, proto,
			  host_port);
		return ret;
	}
	if (apply_rules(st, &sw, err, errlen))
		return -EIO;
	log_info("switch '%s': host port %s/%u no longer forwarded", name, proto, host_port);
	return 0;
}

json_object *switches_forwards_json(struct store *st, const char *name)
{
	struct store_forward *fwds = NULL;
	struct store_switch sw;
	json_object *arr;
	size_t n = 0;

	if (store_switch_get(st, name, &sw) || store_forward_list(st, name, &fwds, &n))
		return NULL;
	arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "proto", json_object_new_string(fwds[i].proto));
		json_object_object_add(o, "host_port", json_object_new_int((int)fwds[i].host_port));
		json_object_object_add(o, "vm", json_object_new_string(fwds[i].vm_name));
		json_object_object_add(o, "mac", json_object_new_string(fwds[i].mac));
		json_object_object_add(o, "address", json_object_new_string(fwds[i].address));
		json_object_object_add(o, "port", json_object_new_int((int)fwds[i].port));
		json_object_array_add(arr, o);
	}
	free(fwds);
	return arr;
}
