/* SPDX-License-Identifier: Apache-2.0 */
/* A switch's nftables rules, one atomic batch (switch_nft.h). */
#include "daemon/switch_nft.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "lib/error.h"

#define DOCKER_USER "DOCKER-USER"

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
/* The comment of the rule each of a switch's chains starts with ("keel-marker kbrN_fwd"): its
 * rules are there while it is (switch_nft_present). */
#define MARKER "keel-marker"

static const struct {
	const char *suffix, *type, *hook;
	int priority;
} chains[] = {
	{"fwd", "filter", "forward", 0},     {"in", "filter", "input", 0},
	{"out", "filter", "output", 0},	     {"nat", "nat", "postrouting", 100},
	{"dnat", "nat", "prerouting", -100}, /* port forwards, from outside */
	{"dnatout", "nat", "output", -100},  /* port forwards, from the host itself */
};

/* The MAC "aa:bb:cc:dd:ee:ff" as the number 0xaabbccddeeff, for a raw payload match. */
static void mac_hex(const char *mac, char *out, size_t size)
{
	size_t n = snprintf(out, size, "0x");

	for (const char *c = mac; *c && n + 1 < size; c++)
		if (*c != ':')
			out[n++] = *c;
	out[n] = '\0';
}

/* Neighbor discovery in fragments, from adapter p (l3: how IPv6 frames are matched): the
 * guards below read an ND message's ICMPv6 header and options, which a fragment may not
 * hold. Both rules look at first fragments only (fragment offset 0; without its first
 * fragment a datagram is never reassembled, and the later ones, a large ping's, pass):
 * - a first fragment whose fragment header is followed by another extension header
 *   (hop-by-hop, routing, fragment, authentication, destination options: the numbers the
 *   kernel's ipv6_find_hdr walks): it may end before the ICMPv6 or UDP header, where no rule
 *   would see its type or port (the DHCP guard's DHCPv6 ones too). RFC 7112 makes that
 *   first fragment invalid (it must hold the whole header chain) and RFC 7113's RA-Guard
 *   drops it, but nft cannot tell it from a valid one: a datagram with an authentication or
 *   destination options header after its fragment header (where RFC 8200's order puts them)
 *   is dropped whole, a known cost (docs/networking.md, "Still open");
 * - a first fragment (atomic ones too) of an ND message: ND is never fragmented (RFC 6980). */
static void nd_fragments(struct script *s, const char *b, const struct vm_nic *p, const char *l3)
{
	const char *t = "bridge " SWITCH_NFT_TABLE;

	put(s,
	    "add rule %s %s_guard iifname \"%s\" %s frag frag-off 0 frag nexthdr "
	    "{ 0, 43, 44, 51, 60 } counter drop\n",
	    t, b, p->tap, l3);
	put(s,
	    "add rule %s %s_guard iifname \"%s\" %s frag frag-off 0 icmpv6 type "
	    "{ nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
	    "nd-redirect } counter drop\n",
	    t, b, p->tap, l3);
}

/* The link-layer address options of an ND message of types (nft's set) from adapter p
 * (l3: how IPv6 frames are matched, hex: its MAC), whose options start at byte off of the
 * ICMPv6 message: what would teach the others another MAC for the VM's addresses. A
 * receiver reads every option, in any order, so all of them are checked, at fixed offsets
 * (nft cannot walk a list): no extension header before the message (its length is then the
 * IPv6 payload's), at most two options (off + 16 bytes: a link-layer address and a nonce,
 * RFC 7527's DAD), each of 8 bytes (an Ethernet address's source or target option, or a
 * nonce), and a source (type 1) or target (type 2) link-layer address in either of them
 * the adapter's MAC. */
