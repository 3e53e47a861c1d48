/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel vm backup NAME --to DIR [--json] [--no-wait]: an application-consistent copy of a VM's
 * disks and definition (docs/backup.md), as a keeld job followed with its progress.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char backup_usage[] =
	"usage: keel vm backup NAME --to DIR [--json] [--no-wait]\n"
	"  copies the VM's disks (each a standalone VHDX) and its description into DIR/NAME:\n"
	"  a running VM's guest is frozen through keel-agent for a moment (crash-consistent\n"
	"  without an agent) and runs on while the copy is made; it pauses briefly twice\n";

int cli_vm_backup(int argc, char **argv)
{
	const char *vm = NULL, *to = NULL;
	bool json = false, no_wait = false;
	json_object *body, *res, *v;
	char path[512], what[300], abs[PATH_MAX];
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--to") && i + 1 < argc)
			to = argv[++i];
		else if (!strncmp(argv[i], "--to=", 5))
			to = argv[i] + 5;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--no-wait"))
			no_wait = true;
		else if (argv[i][0] == '-')
			return cli_usage_error("vm backup", backup_usage,
					       "unknown or incomplete option %.200s", argv[i]);
		else if (!vm)
			vm = argv[i];
		else
			return cli_usage_error("vm backup", backup_usage,
					       "too many arguments: %.200s", argv[i]);
	}
	if (!vm || !to)
		return cli_usage_error("vm backup", backup_usage, "needs NAME and --to DIR");
	/* keeld runs elsewhere than the shell: the directory as an absolute path. */
	if (!realpath(to, abs)) {
		fprintf(stderr, "keel: vm backup: cannot use '%s': %m\n", to);
		return EXIT_USAGE;
	}
	cli_vm_path(path, sizeof(path), vm, "backup");
	snprintf(what, sizeof(what), "back up VM '%.100s' to %.150s", vm, abs);
	body = json_object_new_object();
	json_object_object_add(body, "to", json_object_new_string(abs));
	ret = client_run_job(path, body, what, no_wait, json, &res);
	json_object_put(body);
	if (res) {
		if (json) {
			client_print_json(res);
		} else {
			printf("VM '%s' backed up to %s (consistency: %s)\n", vm,
			       client_str_field(res, "dir"), client_str_field(res, "consistency"));
			if (json_object_object_get_ex(res, "fallback", &v) && v)
				printf("%s\n", json_object_get_string(v));
			if (json_object_object_get_ex(res, "nvram", &v) && v)
				printf("UEFI variable store: %s\n", json_object_get_string(v));
		}
	}
	json_object_put(res);
	return ret;
}
