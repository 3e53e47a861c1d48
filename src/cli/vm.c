/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `keel vm ...`: VM definitions and lifecycle, a client of keeld's API (docs/cli.md).
 * Human output by default, --json for scripts; errors on stderr with keeld's message.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/client.h"
#include "config/vmdef.h" /* Debian's firmware files; the boot order's parser */
#include "lib/log.h"
#include "lib/parse.h"

static const char vm_usage[] =
	"usage: keel vm COMMAND ...\n"
	"  create NAME [--generation 1|2] [--boot-order LIST] [--boot-menu on|off]\n"
	"         | --kernel FILE [--initrd FILE]\n"
	"         [--cmdline STRING]  (Generation 2, UEFI, unless --kernel boots a kernel\n"
	"         directly; LIST: dvd, disk, net, diskN, lunN, netN, e.g. dvd,disk;\n"
	"         --boot-menu on: the firmware offers its boot menu for 3 s, default off)\n"
	"         [--cpus N]\n"
	"         [--memory SIZE] [--disk PATH[,readonly][,format=F][,cache=C]]... [--net "
	"TAP[,mac=MAC][,queues=N][,vhost=auto|off|on]]...\n"
	"         (or --net switch=NAME[,mac=MAC][,vlan=N][,mac-spoofing=on][,dhcp-guard=on]\n"
	"         [,router-guard=on][,port-isolation=on][,vlan-trunk=LIST[,native-vlan=N]]\n"
	"         [,bandwidth-out=BITS][,bandwidth-in=BITS][,queues=N]\n"
	"         [,port-mirroring=source|destination|none][,vhost=auto|off|on]: an adapter on\n"
	"         a virtual switch;\n"
	"         LIST like 10,20-30; BITS per second like 10M)\n"
	"         [--vlan-trunk LIST [--native-vlan N]]  after a --net: that adapter a trunk\n"
	"         [--dvd FILE.iso|none]... [--notes TEXT] [--vsock[=cid=N]]\n"
	"         [--automatic-start-action nothing|start-if-running|start]\n"
	"         [--automatic-stop-action turn-off|shut-down|save] [--json]\n"
	"  list [--json] [--watch]            all VMs and their states; --watch then prints\n"
	"                                     each change (keeld's events) until interrupted\n"
	"  show NAME [--json]                 one VM: definition and state\n"
	"  start NAME [--no-wait]             start; waits until it runs\n"
	"  stop NAME [--force] [--timeout SEC] [--no-wait]\n"
	"                                     press the power button and wait for the guest to\n"
	"                                     shut down; --force turns it off after the timeout\n"
	"  turn-off NAME [--no-wait]          cut the power\n"
	"  restart NAME                       hard reset\n"
	"  disk show|set NAME DISK [--max-iops N] [--max-bandwidth BYTES] [--min-iops N]\n"
	"                                     a disk's storage QoS, changed at once on a\n"
	"                                     running VM (keel vm disk --help)\n"
	"  kvp list|get|set|delete NAME ...   key-value exchange with the guest's agent\n"
	"  integration NAME [enable|disable SERVICE]  the integration services\n"
	"  exec NAME [--user U] [--tty] [--timeout SEC] -- CMD ...\n"
	"                                     run a command in the guest (keel-agent)\n"
	"  copy-file NAME SRC DEST [--create-path] [--overwrite]  copy a file into the guest\n"
	"                                     (keel vm kvp --help for these four)\n"
	"  pause NAME | resume NAME           stop and continue the vCPUs, memory kept\n"
	"  save NAME [--no-wait]              save the running VM and end its worker: it becomes\n"
	"                                     Saved and the next start carries on from there\n"
	"  discard-state NAME                 drop a Saved VM's saved state: it becomes Off\n"
	"  backup NAME --to DIR [--no-wait]   copy its disks and description into DIR/NAME while\n"
	"                                     it runs (its guest frozen through keel-agent)\n"
	"  import DIR [--copy-to POOL | --in-place] [--new-id] [--name NAME] [--no-wait]\n"
	"                                     register the VM of a backup (keel vm import --help)\n"
	"  delete NAME                        remove the definition; disk files are kept\n"
	"  set NAME [--name NEW] [--cpus N] [--memory SIZE] [--kernel FILE] [--initrd FILE]\n"
	"      [--no-initrd] [--cmdline STRING] [--notes TEXT] [--disk SPEC]... [--no-disks]\n"
	"      [--net SPEC]... [--no-nets] [--dvd FILE.iso|none | --eject] [--lun L]\n"
	"      [--vsock[=cid=N]] [--no-vsock] [--boot-order LIST|default] [--boot-menu on|off]\n"
	"      [--automatic-start-action A]\n"
	"      [--automatic-stop-action A] [--json]\n"
	"                                     --dvd/--eject: the medium of the DVD drive at SCSI\n"
	"                                     LUN L (--lun), else of the first DVD drive\n"
	"  log NAME [--follow]                the VM's worker log; --follow then prints what is\n"
	"                                     added to it until interrupted\n"
	"  net list NAME [--json]             the VM's network adapters: switch, tap, MAC and\n"
	"                                     the guest's addresses (the switch's DHCP leases,\n"
	"                                     the host's neighbour table)\n"
	"  net add NAME --net SPEC [--vlan-trunk LIST [--native-vlan N]]\n"
	"                                     one adapter more (a running VM: hot plug, the\n"
	"                                     guest sees a new virtio NIC)\n"
	"  net remove NAME MAC [--force]      one adapter less (a running VM: the guest is\n"
	"                                     asked to let it go; --force takes it away at once\n"
	"                                     without the guest, also one it never let go)\n";

#define usage_error(...) cli_usage_error("vm", vm_usage, __VA_ARGS__)

static void vm_path(char *buf, size_t size, const char *name, const char *sub)
{
	char esc[256];

	snprintf(buf, size, "/v1/vms/%s%s%s", client_escape(name, esc, sizeof(esc)), sub ? "/" : "",
		 sub ? sub : "");
}

void cli_vm_path(char *buf, size_t size, const char *name, const char *sub)
{
	vm_path(buf, size, name, sub);
}

static int64_t int_field(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void fmt_size(uint64_t bytes, char *buf, size_t size)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%" PRIu64, bytes);
	else
		snprintf(buf, size, "%" PRIu64 "%c", bytes, units[u]);
}

/* An absolute path for keeld, which does not share our working directory. */
static char *abs_path(const char *p)
{
	char cwd[PATH_MAX], *r;

	if (p[0] == '/')
		return strdup(p);
	r = realpath(p, NULL);
	if (r)
		return r;
	if (!getcwd(cwd, sizeof(cwd)))
		return strdup(p);
	if (asprintf(&r, "%s/%s", cwd, p) < 0)
		return NULL;
	return r;
}

static int add_path(json_object *o, const char *key, const char *p)
{
	char *a = abs_path(p);

	if (!a)
		return -ENOMEM;
	json_object_object_add(o, key, json_object_new_string(a));
	free(a);
	return 0;
}

/* The trailing ",key=value" options of --disk: suffix, JSON field, its value (NULL: true). */
static const struct {
	const char *suffix, *field, *value;
} disk_opts[] = {
	{",readonly", "readonly", NULL},
	{",readonly=on", "readonly", NULL},
	{",ro", "readonly", NULL},
	{",format=raw", "format", "raw"},
	{",format=vhdx", "format", "vhdx"},
	{",cache=none", "cache", "none"},
	{",cache=writeback", "cache", "writeback"},
	{",cache=unsafe", "cache", "unsafe"},
};

