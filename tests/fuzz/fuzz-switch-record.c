/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-switch-record (issue 12): an external switch's record of its adapter's addresses as
 * keeld reads it back from its store (src/daemon/switch_record.c), on any text a damaged
 * store could hold: every space-separated entry read within its length; an entry read is
 * well formed, and an address or a route written again reads back the same; merged
 * into another record, it stays within its size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/rtnetlink.h>

#include "daemon/switch_record.h"

static void again(const struct switch_record_entry *e, time_t now)
{
	char t[SWITCH_RECORD_ENTRY_MAX];
	struct switch_record_entry back;

	if (e->kind == SWITCH_RECORD_ADDR4)
		switch_record_addr4(&e->a4, now, t, sizeof(t));
	else if (e->kind == SWITCH_RECORD_ADDR6)
		switch_record_addr6(&e->a6, now, t, sizeof(t));
	else if (e->kind == SWITCH_RECORD_ROUTE6)
		switch_record_route6(&e->r6, now, t, sizeof(t));
	else if (e->kind == SWITCH_RECORD_ROUTE4)
		switch_record_route4(&e->r4, t, sizeof(t));
	else
		return;
	if (switch_record_entry(t, now, &back))
		abort(); /* written by keeld, refused by keeld */
	if (e->kind == SWITCH_RECORD_ADDR6 &&
	    (memcmp(back.a6.addr, e->a6.addr, 16) || back.a6.len != e->a6.len ||
	     back.a6.flags != (e->a6.flags & NL_ADDR6_FLAGS) ||
	     back.a6.preferred != e->a6.preferred || back.a6.valid != e->a6.valid))
		abort();
	if (e->kind == SWITCH_RECORD_ROUTE6 &&
	    (memcmp(back.r6.dst, e->r6.dst, 16) || memcmp(back.r6.gateway, e->r6.gateway, 16) ||
	     back.r6.len != e->r6.len || back.r6.metric != e->r6.metric ||
	     back.r6.proto != e->r6.proto || back.r6.expires != e->r6.expires ||
	     back.r6.pref != e->r6.pref || back.r6.onlink != e->r6.onlink ||
	     back.r6.table != e->r6.table))
		abort();
	if (e->kind == SWITCH_RECORD_ROUTE4 && memcmp(&back.r4, &e->r4, sizeof(e->r4)))
		abort();
	if (e->kind == SWITCH_RECORD_ADDR4 &&
	    (back.a4.p.addr != e->a4.p.addr || back.a4.p.len != e->a4.p.len ||
	     back.a4.flags != (e->a4.flags & NL_ADDR4_FLAGS) || back.a4.metric != e->a4.metric ||
	     back.a4.preferred != e->a4.preferred || back.a4.valid != e->a4.valid))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *save = NULL;
	const time_t now = 1700000000;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* merged (as a record kept with a new one): within its size, its entries the
	 * text's */
	{
		char list[512] = "ipv6 a6:2001:db8::1/64,v=5";

		if (switch_record_merge(list, sizeof(list), text, now) == 0 &&
		    strlen(list) >= sizeof(list))
			abort();
	}
	for (char *t = strtok_r(text, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		struct switch_record_entry e;

		if (switch_record_entry(t, now, &e))
			continue;
		if ((e.kind == SWITCH_RECORD_ADDR6 && e.a6.len > 128) ||
		    (e.kind == SWITCH_RECORD_ROUTE6 && e.r6.len > 128) ||
		    (e.kind == SWITCH_RECORD_ADDR4 && e.a4.p.len > 32) ||
		    (e.kind == SWITCH_RECORD_ROUTE4 &&
		     (e.r4.dst.len > 32 || e.r4.scope > 255 || e.r4.proto > 255 ||
		      e.r4.table == RT_TABLE_MAIN || e.r4.table == RT_TABLE_LOCAL)) ||
		    (e.kind == SWITCH_RECORD_ROUTE6 &&
		     (e.r6.table == RT_TABLE_MAIN || e.r6.table == RT_TABLE_LOCAL)))
			abort();
		if (!e.expired)
			again(&e, now);
	}
	free(text);
	return 0;
}
