/* SPDX-License-Identifier: Apache-2.0 */
/* rtnetlink through libmnl (netlink.h). */
#include "daemon/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>

#include "lib/parse.h"

/* Send the request in buf and run cb over every answer until the ACK or DONE. */
static int talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	unsigned portid, seq = (unsigned)time(NULL);
	ssize_t n;
	int ret;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	ret = MNL_CB_OK;
	while (ret > MNL_CB_STOP) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
	}
	ret = ret < 0 ? -errno : 0;
out:
	mnl_socket_close(nl);
	return ret;
}

static struct nlmsghdr *link_msg(char *buf, uint16_t type, uint16_t flags, unsigned index)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)index;
	return nlh;
}

static int link_index(const char *name, unsigned *index)
{
	*index = if_nametoindex(name);
	return *index ? 0 : -ENODEV;
}

int nl_bridge_add(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	struct nlattr *info;

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, info);
	return talk(nlh, NULL, NULL);
}

struct kind_query {
	bool bridge;
	uint32_t master; /* IFLA_MASTER's index, 0 when none */
};

static int kind_attr(const struct nlattr *a, void *data)
{
	struct kind_query *q = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && !mnl_attr_validate(a, MNL_TYPE_NUL_STRING) &&
	    !strcmp(mnl_attr_get_str(a), "bridge"))
		q->bridge = true;
	return MNL_CB_OK;
}

static int link_attr(const struct nlattr *a, void *data)
{
	struct kind_query *q = data;

	if (mnl_attr_get_type(a) == IFLA_MASTER && !mnl_attr_validate(a, MNL_TYPE_U32))
		q->master = mnl_attr_get_u32(a);
	if (mnl_attr_get_type(a) == IFLA_LINKINFO && !mnl_attr_validate(a, MNL_TYPE_NESTED))
		mnl_attr_parse_nested(a, kind_attr, data);
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr, data);
}

/* What RTM_GETLINK says of link name. */
static int link_query(const char *name, struct kind_query *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned index;
	int ret = link_index(name, &index);

	return ret ? ret : talk(link_msg(buf, RTM_GETLINK, 0, index), link_cb, q);
}

int nl_link_is_bridge(const char *name, bool *bridge)
{
	struct kind_query q = {false, 0};
	int ret = link_query(name, &q);

	*bridge = q.bridge;
	return ret;
}

int nl_link_master_of(const char *name, unsigned *master)
{
	struct kind_query q = {false, 0};
	int ret = link_query(name, &q);

	*master = q.master;
	return ret;
}

int nl_link_del(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned index;
	int ret = link_index(name, &index);

	return ret ? ret : talk(link_msg(buf, RTM_DELLINK, 0, index), NULL, NULL);
}

int nl_link_up(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	unsigned index;
	int ret = link_index(name, &index);

	if (ret)
		return ret;
	nlh = link_msg(buf, RTM_NEWLINK, 0, index);
	ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return talk(nlh, NULL, NULL);
}

int nl_link_master(const char *name, const char *master)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned index, mindex = 0;
	int ret = link_index(name, &index);
	struct nlmsghdr *nlh;

	if (!ret && master)
		ret = link_index(master, &mindex);
	if (ret)
		return ret;
	nlh = link_msg(buf, RTM_NEWLINK, 0, index);
	mnl_attr_put_u32(nlh, IFLA_MASTER, mindex);
	return talk(nlh, NULL, NULL);
}

int nl_bridge_vlan_filtering(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlattr *info, *data;
	struct nlmsghdr *nlh;
	unsigned index;
	int ret = link_index(name, &index);

	if (ret)
		return ret;
	nlh = link_msg(buf, RTM_NEWLINK, 0, index);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	mnl_attr_put_u8(nlh, IFLA_BR_VLAN_FILTERING, 1);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	return talk(nlh, NULL, NULL);
}

int nl_port_vlan(const char *name, uint16_t vid, bool access, bool add)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct bridge_vlan_info vi = {
		.flags = access ? BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED : 0,
		.vid = vid,
	};
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nlattr *spec;
	unsigned index;
	int ret = link_index(name, &index);

	if (ret)
		return ret;
	nlh = link_msg(buf, add ? RTM_SETLINK : RTM_DELLINK, 0, index);
	ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_family = AF_BRIDGE;
	spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	mnl_attr_put(nlh, IFLA_BRIDGE_VLAN_INFO, sizeof(vi), &vi);
	mnl_attr_nest_end(nlh, spec);
	return talk(nlh, NULL, NULL);
}