/* --disk PATH[,readonly][,format=raw|vhdx][,cache=none|writeback|unsafe]: only those trailing
 * options (",readonly" also as ",readonly=on" or ",ro") are options, so that a path may
 * contain commas; the API takes any path as it is. */
static int add_disk(json_object *arr, const char *spec)
{
	json_object *d = json_object_new_object();
	char *s = strdup(spec);
	int ret = 0;

	if (!s || !d) {
		free(s);
		json_object_put(d);
		return -ENOMEM;
	}
	/* Trailing options, in any order. */
	for (bool more = true; more;) {
		size_t n = strlen(s);

		more = false;
		for (size_t i = 0; !more && i < sizeof(disk_opts) / sizeof(disk_opts[0]); i++) {
			size_t k = strlen(disk_opts[i].suffix);

			if (n > k && !strcmp(s + n - k, disk_opts[i].suffix)) {
				s[n - k] = '\0';
				json_object_object_add(
					d, disk_opts[i].field,
					disk_opts[i].value
						? json_object_new_string(disk_opts[i].value)
						: json_object_new_boolean(1));
				more = true;
			}
		}
	}
	if (!s[0]) {
		fprintf(stderr, "keel vm: --disk needs a path\n");
		ret = -EINVAL;
		goto out;
	}
	ret = add_path(d, "path", s);
out:
	free(s);
	if (ret)
		json_object_put(d);
	else
		json_object_array_add(arr, d);
	return ret;
}

/* "10M": bits per second with an optional k, M or G (powers of 1000). */
static int parse_rate(const char *s, uint64_t *out)
{
	uint64_t mult = 1, v;
	size_t len = strlen(s);
	char num[32];

	if (!len || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 'k':
	case 'K':
		mult = 1000;
		break;
	case 'M':
		mult = 1000000;
		break;
	case 'G':
		mult = 1000000000;
		break;
	}
	if (mult > 1)
		num[len - 1] = '\0';
	if (parse_uint(num, 1, UINT64_MAX / mult, &v))
		return -EINVAL;
	*out = v * mult;
	return 0;
}

/* --net TAP[,mac=MAC] (also tap=TAP) */
static int add_net(json_object *arr, const char *spec)
{
	char trunk[128] = "";
	json_object *n = json_object_new_object();
	char *s = strdup(spec), *tok, *save = NULL;
	int ret = 0;

	if (!s || !n) {
		free(s);
		json_object_put(n);
		return -ENOMEM;
	}
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (trunk[0] && tok[strspn(tok, "0123456789-")] == '\0') {
			/* vlan-trunk=10,20-30: the list goes on */
			if (strlen(trunk) + strlen(tok) + 2 > sizeof(trunk)) {
				fprintf(stderr, "keel vm: --net %s: the VLAN list is too long\n",
					spec);
				ret = -EINVAL;
				break;
			}
			strcat(trunk, ",");
			strcat(trunk, tok);
			continue;
		}
		if (trunk[0]) {
			json_object_object_add(n, "vlan_trunk", json_object_new_string(trunk));
			trunk[0] = '\0';
		}
		if (!strncmp(tok, "vlan-trunk=", 11)) {
			snprintf(trunk, sizeof(trunk), "%s", tok + 11);
			if (!trunk[0]) {
				fprintf(stderr, "keel vm: --net %s: vlan-trunk needs VLANs\n",
					spec);
				ret = -EINVAL;
				break;
			}
		} else if (!strncmp(tok, "queues=", 7)) {
			uint64_t v;

			if (parse_uint(tok + 7, 1, VMDEF_NET_QUEUES_MAX, &v)) {
				fprintf(stderr,
					"keel vm: --net %s: queues is from 1 to %d (virtio-net "
					"queue "
					"pairs, at most the VM's vCPUs)\n",
					spec, VMDEF_NET_QUEUES_MAX);
				ret = -EINVAL;
				break;
			}
			json_object_object_add(n, "queues", json_object_new_int((int)v));
		} else if (!strncmp(tok, "native-vlan=", 12)) {
			uint64_t v;

			if (parse_uint(tok + 12, 1, 4094, &v)) {
				fprintf(stderr,
					"keel vm: --net %s: native-vlan is from 1 to 4094\n", spec);
				ret = -EINVAL;
				break;
			}
			json_object_object_add(n, "native_vlan", json_object_new_int((int)v));
		} else if (!strncmp(tok, "bandwidth-out=", 14) ||
			   !strncmp(tok, "bandwidth-in=", 13)) {
			bool out = tok[10] == 'o';
			uint64_t v;

			if (parse_rate(strchr(tok, '=') + 1, &v)) {
				fprintf(stderr,
					"keel vm: --net %s: %s is bits per second, with k, M or G "
					"(10M: 10 Mbit/s)\n",
					spec, out ? "bandwidth-out" : "bandwidth-in");
				ret = -EINVAL;
				break;
			}
			json_object_object_add(n, out ? "bandwidth_out" : "bandwidth_in",
					       json_object_new_int64((int64_t)v));
		} else if (!strncmp(tok, "mac=", 4)) {
			json_object_object_add(n, "mac", json_object_new_string(tok + 4));
		} else if (!strncmp(tok, "tap=", 4)) {
			json_object_object_add(n, "tap", json_object_new_string(tok + 4));
		} else if (!strncmp(tok, "switch=", 7)) {
			json_object_object_add(n, "switch", json_object_new_string(tok + 7));
		} else if (!strncmp(tok, "vlan=", 5)) {
			uint64_t v;

			if (parse_uint(tok + 5, 1, 4094, &v)) {
				fprintf(stderr, "keel vm: --net %s: vlan is from 1 to 4094\n",
					spec);
				ret = -EINVAL;
				break;
			}
			json_object_object_add(n, "vlan", json_object_new_int((int)v));
		} else if (!strcmp(tok, "mac-spoofing=on") || !strcmp(tok, "mac-spoofing=off")) {
			json_object_object_add(n, "mac_spoofing",
					       json_object_new_boolean(!strcmp(tok + 13, "on")));
		} else if (!strcmp(tok, "dhcp-guard=on") || !strcmp(tok, "dhcp-guard=off")) {
			json_object_object_add(n, "dhcp_guard",
					       json_object_new_boolean(!strcmp(tok + 11, "on")));
		} else if (!strcmp(tok, "router-guard=on") || !strcmp(tok, "router-guard=off")) {
			json_object_object_add(n, "router_guard",
					       json_object_new_boolean(!strcmp(tok + 13, "on")));
		} else if (!strcmp(tok, "port-isolation=on") ||
			   !strcmp(tok, "port-isolation=off")) {
			json_object_object_add(n, "port_isolation",
					       json_object_new_boolean(!strcmp(tok + 15, "on")));
		} else if (!strncmp(tok, "vhost=", 6)) {
			enum vm_vhost vh;

			if (vmdef_vhost_parse(tok + 6, &vh)) {
				fprintf(stderr,
					"keel vm: --net %s: vhost is auto, off or on (the kernel "
					"data "
					"path: where the host has it, never, required)\n",
					spec);
				ret = -EINVAL;
				break;
			}
			json_object_object_add(n, "vhost",
					       json_object_new_string(vmdef_vhost_name(vh)));
		} else if (!strncmp(tok, "port-mirroring=", 15)) {
			enum vm_mirror m;

			if (vmdef_mirror_parse(tok + 15, &m)) {
				fprintf(stderr,
					"keel vm: --net %s: port-mirroring is source, destination "
					"or "
					"none\n",
					spec);
				ret = -EINVAL;
				break;
			}
			json_object_object_add(n, "port_mirroring",
					       json_object_new_string(vmdef_mirror_name(m)));
		} else if (!strchr(tok, '=')) {
			json_object_object_add(n, "tap", json_object_new_string(tok));
		} else {
			fprintf(stderr, "keel vm: --net %s: unknown option '%s'\n", spec, tok);
			ret = -EINVAL;
			break;
		}
	}
	if (!ret && trunk[0])
		json_object_object_add(n, "vlan_trunk", json_object_new_string(trunk));
	free(s);
	if (ret)
		json_object_put(n);
	else
		json_object_array_add(arr, n);
	return ret;
}

