/* SPDX-License-Identifier: Apache-2.0 */
/* nftables' change notifications (switch_nftmon.h). */
#include "daemon/switch_nftmon.h"

#include <errno.h>
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

/* One message: a deletion in keel's tables or in DOCKER-USER? */
static bool matters(const struct nlmsghdr *nlh)
{
	unsigned type = nlh->nlmsg_type & 0xff;
	char table[64], chain[64];

	if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES ||
	    (type != NFT_MSG_DELTABLE && type != NFT_MSG_DELCHAIN && type != NFT_MSG_DELRULE) ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nfgenmsg)))
		return false;
	/* The table's name is attribute 1 of all three (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
	 * NFTA_RULE_TABLE); a chain's own name NFTA_CHAIN_NAME, a rule's NFTA_RULE_CHAIN. */
	attr_str(nlh, NFTA_TABLE_NAME, table, sizeof(table));
	if (!strcmp(table, SWITCH_NFT_TABLE))
		return true;
	attr_str(nlh, type == NFT_MSG_DELCHAIN ? NFTA_CHAIN_NAME : NFTA_RULE_CHAIN, chain,
		 sizeof(chain));
	return type != NFT_MSG_DELTABLE && !strcmp(chain, "DOCKER-USER");
}

bool switch_nftmon_msgs(const void *buf, size_t len)
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
		look |= matters(nlh);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return look;
}

bool switch_nftmon_read(int fd)
{
	/* aligned for the messages' headers */
	static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	bool look = false;

	for (;;) {
		/* MSG_TRUNC: n is the message's whole length, even when it did not fit */
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			look = true; /* some were lost: any of them may have been one */
			continue;
		}
		if (n <= 0)
			return look;
		/* one cut short: its end unread, it may have been one */
		look |= (size_t)n > sizeof(buf) || switch_nftmon_msgs(buf, (size_t)n);
	}
}