static void nd_options(struct script *s, const char *b, const struct vm_nic *p, const char *l3,
		       const char *hex, const char *types, unsigned off)
{
	const char *t = "bridge " SWITCH_NFT_TABLE;

	/* 58, not its name: nft resolves names through /etc/protocols, which a host may not have
	 * (the lab host has none, and every switch's rules were refused). */
	put(s,
	    "add rule %s %s_guard iifname \"%s\" %s icmpv6 type %s ip6 nexthdr != 58 "
	    "counter drop\n",
	    t, b, p->tap, l3, types);
	put(s,
	    "add rule %s %s_guard iifname \"%s\" %s icmpv6 type %s ip6 length > %u counter drop\n",
	    t, b, p->tap, l3, types, off + 16);
	/* each option there is (within the message: bytes after it, an Ethernet trailer, are
	 * no option) */
	for (unsigned o = off; o < off + 16; o += 8) {
		put(s,
		    "add rule %s %s_guard iifname \"%s\" %s icmpv6 type %s ip6 length > %u "
		    "@th,%u,8 != 1 counter drop\n",
		    t, b, p->tap, l3, types, o, o * 8 + 8);
		put(s,
		    "add rule %s %s_guard iifname \"%s\" %s icmpv6 type %s ip6 length > %u "
		    "@th,%u,8 { 1, 2 } @th,%u,48 != %s counter drop\n",
		    t, b, p->tap, l3, types, o, o * 8, o * 8 + 16, hex);
	}
}

/* The guards of adapter p that look into IPv4 and IPv6 (l3: how such frames are matched). */
static void l3_guards(struct script *s, const char *b, const struct vm_nic *p,
		      const char *const l3[2], const char *hex)
{
	const char *t = "bridge " SWITCH_NFT_TABLE;

	/* A DHCP request must ask for the adapter's own MAC (chaddr, 28 bytes into the BOOTP
	 * message after the 8-byte UDP header): the leases, and so the addresses keel shows and
	 * reserves, follow the MACs keel gave, not the guest's claims. */
	if (!p->mac_spoofing) {
		put(s,
		    "add rule %s %s_guard iifname \"%s\" %s udp dport 67 @th,288,48 != %s counter "
		    "drop\n",
		    t, b, p->tap, l3[0], hex);
		/* A fragmented request would pass the chaddr match (not in its first fragment):
		 * no fragment of a datagram to port 67 passes. The first carries the UDP header
		 * (the only one udp matches); without it the rest is never reassembled, and
		 * the later ones of a broadcast (DISCOVER, REQUEST) are dropped too. */
		put(s,
		    "add rule %s %s_guard iifname \"%s\" %s ip frag-off & 0x3fff != 0 udp dport 67 "
		    "counter drop\n",
		    t, b, p->tap, l3[0]);
		put(s,
		    "add rule %s %s_guard iifname \"%s\" %s ip protocol udp ip frag-off & 0x1fff "
		    "!= "
		    "0 ip daddr 255.255.255.255 counter drop\n",
		    t, b, p->tap, l3[0]);
	}
	/* A first fragment too short for a UDP header (no port to match: udp matches nothing). */
	if (!p->mac_spoofing || p->dhcp_guard)
		put(s,
		    "add rule %s %s_guard iifname \"%s\" %s ip protocol udp ip frag-off & 0x3fff "
		    "== "
		    "0x2000 ip length < 68 counter drop\n",
		    t, b, p->tap, l3[0]);
	if (p->dhcp_guard) {
		/* What makes a DHCP server's reply: from its port, or to a client's. */
		put(s, "add rule %s %s_guard iifname \"%s\" %s udp sport 67 counter drop\n", t, b,
		    p->tap, l3[0]);
		put(s, "add rule %s %s_guard iifname \"%s\" %s udp dport 68 counter drop\n", t, b,
		    p->tap, l3[0]);
		put(s, "add rule %s %s_guard iifname \"%s\" %s udp sport 547 counter drop\n", t, b,
		    p->tap, l3[1]);
		put(s, "add rule %s %s_guard iifname \"%s\" %s udp dport 546 counter drop\n", t, b,
		    p->tap, l3[1]);
	}
	if (p->router_guard || p->dhcp_guard || !p->mac_spoofing)
		nd_fragments(s, b, p, l3[1]);
	if (p->router_guard) {
		/* (icmpv6 depends on meta l4proto: the kernel walks the extension headers to
		 * the ICMPv6 header, so they hide no advertisement; fragments: above.) */
		put(s,
		    "add rule %s %s_guard iifname \"%s\" %s icmpv6 type "
		    "{ nd-router-advert, nd-redirect } counter drop\n",
		    t, b, p->tap, l3[1]);
		put(s, "add rule %s %s_guard iifname \"%s\" %s icmp type redirect counter drop\n",
		    t, b, p->tap, l3[0]);
	}
}