/*
 * --vlan-trunk LIST and --native-vlan N (Set-VMNetworkAdapterVlan -Trunk -AllowedVlanIdList
 * -NativeVlanId): the issue's spelling of the --net adapter's vlan-trunk= and native-vlan=,
 * for the --net given last before them; the same fields of the one model (vlan_trunk,
 * native_vlan). 0, or -EINVAL after saying why.
 */
static int net_trunk_opt(json_object *nets, bool trunk, const char *arg)
{
	const char *opt = trunk ? "--vlan-trunk" : "--native-vlan";
	const char *key = trunk ? "vlan_trunk" : "native_vlan";
	size_t n = nets ? json_object_array_length(nets) : 0;
	json_object *net = n ? json_object_array_get_idx(nets, n - 1) : NULL;
	uint64_t v = 0;

	if (!net) {
		fprintf(stderr,
			"keel vm: %s %s: it is an option of the adapter before it: give --net "
			"switch=NAME first\n",
			opt, arg);
		return -EINVAL;
	}
	if (json_object_object_get_ex(net, key, NULL)) {
		fprintf(stderr, "keel vm: %s %s: the adapter before it has its %s already\n", opt,
			arg, trunk ? "VLAN trunk" : "native VLAN");
		return -EINVAL;
	}
	if (json_object_object_get_ex(net, "vlan", NULL)) {
		fprintf(stderr,
			"keel vm: %s %s: the adapter before it is in access mode (vlan=N); an "
			"adapter is a trunk or in access mode, not both\n",
			opt, arg);
		return -EINVAL;
	}
	if (trunk && (strlen(arg) > VMDEF_TRUNK_MAX || vmdef_vlan_list(arg, NULL, NULL))) {
		fprintf(stderr,
			"keel vm: --vlan-trunk %s: not a VLAN list (N or N-M from 1 to %d, "
			"separated by ',', at most %d characters)\n",
			arg, VMDEF_VLAN_MAX, VMDEF_TRUNK_MAX);
		return -EINVAL;
	}
	if (!trunk && parse_uint(arg, 1, VMDEF_VLAN_MAX, &v)) {
		fprintf(stderr, "keel vm: --native-vlan %s: a VLAN is from 1 to %d\n", arg,
			VMDEF_VLAN_MAX);
		return -EINVAL;
	}
	json_object_object_add(net, key,
			       trunk ? json_object_new_string(arg) : json_object_new_int((int)v));
	return 0;
}

/* A DVD drive {"type": "dvd", "path": FILE (absolute) or null (none)}. */
static json_object *dvd_lun(const char *file)
{
	json_object *d = json_object_new_object();

	if (!d)
		return NULL;
	json_object_object_add(d, "type", json_object_new_string("dvd"));
	if (!file) {
		json_object_object_add(d, "path", NULL);
	} else if (add_path(d, "path", file)) {
		json_object_put(d);
		return NULL;
	}
	return d;
}

/* keel vm set --dvd FILE|none | --eject [--lun L]: the request field "dvd" (keeld's
 * api_dvd.c), the medium of the DVD drive at SCSI LUN L or, without --lun, of the VM's first
 * DVD drive. keeld checks that the VM has such a drive. */
static int set_dvd(const char *file, long lun, json_object *body)
{
	json_object *d = dvd_lun(file);

	if (!d)
		return EXIT_FAIL;
	json_object_object_del(d, "type");
	if (lun >= 0)
		json_object_object_add(d, "lun", json_object_new_int((int)lun));
	json_object_object_add(body, "dvd", d);
	return EXIT_OK;
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_NO_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_DISK,
	OPT_NO_DISKS,
	OPT_NET,
	OPT_NO_NETS,
	OPT_VLAN_TRUNK,
	OPT_NATIVE_VLAN,
	OPT_DVD,
	OPT_EJECT,
	OPT_LUN,
	OPT_NOTES,
	OPT_VSOCK,
	OPT_NO_VSOCK,
	OPT_NAME,
	OPT_GENERATION,
	OPT_BOOT_ORDER,
	OPT_BOOT_MENU,
	OPT_START_ACTION,
	OPT_STOP_ACTION,
	OPT_JSON,
	OPT_FORCE,
	OPT_TIMEOUT,
	OPT_NO_WAIT,
	OPT_WATCH,
	OPT_FOLLOW,
	OPT_HELP,
};

static const struct option def_opts[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"no-initrd", no_argument, NULL, OPT_NO_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"disk", required_argument, NULL, OPT_DISK},
	{"no-disks", no_argument, NULL, OPT_NO_DISKS},
	{"net", required_argument, NULL, OPT_NET},
	{"no-nets", no_argument, NULL, OPT_NO_NETS},
	{"vlan-trunk", required_argument, NULL, OPT_VLAN_TRUNK},
	{"native-vlan", required_argument, NULL, OPT_NATIVE_VLAN},
	{"dvd", required_argument, NULL, OPT_DVD},
	{"eject", no_argument, NULL, OPT_EJECT},
	{"lun", required_argument, NULL, OPT_LUN},
	{"notes", required_argument, NULL, OPT_NOTES},
	{"vsock", optional_argument, NULL, OPT_VSOCK},
	{"no-vsock", no_argument, NULL, OPT_NO_VSOCK},
	{"name", required_argument, NULL, OPT_NAME},
	{"generation", required_argument, NULL, OPT_GENERATION},
	{"boot-order", required_argument, NULL, OPT_BOOT_ORDER},
	{"boot-menu", required_argument, NULL, OPT_BOOT_MENU},
	{"automatic-start-action", required_argument, NULL, OPT_START_ACTION},
	{"automatic-stop-action", required_argument, NULL, OPT_STOP_ACTION},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

/*
 * Options shared by create and set, turned into the JSON body. Returns EXIT_OK, or an
 * exit status after printing why.
 */