int nl_port_vlan_range(const char *name, uint16_t lo, uint16_t hi, bool add)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct bridge_vlan_info first = {.flags = BRIDGE_VLAN_INFO_RANGE_BEGIN, .vid = lo};
	struct bridge_vlan_info last = {.flags = BRIDGE_VLAN_INFO_RANGE_END, .vid = hi};
	struct nlmsghdr *nlh;
	struct nlattr *spec;
	unsigned index;
	int ret = link_index(name, &index);

	if (ret)
		return ret;
	if (lo == hi)
		return nl_port_vlan(name, lo, false, add);
	nlh = link_msg(buf, add ? RTM_SETLINK : RTM_DELLINK, 0, index);
	((struct ifinfomsg *)mnl_nlmsg_get_payload(nlh))->ifi_family = AF_BRIDGE;
	spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	mnl_attr_put(nlh, IFLA_BRIDGE_VLAN_INFO, sizeof(first), &first);
	mnl_attr_put(nlh, IFLA_BRIDGE_VLAN_INFO, sizeof(last), &last);
	mnl_attr_nest_end(nlh, spec);
	return talk(nlh, NULL, NULL);
}

int nl_tbf(const char *name, uint64_t rate)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint64_t bytes = rate / 8, burst = bytes / 100 > 16384 ? bytes / 100 : 16384;
	struct tc_tbf_qopt q = {.limit = (uint32_t)(bytes / 20 + burst)};
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlattr *opts;
	struct tcmsg *tc;
	unsigned index;
	int ret = link_index(name, &index);

	if (ret)
		return ret;
	if (!rate) { /* the tap's own qdisc back */
		nlh->nlmsg_type = RTM_DELQDISC;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
		tc = mnl_nlmsg_put_extra_header(nlh, sizeof(*tc));
		tc->tcm_family = AF_UNSPEC;
		tc->tcm_ifindex = (int)index;
		tc->tcm_parent = TC_H_ROOT;
		ret = talk(nlh, NULL, NULL);
		return ret == -ENOENT ? 0 : ret;
	}
	if (!bytes || burst > UINT32_MAX || bytes / 20 + burst > UINT32_MAX)
		return -EINVAL;
	q.rate.rate = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
	q.rate.linklayer = TC_LINKLAYER_ETHERNET;
	nlh->nlmsg_type = RTM_NEWQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	tc = mnl_nlmsg_put_extra_header(nlh, sizeof(*tc));
	tc->tcm_family = AF_UNSPEC;
	tc->tcm_ifindex = (int)index;
	tc->tcm_handle = 0x10000; /* 1: */
	tc->tcm_parent = TC_H_ROOT;
	mnl_attr_put_strz(nlh, TCA_KIND, "tbf");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_TBF_PARMS, sizeof(q), &q);
	if (bytes > UINT32_MAX)
		mnl_attr_put_u64(nlh, TCA_TBF_RATE64, bytes);
	mnl_attr_put_u32(nlh, TCA_TBF_BURST, (uint32_t)burst);
	mnl_attr_nest_end(nlh, opts);
	return talk(nlh, NULL, NULL);
}

static struct nlmsghdr *tc_msg(char *buf, uint16_t type, uint16_t flags, unsigned index,
			       uint32_t parent)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct tcmsg *tc;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	tc = mnl_nlmsg_put_extra_header(nlh, sizeof(*tc));
	tc->tcm_family = AF_UNSPEC;
	tc->tcm_ifindex = (int)index;
	tc->tcm_parent = parent;
	return nlh;
}

/* On link index's clsact hook (TC_H_MIN_INGRESS or _EGRESS): a u32 filter matching every
 * frame (one key, mask 0) whose actions mirror it out of each of dests[0..n). */
