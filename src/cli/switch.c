/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel switch: virtual switches (docs/cli.md, docs/networking.md).
 *   create NAME --type external|internal|private [--adapter IFACE] [--subnet CIDR]
 *          [--allow-management-os on|off] [--nat on|off] | list [--json] |
 *   show NAME [--json] | set NAME ... | delete NAME
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char switch_usage[] =
	"usage: keel switch COMMAND\n"
	"  create NAME --type external --adapter IFACE [--allow-management-os on|off]\n"
	"  create NAME --type internal [--subnet CIDR] [--nat on|off]\n"
	"  create NAME --type private\n"
	"  list [--json]                      every switch\n"
	"  show NAME [--json]                 one switch, with the VMs on it\n"
	"  set NAME [--subnet CIDR] [--nat on|off] [--allow-management-os on|off]\n"
	"  delete NAME                        a switch no VM's adapter is on\n"
	"  forward add NAME --host-port P --vm VM --port P [--proto tcp|udp]\n"
	"                                     a host port to a VM's, on a NAT switch\n"
	"  forward list NAME [--json]         the switch's port forwards\n"
	"  forward delete NAME --host-port P [--proto tcp|udp]\n";

#define usage_error(...) cli_usage_error("switch", switch_usage, __VA_ARGS__)

static void switch_path(char *buf, size_t size, const char *name)
{
	char esc[300];

	snprintf(buf, size, "/v1/switches/%s", client_escape(name, esc, sizeof(esc)));
}

/* The options of create and set, from argv[3] on, into body: each takes a value. */
static int options(int argc, char **argv, json_object *body, bool create)
{
	for (int i = 3; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char *key = NULL;
		bool onoff = false;

		if (!strcmp(argv[i], "--type") && create)
			key = "type";
		else if (!strcmp(argv[i], "--adapter") && create)
			key = "adapter";
		else if (!strcmp(argv[i], "--subnet"))
			key = "subnet";
		else if (!strcmp(argv[i], "--nat"))
			key = "nat", onoff = true;
		else if (!strcmp(argv[i], "--allow-management-os"))
			key = "allow_management_os", onoff = true;
		if (!key || !v)
			return usage_error("unexpected argument '%s'", argv[i]);
		if (onoff && strcmp(v, "on") && strcmp(v, "off"))
			return usage_error("%s takes on or off, not '%s'", argv[i], v);
		json_object_object_add(body, key,
				       onoff ? json_object_new_boolean(!strcmp(v, "on"))
					     : json_object_new_string(v));
	}
	return 0;
}

static void print_switch(json_object *s)
{
	json_object *vms, *d, *v;

	printf("Name:        %s%s\n", client_str_field(s, "name"),
	       json_object_get_boolean(json_object_object_get(s, "default")) ? " (default)" : "");
	printf("Type:        %s\n", client_str_field(s, "type"));
	printf("Bridge:      %s (%s)\n", client_str_field(s, "bridge"),
	       json_object_get_boolean(json_object_object_get(s, "up")) ? "up" : "down");
	if (client_str_field(s, "subnet")[0])
		printf("Subnet:      %s, host address %s\n", client_str_field(s, "subnet"),
		       client_str_field(s, "host_address"));
	if (json_object_object_get_ex(s, "nat", &v))
		printf("NAT:         %s\n", json_object_get_boolean(v) ? "on" : "off");
	if (client_str_field(s, "adapter")[0])
		printf("Adapter:     %s, management OS %s\n", client_str_field(s, "adapter"),
		       json_object_get_boolean(json_object_object_get(s, "allow_management_os"))
			       ? "on"
			       : "off");
	if (json_object_object_get_ex(s, "dhcp", &d)) {
		json_object *pid = json_object_object_get(d, "pid");

		if (pid)
			printf("DHCP, DNS:   dnsmasq %d\n", json_object_get_int(pid));
		else
			printf("DHCP, DNS:   not running\n");
	}
	printf("VMs:        ");
	if (json_object_object_get_ex(s, "vms", &vms) && json_object_array_length(vms))
		for (size_t i = 0; i < json_object_array_length(vms); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(vms, i)));
	else
		printf(" -");
	putchar('\n');
}

static int cmd_create_or_set(int argc, char **argv, bool create)
{
	json_object *body, *res = NULL;
	char path[512], what[200];
	int ret;

	if (argc < 3 || argv[2][0] == '-')
		return usage_error("%s needs the switch's NAME", argv[1]);
	body = json_object_new_object();
	if (create)
		json_object_object_add(body, "name", json_object_new_string(argv[2]));
	ret = options(argc, argv, body, create);
	if (ret) {
		json_object_put(body);
		return ret;
	}
	snprintf(what, sizeof(what), "%s switch '%s'", create ? "create" : "change", argv[2]);
	if (create) {
		ret = client_call("POST", "/v1/switches", body, &res, what);
	} else {
		switch_path(path, sizeof(path), argv[2]);
		ret = client_call("PATCH", path, body, &res, what);
	}
	json_object_put(body);
	if (!ret)
		print_switch(res);
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
	ret = client_call("GET", "/v1/switches", NULL, &arr, "list switches");
	if (ret)
		return ret;
	if (json) {
		client_print_json(arr);
	} else {
		printf("%-20s %-9s %-7s %-18s %s\n", "NAME", "TYPE", "BRIDGE", "SUBNET", "VMS");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *s = json_object_array_get_idx(arr, i), *vms;

			printf("%-20s %-9s %-7s %-18s %zu\n", client_str_field(s, "name"),
			       client_str_field(s, "type"), client_str_field(s, "bridge"),
			       client_str_field(s, "subnet")[0]	   ? client_str_field(s, "subnet")
			       : client_str_field(s, "adapter")[0] ? client_str_field(s, "adapter")
								   : "-",
			       json_object_object_get_ex(s, "vms", &vms)
				       ? json_object_array_length(vms)
				       : 0);
		}
	}
	json_object_put(arr);
	return EXIT_OK;
}