static int parse_def_opts(int argc, char **argv, bool create, json_object *body, bool *json,
			  const char **name, const char **dvd, bool *eject, long *lun)
{
	json_object *disks = NULL, *nets = NULL, *luns = NULL;
	uint64_t v;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+", def_opts, NULL)) != -1 ||
	       (optind < argc && !*name)) {
		if (c == -1) {
			/* The first operand is the NAME; options may follow it. */
			*name = argv[optind++];
			continue;
		}
		switch (c) {
		case OPT_KERNEL:
			if (add_path(body, "kernel", optarg))
				return EXIT_FAIL;
			break;
		case OPT_INITRD:
			if (add_path(body, "initrd", optarg))
				return EXIT_FAIL;
			break;
		case OPT_NO_INITRD:
			json_object_object_add(body, "initrd", NULL);
			break;
		case OPT_CMDLINE:
			json_object_object_add(body, "cmdline", json_object_new_string(optarg));
			break;
		case OPT_NOTES:
			json_object_object_add(body, "notes", json_object_new_string(optarg));
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, 1, 255, &v))
				return usage_error("--cpus: '%s' is not a number from 1 to 255",
						   optarg);
			json_object_object_add(body, "cpus", json_object_new_int64((int64_t)v));
			break;
		case OPT_MEMORY:
			if (parse_size(optarg, 1 << 20, &v) || v > INT64_MAX)
				return usage_error("--memory: '%s' is not a size (e.g. 512M, 2G; "
						   "plain numbers are MiB)",
						   optarg);
			json_object_object_add(body, "memory", json_object_new_int64((int64_t)v));
			break;
		case OPT_DISK:
		case OPT_NO_DISKS:
			if (!disks) {
				disks = json_object_new_array();
				json_object_object_add(body, "disks", disks);
			}
			if (c == OPT_DISK && add_disk(disks, optarg))
				return EXIT_USAGE;
			break;
		case OPT_NET:
		case OPT_NO_NETS:
			if (!nets) {
				nets = json_object_new_array();
				json_object_object_add(body, "nets", nets);
			}
			if (c == OPT_NET && add_net(nets, optarg))
				return EXIT_USAGE;
			break;
		case OPT_VLAN_TRUNK:
		case OPT_NATIVE_VLAN:
			if (net_trunk_opt(nets, c == OPT_VLAN_TRUNK, optarg))
				return EXIT_USAGE;
			break;
		case OPT_DVD: /* create: a DVD drive, with FILE in it or empty; set: see set_dvd */
			if (!create) {
				if (strcmp(optarg, "none"))
					*dvd = optarg;
				else
					*eject = true;
				break;
			}
			if (!luns) {
				json_object *scsi = json_object_new_object();

				luns = json_object_new_array();
				json_object_object_add(scsi, "luns", luns);
				json_object_object_add(body, "scsi", scsi);
			}
			if (json_object_array_add(luns,
						  dvd_lun(strcmp(optarg, "none") ? optarg : NULL)))
				return EXIT_FAIL;
			break;
		case OPT_EJECT:
			if (create)
				return usage_error("%s", "--eject is an option of set");
			*eject = true;
			break;
		case OPT_LUN:
			if (create)
				return usage_error("%s", "--lun is an option of set (with --dvd or "
							 "--eject)");
			if (parse_uint(optarg, 0, VMDEF_MAX_LUNS - 1, &v))
				return usage_error("--lun: '%s' is not a SCSI LUN (0 to %d)",
						   optarg, VMDEF_MAX_LUNS - 1);
			*lun = (long)v;
			break;
		case OPT_VSOCK: {
			/* virtio-vsock (integration services, keel-agent): --vsock or
			 * --vsock=cid=N. */
			json_object *vs = json_object_new_object();

			if (optarg && (strncmp(optarg, "cid=", 4) ||
				       parse_uint(optarg + 4, 3, 4294967294u, &v))) {
				json_object_put(vs);
				return usage_error("--vsock: '%s' is not cid=N (N from 3 to "
						   "4294967294)",
						   optarg);
			}
			if (optarg)
				json_object_object_add(vs, "cid",
						       json_object_new_int64((int64_t)v));
			json_object_object_add(body, "vsock", vs);
			break;
		}
		case OPT_NO_VSOCK:
			json_object_object_add(body, "vsock", NULL);
			break;
		case OPT_NAME:
			if (create)
				return usage_error("%s",
						   "the name is the first argument of create");
			json_object_object_add(body, "name", json_object_new_string(optarg));
			break;
		case OPT_GENERATION:
			if (!create)
				return usage_error("%s", "--generation is chosen at create");
			if (parse_uint(optarg, 1, 2, &v))
				return usage_error("--generation: '%s' is not 1 (BIOS) or 2 (UEFI)",
						   optarg);
			json_object_object_add(body, "generation", json_object_new_int((int)v));
			break;
		case OPT_BOOT_ORDER: {
			/* The one parser of the list, keeld's and keel-vmm's (an empty item, a
			 * word twice, refused here as there); keeld checks it against the VM. */
			struct vm_def *order = calloc(1, sizeof(*order));
			char why[256];

			if (!order)
				return EXIT_FAIL;
			vmdef_init(order);
			if (vmdef_boot_parse(order, optarg, why, sizeof(why))) {
				vmdef_free(order);
				free(order);
				return usage_error("--boot-order %s: %s", optarg, why);
			}
			json_object_object_add(body, "boot_order", vmdef_boot_to_json(order));
			vmdef_free(order);
			free(order);
			break;
		}
		case OPT_BOOT_MENU:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return usage_error("--boot-menu: '%s' is not on or off", optarg);
			json_object_object_add(body, "boot_menu",
					       json_object_new_boolean(!strcmp(optarg, "on")));
			break;
		case OPT_START_ACTION:
			json_object_object_add(body, "automatic_start_action",
					       json_object_new_string(optarg));
			break;
		case OPT_STOP_ACTION:
			json_object_object_add(body, "automatic_stop_action",
					       json_object_new_string(optarg));
			break;
		case OPT_JSON:
			*json = true;
			break;
		case OPT_HELP:
			fputs(vm_usage, stdout);
			exit(0);
		default:
			fputs(vm_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (!*name)
		return usage_error("%s", "missing the VM name");
	if (create && json_object_object_get_ex(body, "kernel", NULL) &&
	    json_object_object_get_ex(body, "generation", NULL))
		return usage_error("%s",
				   "--kernel boots a kernel directly and --generation through "
				   "firmware: give one");
	/* Without a kernel, a VM boots through firmware: Generation 2 (UEFI) unless told. */
	if (create && !json_object_object_get_ex(body, "kernel", NULL) &&
	    !json_object_object_get_ex(body, "generation", NULL))
		json_object_object_add(body, "generation", json_object_new_int(2));
	if (*dvd && *eject)
		return usage_error("%s", "--dvd FILE or --eject, not both");
	if (*lun >= 0 && !*dvd && !*eject)
		return usage_error("%s", "--lun L names the DVD drive of a --dvd or --eject");
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return EXIT_OK;
}

/* An adapter's guest addresses (its switch's DHCP leases, the neighbour table), or "-". */
static const char *net_addresses(json_object *net, char *buf, size_t size)
{
	json_object *a;
	size_t len = 0;

	snprintf(buf, size, "-");
	if (!json_object_object_get_ex(net, "addresses", &a))
		return buf;
	for (size_t k = 0; k < json_object_array_length(a) && len < size; k++) {
		int n = snprintf(buf + len, size - len, "%s%s", k ? " " : "",
				 json_object_get_string(json_object_array_get_idx(a, k)));

		len += n > 0 ? (size_t)n : 0;
	}
	return buf;
}

