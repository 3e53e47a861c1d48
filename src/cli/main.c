/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel: the command line. Global options, then a command group and its arguments:
 *   keel [-v|-q] GROUP COMMAND [ARGS...]
 * Each group lives in its own file and is one line in the table below.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/log.h"

struct cli_group {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct cli_group groups[] = {
	{"disk", "virtual disks: create, info, check, convert, resize, merge, compact",
	 cli_disk_main},
	{"vm", "virtual machines: create, list, show, start, stop, set, delete, log (keeld)",
	 cli_vm_main},
	{"console", "attach to a VM's serial console (keeld)", cli_console_main},
	{"checkpoint", "a VM's checkpoints: create, list, apply, delete, rename (keeld)",
	 cli_checkpoint_main},
	{"host", "the host's life cycle: shutdown (keeld)", cli_host_main},
	{"pool", "storage pools, where VMs' files come from: create, list, delete (keeld)",
	 cli_pool_main},
	{"switch", "virtual switches: create, list, show, set, delete (keeld)", cli_switch_main},
	{"audit", "who changed what through keeld, and the outcome (keeld)", cli_audit_main},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: keel [--verbose|--quiet] [--socket PATH] GROUP COMMAND [ARGS...]\n"
		   "       keel --help | --version\n\ngroups:\n");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		fprintf(f, "  %-10s %s\n", groups[i].name, groups[i].summary);
	fprintf(f, "\n'keel GROUP --help' lists a group's commands.\n");
}

int cli_usage_error(const char *group, const char *usage, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "keel %s: %s\n%s", group, msg, usage);
	return CLI_USAGE;
}

int main(int argc, char **argv)
{
	enum log_level level = LOG_WARN;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return CLI_OK;
		} else if (!strcmp(argv[i], "--version")) {
			printf("keel %s\n", KEEL_VERSION);
			return CLI_OK;
		} else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			level = level == LOG_WARN ? LOG_INFO : LOG_DEBUG;
		} else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
			level = LOG_ERROR;
		} else if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
			setenv("KEEL_SOCKET", argv[++i],
			       1); /* keeld's API socket, for vm and console */
		} else if (!strncmp(argv[i], "--socket=", 9)) {
			setenv("KEEL_SOCKET", argv[i] + 9, 1);
		} else {
			fprintf(stderr, "keel: unknown option %s\n", argv[i]);
			usage(stderr);
			return CLI_USAGE;
		}
	}
	log_init("keel", level);
	if (i >= argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		if (!strcmp(argv[i], groups[g].name))
			return groups[g].run(argc - i, argv + i);
	fprintf(stderr, "keel: unknown command group '%s'\n", argv[i]);
	usage(stderr);
	return CLI_USAGE;
}
