/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The record of an external switch's adapter addresses (src/daemon/switch_record.c): IPv6
 * addresses and routes written and read back the same (flags, lifetimes as what is left of
 * them, metric, protocol, expiry, preference), expired ones said so, IPv4 entries, keys
 * found with or without their lifetimes, and malformed entries refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>

#include "daemon/switch_record.h"

static void test_addr6_round_trip(void **state)
{
	struct nl_addr6 a = {.len = 64, .flags = 0x302 | 0x80, .preferred = 1800, .valid = 3600};
	struct switch_record_entry e;
	char t[SWITCH_RECORD_ENTRY_MAX], key[SWITCH_RECORD_ENTRY_MAX];

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:81::1", a.addr), 1);
	switch_record_addr6(&a, 1000, t, sizeof(t));
	/* flags kept: only those RTM_NEWADDR takes (0x80, permanent, is not) */
	assert_string_equal(t, "a6:2001:db8:81::1/64,f=302,p=2800,v=4600");
	assert_int_equal(switch_record_entry(t, 1100, &e), 0);
	assert_int_equal(e.kind, SWITCH_RECORD_ADDR6);
	assert_memory_equal(e.a6.addr, a.addr, 16);
	assert_int_equal(e.a6.len, 64);
	assert_int_equal(e.a6.flags, 0x302);
	assert_int_equal(e.a6.preferred, 1700); /* 100 s later: what is left */
	assert_int_equal(e.a6.valid, 3500);
	assert_false(e.expired);
	assert_int_equal(switch_record_entry(t, 4600, &e), 0);
	assert_true(e.expired);
	/* forever stays forever */
	a.preferred = a.valid = UINT32_MAX;
	a.flags = 0;
	switch_record_addr6(&a, 1000, t, sizeof(t));
	assert_string_equal(t, "a6:2001:db8:81::1/64");
	assert_int_equal(switch_record_entry(t, 99999, &e), 0);
	assert_int_equal(e.a6.preferred, UINT32_MAX);
	assert_int_equal(e.a6.valid, UINT32_MAX);
	assert_false(e.expired);
	/* the key finds the entry whatever its lifetimes */
	switch_record_addr6_key(&a, key, sizeof(key));
	assert_true(switch_record_has("10.0.0.1/8 a6:2001:db8:81::1/64,f=2,v=5 ipv6", key));
	assert_false(switch_record_has("a6:2001:db8:81::1/640", key));
	assert_false(switch_record_has("a6:2001:db8:81::1/6", key));
	assert_true(switch_record_has("10.0.0.1/8 ipv6", "ipv6"));
	assert_false(switch_record_has("10.0.0.1/8 ipv6x", "ipv6"));
}

static void test_route6_round_trip(void **state)
{
	struct nl_route6 r = {.len = 0, .metric = 1024, .proto = 9, .expires = 600, .pref = 3};
	struct switch_record_entry e;
	char t[SWITCH_RECORD_ENTRY_MAX];

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "fe80::1", r.gateway), 1);
	switch_record_route6(&r, 50, t, sizeof(t));
	assert_string_equal(t, "r6:::/0,via=fe80::1,m=1024,pr=9,e=650,pf=3");
	assert_int_equal(switch_record_entry(t, 60, &e), 0);
	assert_int_equal(e.kind, SWITCH_RECORD_ROUTE6);
	assert_int_equal(e.r6.len, 0);
	assert_memory_equal(e.r6.gateway, r.gateway, 16);
	assert_int_equal(e.r6.metric, 1024);
	assert_int_equal(e.r6.proto, 9);
	assert_int_equal(e.r6.expires, 590);
	assert_int_equal(e.r6.pref, 3);
	assert_false(e.expired);
	assert_int_equal(switch_record_entry(t, 700, &e), 0);
	assert_true(e.expired);
	/* on-link, no expiry */
	memset(&r, 0, sizeof(r));
	r.len = 48;
	r.metric = 100;
	r.proto = 4;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:99::", r.dst), 1);
	switch_record_route6(&r, 50, t, sizeof(t));
	assert_string_equal(t, "r6:2001:db8:99::/48,m=100,pr=4");
	assert_int_equal(switch_record_entry(t, 60, &e), 0);
	assert_int_equal(e.r6.expires, 0);
	assert_false(e.expired);
}