static void print_vm(json_object *vm)
{
	json_object *arr, *v;
	char mem[32];
	const char *reason = client_str_field(vm, "state_reason");

	fmt_size((uint64_t)int_field(vm, "memory"), mem, sizeof(mem));
	printf("Name:                   %s\n", client_str_field(vm, "name"));
	printf("Id:                     %s\n", client_str_field(vm, "id"));
	printf("State:                  %s\n", client_str_field(vm, "state"));
	if (reason[0])
		printf("Status:                 %s\n", reason);
	if (client_str_field(vm, "damaged")[0])
		printf("Damaged in the store:   %s\n", client_str_field(vm, "damaged"));
	if (int_field(vm, "pid"))
		printf("Worker pid:             %" PRId64 "\n", int_field(vm, "pid"));
	printf("CPUs:                   %" PRId64 "\n", int_field(vm, "cpus"));
	printf("Memory:                 %s\n", mem);
	if (int_field(vm, "generation")) {
		bool bios = int_field(vm, "generation") == 1;
		const char *fw = client_str_field(vm, "firmware_file");

		printf("Generation:             %" PRId64 " (%s)\n", int_field(vm, "generation"),
		       bios ? "BIOS, SeaBIOS" : "UEFI, OVMF");
		if (fw[0])
			printf("Firmware file:          %s\n", fw);
		else
			printf("Firmware file:          %s (Debian's %s)\n",
			       bios ? VMDEF_SEABIOS_FILE : VMDEF_OVMF_CODE_FILE,
			       bios ? VMDEF_SEABIOS_PKG : VMDEF_OVMF_PKG);
		if (client_str_field(vm, "nvram")[0])
			printf("NVRAM file:             %s\n", client_str_field(vm, "nvram"));
		printf("Boot order:             ");
		if (json_object_object_get_ex(vm, "boot_order", &arr) && arr &&
		    json_object_array_length(arr))
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				printf("%s%s", i ? "," : "",
				       json_object_get_string(json_object_array_get_idx(arr, i)));
		else
			printf("disk,dvd,net (default)");
		printf("\n");
		printf("Boot menu:              %s\n",
		       json_object_get_boolean(json_object_object_get(vm, "boot_menu"))
			       ? "on (offered for 3 s)"
			       : "off");
	} else {
		printf("Kernel:                 %s\n", client_str_field(vm, "kernel"));
		if (client_str_field(vm, "initrd")[0])
			printf("Initrd:                 %s\n", client_str_field(vm, "initrd"));
		printf("Command line:           %s\n", client_str_field(vm, "cmdline"));
	}
	if (json_object_object_get_ex(vm, "disks", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			char qos[96];

			v = json_object_array_get_idx(arr, i);
			cli_disk_qos_text(v, qos, sizeof(qos));
			printf("Disk %zu:                 %s (%s)%s%s\n", i,
			       client_str_field(v, "path"), client_str_field(v, "format"),
			       json_object_get_boolean(json_object_object_get(v, "readonly"))
				       ? " (read-only)"
				       : "",
			       qos);
		}
	if (json_object_object_get_ex(vm, "disks_below_min_iops", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			v = json_object_array_get_idx(arr, i);
			bool lun = json_object_object_get_ex(v, "lun", NULL);

			printf("Storage QoS:            disk %s%d is below its minimum IOPS (%lld "
			       "seconds in all)\n",
			       lun ? "scsi:" : "",
			       json_object_get_int(json_object_object_get(v, lun ? "lun" : "disk")),
			       (long long)json_object_get_int64(
				       json_object_object_get(v, "seconds")));
		}
	if (json_object_object_get_ex(vm, "nets", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			char ips[256];

			v = json_object_array_get_idx(arr, i);
			if (client_str_field(v, "switch")[0])
				printf("Network adapter %zu:      switch %s, MAC %s, addresses "
				       "%s\n",
				       i, client_str_field(v, "switch"), client_str_field(v, "mac"),
				       net_addresses(v, ips, sizeof(ips)));
			else
				printf("Network adapter %zu:      tap %s, MAC %s\n", i,
				       client_str_field(v, "tap"), client_str_field(v, "mac"));
		}
	if (json_object_object_get_ex(vm, "scsi", &v) && v &&
	    json_object_object_get_ex(v, "luns", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *l = json_object_array_get_idx(arr, i);
			bool dvd = !strcmp(client_str_field(l, "type"), "dvd");
			char qos[96];

			cli_disk_qos_text(l, qos, sizeof(qos));
			printf("SCSI LUN %zu:             %s %s%s\n", i,
			       dvd ? "DVD drive," : "disk",
			       client_str_field(l, "path")[0] ? client_str_field(l, "path")
							      : "no medium",
			       qos);
		}
	if (client_str_field(vm, "parent_checkpoint")[0])
		printf("Checkpoint:             %s (keel checkpoint list %s)\n",
		       client_str_field(vm, "parent_checkpoint"), client_str_field(vm, "name"));
	printf("Automatic start action: %s\n", client_str_field(vm, "automatic_start_action"));
	printf("Automatic stop action:  %s\n", client_str_field(vm, "automatic_stop_action"));
	if (client_str_field(vm, "console_socket")[0])
		printf("Console:                keel console %s\n", client_str_field(vm, "name"));
	if (json_object_object_get_ex(vm, "integration", &v) &&
	    client_str_field(v, "heartbeat")[0]) {
		printf("Heartbeat:              ");
		cli_print_heartbeat(v);
		printf("\n");
		cli_print_clock_offset(v, "Clock offset:           ");
		if (json_object_object_get_ex(v, "addresses", &arr) &&
		    json_object_array_length(arr)) {
			printf("Addresses:              ");
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				printf("%s%s", i ? ", " : "",
				       json_object_get_string(json_object_array_get_idx(arr, i)));
			printf("\n");
		}
	}
	if (client_str_field(vm, "notes")[0])
		printf("Notes:                  %s\n", client_str_field(vm, "notes"));
	printf("Created:                %s\n", client_str_field(vm, "created"));
	printf("Version:                %" PRId64 " (revision %" PRId64 ")\n",
	       int_field(vm, "version"), int_field(vm, "revision"));
}

static int cmd_create_or_set(int argc, char **argv, bool create)
{
	json_object *body = json_object_new_object(), *vm = NULL;
	const char *name = NULL;
	bool json = false, eject = false;
	const char *dvd = NULL;
	long lun = -1;
	char path[512], what[128];
	int ret;

	ret = parse_def_opts(argc, argv, create, body, &json, &name, &dvd, &eject, &lun);
	if (!ret && (dvd || eject))
		ret = set_dvd(dvd, lun, body);
	if (ret)
		goto out;
	snprintf(what, sizeof(what), "%s VM '%s'", create ? "create" : "set", name);
	if (create) {
		json_object_object_add(body, "name", json_object_new_string(name));
		ret = client_call("POST", "/v1/vms", body, &vm, what);
	} else {
		vm_path(path, sizeof(path), name, NULL);
		ret = client_call("PATCH", path, body, &vm, what);
	}
	if (ret)
		goto out;
	if (json)
		client_print_json(vm);
	else if (create)
		printf("Created VM '%s' (id %s)\n", client_str_field(vm, "name"),
		       client_str_field(vm, "id"));
	else
		printf("Changed VM '%s' (revision %" PRId64 ")\n", client_str_field(vm, "name"),
		       int_field(vm, "revision"));
out:
	json_object_put(body);
	json_object_put(vm);
	return ret;
}

/* Options of the verbs that take only a NAME and a few flags. */
struct verb_opts {
	const char *name;
	bool json, force, no_wait, watch, follow;
	long timeout; /* -1: keeld's default */
};

static int parse_verb(int argc, char **argv, struct verb_opts *o, const char *allowed)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, OPT_JSON},
		{"force", no_argument, NULL, OPT_FORCE},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"no-wait", no_argument, NULL, OPT_NO_WAIT},
		{"watch", no_argument, NULL, OPT_WATCH},
		{"follow", no_argument, NULL, OPT_FOLLOW},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->timeout = -1;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1 ||
	       (optind < argc && !o->name)) {
		const char *optname = NULL;
		if (c == -1) {
			o->name = argv[optind++];
			continue;
		}
		switch (c) {
		case OPT_JSON:
			optname = "json";
			o->json = true;
			break;
		case OPT_FORCE:
			optname = "force";
			o->force = true;
			break;
		case OPT_TIMEOUT:
			optname = "timeout";
			if (parse_uint(optarg, 0, 86400, &v))
				return usage_error("--timeout: '%s' is not a number of seconds "
						   "from 0 to 86400",
						   optarg);
			o->timeout = (long)v;
			break;
		case OPT_NO_WAIT:
			optname = "no-wait";
			o->no_wait = true;
			break;
		case OPT_WATCH:
			optname = "watch";
			o->watch = true;
			break;
		case OPT_FOLLOW:
			optname = "follow";
			o->follow = true;
			break;
		case OPT_HELP:
			fputs(vm_usage, stdout);
			exit(0);
		default:
			fputs(vm_usage, stderr);
			return EXIT_USAGE;
		}
		if (!strstr(allowed, optname))
			return usage_error("option --%s does not apply to this command", optname);
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return EXIT_OK;
}

static int cmd_list(int argc, char **argv);

/* keel vm list --watch: the list, then every change from keeld's event stream (long-poll),
 * one line each (or one JSON object per line with --json), until interrupted. */
static int watch_events(bool json)
{
	char *argv[] = {"list", NULL};
	uint64_t next = 0;
	bool first = true;
	int ret;

	for (;;) {
		json_object *r = NULL, *evs, *v;
		char path[96];

		snprintf(path, sizeof(path), "/v1/events?since=%" PRIu64 "&wait=%d", next,
			 first ? 0 : 25);
		ret = client_call("GET", path, NULL, &r, "watch events");
		if (ret)
			return ret;
		if (json_object_object_get_ex(r, "next", &v))
			next = (uint64_t)json_object_get_int64(v);
		if (first ||
		    (json_object_object_get_ex(r, "lost", &v) && json_object_get_boolean(v))) {
			/* The state now, then the changes after it. */
			if (json && !first)
				puts("{\"lost\":true}"); /* a JSON reader re-reads the list */
			if (!json)
				ret = cmd_list(1, argv);
			first = false;
			json_object_put(r);
			if (ret)
				return ret;
			fflush(stdout);
			continue;
		}
		if (!json_object_object_get_ex(r, "events", &evs) ||
		    !json_object_is_type(evs, json_type_array)) {
			fprintf(stderr, "keel: watch events: keeld's reply has no events\n");
			json_object_put(r);
			return EXIT_FAIL;
		}
		for (size_t i = 0; i < json_object_array_length(evs); i++) {
			json_object *e = json_object_array_get_idx(evs, i), *progress;

			if (json)
				puts(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
			else if (!strcmp(client_str_field(e, "kind"), "job") &&
				 json_object_object_get_ex(e, "progress", &progress))
				printf("%s  job %" PRId64 " %s %s: %s %" PRId64 "%%\n",
				       client_str_field(e, "time"), int_field(e, "job"),
				       client_str_field(e, "operation"), client_str_field(e, "vm"),
				       client_str_field(e, "state"),
				       int_field(progress, "percent"));
			else if (!strcmp(client_str_field(e, "kind"), "job"))
				printf("%s  job %" PRId64 " %s %s: %s%s%s\n",
				       client_str_field(e, "time"), int_field(e, "job"),
				       client_str_field(e, "operation"), client_str_field(e, "vm"),
				       client_str_field(e, "state"),
				       client_str_field(e, "message")[0] ? ": " : "",
				       client_str_field(e, "message"));
			else if (!strcmp(client_str_field(e, "kind"), "switch"))
				printf("%s  switch %s: %s%s%s\n", client_str_field(e, "time"),
				       client_str_field(e, "switch"), client_str_field(e, "state"),
				       client_str_field(e, "reason")[0] ? ": " : "",
				       client_str_field(e, "reason"));
			else
				printf("%s  %s: %s%s%s\n", client_str_field(e, "time"),
				       client_str_field(e, "vm"), client_str_field(e, "state"),
				       client_str_field(e, "reason")[0] ? ": " : "",
				       client_str_field(e, "reason"));
		}
		fflush(stdout);
		json_object_put(r);
	}
}

static int cmd_list(int argc, char **argv)
{
	struct verb_opts o;
	json_object *arr = NULL;
	size_t n, wname = 4, wstate = 5;
	int ret;

	ret = parse_verb(argc, argv, &o, "json watch");
	if (ret)
		return ret;
	if (o.name)
		return usage_error("unexpected argument '%s'", o.name);
	if (o.watch)
		return watch_events(o.json);
	ret = client_call("GET", "/v1/vms", NULL, &arr, "list VMs");
	if (ret)
		return ret;
	if (o.json) {
		client_print_json(arr);
		json_object_put(arr);
		return EXIT_OK;
	}
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		json_object *vm = json_object_array_get_idx(arr, i);
		size_t l = strlen(client_str_field(vm, "name"));
		wname = l > wname ? l : wname;
		l = strlen(client_str_field(vm, "state"));
		wstate = l > wstate ? l : wstate;
	}
	printf("%-*s  %-*s  %4s  %7s  %s\n", (int)wname, "NAME", (int)wstate, "STATE", "CPUS",
	       "MEMORY", "STATUS");
	for (size_t i = 0; i < n; i++) {
		json_object *vm = json_object_array_get_idx(arr, i);
		char mem[32];
		fmt_size((uint64_t)int_field(vm, "memory"), mem, sizeof(mem));
		printf("%-*s  %-*s  %4" PRId64 "  %7s  %s\n", (int)wname,
		       client_str_field(vm, "name"), (int)wstate, client_str_field(vm, "state"),
		       int_field(vm, "cpus"), mem, client_str_field(vm, "state_reason"));
	}
	json_object_put(arr);
	return EXIT_OK;
}

static int cmd_show(int argc, char **argv)
{
	struct verb_opts o;
	json_object *vm = NULL;
	char path[512], what[128];
	int ret;

	ret = parse_verb(argc, argv, &o, "json");
	if (ret)
		return ret;
	if (!o.name)
		return usage_error("%s", "missing the VM name");
	vm_path(path, sizeof(path), o.name, NULL);
	snprintf(what, sizeof(what), "show VM '%s'", o.name);
	ret = client_call("GET", path, NULL, &vm, what);
	if (ret)
		return ret;
	if (o.json) {
		client_print_json(vm);
	} else {
		cli_add_clock_offset(vm, o.name);
		print_vm(vm);
	}
	json_object_put(vm);
	return EXIT_OK;
}

/* keel vm net list NAME [--json]: the adapters, their switch or tap, MAC and addresses. */
/* An adapter's bandwidth field as "10M" (bits per second), or "-". */
static void rate_text(json_object *v, const char *key, char *out, size_t size)
{
	static const char units[] = " kMG";
	json_object *f;
	int64_t r = json_object_object_get_ex(v, key, &f) ? json_object_get_int64(f) : 0;
	int u = 0;

	if (r <= 0) {
		snprintf(out, size, "-");
		return;
	}
	while (u < 3 && r % 1000 == 0) {
		r /= 1000;
		u++;
	}
	snprintf(out, size, "%lld%.*s", (long long)r, u ? 1 : 0, units + u);
}

/* keel vm net add NAME --net SPEC | remove NAME MAC: the VM's adapters as the API has them
 * (less the guest addresses it adds), one more or one less, sent back (PATCH): a running
 * VM gets or loses the adapter by hot plug (docs/networking.md), an off one's description
 * changes. */
/* keel vm net remove NAME MAC --force: the running VM's adapter taken away without the guest
 * (POST .../net-remove-force), also one that an earlier remove left to a guest that never let
 * it go. */
static int net_remove_force(const char *name, const char *mac)
{
	json_object *body = json_object_new_object(), *out = NULL;
	char path[512], what[160];
	int ret;

	json_object_object_add(body, "mac", json_object_new_string(mac));
	vm_path(path, sizeof(path), name, "net-remove-force");
	snprintf(what, sizeof(what), "take network adapter %s away from VM '%s'", mac, name);
	ret = client_call("POST", path, body, &out, what);
	json_object_put(body);
	json_object_put(out);
	if (!ret)
		printf("adapter removed (forced: the guest lost it at once)\n");
	return ret;
}

static int net_change(int argc, char **argv)
{
	bool add = !strcmp(argv[1], "add");
	json_object *vm = NULL, *arr = NULL, *nets, *body, *out = NULL;
	char path[512], what[160];
	const char *arg; /* the SPEC to add or the MAC to remove */
	bool found = false,
	     bad = add ? argc < 5 || argc % 2 == 0 || strcmp(argv[3], "--net") : argc != 4;
	int ret;

	/* after the --net: --vlan-trunk LIST and --native-vlan N, as create and set take them */
	for (int i = 5; add && !bad && i < argc; i += 2)
		bad = strcmp(argv[i], "--vlan-trunk") && strcmp(argv[i], "--native-vlan");
	if (bad)
		return usage_error("usage: keel vm net %s",
				   add ? "add NAME --net SPEC [--vlan-trunk LIST [--native-vlan N]]"
				       : "remove NAME MAC [--force]");
	arg = argv[add ? 4 : 3];
	vm_path(path, sizeof(path), argv[2], NULL);
	snprintf(what, sizeof(what), "read the adapters of VM '%s'", argv[2]);
	ret = client_call("GET", path, NULL, &vm, what);
	if (ret)
		return ret;
	json_object_object_get_ex(vm, "nets", &arr);
	nets = json_object_new_array();
	body = json_object_new_object();
	json_object_object_add(body, "nets", nets);
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *n = json_object_array_get_idx(arr, i),
			    *copy = json_object_new_object();

		if (!add && !strcasecmp(client_str_field(n, "mac"), arg)) {
			found = true;
			json_object_put(copy);
			continue;
		}
		json_object_object_foreach(n, key, val)
		{
			/* the API's, not the description's */
			if (strcmp(key, "addresses") && strcmp(key, "address_sources"))
				json_object_object_add(copy, key, json_object_get(val));
		}
		json_object_array_add(nets, copy);
	}
	json_object_put(vm);
	ret = add ? add_net(nets, arg) : 0;
	for (int i = 5; add && !ret && i < argc; i += 2)
		ret = net_trunk_opt(nets, !strcmp(argv[i], "--vlan-trunk"), argv[i + 1]);
	if (ret) {
		json_object_put(body);
		return EXIT_USAGE;
	}
	if (!add && !found) {
		json_object_put(body);
		fprintf(stderr,
			"keel vm: VM '%s' has no network adapter with MAC %s (keel vm net "
			"list %s shows them)\n",
			argv[2], arg, argv[2]);
		return EXIT_USAGE;
	}
	snprintf(what, sizeof(what), "%s a network adapter %s VM '%s'", add ? "add" : "remove",
		 add ? "to" : "from", argv[2]);
	ret = client_call("PATCH", path, body, &out, what);
	json_object_put(body);
	json_object_put(out);
	if (ret)
		return ret;
	printf("%s\n", add ? "adapter added" : "adapter removed (a running guest lets it go)");
	return EXIT_OK;
}

