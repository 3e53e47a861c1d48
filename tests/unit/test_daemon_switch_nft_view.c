/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether a switch's rules are there, from one listing of keel's tables and of Docker's
 * DOCKER-USER chain for all switches (src/daemon/switch_nft.c, switch_nft_present): every
 * chain's marker rule, in the right table; all three DOCKER-USER rules where that chain is;
 * nothing rebuilt when nftables could not be asked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/switch_nft.h"

/* The inet table's listing with the markers of bridge's chains, but skip's. */
static void inet_listing(char *buf, size_t size, const char *bridge, const char *skip)
{
	static const char *const suffixes[] = {"fwd", "in", "out", "nat", "dnat", "dnatout"};
	size_t n = (size_t)snprintf(buf, size, "table inet keel {\n");

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (!skip || strcmp(skip, suffixes[i]))
			n += (size_t)snprintf(buf + n, size - n,
					      "\tchain %s_%s {\n\t\tcounter packets 0 bytes 0 "
					      "comment \"keel-marker %s_%s\"\n\t}\n",
					      bridge, suffixes[i], bridge, suffixes[i]);
	snprintf(buf + n, size - n, "}\n");
}

static void test_present(void **state)
{
	char inet[2048], inet_no_nat[2048], bridge[256], bridge_other[256];
	char docker[512], docker_two[512];
	struct store_switch sw = {.bridge = "kbr1"};
	struct switch_nft_view v = {0};

	(void)state;
	inet_listing(inet, sizeof(inet), "kbr1", NULL);
	inet_listing(inet_no_nat, sizeof(inet_no_nat), "kbr1", "nat");
	snprintf(bridge, sizeof(bridge),
		 "table bridge keel {\n\tchain kbr1_guard {\n\t\tcounter comment "
		 "\"keel-marker kbr1_guard\"\n\t}\n}\n");
	snprintf(bridge_other, sizeof(bridge_other),
		 "table bridge keel {\n\tchain kbr10_guard {\n\t\tcounter comment "
		 "\"keel-marker kbr10_guard\"\n\t}\n}\n");
	snprintf(docker, sizeof(docker),
		 "iifname \"kbr1\" accept comment \"keel kbr1\"\n"
		 "oifname \"kbr1\" ct state established,related accept comment \"keel kbr1\"\n"
		 "oifname \"kbr1\" ct status dnat accept comment \"keel kbr1\"\n");
	snprintf(docker_two, sizeof(docker_two),
		 "iifname \"kbr1\" accept comment \"keel kbr1\"\n"
		 "oifname \"kbr1\" ct state established,related accept comment \"keel kbr1\"\n");

	v.tables[0] = inet;
	v.tables[1] = bridge;
	assert_true(switch_nft_present(&v, &sw)); /* no DOCKER-USER: no Docker */
	v.docker = docker;
	assert_true(switch_nft_present(&v, &sw));
	v.docker = docker_two; /* one of the three gone */
	assert_false(switch_nft_present(&v, &sw));
	v.docker = NULL;
	v.tables[0] = inet_no_nat; /* one chain's marker gone */
	assert_false(switch_nft_present(&v, &sw));
	v.tables[0] = inet;
	v.tables[1] = bridge_other; /* kbr10's guard chain is not kbr1's */
	assert_false(switch_nft_present(&v, &sw));
	v.tables[1] = NULL; /* the bridge table gone */
	assert_false(switch_nft_present(&v, &sw));
	v.tables[0] = NULL;
	v.unknown = true; /* nftables could not be asked: no rebuild on a guess */
	assert_true(switch_nft_present(&v, &sw));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_present),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