/* The guards of one adapter, on frames entering the switch from its tap (docs/networking.md,
 * "Guards"), and the limit of what it sends. Every rule counts what it drops. */
static void guards(struct script *s, const char *b, const struct vm_nic *p)
{
	static const char *const l3[2][2] = {{"ether type ip", "ether type ip6"},
					     {"vlan type ip", "vlan type ip6"}};
	const char *t = "bridge " SWITCH_NFT_TABLE;
	char hex[20];

	/* 802.1Q frames but from a trunk, and 802.1ad (stacked) ones from any port: a VM's VLAN
	 * is the switch's to set. (A VLAN-accelerated frame's tag is matched too: nft puts it
	 * back into the header it reads.) */
	put(s, "add rule %s %s_guard iifname \"%s\" ether type %s counter drop\n", t, b, p->tap,
	    p->vlan_trunk[0] ? "8021ad" : "{ 8021q, 8021ad }");
	/* A trunk's tag inside another (QinQ, or 802.1Q in 802.1Q): its guards would not see
	 * into it, and the outer one is stripped on the way out to an untagged port. */
	if (p->vlan_trunk[0])
		put(s,
		    "add rule %s %s_guard iifname \"%s\" vlan type { 8021q, 8021ad } counter "
		    "drop\n",
		    t, b, p->tap);
	/* Maximum bandwidth out of the VM: what passes the limit's token bucket (at first a
	 * second's worth and 64 KiB, then the rate). */
	if (p->bw_out)
		put(s,
		    "add rule %s %s_guard iifname \"%s\" limit rate over %llu bytes/second burst "
		    "65536 bytes counter drop\n",
		    t, b, p->tap, (unsigned long long)(p->bw_out / 8));
	if (!p->mac_spoofing)
		put(s, "add rule %s %s_guard iifname \"%s\" ether saddr != %s counter drop\n", t, b,
		    p->tap, p->mac);
	mac_hex(p->mac, hex, sizeof(hex));
	/* untagged frames; a trunk's tagged ones too */
	for (int v = 0; v < (p->vlan_trunk[0] ? 2 : 1); v++) {
		l3_guards(s, b, p, l3[v], hex);
		if (p->mac_spoofing)
			continue;
		/* ARP and ND that would teach the others another MAC for the VM's addresses:
		 * ARP's sender MAC; the link-layer address options of neighbor solicitations
		 * and advertisements (24 bytes in) and router solicitations (8 bytes in). */
		put(s,
		    "add rule %s %s_guard iifname \"%s\" %s arp saddr ether != %s counter drop\n",
		    t, b, p->tap, v ? "vlan type arp" : "ether type arp", p->mac);
		nd_options(s, b, p, l3[v][1], hex, "{ nd-neighbor-solicit, nd-neighbor-advert }",
			   24);
		nd_options(s, b, p, l3[v][1], hex, "nd-router-solicit", 8);
	}
}

int switch_nft_script(const struct store_switch *sw, const struct switch_nft_in *in, bool remove,
		      char *buf, size_t size)
{
	static const struct switch_nft_in none;
	struct script s = {buf, size, 0, false};

	if (!in)
		in = &none;
	const char *b = sw->bridge, *t = "inet " SWITCH_NFT_TABLE;
	bool nat = !strcmp(sw->type, "internal") && sw->nat && sw->subnet[0];

	put(&s, "add table %s\n", t);
	for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
		put(&s, "add chain %s %s_%s { type %s hook %s priority %d; policy accept; }\n", t,
		    b, chains[i].suffix, chains[i].type, chains[i].hook, chains[i].priority);
		put(&s, "%s chain %s %s_%s\n", remove ? "delete" : "flush", t, b, chains[i].suffix);
		if (!remove)
			put(&s, "add rule %s %s_%s counter comment \"%s %s_%s\"\n", t, b,
			    chains[i].suffix, MARKER, b, chains[i].suffix);
	}
	put(&s, "add table bridge %s\n", SWITCH_NFT_TABLE);
	put(&s,
	    "add chain bridge %s %s_guard { type filter hook prerouting priority 0; policy "
	    "accept; }\n",
	    SWITCH_NFT_TABLE, b);
	put(&s, "%s chain bridge %s %s_guard\n", remove ? "delete" : "flush", SWITCH_NFT_TABLE, b);
	if (remove)
		goto out;
	put(&s, "add rule bridge %s %s_guard counter comment \"%s %s_guard\"\n", SWITCH_NFT_TABLE,
	    b, MARKER, b);
	for (size_t i = 0; i < in->nports; i++)
		guards(&s, b, &in->ports[i]);
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
		/* Port forwards: a host port on any of the host's addresses to a VM's. */
		put(&s, "add rule %s %s_fwd oifname \"%s\" ct status dnat accept\n", t, b, b);
		for (size_t i = 0; i < in->nfwds; i++)
			for (int c = 0; c < 2; c++)
				put(&s,
				    "add rule %s %s_%s fib daddr type local ip daddr != "
				    "127.0.0.0/8 %s dport %u dnat ip to %s:%u\n",
				    t, b, c ? "dnatout" : "dnat", in->fwds[i].proto,
				    in->fwds[i].host_port, in->fwds[i].address, in->fwds[i].port);
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