static int mirror_filter(unsigned index, uint16_t hook, const unsigned *dests, size_t n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = tc_msg(buf, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, index,
				      TC_H_MAKE(TC_H_CLSACT, hook));
	/* The selector and its one key, all zeros (mask 0: every frame matches). tc_u32_sel ends
	 * in a flexible array, so the two are laid out in bytes rather than in one struct. */
	const struct tc_u32_sel head = {.flags = TC_U32_TERMINAL, .nkeys = 1};
	unsigned char sel[sizeof(struct tc_u32_sel) + sizeof(struct tc_u32_key)] = {0};
	struct nlattr *opts, *acts;

	((struct tcmsg *)mnl_nlmsg_get_payload(nlh))->tcm_info =
		TC_H_MAKE(1u << 16, htons(ETH_P_ALL));
	mnl_attr_put_strz(nlh, TCA_KIND, "u32");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	memcpy(sel, &head, sizeof(head));
	mnl_attr_put(nlh, TCA_U32_SEL, sizeof(sel), sel);
	acts = mnl_attr_nest_start(nlh, TCA_U32_ACT);
	for (size_t i = 0; i < n; i++) {
		struct tc_mirred m = {
			.action = TC_ACT_PIPE, .eaction = TCA_EGRESS_MIRROR, .ifindex = dests[i]};
		struct nlattr *act = mnl_attr_nest_start(nlh, (uint16_t)(i + 1)), *o;

		mnl_attr_put_strz(nlh, TCA_ACT_KIND, "mirred");
		o = mnl_attr_nest_start(nlh, TCA_ACT_OPTIONS);
		mnl_attr_put(nlh, TCA_MIRRED_PARMS, sizeof(m), &m);
		mnl_attr_nest_end(nlh, o);
		mnl_attr_nest_end(nlh, act);
	}
	mnl_attr_nest_end(nlh, acts);
	mnl_attr_nest_end(nlh, opts);
	return talk(nlh, NULL, NULL);
}

/* Delete the filters of prio 1 (keel's) on link index's clsact hook. */
static int mirror_unfilter(unsigned index, uint16_t hook)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = tc_msg(buf, RTM_DELTFILTER, 0, index, TC_H_MAKE(TC_H_CLSACT, hook));
	int ret;

	((struct tcmsg *)mnl_nlmsg_get_payload(nlh))->tcm_info = TC_H_MAKE(1u << 16, 0);
	ret = talk(nlh, NULL, NULL);
	return ret == -ENOENT || ret == -EINVAL ? 0 : ret;
}

int nl_mirror(const char *name, const char *const *dests, size_t n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	unsigned index, to[NL_MIRROR_MAX];
	int ret = link_index(name, &index);

	if (ret)
		return ret;
	if (n > NL_MIRROR_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		if (link_index(dests[i], &to[i]))
			return -ENODEV;
	/* The filters first, then the qdisc: a clsact deleted and made again at once can
	 * come back with its old filters. */
	ret = mirror_unfilter(index, TC_H_MIN_INGRESS);
	if (!ret)
		ret = mirror_unfilter(index, TC_H_MIN_EGRESS);
	if (ret)
		return ret;
	nlh = tc_msg(buf, n ? RTM_NEWQDISC : RTM_DELQDISC, n ? NLM_F_CREATE : 0, index,
		     TC_H_CLSACT);
	((struct tcmsg *)mnl_nlmsg_get_payload(nlh))->tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0);
	if (n)
		mnl_attr_put_strz(nlh, TCA_KIND, "clsact");
	ret = talk(nlh, NULL, NULL);
	if (!n)
		return ret == -ENOENT || ret == -EINVAL ? 0 : ret;
	if (!ret)
		ret = mirror_filter(index, TC_H_MIN_INGRESS, to, n);
	if (!ret)
		ret = mirror_filter(index, TC_H_MIN_EGRESS, to, n);
	return ret;
}

/* Set bridge port name's u8 attribute attr (IFLA_BRPORT_*) to value. */
static int port_u8(const char *name, uint16_t attr, uint8_t value)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct nlattr *info;
	unsigned index;
	int ret = link_index(name, &index);

	if (ret)
		return ret;
	nlh = link_msg(buf, RTM_SETLINK, 0, index);
	((struct ifinfomsg *)mnl_nlmsg_get_payload(nlh))->ifi_family = AF_BRIDGE;
	info = mnl_attr_nest_start(nlh, IFLA_PROTINFO | NLA_F_NESTED);
	mnl_attr_put_u8(nlh, attr, value);
	mnl_attr_nest_end(nlh, info);
	return talk(nlh, NULL, NULL);
}