static void test_ipv4_and_bad(void **state)
{
	static const char *const bad[] = {
		"a6:",
		"a6:2001:db8::1",
		"a6:2001:db8::1/129",
		"a6:zz::1/64",
		"a6:::1/64,f",
		"a6:::1/64,f=",
		"a6:::1/64,f=xyz",
		"a6:::1/64,q=1",
		"a6:::1/64,v=-1",
		"a6:::1/64,via=::2",
		"r6:::/0,via=nope",
		"r6:::/0,pr=256",
		"r6:::/0,pf=999",
		"r6:,m=1",
		"via:1.2.3",
		"via:1.2.3.4.5.6.7.8",
		"r4:10.0.0.0/8,via=10.0.0.300",
		"r4:10.0.0.0/8,src=::1",
		"r4:10.0.0.0/8,sc=256",
		"r4:10.0.0.0/8,on=2",
		"r4:10.0.0.0/8,e=5",
		"r4:10.0.0.0/33",
		"r6:::/0,on=2",
		"r4:10.0.0.0/8,t=0",
		"r4:10.0.0.0/8,t=254",
		"r4:10.0.0.0/8,t=255",
		"r4:10.0.0.0/8,t=4294967296",
		"r6:::/0,t=255",
		"r6:::/0,t=",
		"10.0.0.1/8,t=100",
		"a6:::1/64,t=100",
		"10.0.0.1/8,m=4294967296",
		"10.0.0.1/8,e=5",
		"10.0.0.1/8,via=10.0.0.2",
		"10.0.0.1/8,f=",
		"r6:::/0,sc=1",
		"10.0.0.1",
		"10.0.0.1/33",
		"",
		"ipv6x",
	};
	struct switch_record_entry e;
	char longer[SWITCH_RECORD_ENTRY_MAX + 8];

	(void)state;
	assert_int_equal(switch_record_entry("10.80.0.1/16", 0, &e), 0);
	assert_int_equal(e.kind, SWITCH_RECORD_ADDR4);
	assert_int_equal(e.a4.p.addr, 0x0a500001u);
	assert_int_equal(e.a4.p.len, 16);
	assert_int_equal(e.a4.flags, 0);
	assert_int_equal(e.a4.valid, UINT32_MAX);
	/* a record from before r4: its default route's gateway alone */
	assert_int_equal(switch_record_entry("via:10.80.0.254", 0, &e), 0);
	assert_int_equal(e.kind, SWITCH_RECORD_ROUTE4);
	assert_int_equal(e.r4.dst.len, 0);
	assert_int_equal(e.r4.gateway, 0x0a5000feu);
	assert_int_equal(e.r4.metric, 0);
	assert_int_equal(switch_record_entry("ipv6", 0, &e), 0);
	assert_int_equal(e.kind, SWITCH_RECORD_IPV6_ON);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (switch_record_entry(bad[i], 0, &e) != -EINVAL)
			fail_msg("entry '%s' was read", bad[i]);
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(switch_record_entry(longer, 0, &e), -EINVAL);
}

static void test_route4_round_trip(void **state)
{
	/* a cloud server's default route: an on-link gateway outside the /32 address, the
	 * DHCP client's protocol, metric and source */
	struct nl_route4 r, link;
	struct switch_record_entry e;
	char t[SWITCH_RECORD_ENTRY_MAX];

	(void)state;
	memset(&r, 0, sizeof(r)); /* (compared whole, padding too) */
	memset(&link, 0, sizeof(link));
	r.gateway = 0xac1f0101u;
	r.metric = 50;
	r.proto = 16;
	r.prefsrc = 0xac1f0509u;
	r.onlink = true;
	link.dst = (struct nl_prefix4){0xac1f0101u, 32};
	link.proto = 4;
	link.scope = 253;
	switch_record_route4(&r, t, sizeof(t));
	assert_string_equal(t, "r4:0.0.0.0/0,via=172.31.1.1,m=50,pr=16,sc=0,src=172.31.5.9,on=1");
	assert_int_equal(switch_record_entry(t, 0, &e), 0);
	assert_int_equal(e.kind, SWITCH_RECORD_ROUTE4);
	assert_memory_equal(&e.r4, &r, sizeof(r));
	assert_false(e.expired);
	switch_record_route4(&link, t, sizeof(t));
	assert_string_equal(t, "r4:172.31.1.1/32,m=0,pr=4,sc=253");
	assert_int_equal(switch_record_entry(t, 0, &e), 0);
	assert_memory_equal(&e.r4, &link, sizeof(link));
	/* a policy routing table's (the main table's, as the kernel lists it, is the same as
	 * none) */
	r.table = 70000;
	switch_record_route4(&r, t, sizeof(t));
	assert_string_equal(t, "r4:0.0.0.0/0,via=172.31.1.1,m=50,pr=16,sc=0,src=172.31.5.9,on=1,"
			       "t=70000");
	assert_int_equal(switch_record_entry(t, 0, &e), 0);
	assert_memory_equal(&e.r4, &r, sizeof(r));
	link.table = 254;
	switch_record_route4(&link, t, sizeof(t));
	assert_string_equal(t, "r4:172.31.1.1/32,m=0,pr=4,sc=253");
}

