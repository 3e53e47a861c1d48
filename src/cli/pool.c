/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel pool: the storage pools a VM's files must come from (docs/cli.md, docs/security.md).
 *   create NAME --path DIR | create NAME --type block --device DEV... | list [--json] |
 *   delete NAME
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char pool_usage[] =
	"usage: keel pool COMMAND\n"
	"  create NAME --path DIR             a directory whose files VMs may use\n"
	"  create NAME --type block --device DEV [--device DEV]...\n"
	"                                     block devices VMs may use as disks\n"
	"  list [--json]                      every pool\n"
	"  delete NAME                        forget a pool no VM uses (its files stay)\n";

#define usage_error(...) cli_usage_error("pool", pool_usage, __VA_ARGS__)

static int cmd_create(int argc, char **argv)
{
	json_object *body, *devices = NULL, *res = NULL;
	const char *path = NULL, *type = NULL;
	int ret;

	if (argc < 3 || argv[2][0] == '-')
		return usage_error("create needs the pool's NAME");
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(argv[2]));
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--path") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
			type = argv[++i];
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			if (!devices)
				devices = json_object_new_array();
			json_object_array_add(devices, json_object_new_string(argv[++i]));
		} else {
			json_object_put(body);
			json_object_put(devices);
			return usage_error("unexpected argument '%s'", argv[i]);
		}
	}
	if (path) {
		char *abs = realpath(path, NULL);

		/* keeld resolves it too; relative paths are the caller's working directory's */
		json_object_object_add(body, "path", json_object_new_string(abs ? abs : path));
		free(abs);
	}
	if (type)
		json_object_object_add(body, "type", json_object_new_string(type));
	if (devices)
		json_object_object_add(body, "devices", devices);
	ret = client_call("POST", "/v1/pools", body, &res, "create pool");
	json_object_put(body);
	if (!ret)
		printf("pool '%s' created\n", argv[2]);
	json_object_put(res);
	return ret;
}

static int cmd_list(int argc, char **argv)
{
	json_object *arr = NULL;
	bool json = argc > 2 && !strcmp(argv[2], "--json");
	int ret;

	if (argc > 3 || (argc == 3 && !json))
		return usage_error("unexpected argument '%s'", argv[argc - 1]);
	ret = client_call("GET", "/v1/pools", NULL, &arr, "list pools");
	if (ret)
		return ret;
	if (json) {
		client_print_json(arr);
	} else {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *p = json_object_array_get_idx(arr, i), *d;

			printf("%-16s %-6s ", client_str_field(p, "name"),
			       client_str_field(p, "type"));
			if (json_object_object_get_ex(p, "devices", &d))
				for (size_t k = 0; k < json_object_array_length(d); k++)
					printf("%s%s", k ? " " : "",
					       json_object_get_string(
						       json_object_array_get_idx(d, k)));
			else
				printf("%s", client_str_field(p, "path"));
			putchar('\n');
		}
	}
	json_object_put(arr);
	return EXIT_OK;
}

static int cmd_delete(int argc, char **argv)
{
	char path[512], esc[300], what[200];
	int ret;

	if (argc != 3)
		return usage_error("delete needs the pool's NAME, and nothing else");
	snprintf(path, sizeof(path), "/v1/pools/%s", client_escape(argv[2], esc, sizeof(esc)));
	snprintf(what, sizeof(what), "delete pool '%s'", argv[2]);
	ret = client_call("DELETE", path, NULL, NULL, what);
	if (!ret)
		printf("pool '%s' deleted (its files stay)\n", argv[2]);
	return ret;
}

int cli_pool_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(pool_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (!strcmp(argv[1], "create"))
		return cmd_create(argc, argv);
	if (!strcmp(argv[1], "list"))
		return cmd_list(argc, argv);
	if (!strcmp(argv[1], "delete"))
		return cmd_delete(argc, argv);
	return usage_error("unknown command '%s'", argv[1]);
}
