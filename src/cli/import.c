/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel vm import DIR [--copy-to POOL | --in-place] [--new-id] [--name NAME] [--kernel PATH]
 * [--initrd PATH] [--json] [--no-wait]: a VM registered from a backup directory (docs/backup.md,
 * "Import"; Hyper-V's Import-VM), as a keeld job followed with its progress.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char import_usage[] =
	"usage: keel vm import DIR [--copy-to POOL | --in-place] [--new-id] [--name NAME]\n"
	"                      [--kernel PATH] [--initrd PATH] [--json] [--no-wait]\n"
	"  registers the VM of a backup directory (keel vm backup's DIR/NAME):\n"
	"  --copy-to POOL  copy its disks into POOL/NAME (the default: pool 'default'); the\n"
	"                  backup stays as it was and can be imported again\n"
	"  --in-place      register the backup's own files (they become the VM's disks)\n"
	"  --new-id        a new VM id and new MAC addresses (a copy only), so that the backup\n"
	"                  can be imported next to the VM it was taken of\n"
	"  --name NAME     the new VM's name (default: the backup's)\n"
	"  --kernel PATH   the kernel of a VM that boots one directly, --initrd PATH its initrd\n"
	"                  (files in storage pools): the kernel, initrd, firmware file and DVD\n"
	"                  media a backup's description names are not imported\n";

static void print_result(json_object *res)
{
	json_object *ni = NULL;

	printf("VM '%s' imported (id %s, %s%s)\n", client_str_field(res, "vm"),
	       client_str_field(res, "id"), client_str_field(res, "mode"),
	       json_object_get_boolean(json_object_object_get(res, "new_id")) ? ", new id" : "");
	if (json_object_object_get_ex(res, "not_imported", &ni))
		for (size_t i = 0; i < json_object_array_length(ni); i++)
			printf("not imported: %s\n",
			       json_object_get_string(json_object_array_get_idx(ni, i)));
}

int cli_vm_import(int argc, char **argv)
{
	const char *dir = NULL, *pool = NULL, *name = NULL, *kernel = NULL, *initrd = NULL;
	bool json = false, no_wait = false, in_place = false, new_id = false;
	json_object *body, *res;
	char what[PATH_MAX + 64], abs[PATH_MAX], kabs[PATH_MAX], iabs[PATH_MAX];
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(import_usage, stdout);
			return EXIT_OK;
		}
		if (!strcmp(argv[i], "--copy-to") && i + 1 < argc)
			pool = argv[++i];
		else if (!strncmp(argv[i], "--copy-to=", 10))
			pool = argv[i] + 10;
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			name = argv[++i];
		else if (!strncmp(argv[i], "--name=", 7))
			name = argv[i] + 7;
		else if (!strcmp(argv[i], "--kernel") && i + 1 < argc)
			kernel = argv[++i];
		else if (!strcmp(argv[i], "--initrd") && i + 1 < argc)
			initrd = argv[++i];
		else if (!strcmp(argv[i], "--in-place"))
			in_place = true;
		else if (!strcmp(argv[i], "--new-id"))
			new_id = true;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--no-wait"))
			no_wait = true;
		else if (argv[i][0] == '-')
			return cli_usage_error("vm import", import_usage,
					       "unknown or incomplete option %.200s", argv[i]);
		else if (!dir)
			dir = argv[i];
		else
			return cli_usage_error("vm import", import_usage,
					       "too many arguments: %.200s", argv[i]);
	}
	if (!dir)
		return cli_usage_error("vm import", import_usage, "needs the backup's DIR");
	if (in_place && (pool || new_id))
		return cli_usage_error("vm import", import_usage,
				       "--in-place registers the backup's own files with its id: "
				       "not with %s",
				       pool ? "--copy-to" : "--new-id (a new id needs a copy)");
	/* keeld runs elsewhere than the shell: the directory as an absolute path. */
	if (!realpath(dir, abs)) {
		fprintf(stderr, "keel: vm import: cannot use '%s': %m\n", dir);
		return EXIT_USAGE;
	}
	snprintf(what, sizeof(what), "import the VM of %s", abs);
	body = json_object_new_object();
	json_object_object_add(body, "from", json_object_new_string(abs));
	if (pool)
		json_object_object_add(body, "copy_to", json_object_new_string(pool));
	if (name)
		json_object_object_add(body, "name", json_object_new_string(name));
	if (kernel && !(kernel = realpath(kernel, kabs))) {
		fprintf(stderr, "keel: vm import: cannot use the kernel: %m\n");
		json_object_put(body);
		return EXIT_USAGE;
	}
	if (initrd && !(initrd = realpath(initrd, iabs))) {
		fprintf(stderr, "keel: vm import: cannot use the initrd: %m\n");
		json_object_put(body);
		return EXIT_USAGE;
	}
	if (kernel)
		json_object_object_add(body, "kernel", json_object_new_string(kernel));
	if (initrd)
		json_object_object_add(body, "initrd", json_object_new_string(initrd));
	if (in_place)
		json_object_object_add(body, "in_place", json_object_new_boolean(true));
	if (new_id)
		json_object_object_add(body, "new_id", json_object_new_boolean(true));
	ret = client_run_job("/v1/vms/import", body, what, no_wait, json, &res);
	json_object_put(body);
	if (res && json)
		client_print_json(res);
	else if (res)
		print_result(res);
	json_object_put(res);
	return ret;
}