int nl_port_isolated(const char *name, bool isolated)
{
	return port_u8(name, IFLA_BRPORT_ISOLATED, isolated);
}

int nl_port_forwarding(const char *name, bool forward)
{
	return port_u8(name, IFLA_BRPORT_STATE, forward ? BR_STATE_FORWARDING : BR_STATE_DISABLED);
}

int nl_link_set_mac(const char *name, const uint8_t mac[6])
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	unsigned index;
	int ret = link_index(name, &index);

	if (ret)
		return ret;
	nlh = link_msg(buf, RTM_NEWLINK, 0, index);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	return talk(nlh, NULL, NULL);
}

/* Add (with a's flags, metric and lifetimes; replace: in the place of that address if it
 * is there, else -EEXIST) or delete address a on link ifname. */
static int addr4_change(const char *ifname, bool add, bool replace, const struct nl_ifaddr4 *a)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	unsigned index;
	uint32_t be = htonl(a->p.addr);
	int ret = link_index(ifname, &index);

	if (ret)
		return ret;
	nlh->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE : 0) |
			   (add && replace ? NLM_F_REPLACE : 0);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)a->p.len;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = index;
	mnl_attr_put_u32(nlh, IFA_LOCAL, be);
	mnl_attr_put_u32(nlh, IFA_ADDRESS, be);
	if (a->p.len < 31) {
		uint32_t host = a->p.len ? 0xffffffffu >> a->p.len : 0xffffffffu;

		mnl_attr_put_u32(nlh, IFA_BROADCAST, htonl(a->p.addr | host));
	}
	if (add && (a->flags & NL_ADDR4_FLAGS))
		mnl_attr_put_u32(nlh, IFA_FLAGS, a->flags & NL_ADDR4_FLAGS);
	if (add && a->metric)
		mnl_attr_put_u32(nlh, IFA_RT_PRIORITY, a->metric);
	if (add && (a->valid != UINT32_MAX || a->preferred != UINT32_MAX)) {
		struct ifa_cacheinfo ci = {.ifa_prefered = a->preferred, .ifa_valid = a->valid};

		mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
	}
	return talk(nlh, NULL, NULL);
}

int nl_addr4(const char *ifname, bool add, struct nl_prefix4 p)
{
	struct nl_ifaddr4 a = {.p = p, .preferred = UINT32_MAX, .valid = UINT32_MAX};

	return addr4_change(ifname, add, true, &a);
}

int nl_addr4_add(const char *ifname, const struct nl_ifaddr4 *a, bool replace)
{
	return addr4_change(ifname, true, replace, a);
}

/* A listing into an array of max entries: room for one more entry (else *more is set and the
 * entry left out), and the listing's answer (the dump's error, else -E2BIG when it held more
 * entries than fit). */
static bool listing_room(size_t n, size_t max, bool *more)
{
	if (n < max)
		return true;
	*more = true;
	return false;
}

static int listing_end(int ret, bool more)
{
	return ret ? ret : more ? -E2BIG : 0;
}

struct addr_query {
	unsigned index;
	struct nl_ifaddr4 *out;
	size_t max, n;
	bool more; /* there were more than max */
};