/* Docker's FORWARD chain (table ip filter, iptables-nft) drops by policy what it does not
 * know, whatever keel's own chains accept: where its DOCKER-USER chain exists, the switch's
 * traffic is accepted there, as Docker documents for other bridges, but toward Docker's own
 * bridges (keel's kbrN_fwd still decides what passes). Each rule carries the comment "keel
 * BRIDGE". *present: are they all there (true when there is no such chain); then op puts
 * them there or takes them away.
 * 0 when there is no DOCKER-USER chain. */
enum docker_op { DOCKER_ADD, DOCKER_REMOVE };
#define DOCKER_RULES 3

/* Are all of bridge's rules in out, DOCKER-USER's listing (an earlier keel's broader ones
 * are fewer: replaced)? */
static bool docker_present(const char *out, const char *bridge)
{
	char tag[64];
	int n = 0;

	snprintf(tag, sizeof(tag), "comment \"keel %s\"", bridge);
	for (const char *c = strstr(out, tag); c; c = strstr(c + 1, tag))
		n++;
	return n == DOCKER_RULES;
}

static int docker_user(struct nft_ctx *nft, const char *bridge, enum docker_op op, bool *present)
{
	char cmd[640], tag[64], *out, *save = NULL;
	int ret = 0;

	*present = true;
	if (nft_run_cmd_from_buffer(nft, "list chain ip filter " DOCKER_USER))
		return 0; /* no Docker here */
	snprintf(tag, sizeof(tag), "comment \"keel %s\"", bridge);
	out = strdup(nft_ctx_get_output_buffer(nft));
	if (!out)
		return -ENOMEM;
	*present = docker_present(out, bridge);
	/* "... comment "keel kbrN" # handle N": each of ours, by its handle. */
	for (char *l = strtok_r(out, "\n", &save);
	     (op == DOCKER_REMOVE || (op == DOCKER_ADD && !*present)) && l;
	     l = strtok_r(NULL, "\n", &save)) {
		const char *h = strstr(l, "# handle ");

		if (!strstr(l, tag) || !h)
			continue;
		snprintf(cmd, sizeof(cmd), "delete rule ip filter " DOCKER_USER " handle %ld",
			 strtol(h + 9, NULL, 10));
		if (nft_run_cmd_from_buffer(nft, cmd))
			ret = -EIO;
	}
	/* From the switch out to anything but Docker's bridges (a container's unpublished
	 * port is not the switch's to reach: Docker's own chains decide, as for any other
	 * interface); to it, the replies and the port forwards' connections. */
	if (op == DOCKER_ADD && !*present && !ret) {
		snprintf(cmd, sizeof(cmd),
			 "insert rule ip filter " DOCKER_USER " iifname \"%s\" oifname != "
			 "\"docker0\" oifname != \"br-*\" accept %s\n"
			 "insert rule ip filter " DOCKER_USER " oifname \"%s\" ct state "
			 "established,related accept %s\n"
			 "insert rule ip filter " DOCKER_USER " oifname \"%s\" ct status dnat "
			 "accept %s\n",
			 bridge, tag, bridge, tag, bridge, tag);
		ret = nft_run_cmd_from_buffer(nft, cmd) ? -EIO : 0;
	}
	free(out);
	return ret;
}

