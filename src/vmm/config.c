/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "lib/parse.h"

static const char config_usage[] =
	"usage: keel-vmm --kernel FILE [--initrd FILE] [--cmdline STRING] [--cpus N]\n"
	"                [--memory SIZE] [--serial stdio|file:PATH|unix:PATH|off]\n"
	"                [--no-reboot] [--debug-exit] [--control PATH]\n"
	"                [--status-file PATH] [--name NAME]\n"
	"\n"
	"Runs one virtual machine on KVM. SIZE takes K, M, G or T (plain numbers are MiB).\n"
	"Defaults: 1 vCPU, 512M, serial on stdio. See docs/keel-vmm.md.\n";

int config_parse_chardev(const char *s, struct chardev_spec *spec)
{
	if (!strcmp(s, "stdio")) {
		*spec = (struct chardev_spec){CHARDEV_STDIO, NULL};
	} else if (!strcmp(s, "off")) {
		*spec = (struct chardev_spec){CHARDEV_OFF, NULL};
	} else if (!strncmp(s, "file:", 5) && s[5]) {
		*spec = (struct chardev_spec){CHARDEV_FILE, s + 5};
	} else if (!strncmp(s, "unix:", 5) && s[5]) {
		*spec = (struct chardev_spec){CHARDEV_UNIX, s + 5};
	} else {
		return -EINVAL;
	}
	return 0;
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_SERIAL,
	OPT_NO_REBOOT,
	OPT_DEBUG_EXIT,
	OPT_CONTROL,
	OPT_STATUS_FILE,
	OPT_NAME,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option config_options[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"serial", required_argument, NULL, OPT_SERIAL},
	{"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
	{"debug-exit", no_argument, NULL, OPT_DEBUG_EXIT},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"status-file", required_argument, NULL, OPT_STATUS_FILE},
	{"name", required_argument, NULL, OPT_NAME},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

int config_parse(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t v;
	int c, r;

	*cfg = (struct vm_config){
		.cmdline = "",
		.cpus = 1,
		.memory = CONFIG_DEFAULT_MEMORY,
		.serial = {CHARDEV_STDIO, NULL},
	};
	optind = 0; /* full reset of getopt, so tests can call this repeatedly */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", config_options, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL:
			cfg->kernel = optarg;
			break;
		case OPT_INITRD:
			cfg->initrd = optarg;
			break;
		case OPT_CMDLINE:
			cfg->cmdline = optarg;
			break;
		case OPT_CPUS:
			r = parse_uint(optarg, 1, CONFIG_MAX_CPUS, &v);
			if (r) {
				snprintf(err, errlen, "--cpus %s: expected a whole number from 1 to %d",
					 optarg, CONFIG_MAX_CPUS);
				return -EINVAL;
			}
			cfg->cpus = (unsigned)v;
			break;
		case OPT_MEMORY:
			r = parse_size(optarg, 1ull << 20, &v);
			if (r) {
				snprintf(err, errlen,
					 "--memory %s: expected a size such as 512M or 2G%s", optarg,
					 r == -ERANGE ? " (this one overflows)" : "");
				return -EINVAL;
			}
			if (v < CONFIG_MIN_MEMORY) {
				snprintf(err, errlen, "--memory %s: too small, the minimum is 2M",
					 optarg);
				return -EINVAL;
			}
			if (v & 0xfff) {
				snprintf(err, errlen,
					 "--memory %s: must be a whole number of 4 KiB pages", optarg);
				return -EINVAL;
			}
			cfg->memory = v;
			break;
		case OPT_SERIAL:
			if (config_parse_chardev(optarg, &cfg->serial)) {
				snprintf(err, errlen,
					 "--serial %s: expected stdio, file:PATH, unix:PATH or off",
					 optarg);
				return -EINVAL;
			}
			break;
		case OPT_NO_REBOOT:
			cfg->no_reboot = true;
			break;
		case OPT_DEBUG_EXIT:
			cfg->debug_exit = true;
			break;
		case OPT_CONTROL:
			cfg->control_path = optarg;
			break;
		case OPT_STATUS_FILE:
			cfg->status_path = optarg;
			break;
		case OPT_NAME:
			cfg->name = optarg;
			break;
		case OPT_HELP:
			fputs(config_usage, stdout);
			return 1;
		case OPT_VERSION:
			puts("keel-vmm " KEEL_VERSION);
			return 1;
		case ':':
			snprintf(err, errlen, "%s needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, errlen, "unknown option %s (see keel-vmm --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see keel-vmm --help)",
			 argv[optind]);
		return -EINVAL;
	}
	if (!cfg->kernel) {
		snprintf(err, errlen, "--kernel FILE is required (see keel-vmm --help)");
		return -EINVAL;
	}
	return 0;
}
