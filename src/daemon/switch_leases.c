/* SPDX-License-Identifier: Apache-2.0 */
/* dnsmasq's lease file (switch_leases.h). */
#include "daemon/switch_leases.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "config/vmdef.h"
#include "lib/parse.h"

#define FIELD_MAX 256

/* The next space-separated field of line [*p, end) into out (cut at FIELD_MAX). */
static bool field(const char **p, const char *end, char out[FIELD_MAX])
{
	size_t n = 0;

	while (*p < end && **p == ' ')
		(*p)++;
	if (*p == end)
		return false;
	while (*p < end && **p != ' ') {
		if (n < FIELD_MAX - 1)
			out[n++] = **p;
		(*p)++;
	}
	out[n] = '\0';
	return true;
}

static bool host_ok(const char *h)
{
	size_t n = strlen(h);

	if (!n || n >= sizeof(((struct switch_lease *)0)->host))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
			return false;
	return true;
}

static void parse_line(const char *p, const char *end,
		       void (*cb)(const struct switch_lease *l, void *data), void *data)
{
	char f[4][FIELD_MAX];
	struct switch_lease l = {0};
	struct in_addr a;
	uint64_t expiry;

	for (int i = 0; i < 4; i++)
		if (!field(&p, end, f[i]))
			return;
	if (parse_uint(f[0], 0, INT64_MAX, &expiry) || strlen(f[1]) != 17 ||
	    inet_pton(AF_INET, f[2], &a) != 1)
		return;
	for (int i = 0; i < 17; i++) {
		char c = (char)tolower((unsigned char)f[1][i]);

		if (i % 3 == 2 ? c != ':' : !isxdigit((unsigned char)c))
			return;
		l.mac[i] = c;
	}
	l.expiry = (int64_t)expiry;
	strcpy(l.ip, f[2]);
	if (strcmp(f[3], "*") && host_ok(f[3]))
		strcpy(l.host, f[3]);
	cb(&l, data);
}

void switch_leases_parse(const char *buf, size_t len,
			 void (*cb)(const struct switch_lease *l, void *data), void *data)
{
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		parse_line(p, eol, cb, data);
		p = nl ? nl + 1 : end;
	}
}