int switch_nft_apply(const struct store_switch *sw, const struct switch_nft_in *in, bool remove,
		     char *err, size_t errlen)
{
	/* a port's rules: 7.7 KiB at most (a trunk with every guard and a limit) */
	size_t size = 4096 + (in ? 12288 * in->nports + 256 * in->nfwds : 0);
	char *script = malloc(size);
	struct nft_ctx *nft;
	int n = script ? switch_nft_script(sw, in, remove, script, size) : -ENOMEM, ret = 0;

	if (n < 0) {
		error_set(err, errlen, "switch '%s': its nftables rules do not fit", sw->name);
		free(script);
		return n;
	}
	nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft || nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		error_set(err, errlen, "switch '%s': cannot start libnftables", sw->name);
		if (nft)
			nft_ctx_free(nft);
		free(script);
		return -ENOMEM;
	}
	if (nft_run_cmd_from_buffer(nft, script)) {
		const char *why = nft_ctx_get_error_buffer(nft);

		why = why ? why : "";
		/* ENOENT from the kernel: an expression whose module could not be loaded (the
		 * guards' bridge-family meta needs nft_meta_bridge, a bandwidth limit nft_limit).
		 */
		error_set(err, errlen, "switch '%s': nftables refused its rules: %.*s%s", sw->name,
			  (int)strcspn(why, "\n"), why,
			  strstr(why, "No such file or directory")
				  ? " (a kernel module missing? the guards need nft_meta_bridge, "
				    "bandwidth limits nft_limit)"
				  : "");
		ret = -EIO;
	} else {
		bool there;

		nft_ctx_output_set_flags(nft, NFT_CTX_OUTPUT_HANDLE);
		if (docker_user(nft, sw->bridge, remove ? DOCKER_REMOVE : DOCKER_ADD, &there)) {
			error_set(err, errlen,
				  "switch '%s': cannot %s its rules in Docker's %s chain", sw->name,
				  remove ? "remove" : "add", DOCKER_USER);
			ret = -EIO;
		}
	}
	nft_ctx_free(nft);
	free(script);
	return ret;
}

/* The listing of cmd into *out (NULL: nft refused it, the table or chain is not there);
 * false when there is no memory for it (v->unknown). */
static bool listing(struct nft_ctx *nft, const char *cmd, char **out)
{
	const char *o;

	*out = NULL;
	if (nft_run_cmd_from_buffer(nft, cmd))
		return true;
	o = nft_ctx_get_output_buffer(nft);
	*out = strdup(o ? o : "");
	return *out != NULL;
}

void switch_nft_view_read(struct switch_nft_view *v)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);

	*v = (struct switch_nft_view){0};
	if (!nft || nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		if (nft)
			nft_ctx_free(nft);
		v->unknown = true; /* cannot tell: do not rebuild on a guess */
		return;
	}
	v->unknown = !listing(nft, "list table inet " SWITCH_NFT_TABLE, &v->tables[0]) ||
		     !listing(nft, "list table bridge " SWITCH_NFT_TABLE, &v->tables[1]) ||
		     !listing(nft, "list chain ip filter " DOCKER_USER, &v->docker);
	nft_ctx_free(nft);
}

void switch_nft_view_free(struct switch_nft_view *v)
{
	free(v->tables[0]);
	free(v->tables[1]);
	free(v->docker);
	*v = (struct switch_nft_view){0};
}

bool switch_nft_present(const struct switch_nft_view *v, const struct store_switch *sw)
{
	char mark[64];

	if (v->unknown)
		return true;
	/* Every chain's marker rule: a chain flushed (or its table's rules) has lost it. */
	for (int fam = 0; fam < 2; fam++)
		for (size_t i = 0; i < (fam ? 1 : sizeof(chains) / sizeof(chains[0])); i++) {
			snprintf(mark, sizeof(mark), "\"%s %s_%s\"", MARKER, sw->bridge,
				 fam ? "guard" : chains[i].suffix);
			if (!v->tables[fam] || !strstr(v->tables[fam], mark))
				return false;
		}
	/* (no DOCKER-USER chain: no Docker here) */
	return !v->docker || docker_present(v->docker, sw->bridge);
}