static int addr_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (type > IFA_MAX)
		return MNL_CB_OK;
	if ((type == IFA_LOCAL || type == IFA_FLAGS || type == IFA_RT_PRIORITY) &&
	    !mnl_attr_validate(a, MNL_TYPE_U32))
		tb[type] = a;
	else if (type == IFA_CACHEINFO &&
		 !mnl_attr_validate2(a, MNL_TYPE_BINARY, sizeof(struct ifa_cacheinfo)))
		tb[type] = a;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_query *q = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = {NULL};
	struct nl_ifaddr4 a = {.preferred = UINT32_MAX, .valid = UINT32_MAX};

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)) || ifa->ifa_family != AF_INET ||
	    ifa->ifa_index != q->index)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, tb);
	if (!tb[IFA_LOCAL])
		return MNL_CB_OK;
	if (!listing_room(q->n, q->max, &q->more))
		return MNL_CB_OK;
	a.p = (struct nl_prefix4){ntohl(mnl_attr_get_u32(tb[IFA_LOCAL])), ifa->ifa_prefixlen};
	a.flags = tb[IFA_FLAGS] ? mnl_attr_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	if (tb[IFA_RT_PRIORITY])
		a.metric = mnl_attr_get_u32(tb[IFA_RT_PRIORITY]);
	if (tb[IFA_CACHEINFO]) {
		const struct ifa_cacheinfo *ci = mnl_attr_get_payload(tb[IFA_CACHEINFO]);

		a.preferred = ci->ifa_prefered;
		a.valid = ci->ifa_valid;
	}
	q->out[q->n++] = a;
	return MNL_CB_OK;
}

/* Dump request type (its family header hdr bytes, the family its first byte) through cb. */
static int dump(uint16_t type, size_t hdr, uint8_t family, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	uint8_t *h;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	h = mnl_nlmsg_put_extra_header(nlh, hdr);
	h[0] = family;
	return talk(nlh, cb, data);
}

int nl_addrs4(const char *ifname, struct nl_ifaddr4 *out, size_t max, size_t *n)
{
	struct addr_query q = {.out = out, .max = max};
	int ret = link_index(ifname, &q.index);

	ret = ret ?: dump(RTM_GETADDR, sizeof(struct ifaddrmsg), AF_INET, addr_cb, &q);
	*n = q.n;
	return listing_end(ret, q.more);
}

struct neigh_query {
	struct nl_neigh *out;
	size_t max, n;
	unsigned index;
};

static int neigh_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if ((type == NDA_DST || type == NDA_LLADDR) && !mnl_attr_validate(a, MNL_TYPE_BINARY))
		tb[type] = a;
	return MNL_CB_OK;
}

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	struct neigh_query *q = data;
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NDA_MAX + 1] = {NULL};
	const uint16_t valid = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT;
	struct nl_neigh *e;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ndm)) ||
	    (unsigned)ndm->ndm_ifindex != q->index || !(ndm->ndm_state & valid) || q->n >= q->max)
		return MNL_CB_OK;
	if (ndm->ndm_family != AF_INET && ndm->ndm_family != AF_INET6)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ndm), neigh_attr, tb);
	if (!tb[NDA_DST] || !tb[NDA_LLADDR] || mnl_attr_get_payload_len(tb[NDA_LLADDR]) != 6 ||
	    mnl_attr_get_payload_len(tb[NDA_DST]) != (ndm->ndm_family == AF_INET ? 4u : 16u))
		return MNL_CB_OK;
	/* fe80::/10: of no use without its link's scope, and every guest has one */
	if (ndm->ndm_family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(mnl_attr_get_payload(tb[NDA_DST])))
		return MNL_CB_OK;
	e = &q->out[q->n];
	if (!inet_ntop(ndm->ndm_family, mnl_attr_get_payload(tb[NDA_DST]), e->addr,
		       sizeof(e->addr)))
		return MNL_CB_OK;
	memcpy(e->mac, mnl_attr_get_payload(tb[NDA_LLADDR]), 6);
	q->n++;
	return MNL_CB_OK;
}

int nl_neighbours(const char *ifname, struct nl_neigh *out, size_t max, size_t *n)
{
	struct neigh_query q = {.out = out, .max = max};
	int ret = link_index(ifname, &q.index);

	ret = ret ?: dump(RTM_GETNEIGH, sizeof(struct ndmsg), AF_UNSPEC, neigh_cb, &q);
	*n = q.n;
	return ret;
}

/* Routing table table (0: main) into a route message: rtm_table holds 8 bits, RTA_TABLE
 * all 32. */
static void put_table(struct nlmsghdr *nlh, struct rtmsg *rtm, unsigned table)
{
	table = table ? table : RT_TABLE_MAIN;
	rtm->rtm_table = table < 256 ? (unsigned char)table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
}

struct route_query {
	struct nl_route4 *out;
	size_t max, n;
	unsigned index; /* 0: every route; else those out of that link, the local table's aside */
	bool more;	/* there were more than max */
};

