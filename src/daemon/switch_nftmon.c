/* SPDX-License-Identifier: Apache-2.0 */
/* nftables' change notifications (switch_nftmon.h). */
#include "daemon/switch_nftmon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "daemon/switch_nft.h"

int switch_nftmon_open(int *fd)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
	unsigned group = NFNLGRP_NFTABLES;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};

	*fd = -1;
	if (s < 0)
		return -errno;
	/* Room for a reload of every switch's rules (some 100 notifications of up to a few KiB
	 * for each port) before keeld reads them: root may go past rmem_max. */
	int rcvbuf = 8 << 20;

	if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)!setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
		int ret = -errno;

		close(s);
		return ret;
	}
	*fd = s;
	return 0;
}

/* The string attribute of type want in the attributes after nlh's nfgenmsg ("" if none or
 * not a string), into out. */
static void attr_str(const struct nlmsghdr *nlh, unsigned want, char *out, size_t size)
{
	const struct nlattr *a;

	out[0] = '\0';
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) != want || mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			continue;
		snprintf(out, size, "%s", mnl_attr_get_str(a));
		return;
	}
}

/* NEWGEN's NFTA_GEN_PROC_PID (the process that made the transaction; 0 if none). */
static uint32_t gen_pid(const struct nlmsghdr *nlh)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) == NFTA_GEN_PROC_PID &&
		    mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			return ntohl(mnl_attr_get_u32(a));
	}
	return 0;
}

/* The notifications of a change, by message type: tables, chains, rules, sets, their
 * elements, objects and flowtables, added or deleted (the kernel's header may predate the
 * DESTROY ones, 26 to 32). */
static bool is_change(unsigned type)
{
	switch (type) {
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_DELTABLE:
	case NFT_MSG_NEWCHAIN:
	case NFT_MSG_DELCHAIN:
	case NFT_MSG_NEWRULE:
	case NFT_MSG_DELRULE:
	case NFT_MSG_NEWSET:
	case NFT_MSG_DELSET:
	case NFT_MSG_NEWSETELEM:
	case NFT_MSG_DELSETELEM:
	case NFT_MSG_NEWOBJ:
	case NFT_MSG_DELOBJ:
	case NFT_MSG_NEWFLOWTABLE:
	case NFT_MSG_DELFLOWTABLE:
		return true;
	default:
		return type >= 26 && type <= 32; /* NFT_MSG_DESTROYTABLE ... DESTROYFLOWTABLE */
	}
}

/* One message: a change in keel's tables or in DOCKER-USER? */
static bool matters(const struct nlmsghdr *nlh)
{
	unsigned type = nlh->nlmsg_type & 0xff;
	char table[64], chain[64];

	if (!is_change(type))
		return false;
	/* The table's name is attribute 1 of them all (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
	 * NFTA_RULE_TABLE, NFTA_SET_TABLE, ...); a chain's own name NFTA_CHAIN_NAME, a rule's
	 * NFTA_RULE_CHAIN. */
	attr_str(nlh, NFTA_TABLE_NAME, table, sizeof(table));
	if (!strcmp(table, SWITCH_NFT_TABLE))
		return true;
	if (type == NFT_MSG_NEWCHAIN || type == NFT_MSG_DELCHAIN || type == 27)
		attr_str(nlh, NFTA_CHAIN_NAME, chain, sizeof(chain));
	else if (type == NFT_MSG_NEWRULE || type == NFT_MSG_DELRULE || type == 28)
		attr_str(nlh, NFTA_RULE_CHAIN, chain, sizeof(chain));
	else
		return false;
	return !strcmp(chain, "DOCKER-USER");
}

bool switch_nftmon_msgs(struct switch_nftmon *m, const void *buf, size_t len, uint32_t self)
{
	const char *p = buf;
	bool look = false;

	/* (not mnl_nlmsg_ok: it takes a length over INT_MAX for a negative one) */
	while (len >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *nlh = (const void *)p;
		/* (NLMSG_ALIGN's mask is 32 bits: a length near 4 GiB would align to 0) */
		size_t step =
			((size_t)nlh->nlmsg_len + NLMSG_ALIGNTO - 1) & ~(size_t)(NLMSG_ALIGNTO - 1);

		/* whole with its padding (the kernel sends it: mnl_attr_for_each reads up to
		 * it) */
		if (nlh->nlmsg_len < sizeof(*nlh) || step > len)
			break;
		if (nlh->nlmsg_type >> 8 == NFNL_SUBSYS_NFTABLES &&
		    nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(struct nfgenmsg))) {
			/* A transaction's notifications end with its NEWGEN, which names the
			 * process that made it: keeld's own are not news. */
			if ((nlh->nlmsg_type & 0xff) == NFT_MSG_NEWGEN) {
				uint32_t pid = gen_pid(nlh);

				look |= m->touched && pid != self && !(m->own && m->own(pid));
				m->touched = false;
			} else {
				m->touched |= matters(nlh);
			}
		}
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return look;
}

/* A thread of this process (keeld's API and job threads send transactions too; the kernel
 * names the sending thread). */
static bool own_thread(uint32_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%u", tid);
	return tid && access(path, F_OK) == 0;
}

enum switch_nftmon_news switch_nftmon_read(int fd, struct switch_nftmon *m)
{
	/* aligned for the messages' headers */
	static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	uint32_t self = (uint32_t)getpid();
	bool changed = false, lost = false;

	m->own = own_thread;
	for (;;) {
		/* MSG_TRUNC: n is the message's whole length, even when it did not fit */
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			lost = true; /* some were lost: any of them may have been one */
			m->touched = false;
			continue;
		}
		if (n <= 0)
			return changed ? SWITCH_NFTMON_CHANGED
			       : lost  ? SWITCH_NFTMON_LOST
				       : SWITCH_NFTMON_NONE;
		/* one cut short: its end unread, it may have been one */
		if ((size_t)n > sizeof(buf))
			lost = true;
		else
			changed |= switch_nftmon_msgs(m, buf, (size_t)n, self);
	}
}
