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
	"                [--restore DIR] [--paused]\n"
	"                [--status-file PATH] [--name NAME]\n"
	"                [--disk path=FILE[,readonly=on][,serial=STRING]]...\n"
	"                [--net tap=IFNAME[,mac=MAC]]... [--no-rng]\n"
	"                [--console stdio|file:PATH|unix:PATH|off]\n"
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

/* Split "key=value,key=value": the next key and value into k and v; returns the rest or
 * NULL at the end. An item without '=' gets an empty value. */
static const char *next_kv(const char *s, char *k, size_t klen, char *v, size_t vlen, int *too_long)
{
	const char *comma, *eq;
	size_t kl, vl;

	if (!*s)
		return NULL;
	comma = strchr(s, ',');
	if (!comma)
		comma = s + strlen(s);
	eq = memchr(s, '=', (size_t)(comma - s));
	kl = (size_t)((eq ? eq : comma) - s);
	vl = eq ? (size_t)(comma - eq - 1) : 0;
	*too_long = kl >= klen || vl >= vlen;
	if (*too_long)
		return comma;
	memcpy(k, s, kl);
	k[kl] = 0;
	if (eq)
		memcpy(v, eq + 1, vl);
	v[vl] = 0;
	return *comma ? comma + 1 : comma;
}

static int parse_on_off(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

int config_parse_disk(const char *s, struct disk_spec *d, char *err, size_t errlen)
{
	char k[16], v[4096];
	const char *p = s;
	int too_long;

	memset(d, 0, sizeof(*d));
	while ((p = next_kv(p, k, sizeof(k), v, sizeof(v), &too_long))) {
		if (too_long) {
			snprintf(err, errlen, "--disk %s: an option or value is too long", s);
			return -EINVAL;
		}
		if (!strcmp(k, "path") && *v) {
			snprintf(d->path, sizeof(d->path), "%s", v);
		} else if (!strcmp(k, "readonly") && !parse_on_off(v, &d->readonly)) {
		} else if (!strcmp(k, "serial")) {
			if (strlen(v) > 20) {
				snprintf(err, errlen, "--disk %s: serial is at most 20 characters",
					 s);
				return -EINVAL;
			}
			memcpy(d->serial, v, strlen(v) + 1); /* length checked above */
		} else {
			snprintf(err, errlen,
				 "--disk %s: expected path=FILE[,readonly=on|off][,serial=STRING]",
				 s);
			return -EINVAL;
		}
	}
	if (!d->path[0]) {
		snprintf(err, errlen, "--disk %s: path=FILE is required", s);
		return -EINVAL;
	}
	return 0;
}

static int parse_mac(const char *v, uint8_t mac[6])
{
	unsigned b[6], i;
	char end;

	if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 ||
	    strlen(v) != 17)
		return -EINVAL;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return mac[0] & 1 ? -EINVAL : 0; /* a multicast address cannot be a card's */
}