static int route_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if ((type == RTA_DST || type == RTA_GATEWAY || type == RTA_OIF || type == RTA_TABLE ||
	     type == RTA_PRIORITY || type == RTA_PREFSRC) &&
	    !mnl_attr_validate(a, MNL_TYPE_U32))
		tb[type] = a;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route_query *q = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = {NULL};
	struct nl_route4 r = {{0, rtm->rtm_dst_len}, 0, 0, rtm->rtm_table};

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rtm)) || rtm->rtm_family != AF_INET ||
	    rtm->rtm_type != RTN_UNICAST)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr, tb);
	if (tb[RTA_DST])
		r.dst.addr = ntohl(mnl_attr_get_u32(tb[RTA_DST]));
	if (tb[RTA_GATEWAY])
		r.gateway = ntohl(mnl_attr_get_u32(tb[RTA_GATEWAY]));
	if (tb[RTA_OIF])
		r.oif = mnl_attr_get_u32(tb[RTA_OIF]);
	if (tb[RTA_TABLE])
		r.table = mnl_attr_get_u32(tb[RTA_TABLE]);
	if (tb[RTA_PRIORITY])
		r.metric = mnl_attr_get_u32(tb[RTA_PRIORITY]);
	if (tb[RTA_PREFSRC])
		r.prefsrc = ntohl(mnl_attr_get_u32(tb[RTA_PREFSRC]));
	r.proto = rtm->rtm_protocol;
	r.scope = rtm->rtm_scope;
	r.onlink = rtm->rtm_flags & RTNH_F_ONLINK;
	if (q->index && (r.oif != q->index || r.table == RT_TABLE_LOCAL))
		return MNL_CB_OK;
	if (listing_room(q->n, q->max, &q->more))
		q->out[q->n++] = r;
	return MNL_CB_OK;
}

int nl_routes4(struct nl_route4 *out, size_t max, size_t *n)
{
	struct route_query q = {.out = out, .max = max};
	int ret = dump(RTM_GETROUTE, sizeof(struct rtmsg), AF_INET, route_cb, &q);

	*n = q.n;
	return ret;
}

int nl_routes4_of(const char *ifname, struct nl_route4 *out, size_t max, size_t *n)
{
	struct route_query q = {.out = out, .max = max};
	int ret = link_index(ifname, &q.index);

	ret = ret ?: dump(RTM_GETROUTE, sizeof(struct rtmsg), AF_INET, route_cb, &q);
	*n = q.n;
	return listing_end(ret, q.more);
}

int nl_route4(bool add, const struct nl_route4 *r)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	/* NLM_F_CREATE alone: neither EXCL (refused beside another link's route of the same
	 * prefix and metric) nor REPLACE (which would take that route's place) */
	nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE : 0);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (unsigned char)r->dst.len;
	put_table(nlh, rtm, r->table);
	rtm->rtm_protocol = (unsigned char)(r->proto ? r->proto : RTPROT_BOOT);
	rtm->rtm_scope = (unsigned char)r->scope;
	rtm->rtm_type = RTN_UNICAST;
	rtm->rtm_flags = r->onlink ? RTNH_F_ONLINK : 0;
	if (r->dst.len)
		mnl_attr_put_u32(nlh, RTA_DST, htonl(r->dst.addr));
	if (r->gateway)
		mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(r->gateway));
	if (r->oif)
		mnl_attr_put_u32(nlh, RTA_OIF, r->oif);
	if (r->metric)
		mnl_attr_put_u32(nlh, RTA_PRIORITY, r->metric);
	if (add && r->prefsrc)
		mnl_attr_put_u32(nlh, RTA_PREFSRC, htonl(r->prefsrc));
	return talk(nlh, NULL, NULL);
}

struct addr6_query {
	unsigned index;
	struct nl_addr6 *out;
	size_t max, n;
	bool more; /* there were more than max */
};