static int cmd_net(int argc, char **argv)
{
	json_object *vm = NULL, *arr = NULL;
	char path[512], what[128];
	bool json;
	int ret;

	/* remove NAME MAC --force, or remove --force NAME MAC */
	if (argc == 5 && !strcmp(argv[1], "remove") && !strcmp(argv[4], "--force"))
		return net_remove_force(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "remove") && !strcmp(argv[2], "--force"))
		return net_remove_force(argv[3], argv[4]);
	if (argc >= 2 && (!strcmp(argv[1], "add") || !strcmp(argv[1], "remove")))
		return net_change(argc, argv);
	if (argc < 3 || strcmp(argv[1], "list") || argc > 4 ||
	    (argc == 4 && strcmp(argv[3], "--json")))
		return usage_error("%s", "usage: keel vm net list NAME [--json]");
	json = argc == 4;
	vm_path(path, sizeof(path), argv[2], NULL);
	snprintf(what, sizeof(what), "list the adapters of VM '%s'", argv[2]);
	ret = client_call("GET", path, NULL, &vm, what);
	if (ret)
		return ret;
	json_object_object_get_ex(vm, "nets", &arr);
	if (json) {
		if (arr)
			client_print_json(arr);
		else
			puts("[]");
	} else {
		printf("%-3s %-20s %-15s %-17s %-5s %-8s %-11s %s\n", "#", "SWITCH", "TAP", "MAC",
		       "VLAN", "GUARDS", "BW OUT/IN", "ADDRESSES");
		for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
			json_object *v = json_object_array_get_idx(arr, i), *f;
			char ips[256], vlan[160] = "-", guards[8] = "-", bw[2][24], bws[56];
			const char *mirror = client_str_field(v, "port_mirroring");

			/* access: N; trunk: LIST/NATIVE */
			if (json_object_object_get_ex(v, "vlan", &f))
				snprintf(vlan, sizeof(vlan), "%d", json_object_get_int(f));
			if (json_object_object_get_ex(v, "vlan_trunk", &f)) {
				json_object *nv;

				snprintf(vlan, sizeof(vlan), "%s/%d", json_object_get_string(f),
					 json_object_object_get_ex(v, "native_vlan", &nv)
						 ? json_object_get_int(nv)
						 : 1);
			}
			/* m: MAC spoofing dropped, d: DHCP guard, r: router guard, i: port
			 * isolation; port mirroring S: source, D: destination */
			if (client_str_field(v, "switch")[0])
				snprintf(
					guards, sizeof(guards), "%s%s%s%s%s",
					json_object_object_get_ex(v, "mac_spoofing", &f) ? "" : "m",
					json_object_object_get_ex(v, "dhcp_guard", &f) ? "d" : "",
					json_object_object_get_ex(v, "router_guard", &f) ? "r" : "",
					json_object_object_get_ex(v, "port_isolation", &f) ? "i"
											   : "",
					!strcmp(mirror, "source")	 ? "S"
					: !strcmp(mirror, "destination") ? "D"
									 : "");
			for (int d = 0; d < 2; d++)
				rate_text(v, d ? "bandwidth_in" : "bandwidth_out", bw[d],
					  sizeof(bw[d]));
			snprintf(bws, sizeof(bws), "%s/%s", bw[0], bw[1]);
			printf("%-3zu %-20s %-15s %-17s %-5s %-8s %-11s %s\n", i,
			       client_str_field(v, "switch")[0] ? client_str_field(v, "switch")
								: "-",
			       client_str_field(v, "tap"), client_str_field(v, "mac"), vlan,
			       guards[0] ? guards : "-", strcmp(bws, "-/-") ? bws : "-",
			       net_addresses(v, ips, sizeof(ips)));
		}
	}
	json_object_put(vm);
	return EXIT_OK;
}

