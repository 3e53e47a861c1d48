/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which of nftables' notifications make keeld load its switches' rules again
 * (src/daemon/switch_nftmon.c): changes in the tables named keel (any family) and in Docker's
 * DOCKER-USER chain, made by another process than keeld (the transaction's NFT_MSG_NEWGEN
 * names it); not other tables, not listings, and nothing from a message cut short.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
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

/* A transaction's end: NFT_MSG_NEWGEN with NFTA_GEN_ID and NFTA_GEN_PROC_PID (pid), into
 * buf: its length. */
static size_t gen(uint32_t *buf, uint32_t pid)
{
	char *p = (char *)buf;
	struct nlmsghdr *nlh = (struct nlmsghdr *)p;
	size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	uint32_t vals[2] = {htonl(7), htonl(pid)};

	memset(p, 0, 64);
	for (int i = 0; i < 2; i++) {
		struct nlattr *a = (struct nlattr *)(p + len);

		a->nla_type = (uint16_t)(NFTA_GEN_ID + i);
		a->nla_len = NLA_HDRLEN + 4;
		memcpy(a + 1, &vals[i], 4);
		len += NLA_HDRLEN + 4;
	}
	nlh->nlmsg_len = (uint32_t)len;
	nlh->nlmsg_type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN);
	return len;
}

#define SELF  1234u
#define OTHER 999u

/* One message then its transaction's NEWGEN from another process: does it make keeld look? */
static bool one(unsigned type, uint8_t fam, const char *table, unsigned chain_attr,
		const char *chain)
{
	uint32_t buf[256];
	struct switch_nftmon m = {0};
	size_t n = msg(buf, type, fam, table, chain_attr, chain);

	n += gen(buf + n / 4, OTHER);
	return switch_nftmon_msgs(&m, buf, n, SELF);
}

static void test_which(void **state)
{
	(void)state;
	assert_true(one(NFT_MSG_DELRULE, 7, "keel", 2, "kbr0_guard"));
	assert_true(one(NFT_MSG_DELTABLE, 1, "keel", 0, NULL));
	assert_true(one(NFT_MSG_DELCHAIN, 1, "keel", 3, "kbr0_fwd"));
	/* additions too: a saved ruleset loaded again, or a rule added to keel's chains */
	assert_true(one(NFT_MSG_NEWRULE, 7, "keel", 2, "kbr0_guard"));
	assert_true(one(NFT_MSG_NEWTABLE, 1, "keel", 0, NULL));
	assert_true(one(NFT_MSG_NEWSET, 1, "keel", 2, "s"));
	/* NFT_MSG_DESTROYTABLE, DESTROYCHAIN, DESTROYRULE (26-28; not in older headers) */
	assert_true(one(26, 1, "keel", 0, NULL));
	assert_true(one(27, 1, "keel", 3, "kbr0_fwd"));
	assert_true(one(28, 2, "filter", 2, "DOCKER-USER"));
	assert_true(one(NFT_MSG_DELRULE, 2, "filter", 2, "DOCKER-USER"));
	assert_true(one(NFT_MSG_NEWRULE, 2, "filter", 2, "DOCKER-USER"));
	assert_true(one(NFT_MSG_DELCHAIN, 2, "filter", 3, "DOCKER-USER"));
	assert_false(one(NFT_MSG_DELRULE, 2, "filter", 2, "FORWARD"));
	assert_false(one(NFT_MSG_DELTABLE, 2, "keelx", 0, NULL));
	/* a set named DOCKER-USER is no chain */
	assert_false(one(NFT_MSG_DELSET, 2, "filter", 2, "DOCKER-USER"));
	/* listings are no change */
	assert_false(one(NFT_MSG_GETRULE, 7, "keel", 2, "kbr0_guard"));
}

/* A transaction is known as another process's only at its NEWGEN: its messages before it, in
 * the same datagram or earlier ones, wait for it; keeld's own are dropped. */