int config_parse_net(const char *s, struct net_spec *n, char *err, size_t errlen)
{
	char k[16], v[64];
	const char *p = s;
	int too_long;

	memset(n, 0, sizeof(*n));
	while ((p = next_kv(p, k, sizeof(k), v, sizeof(v), &too_long))) {
		if (too_long) {
			snprintf(err, errlen, "--net %s: an option or value is too long", s);
			return -EINVAL;
		}
		if (!strcmp(k, "tap") && *v && strlen(v) < sizeof(n->tap) && !strchr(v, '/')) {
			memcpy(n->tap, v, strlen(v) + 1); /* length checked above */
		} else if (!strcmp(k, "mac") && !parse_mac(v, n->mac)) {
			n->has_mac = true;
		} else {
			snprintf(err, errlen,
				 "--net %s: expected tap=IFNAME (1 to 15 characters)[,mac=52:54:00:"
				 "xx:xx:xx] (a unicast MAC)",
				 s);
			return -EINVAL;
		}
	}
	if (!n->tap[0]) {
		snprintf(err, errlen, "--net %s: tap=IFNAME is required", s);
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
	OPT_PAUSED,
	OPT_DEBUG_EXIT,
	OPT_CONTROL,
	OPT_STATUS_FILE,
	OPT_NAME,
	OPT_RESTORE,
	OPT_HELP,
	OPT_VERSION,
	OPT_DISK,
	OPT_NET,
	OPT_CONSOLE,
	OPT_NO_RNG,
};

static const struct option config_options[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"serial", required_argument, NULL, OPT_SERIAL},
	{"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
	{"paused", no_argument, NULL, OPT_PAUSED},
	{"debug-exit", no_argument, NULL, OPT_DEBUG_EXIT},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"status-file", required_argument, NULL, OPT_STATUS_FILE},
	{"restore", required_argument, NULL, OPT_RESTORE},
	{"name", required_argument, NULL, OPT_NAME},
	{"disk", required_argument, NULL, OPT_DISK},
	{"net", required_argument, NULL, OPT_NET},
	{"console", required_argument, NULL, OPT_CONSOLE},
	{"no-rng", no_argument, NULL, OPT_NO_RNG},
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
		.console = {CHARDEV_OFF, NULL},
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
				snprintf(err, errlen,
					 "--cpus %s: expected a whole number from 1 to %d", optarg,
					 CONFIG_MAX_CPUS);
				return -EINVAL;
			}
			cfg->cpus = (unsigned)v;
			break;
		case OPT_MEMORY:
			r = parse_size(optarg, 1ull << 20, &v);
			if (r) {
				snprintf(err, errlen,
					 "--memory %s: expected a size such as 512M or 2G%s",
					 optarg, r == -ERANGE ? " (this one overflows)" : "");
				return -EINVAL;
			}
			if (v < CONFIG_MIN_MEMORY) {
				snprintf(err, errlen, "--memory %s: too small, the minimum is 2M",
					 optarg);
				return -EINVAL;
			}
			if (v & 0xfff) {
				snprintf(err, errlen,
					 "--memory %s: must be a whole number of 4 KiB pages",
					 optarg);
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
		case OPT_PAUSED:
			cfg->paused = true;
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
		case OPT_RESTORE:
			cfg->restore_dir = optarg;
			break;
		case OPT_NAME:
			cfg->name = optarg;
			break;
		case OPT_DISK:
			if (cfg->ndisks == CONFIG_MAX_DISKS) {
				snprintf(err, errlen, "--disk: at most %d disks", CONFIG_MAX_DISKS);
				return -EINVAL;
			}
			if (config_parse_disk(optarg, &cfg->disks[cfg->ndisks], err, errlen))
				return -EINVAL;
			cfg->ndisks++;
			break;
		case OPT_NET:
			if (cfg->nnets == CONFIG_MAX_NETS) {
				snprintf(err, errlen, "--net: at most %d network cards",
					 CONFIG_MAX_NETS);
				return -EINVAL;
			}
			if (config_parse_net(optarg, &cfg->nets[cfg->nnets], err, errlen))
				return -EINVAL;
			cfg->nnets++;
			break;
		case OPT_CONSOLE:
			if (config_parse_chardev(optarg, &cfg->console)) {
				snprintf(
					err, errlen,
					"--console %s: expected stdio, file:PATH, unix:PATH or off",
					optarg);
				return -EINVAL;
			}
			break;
		case OPT_NO_RNG:
			cfg->no_rng = true;
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
	if (cfg->serial.kind == CHARDEV_STDIO && cfg->console.kind == CHARDEV_STDIO) {
		snprintf(err, errlen,
			 "--serial and --console cannot both be stdio (set one of "
			 "them to off, file:PATH or unix:PATH)");
		return -EINVAL;
	}
	if (!cfg->kernel) {
		snprintf(err, errlen, "--kernel FILE is required (see keel-vmm --help)");
		return -EINVAL;
	}
	return 0;
}