static int cmd_action(int argc, char **argv, const char *action)
{
	struct verb_opts o;
	json_object *body = NULL, *vm = NULL, *accepted;
	const char *allowed = "json";
	char path[512], what[128];
	int ret;

	if (!strcmp(action, "stop"))
		allowed = "json force timeout no-wait";
	else if (!strcmp(action, "start") || !strcmp(action, "turn-off") || !strcmp(action, "save"))
		allowed = "json no-wait";
	ret = parse_verb(argc, argv, &o, allowed);
	if (ret)
		return ret;
	if (!o.name)
		return usage_error("%s", "missing the VM name");
	vm_path(path, sizeof(path), o.name, action);
	snprintf(what, sizeof(what), "%.16s VM '%.64s'", action, o.name);
	if (!strcmp(action, "stop")) {
		body = json_object_new_object();
		json_object_object_add(body, "force", json_object_new_boolean(o.force));
		if (o.timeout >= 0)
			json_object_object_add(body, "timeout", json_object_new_int64(o.timeout));
	}
	ret = client_call("POST", path, body, &vm, what);
	json_object_put(body);
	if (ret)
		goto out;
	if (!o.json && client_str_field(vm, "stopped_through")[0])
		printf("stopping VM '%s' through %s\n", o.name,
		       client_str_field(vm, "stopped_through"));
	if (!o.no_wait) {
		if (!strcmp(action, "start"))
			ret = client_wait_state(o.name, "Starting", "Running,Paused", 120, action);
		else if (!strcmp(action, "stop"))
			/* keeld enforces the timeout; this limit only guards against a hang. */
			ret = client_wait_state(o.name, "Stopping", "Off",
						(o.timeout >= 0 ? o.timeout : 86400) + 60, action);
		else if (!strcmp(action, "turn-off"))
			ret = client_wait_state(o.name, "Stopping", "Off", 60, action);
		else if (!strcmp(action, "save")) {
			json_object *job = NULL;

			/* The save is a job; then the worker ends and the VM is Saved. */
			ret = json_object_object_get_ex(vm, "job", &job)
				      ? client_wait_job(job, what)
				      : EXIT_OK;
			if (!ret)
				ret = client_wait_state(o.name, "Stopping", "Saved", 60, action);
		}
		if (ret == EXIT_FAIL && !strcmp(action, "stop"))
			ret = EXIT_TIMED_OUT; /* back to Running: the guest ignored the button */
	}
	if (ret)
		goto out;
	if (o.no_wait && !o.json && json_object_object_get_ex(vm, "job", &accepted)) {
		/* The job goes on in keeld: say which, to follow it (GET its href). */
		printf("job %s started: %s (%s)\n", client_str_field(accepted, "id"), what,
		       client_str_field(accepted, "href"));
	} else if (o.json && o.no_wait) {
		client_print_json(vm); /* the VM as accepted, with its job */
	} else if (o.json) {
		json_object_put(vm);
		vm = NULL;
		vm_path(path, sizeof(path), o.name, NULL);
		ret = client_call("GET", path, NULL, &vm, what);
		if (!ret)
			client_print_json(vm);
	}
out:
	json_object_put(vm);
	return ret;
}

