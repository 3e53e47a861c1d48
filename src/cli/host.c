/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel host: the host's own life cycle through keeld's API (docs/cli.md, docs/keeld.md).
 *   shutdown [--timeout SEC] [--json]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "lib/parse.h"

static const char host_usage[] =
	"usage: keel host COMMAND\n"
	"  shutdown [--timeout SEC] [--json]  apply every running VM's automatic stop action\n"
	"                                     (shut down, save or turn off; graceful shutdowns "
	"get\n"
	"                                     SEC seconds, keeld's --stop-timeout by default)\n"
	"                                     and wait until no VM runs: keeld's systemd unit\n"
	"                                     runs this when the host shuts down\n";

#define usage_error(...) cli_usage_error("host", host_usage, __VA_ARGS__)

static int cmd_shutdown(int argc, char **argv)
{
	json_object *body = json_object_new_object(), *job = NULL, *done = NULL, *vms, *v;
	bool json = false;
	uint64_t timeout;
	int ret;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if (parse_uint(argv[++i], 0, 3600, &timeout)) {
				json_object_put(body);
				return usage_error("--timeout takes seconds from 0 to 3600");
			}
			json_object_object_add(body, "timeout",
					       json_object_new_int64((int64_t)timeout));
		} else {
			json_object_put(body);
			return usage_error("unknown argument");
		}
	}
	ret = client_call("POST", "/v1/host/shutdown", body, &job, "host shutdown");
	json_object_put(body);
	if (ret)
		return ret;
	/* A job of keeld's: follow it, then print what happened to each VM from the job as it
	 * ended (keeld exits once it has given that out). */
	ret = client_wait_job_done(job, "host shutdown", &done);
	json_object_put(job);
	if (!done)
		return ret ? ret : EXIT_FAIL;
	if (json) {
		client_print_json(done);
	} else if (json_object_object_get_ex(done, "result", &vms)) {
		for (size_t i = 0; i < json_object_array_length(vms); i++) {
			v = json_object_array_get_idx(vms, i);
			printf("%-20s %-10s %-8s %s\n", client_str_field(v, "name"),
			       client_str_field(v, "action"), client_str_field(v, "state"),
			       client_str_field(v, "reason"));
		}
	}
	json_object_put(done);
	return ret;
}

int cli_host_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(host_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (!strcmp(argv[1], "shutdown"))
		return cmd_shutdown(argc, argv);
	fprintf(stderr, "keel host: unknown command '%s'\n%s", argv[1], host_usage);
	return EXIT_USAGE;
}