static int addr6_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (type > IFA_MAX)
		return MNL_CB_OK;
	if ((type == IFA_ADDRESS || type == IFA_LOCAL) && mnl_attr_get_payload_len(a) == 16)
		tb[type] = a;
	else if (type == IFA_FLAGS && !mnl_attr_validate(a, MNL_TYPE_U32))
		tb[type] = a;
	else if (type == IFA_CACHEINFO &&
		 !mnl_attr_validate2(a, MNL_TYPE_BINARY, sizeof(struct ifa_cacheinfo)))
		tb[type] = a;
	return MNL_CB_OK;
}

static int addr6_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr6_query *q = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = {NULL}, *addr;
	struct nl_addr6 a = {.preferred = UINT32_MAX, .valid = UINT32_MAX};

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)) || ifa->ifa_family != AF_INET6 ||
	    ifa->ifa_index != q->index || ifa->ifa_scope != RT_SCOPE_UNIVERSE)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr6_attr, tb);
	addr = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!addr)
		return MNL_CB_OK;
	a.flags = tb[IFA_FLAGS] ? mnl_attr_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	if (a.flags & IFA_F_TEMPORARY)
		return MNL_CB_OK; /* made again from its mngtmpaddr */
	if (!listing_room(q->n, q->max, &q->more))
		return MNL_CB_OK;
	memcpy(a.addr, mnl_attr_get_payload(addr), 16);
	a.len = ifa->ifa_prefixlen;
	if (tb[IFA_CACHEINFO]) {
		const struct ifa_cacheinfo *ci = mnl_attr_get_payload(tb[IFA_CACHEINFO]);

		a.preferred = ci->ifa_prefered;
		a.valid = ci->ifa_valid;
	}
	q->out[q->n++] = a;
	return MNL_CB_OK;
}

int nl_addrs6(const char *ifname, struct nl_addr6 *out, size_t max, size_t *n)
{
	struct addr6_query q = {.out = out, .max = max};
	int ret = link_index(ifname, &q.index);

	ret = ret ?: dump(RTM_GETADDR, sizeof(struct ifaddrmsg), AF_INET6, addr6_cb, &q);
	*n = q.n;
	return listing_end(ret, q.more);
}

int nl_addr6(const char *ifname, bool add, const struct nl_addr6 *a)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	unsigned index;
	int ret = link_index(ifname, &index);

	if (ret)
		return ret;
	nlh->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET6;
	ifa->ifa_prefixlen = (unsigned char)a->len;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = index;
	mnl_attr_put(nlh, IFA_LOCAL, 16, a->addr);
	if (add) {
		mnl_attr_put_u32(nlh, IFA_FLAGS, a->flags & NL_ADDR6_FLAGS);
		if (a->valid != UINT32_MAX || a->preferred != UINT32_MAX) {
			struct ifa_cacheinfo ci = {.ifa_prefered = a->preferred,
						   .ifa_valid = a->valid};

			mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
		}
	}
	return talk(nlh, NULL, NULL);
}

struct route6_query {
	unsigned index;
	struct nl_route6 *out;
	size_t max, n;
	bool more; /* there were more than max */
};

static int route6_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (type > RTA_MAX)
		return MNL_CB_OK;
	if ((type == RTA_DST || type == RTA_GATEWAY) && mnl_attr_get_payload_len(a) == 16)
		tb[type] = a;
	else if ((type == RTA_OIF || type == RTA_PRIORITY || type == RTA_TABLE) &&
		 !mnl_attr_validate(a, MNL_TYPE_U32))
		tb[type] = a;
	else if (type == RTA_PREF && !mnl_attr_validate(a, MNL_TYPE_U8))
		tb[type] = a;
	else if (type == RTA_CACHEINFO &&
		 !mnl_attr_validate2(a, MNL_TYPE_BINARY, sizeof(struct rta_cacheinfo)))
		tb[type] = a;
	return MNL_CB_OK;
}