static int cmd_delete(int argc, char **argv)
{
	struct verb_opts o;
	json_object *vm = NULL, *disks;
	char path[512], what[128];
	int ret;

	ret = parse_verb(argc, argv, &o, "json");
	if (ret)
		return ret;
	if (!o.name)
		return usage_error("%s", "missing the VM name");
	vm_path(path, sizeof(path), o.name, NULL);
	snprintf(what, sizeof(what), "delete VM '%s'", o.name);
	/* Fetch first, to tell the user which disk files stay. */
	ret = client_call("GET", path, NULL, &vm, what);
	if (ret)
		return ret;
	json_object *res = NULL;
	ret = client_call("DELETE", path, NULL, &res, what);
	if (!ret) {
		if (o.json) {
			client_print_json(res);
		} else {
			printf("Deleted VM '%s'\n", o.name);
			if (json_object_object_get_ex(vm, "disks", &disks))
				for (size_t i = 0; i < json_object_array_length(disks); i++)
					printf("Kept disk %s\n",
					       client_str_field(json_object_array_get_idx(disks, i),
								"path"));
		}
	}
	json_object_put(res);
	json_object_put(vm);
	return ret;
}

/* A piece of a VM's log, written by its worker (a worker the guest took over writes what it
 * likes) to stdout with every control character but newline and tab as '?' (log_text_safe):
 * no escape sequence reaches the terminal. s is changed. */
static void print_log(char *s, size_t n)
{
	log_text_safe(s, n, true);
	fwrite(s, 1, n, stdout);
}

/* keel vm log --follow: the log's last MiB, then what is added to it, through keeld's
 * long-poll (GET .../log?since=OFFSET&wait=SEC), until interrupted or the VM goes. */
static int follow_log(const char *name, const char *path)
{
	char url[600], what[128];
	uint64_t next = 0;
	bool first = true;

	snprintf(what, sizeof(what), "log of VM '%s'", name);
	for (;;) {
		json_object *r = NULL;
		char *text;
		size_t len;
		int ret;

		snprintf(url, sizeof(url), "%s?since=%" PRIu64 "&wait=%d", path, next,
			 first ? 0 : 25);
		ret = client_call("GET", url, NULL, &r, what);
		if (ret)
			return ret;
		if (!first && json_object_get_boolean(json_object_object_get(r, "restarted")))
			fprintf(stderr,
				"keel: the log of VM '%s' was started again (a new "
				"worker)\n",
				name);
		len = (size_t)json_object_get_string_len(json_object_object_get(r, "text"));
		text = malloc(len + 1);
		if (!text) {
			json_object_put(r);
			fprintf(stderr, "keel: %s: out of memory\n", what);
			return EXIT_FAIL;
		}
		memcpy(text, client_str_field(r, "text"), len);
		print_log(text, len);
		free(text);
		fflush(stdout);
		next = (uint64_t)int_field(r, "next");
		first = false;
		json_object_put(r);
	}
}

static int cmd_log(int argc, char **argv)
{
	struct verb_opts o;
	struct client_reply r;
	char path[512], err[512];
	int ret;

	ret = parse_verb(argc, argv, &o, "follow");
	if (ret)
		return ret;
	if (!o.name)
		return usage_error("%s", "missing the VM name");
	vm_path(path, sizeof(path), o.name, "log");
	if (o.follow)
		return follow_log(o.name, path);
	if (client_request("GET", path, NULL, &r, err, sizeof(err))) {
		fprintf(stderr, "keel: log of VM '%s': %s\n", o.name, err);
		return EXIT_NO_DAEMON;
	}
	if (r.status != 200) {
		client_reply_free(&r);
		/* Let client_call print keeld's error message and pick the status. */
		snprintf(err, sizeof(err), "log of VM '%s'", o.name);
		return client_call("GET", path, NULL, NULL, err);
	}
	print_log(r.body, r.len);
	client_reply_free(&r);
	return EXIT_OK;
}

int cli_vm_main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		fputs(vm_usage, stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	argc--;
	argv++;
	if (!strcmp(cmd, "create"))
		return cmd_create_or_set(argc, argv, true);
	if (!strcmp(cmd, "set"))
		return cmd_create_or_set(argc, argv, false);
	if (!strcmp(cmd, "list") || !strcmp(cmd, "ls"))
		return cmd_list(argc, argv);
	if (!strcmp(cmd, "show"))
		return cmd_show(argc, argv);
	if (!strcmp(cmd, "start") || !strcmp(cmd, "stop") || !strcmp(cmd, "turn-off") ||
	    !strcmp(cmd, "restart") || !strcmp(cmd, "pause") || !strcmp(cmd, "resume") ||
	    !strcmp(cmd, "save") || !strcmp(cmd, "discard-state"))
		return cmd_action(argc, argv, cmd);
	if (!strcmp(cmd, "kvp"))
		return cli_vm_kvp(argc, argv);
	if (!strcmp(cmd, "integration"))
		return cli_vm_integration(argc, argv);
	if (!strcmp(cmd, "exec"))
		return cli_vm_exec(argc, argv);
	if (!strcmp(cmd, "copy-file"))
		return cli_vm_copy_file(argc, argv);
	if (!strcmp(cmd, "backup"))
		return cli_vm_backup(argc, argv);
	if (!strcmp(cmd, "import"))
		return cli_vm_import(argc, argv);
	if (!strcmp(cmd, "delete") || !strcmp(cmd, "rm"))
		return cmd_delete(argc, argv);
	if (!strcmp(cmd, "log"))
		return cmd_log(argc, argv);
	if (!strcmp(cmd, "net"))
		return cmd_net(argc, argv);
	if (!strcmp(cmd, "disk"))
		return cli_vm_disk(argc, argv);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(vm_usage, stdout);
		return EXIT_OK;
	}
	return usage_error("unknown command '%s'", cmd);
}