static void test_route6_table(void **state)
{
	struct nl_route6 r;
	struct switch_record_entry e;
	char t[SWITCH_RECORD_ENTRY_MAX];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.gateway[0] = 0x20;
	r.gateway[15] = 1;
	r.metric = 20;
	r.table = 100;
	switch_record_route6(&r, 0, t, sizeof(t));
	assert_string_equal(t, "r6:::/0,via=2000::1,m=20,pr=0,t=100");
	assert_int_equal(switch_record_entry(t, 0, &e), 0);
	assert_int_equal(e.kind, SWITCH_RECORD_ROUTE6);
	assert_int_equal(e.r6.table, 100);
	assert_int_equal(e.r6.metric, 20);
	/* the same route of another table is another one: a merge keeps both */
	{
		char list[256] = "r6:::/0,via=2000::1,m=20,pr=0";

		assert_int_equal(switch_record_merge(list, sizeof(list), t, 0), 0);
		assert_string_equal(list, "r6:::/0,via=2000::1,m=20,pr=0 "
					  "r6:::/0,via=2000::1,m=20,pr=0,t=100");
	}
}

static void test_addr4_round_trip(void **state)
{
	/* NetworkManager's: noprefixroute (its own prefix route), a DHCP lease's lifetimes;
	 * and one whose kernel prefix route has a metric */
	struct nl_ifaddr4 a = {{0x0a000005u, 24}, 0x200 | 0x80, 0, 86000, 86400};
	struct nl_ifaddr4 m = {{0xc0a84e05u, 24}, 0, 300, UINT32_MAX, UINT32_MAX};
	struct switch_record_entry e;
	char t[SWITCH_RECORD_ENTRY_MAX];

	(void)state;
	switch_record_addr4(&a, 1000, t, sizeof(t));
	/* flags kept: only those RTM_NEWADDR takes for IPv4 (0x80, permanent, is not) */
	assert_string_equal(t, "10.0.0.5/24,f=200,p=87000,v=87400");
	assert_true(switch_record_has(t, "10.0.0.5/24"));
	assert_int_equal(switch_record_entry(t, 1400, &e), 0);
	assert_int_equal(e.kind, SWITCH_RECORD_ADDR4);
	assert_int_equal(e.a4.p.addr, a.p.addr);
	assert_int_equal(e.a4.p.len, 24);
	assert_int_equal(e.a4.flags, 0x200);
	assert_int_equal(e.a4.preferred, 85600);
	assert_int_equal(e.a4.valid, 86000);
	assert_false(e.expired);
	assert_int_equal(switch_record_entry(t, 87400, &e), 0);
	assert_true(e.expired);
	switch_record_addr4(&m, 1000, t, sizeof(t));
	assert_string_equal(t, "192.168.78.5/24,m=300");
	assert_int_equal(switch_record_entry(t, 0, &e), 0);
	assert_int_equal(e.a4.metric, 300);
	assert_int_equal(e.a4.preferred, UINT32_MAX);
}

static void test_merge(void **state)
{
	char list[256] =
		"ipv6 10.0.0.9/32 a6:2001:db8::1/64,p=50,v=90 r6:::/0,via=fe80::1,m=1,pr=9,e=70";

	(void)state;
	/* the same address and route with other lifetimes are not added twice; the others
	 * are, but those ended at 10 s (an address valid to 9, a route expiring at 5) and one
	 * that does not read */
	assert_int_equal(
		switch_record_merge(
			list, sizeof(list),
			"ipv6 10.0.0.1/24 a6:2001:db8::1/64,f=2,p=10,v=20 "
			"a6:2001:db8::2/64 r6:::/0,via=fe80::1,m=1,pr=9,e=30 "
			"r6:::/0,via=fe80::2,m=1,pr=9,e=30,pf=3 r4:0.0.0.0/0,via=10.0.0.1,"
			"m=0,pr=3,sc=0 a6:2001:db8::3/64,v=9 bogus:1 r6:::/0,via=fe80::3,e=5",
			10),
		0);
	assert_string_equal(list, "ipv6 10.0.0.9/32 a6:2001:db8::1/64,p=50,v=90 "
				  "r6:::/0,via=fe80::1,m=1,pr=9,e=70 10.0.0.1/24 a6:2001:db8::2/64 "
				  "r6:::/0,via=fe80::2,m=1,pr=9,e=30,pf=3 "
				  "r4:0.0.0.0/0,via=10.0.0.1,m=0,pr=3,sc=0");
	assert_int_equal(switch_record_merge(list, strlen(list) + 8, "10.0.0.77/24", 10), -ENOSPC);
	/* an IPv4 address with other lifetimes is the same one */
	assert_int_equal(switch_record_merge(list, sizeof(list), "10.0.0.9/32,v=50", 10), 0);
	assert_null(strstr(list, "v=50"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route4_round_trip),
		cmocka_unit_test(test_route6_table),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_addr6_round_trip),
		cmocka_unit_test(test_route6_round_trip),
		cmocka_unit_test(test_ipv4_and_bad),
		cmocka_unit_test(test_addr4_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
