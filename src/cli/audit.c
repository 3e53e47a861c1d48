/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel audit: who changed what through keeld's API, and what came of it (docs/cli.md,
 * docs/security.md). Administrators only.
 *   keel audit [--vm NAME] [--changes | --refused] [--limit N] [--json]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "lib/parse.h"

static const char audit_usage[] =
	"usage: keel audit [--vm NAME] [--changes | --refused] [--limit N] [--json]\n"
	"  the newest N (100) state-changing requests keeld served, and refused ones: time,\n"
	"  caller, request, outcome; only those about VM NAME with --vm; only those served\n"
	"  with --changes, only the refused ones (403, 413, 414) with --refused\n";

#define usage_error(...) cli_usage_error("audit", audit_usage, __VA_ARGS__)

int cli_audit_main(int argc, char **argv)
{
	char path[512], esc[300];
	const char *vm = NULL, *kind = "";
	json_object *arr = NULL;
	uint64_t limit = 100;
	bool json = false;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--changes") || !strcmp(argv[i], "--refused")) {
			if (kind[0])
				return usage_error("--changes and --refused exclude each other");
			kind = argv[i][2] == 'c' ? "&kind=changes" : "&kind=refused";
		} else if (!strcmp(argv[i], "--vm") && i + 1 < argc) {
			vm = argv[++i];
		} else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
			if (parse_uint(argv[++i], 1, 10000, &limit))
				return usage_error("--limit takes a number from 1 to 10000");
		} else if (!strcmp(argv[i], "--help")) {
			fputs(audit_usage, stdout);
			return EXIT_OK;
		} else {
			return usage_error("unexpected argument '%s'", argv[i]);
		}
	}
	snprintf(path, sizeof(path), "/v1/audit?limit=%llu%s%s%s", (unsigned long long)limit, kind,
		 vm ? "&vm=" : "", vm ? client_escape(vm, esc, sizeof(esc)) : "");
	ret = client_call("GET", path, NULL, &arr, "read the audit log");
	if (ret)
		return ret;
	if (json) {
		client_print_json(arr);
	} else {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *a = json_object_array_get_idx(arr, i), *v;
			const char *msg = client_str_field(a, "message");

			json_object_object_get_ex(a, "uid", &v);
			/* Every field as text keeld recorded (a caller chose path and method). */
			client_put_safe(client_str_field(a, "time"));
			fputs("  ", stdout);
			client_put_safe(client_str_field(a, "user"));
			printf(" (uid %lld)  ", (long long)json_object_get_int64(v));
			client_put_safe(client_str_field(a, "method"));
			putchar(' ');
			client_put_safe(client_str_field(a, "path"));
			printf(" -> %d%s", json_object_get_int(json_object_object_get(a, "status")),
			       msg[0] ? ": " : "");
			client_put_safe(msg);
			putchar('\n');
		}
	}
	json_object_put(arr);
	return EXIT_OK;
}