static void test_transactions(void **state)
{
	uint32_t buf[256];
	struct switch_nftmon m = {0};
	size_t n;

	(void)state;
	/* cut short: not read */
	n = msg(buf, NFT_MSG_DELRULE, 7, "keel", 2, "kbr0_guard");
	assert_false(switch_nftmon_msgs(&m, buf, n - 4, SELF));
	assert_false(m.touched);
	/* keeld's own transaction (its batch's flush): not news */
	n = msg(buf, NFT_MSG_DELRULE, 7, "keel", 2, "kbr0_guard");
	n += gen(buf + n / 4, SELF);
	assert_false(switch_nftmon_msgs(&m, buf, n, SELF));
	assert_false(m.touched);
	/* another's, its NEWGEN in the next datagram */
	n = msg(buf, NFT_MSG_NEWTABLE, 2, "filter", 0, NULL);
	n += msg(buf + n / 4, NFT_MSG_DELRULE, 1, "keel", 2, "kbr3_in");
	assert_false(switch_nftmon_msgs(&m, buf, n, SELF));
	assert_true(m.touched);
	n = gen(buf, OTHER);
	assert_true(switch_nftmon_msgs(&m, buf, n, SELF));
	assert_false(m.touched);
	/* keeld's own then another's that touches nothing of keel's, in one datagram */
	n = msg(buf, NFT_MSG_DELCHAIN, 1, "keel", 3, "kbr0_fwd");
	n += gen(buf + n / 4, SELF);
	n += msg(buf + n / 4, NFT_MSG_DELRULE, 2, "filter", 2, "FORWARD");
	n += gen(buf + n / 4, OTHER);
	assert_false(switch_nftmon_msgs(&m, buf, n, SELF));
	/* another's then keeld's: the first counts */
	n = msg(buf, NFT_MSG_DELTABLE, 1, "keel", 0, NULL);
	n += gen(buf + n / 4, OTHER);
	n += msg(buf + n / 4, NFT_MSG_DELTABLE, 1, "keel", 0, NULL);
	n += gen(buf + n / 4, SELF);
	assert_true(switch_nftmon_msgs(&m, buf, n, SELF));
	assert_false(m.touched);
	/* a NEWGEN without its pid (older kernels): not keeld's */
	n = msg(buf, NFT_MSG_DELTABLE, 1, "keel", 0, NULL);
	n += gen(buf + n / 4, 0);
	assert_true(switch_nftmon_msgs(&m, buf, n, SELF));
}

static void *park(void *arg)
{
	int *fd = arg;
	char c;

	(void)!read(*fd, &c, 1); /* until the test is done with this thread's id */
	return NULL;
}

static void *tell_tid(void *arg)
{
	*(uint32_t *)arg = (uint32_t)syscall(SYS_gettid);
	return NULL;
}

/* The whole read of the socket (here one end of a datagram socket pair): a transaction
 * whose NEWGEN names a thread of keeld's (the kernel gives the sending thread's id, and
 * keeld's API and job threads send batches) is keeld's own; one of a process that is not
 * keeld is a change; a datagram cut short is a loss, not a change (keeld's own reload of
 * many ports can overrun the socket: taken for a change, it loaded everything again, which
 * overran it again, once a second in the lab). */
static void test_read(void **state)
{
	uint32_t buf[256], tid = 0;
	struct switch_nftmon m = {0};
	int sv[2], hold[2];
	pthread_t t, t2;
	size_t n;
	char *big;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(pipe(hold), 0);
	assert_int_equal(pthread_create(&t, NULL, park, &hold[0]), 0);
	/* the id of a thread that has ended: no thread of ours any more */
	assert_int_equal(pthread_create(&t2, NULL, tell_tid, &tid), 0);
	pthread_join(t2, NULL);
	{
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/task/%u", tid);
		assert_int_not_equal(access(path, F_OK), 0);
	}
	assert_int_equal(switch_nftmon_read(sv[1], &m), SWITCH_NFTMON_NONE);
	/* keeld's main thread */
	n = msg(buf, NFT_MSG_DELRULE, 7, "keel", 2, "kbr0_guard");
	n += gen(buf + n / 4, (uint32_t)getpid());
	assert_int_equal(send(sv[0], buf, n, 0), (ssize_t)n);
	assert_int_equal(switch_nftmon_read(sv[1], &m), SWITCH_NFTMON_NONE);
	/* another thread of keeld's (the parked one, live): its own */
	{
		DIR *d = opendir("/proc/self/task");
		struct dirent *de;
		uint32_t other_tid = 0;

		assert_non_null(d);
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && (uint32_t)atoi(de->d_name) != (uint32_t)getpid())
				other_tid = (uint32_t)atoi(de->d_name);
		closedir(d);
		assert_int_not_equal(other_tid, 0);
		n = msg(buf, NFT_MSG_DELRULE, 7, "keel", 2, "kbr0_guard");
		n += gen(buf + n / 4, other_tid);
		assert_int_equal(send(sv[0], buf, n, 0), (ssize_t)n);
		assert_int_equal(switch_nftmon_read(sv[1], &m), SWITCH_NFTMON_NONE);
	}
	/* a thread that has ended, or no thread of ours: another process's change */
	n = msg(buf, NFT_MSG_DELRULE, 7, "keel", 2, "kbr0_guard");
	n += gen(buf + n / 4, tid);
	assert_int_equal(send(sv[0], buf, n, 0), (ssize_t)n);
	assert_int_equal(switch_nftmon_read(sv[1], &m), SWITCH_NFTMON_CHANGED);
	/* a datagram cut short (longer than the read's buffer): a loss */
	big = calloc(1, 65536);
	assert_non_null(big);
	assert_int_equal(send(sv[0], big, 65536, 0), 65536);
	assert_int_equal(switch_nftmon_read(sv[1], &m), SWITCH_NFTMON_LOST);
	free(big);
	(void)!write(hold[1], "x", 1);
	pthread_join(t, NULL);
	close(hold[0]);
	close(hold[1]);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which),
		cmocka_unit_test(test_transactions),
		cmocka_unit_test(test_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