static int route6_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route6_query *q = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = {NULL};
	struct nl_route6 r = {.len = rtm->rtm_dst_len, .proto = rtm->rtm_protocol};
	unsigned table = rtm->rtm_table;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rtm)) || rtm->rtm_family != AF_INET6 ||
	    rtm->rtm_type != RTN_UNICAST || rtm->rtm_protocol == RTPROT_KERNEL)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), route6_attr, tb);
	if (tb[RTA_TABLE])
		table = mnl_attr_get_u32(tb[RTA_TABLE]);
	if (!tb[RTA_OIF] || mnl_attr_get_u32(tb[RTA_OIF]) != q->index || table == RT_TABLE_LOCAL)
		return MNL_CB_OK;
	if (!listing_room(q->n, q->max, &q->more))
		return MNL_CB_OK;
	r.oif = q->index;
	r.table = table == RT_TABLE_MAIN ? 0 : table;
	r.onlink = rtm->rtm_flags & RTNH_F_ONLINK;
	if (tb[RTA_DST])
		memcpy(r.dst, mnl_attr_get_payload(tb[RTA_DST]), 16);
	if (tb[RTA_GATEWAY])
		memcpy(r.gateway, mnl_attr_get_payload(tb[RTA_GATEWAY]), 16);
	if (tb[RTA_PRIORITY])
		r.metric = mnl_attr_get_u32(tb[RTA_PRIORITY]);
	if (tb[RTA_PREF])
		r.pref = mnl_attr_get_u8(tb[RTA_PREF]);
	if (tb[RTA_CACHEINFO]) {
		const struct rta_cacheinfo *ci = mnl_attr_get_payload(tb[RTA_CACHEINFO]);
		long hz = sysconf(_SC_CLK_TCK);

		/* clock ticks (USER_HZ) left; a route about to expire keeps a second */
		if (ci->rta_expires)
			r.expires = hz > 0 ? ci->rta_expires / (uint32_t)hz + 1 : 1;
	}
	q->out[q->n++] = r;
	return MNL_CB_OK;
}

int nl_routes6(const char *ifname, struct nl_route6 *out, size_t max, size_t *n)
{
	struct route6_query q = {.out = out, .max = max};
	int ret = link_index(ifname, &q.index);

	ret = ret ?: dump(RTM_GETROUTE, sizeof(struct rtmsg), AF_INET6, route6_cb, &q);
	*n = q.n;
	return listing_end(ret, q.more);
}

int nl_route6(const char *ifname, bool add, const struct nl_route6 *r)
{
	static const uint8_t none[16];
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	unsigned index;
	int ret = link_index(ifname, &index);

	if (ret)
		return ret;
	nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET6;
	rtm->rtm_dst_len = (unsigned char)r->len;
	put_table(nlh, rtm, r->table);
	rtm->rtm_protocol = (unsigned char)(r->proto ? r->proto : RTPROT_BOOT);
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	rtm->rtm_flags = r->onlink ? RTNH_F_ONLINK : 0;
	if (r->len)
		mnl_attr_put(nlh, RTA_DST, 16, r->dst);
	if (memcmp(r->gateway, none, 16))
		mnl_attr_put(nlh, RTA_GATEWAY, 16, r->gateway);
	mnl_attr_put_u32(nlh, RTA_OIF, index);
	if (r->metric)
		mnl_attr_put_u32(nlh, RTA_PRIORITY, r->metric);
	if (add && r->pref)
		mnl_attr_put_u8(nlh, RTA_PREF, r->pref);
	if (add && r->expires)
		mnl_attr_put_u32(nlh, RTA_EXPIRES, r->expires);
	return talk(nlh, NULL, NULL);
}

int nl_prefix4_parse(const char *s, bool net, struct nl_prefix4 *p)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	uint64_t len;

	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1 || parse_uint(slash + 1, 0, 32, &len))
		return -EINVAL;
	p->addr = ntohl(a.s_addr);
	p->len = (unsigned)len;
	if (net && p->len < 32 && (p->addr & (0xffffffffu >> p->len)) && p->len)
		return -EINVAL;
	if (net && !p->len && p->addr)
		return -EINVAL;
	return 0;
}

void nl_prefix4_format(struct nl_prefix4 p, char *out, size_t size)
{
	snprintf(out, size, "%u.%u.%u.%u/%u", p.addr >> 24, (p.addr >> 16) & 255,
		 (p.addr >> 8) & 255, p.addr & 255, p.len);
}

bool nl_prefix4_overlap(struct nl_prefix4 a, struct nl_prefix4 b)
{
	unsigned len = a.len < b.len ? a.len : b.len;
	uint32_t mask = len ? 0xffffffffu << (32 - len) : 0;

	return (a.addr & mask) == (b.addr & mask);
}
