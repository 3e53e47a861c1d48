/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which of nftables' notifications make keeld look at its switches' rules
 * (src/daemon/switch_nftmon.c): deletions in the tables named keel (any family) and in
 * Docker's DOCKER-USER chain, not additions, not other tables, and nothing from a message
 * cut short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "daemon/switch_nftmon.h"

/* A message of type msg in family fam with string attributes 1 (table) and 2 or 3 (a
 * rule's or a chain's chain name; NULL: none), into buf (aligned): its length. */
static size_t msg(uint32_t *buf, unsigned type, uint8_t fam, const char *table, unsigned chain_attr,
		  const char *chain)
{
	char *p = (char *)buf;
	struct nlmsghdr *nlh = (struct nlmsghdr *)p;
	size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	const char *strs[2] = {table, chain};
	unsigned types[2] = {1, chain_attr};

	memset(p, 0, 512);
	((struct nfgenmsg *)(p + NLMSG_HDRLEN))->nfgen_family = fam;
	for (int i = 0; i < 2; i++) {
		struct nlattr *a = (struct nlattr *)(p + len);

		if (!strs[i])
			continue;
		a->nla_type = (uint16_t)types[i];
		a->nla_len = (uint16_t)(NLA_HDRLEN + strlen(strs[i]) + 1);
		memcpy(a + 1, strs[i], strlen(strs[i]) + 1);
		len += NLA_ALIGN(a->nla_len);
	}
	nlh->nlmsg_len = (uint32_t)len;
	nlh->nlmsg_type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | type);
	return len;
}

static void test_which(void **state)
{
	uint32_t buf[256];
	size_t n;

	(void)state;
	n = msg(buf, NFT_MSG_DELRULE, 7, "keel", 2, "kbr0_guard");
	assert_true(switch_nftmon_msgs(buf, n));
	assert_false(switch_nftmon_msgs(buf, n - 4)); /* cut short: not read */
	n = msg(buf, NFT_MSG_DELTABLE, 1, "keel", 0, NULL);
	assert_true(switch_nftmon_msgs(buf, n));
	n = msg(buf, NFT_MSG_DELCHAIN, 1, "keel", 3, "kbr0_fwd");
	assert_true(switch_nftmon_msgs(buf, n));
	n = msg(buf, NFT_MSG_NEWRULE, 7, "keel", 2, "kbr0_guard");
	assert_false(switch_nftmon_msgs(buf, n));
	n = msg(buf, NFT_MSG_DELRULE, 2, "filter", 2, "DOCKER-USER");
	assert_true(switch_nftmon_msgs(buf, n));
	n = msg(buf, NFT_MSG_DELCHAIN, 2, "filter", 3, "DOCKER-USER");
	assert_true(switch_nftmon_msgs(buf, n));
	n = msg(buf, NFT_MSG_DELRULE, 2, "filter", 2, "FORWARD");
	assert_false(switch_nftmon_msgs(buf, n));
	n = msg(buf, NFT_MSG_DELTABLE, 2, "keelx", 0, NULL);
	assert_false(switch_nftmon_msgs(buf, n));
	/* a datagram of two: the second one counts */
	n = msg(buf, NFT_MSG_NEWTABLE, 2, "filter", 0, NULL);
	n += msg(buf + n / 4, NFT_MSG_DELRULE, 1, "keel", 2, "kbr3_in");
	assert_true(switch_nftmon_msgs(buf, n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
