/* SPDX-License-Identifier: Apache-2.0 */
/* A switch's nftables rules, one atomic batch (switch_nft.h). */
#include "daemon/switch_nft.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "lib/error.h"

struct script {
	char *buf;
	size_t size, len;
	bool full;
};

static void __attribute__((format(printf, 2, 3))) put(struct script *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->len, s->size - s->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= s->size - s->len)
		s->full = true;
	else
		s->len += (size_t)n;
}

/* The switch's base chains, declared (an existing one is kept) and emptied. */
static const struct {
	const char *suffix, *type, *hook;
	int priority;
} chains[] = {
	{"fwd", "filter", "forward", 0},
	{"in", "filter", "input", 0},
	{"out", "filter", "output", 0},
	{"nat", "nat", "postrouting", 100},
};

int switch_nft_script(const struct store_switch *sw, bool remove, char *buf, size_t size)
{
	struct script s = {buf, size, 0, false};
	const char *b = sw->bridge, *t = "inet " SWITCH_NFT_TABLE;
	bool nat = !strcmp(sw->type, "internal") && sw->nat && sw->subnet[0];

	put(&s, "add table %s\n", t);
	for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
		put(&s, "add chain %s %s_%s { type %s hook %s priority %d; policy accept; }\n", t,
		    b, chains[i].suffix, chains[i].type, chains[i].hook, chains[i].priority);
		put(&s, "%s chain %s %s_%s\n", remove ? "delete" : "flush", t, b, chains[i].suffix);
	}
	if (remove)
		goto out;
	/* Frames between two ports of the switch (seen here when br_netfilter is loaded). */
	put(&s, "add rule %s %s_fwd iifname \"%s\" oifname \"%s\" accept\n", t, b, b, b);
	if (!strcmp(sw->type, "external"))
		goto out; /* the host's own network: keel routes nothing there */
	if (nat) {
		put(&s, "add rule %s %s_fwd iifname \"%s\" ip saddr %s accept\n", t, b, b,
		    sw->subnet);
		put(&s,
		    "add rule %s %s_fwd oifname \"%s\" ip daddr %s ct state established,related "
		    "accept\n",
		    t, b, b, sw->subnet);
		put(&s, "add rule %s %s_nat ip saddr %s ip daddr != %s masquerade\n", t, b,
		    sw->subnet, sw->subnet);
	}
	/* Nothing else is routed in or out of an internal or private switch. */
	put(&s, "add rule %s %s_fwd iifname \"%s\" drop\n", t, b, b);
	put(&s, "add rule %s %s_fwd oifname \"%s\" drop\n", t, b, b);
	if (!strcmp(sw->type, "private")) {
		/* Not even the host: nothing from the switch in, nothing out to it. */
		put(&s, "add rule %s %s_in iifname \"%s\" drop\n", t, b, b);
		put(&s, "add rule %s %s_out oifname \"%s\" drop\n", t, b, b);
	}
out:
	return s.full ? -ENOSPC : (int)s.len;
}

int switch_nft_apply(const struct store_switch *sw, bool remove, char *err, size_t errlen)
{
	char script[4096];
	struct nft_ctx *nft;
	int n = switch_nft_script(sw, remove, script, sizeof(script)), ret = 0;

	if (n < 0) {
		error_set(err, errlen, "switch '%s': its nftables rules do not fit", sw->name);
		return n;
	}
	nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft) {
		error_set(err, errlen, "switch '%s': cannot start libnftables", sw->name);
		return -ENOMEM;
	}
	if (nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		nft_ctx_free(nft);
		return -ENOMEM;
	}
	if (nft_run_cmd_from_buffer(nft, script)) {
		const char *why = nft_ctx_get_error_buffer(nft);

		error_set(err, errlen, "switch '%s': nftables refused its rules: %.*s", sw->name,
			  (int)strcspn(why ? why : "", "\n"), why ? why : "");
		ret = -EIO;
	}
	nft_ctx_free(nft);
	return ret;
}