static int cmd_show(int argc, char **argv)
{
	json_object *s = NULL;
	char path[512], what[200];
	bool json = argc == 4 && !strcmp(argv[3], "--json");
	int ret;

	if (argc < 3 || argc > 4 || (argc == 4 && !json))
		return usage_error("%s", "show needs the switch's NAME (and --json)");
	switch_path(path, sizeof(path), argv[2]);
	snprintf(what, sizeof(what), "show switch '%s'", argv[2]);
	ret = client_call("GET", path, NULL, &s, what);
	if (ret)
		return ret;
	if (json)
		client_print_json(s);
	else
		print_switch(s);
	json_object_put(s);
	return EXIT_OK;
}

static int cmd_delete(int argc, char **argv)
{
	char path[512], what[200];
	int ret;

	if (argc != 3)
		return usage_error("delete needs the switch's NAME, and nothing else");
	switch_path(path, sizeof(path), argv[2]);
	snprintf(what, sizeof(what), "delete switch '%s'", argv[2]);
	ret = client_call("DELETE", path, NULL, NULL, what);
	if (!ret)
		printf("switch '%s' deleted\n", argv[2]);
	return ret;
}

/* keel switch forward add|list|delete NAME ... (argv[0] "switch", argv[1] "forward"). */
static int cmd_forward(int argc, char **argv)
{
	const char *verb = argc > 2 ? argv[2] : "", *name = argc > 3 ? argv[3] : NULL;
	const char *proto = "tcp", *vm = NULL;
	long host_port = 0, port = 0;
	bool json = false;
	char path[600], esc[300], what[200];
	json_object *res = NULL;
	int ret;

	if (!name || name[0] == '-')
		return usage_error("forward %s needs the switch's NAME", verb);
	for (int i = 4; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;

		if (!strcmp(argv[i], "--json")) {
			json = true;
			continue;
		}
		if (!v)
			return usage_error("unexpected argument '%s'", argv[i]);
		if (!strcmp(argv[i], "--host-port"))
			host_port = strtol(v, &end, 10);
		else if (!strcmp(argv[i], "--port"))
			port = strtol(v, &end, 10);
		else if (!strcmp(argv[i], "--vm"))
			vm = v;
		else if (!strcmp(argv[i], "--proto"))
			proto = v;
		else
			return usage_error("unexpected argument '%s'", argv[i]);
		if (end && (*end || end == v))
			return usage_error("%s takes a port number, not '%s'", argv[i], v);
		i++;
	}
	snprintf(path, sizeof(path), "/v1/switches/%s/forwards",
		 client_escape(name, esc, sizeof(esc)));
	snprintf(what, sizeof(what), "%s a port forward of switch '%s'", verb, name);
	if (!strcmp(verb, "list")) {
		ret = client_call("GET", path, NULL, &res, what);
		if (ret)
			return ret;
		if (json) {
			client_print_json(res);
		} else {
			printf("%-5s %-9s %-20s %-15s %s\n", "PROTO", "HOST PORT", "VM", "ADDRESS",
			       "PORT");
			for (size_t i = 0; i < json_object_array_length(res); i++) {
				json_object *f = json_object_array_get_idx(res, i);

				printf("%-5s %-9d %-20s %-15s %d\n", client_str_field(f, "proto"),
				       json_object_get_int(json_object_object_get(f, "host_port")),
				       client_str_field(f, "vm"), client_str_field(f, "address"),
				       json_object_get_int(json_object_object_get(f, "port")));
			}
		}
	} else if (!strcmp(verb, "add")) {
		json_object *body = json_object_new_object();

		if (!vm || !host_port || !port) {
			json_object_put(body);
			return usage_error("%s", "forward add needs --host-port, --vm and --port");
		}
		json_object_object_add(body, "host_port", json_object_new_int((int)host_port));
		json_object_object_add(body, "vm", json_object_new_string(vm));
		json_object_object_add(body, "port", json_object_new_int((int)port));
		json_object_object_add(body, "proto", json_object_new_string(proto));
		ret = client_call("POST", path, body, &res, what);
		json_object_put(body);
		if (!ret)
			printf("host port %s/%ld forwarded to VM '%s', port %ld\n", proto,
			       host_port, vm, port);
	} else if (!strcmp(verb, "delete")) {
		if (!host_port)
			return usage_error("%s", "forward delete needs --host-port");
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s/%ld", proto,
			 host_port);
		ret = client_call("DELETE", path, NULL, NULL, what);
		if (!ret)
			printf("host port %s/%ld no longer forwarded\n", proto, host_port);
	} else {
		return usage_error("forward takes add, list or delete, not '%s'", verb);
	}
	json_object_put(res);
	return ret;
}

int cli_switch_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(switch_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (!strcmp(argv[1], "create"))
		return cmd_create_or_set(argc, argv, true);
	if (!strcmp(argv[1], "set"))
		return cmd_create_or_set(argc, argv, false);
	if (!strcmp(argv[1], "list") || !strcmp(argv[1], "ls"))
		return cmd_list(argc, argv);
	if (!strcmp(argv[1], "show"))
		return cmd_show(argc, argv);
	if (!strcmp(argv[1], "delete") || !strcmp(argv[1], "rm"))
		return cmd_delete(argc, argv);
	if (!strcmp(argv[1], "forward"))
		return cmd_forward(argc, argv);
	return usage_error("unknown command '%s'", argv[1]);
}
