/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-switch-leases (issue 12): dnsmasq's lease file as keeld reads it for the guests'
 * addresses (src/daemon/switch_leases.c). Guests choose the host names in it, so every
 * field of every line is checked; each lease handed on must be well formed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/switch_leases.h"

static void check_lease(const struct switch_lease *l, void *data)
{
	size_t *n = data;

	/* A MAC of 17 lower-case characters, a dotted address, a printable name. */
	if (strlen(l->mac) != 17 || strlen(l->ip) < 7 || strlen(l->ip) > 15 ||
	    strlen(l->host) >= sizeof(l->host) || l->expiry < 0)
		abort();
	for (size_t i = 0; i < 17; i++)
		if (i % 3 == 2 ? l->mac[i] != ':' : !strchr("0123456789abcdef", l->mac[i]))
			abort();
	for (const char *p = l->host; *p; p++)
		if (*p <= ' ' || *p > '~')
			abort();
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;

	switch_leases_parse((const char *)data, size, check_lease, &n);
	return 0;
}
