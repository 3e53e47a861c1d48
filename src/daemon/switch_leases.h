/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dnsmasq's lease file, read for the guests' addresses (docs/networking.md): one lease a
 * line, "EXPIRY MAC IP HOSTNAME CLIENT-ID". The file is written by dnsmasq from what guests
 * send (the host name), so every line is checked and a bad one skipped.
 */
#ifndef KEEL_DAEMON_SWITCH_LEASES_H
#define KEEL_DAEMON_SWITCH_LEASES_H

#include <stddef.h>
#include <stdint.h>

struct switch_lease {
	int64_t expiry; /* Unix time; 0: never */
	char mac[18];	/* lower case */
	char ip[16];	/* dotted IPv4 */
	char host[64];	/* "" when the guest sent none ('*') */
};

/* Call cb for every well-formed IPv4 lease in buf (len bytes, need not end in NUL). */
void switch_leases_parse(const char *buf, size_t len,
			 void (*cb)(const struct switch_lease *l, void *data), void *data);

#endif
