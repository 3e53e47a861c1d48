/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "lib/parse.h"
#include "lib/unix_socket.h"
#include "vmm/virtio/net.h"

static const char usage_head[] =
	"usage: keel-vmm --config FILE | --kernel FILE [--initrd FILE] [--cmdline STRING]\n"
	"                | --firmware bios|uefi[=FILE] [--nvram FILE] [--boot-order LIST]\n"
	"                  [--boot-menu]\n"
	"                [--cpus N] [--memory SIZE] [--name NAME] [--debug-exit]\n"
	"                [DEVICE OPTION]... [--serial stdio|file:PATH|unix:PATH|off]\n"
	"                [--no-reboot] [--firmware-debug] [--exit-stats] [--control PATH]\n"
	"                [--status-file PATH]\n"
	"                [--restore DIR] [--paused] [--fd "
	"kernel|initrd|kvm|firmware|nvram|disk.I|net.I|vhost.I|lun.I=N]...\n"
	"                [--fd control|serial|console|vsock=N]...\n"
	"                [--fd config|status|state|memory|vars=N]...\n"
	"                [--jail-user UID:GID --jail-root DIR]\n"
	"\n"
	"Device options (each device kind's, src/config/vmdef_*.c):\n";

static const char usage_tail[] =
	"\n"
	"Runs one virtual machine on KVM. The VM is described by a JSON document (--config,\n"
	"docs/vm-config.md) or by the options from --kernel to --debug-exit and the device\n"
	"options, not both (a device option marked \"with --config too\" goes with either).\n"
	"SIZE takes K, M, G or T (plain numbers are MiB). Defaults: 1 vCPU, 512M, serial on\n"
	"stdio. See docs/keel-vmm.md.\n";

enum {
	OPT_KERNEL = 256,
	OPT_FIRMWARE,
	OPT_NVRAM,
	OPT_BOOT_ORDER,
	OPT_BOOT_MENU,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_SERIAL,
	OPT_NO_REBOOT,
	OPT_FIRMWARE_DEBUG,
	OPT_EXIT_STATS,
	OPT_PAUSED,
	OPT_DEBUG_EXIT,
	OPT_CONTROL,
	OPT_STATUS_FILE,
	OPT_NAME,
	OPT_RESTORE,
	OPT_HELP,
	OPT_VERSION,
	OPT_CONFIG,
	OPT_FD,
	OPT_JAIL_USER,
	OPT_JAIL_ROOT,
};

/* keel-vmm's own options: the machine's and the worker's. The devices' come from their kinds
 * (config_options_build). */
static const struct option machine_options[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"firmware", required_argument, NULL, OPT_FIRMWARE},
	{"nvram", required_argument, NULL, OPT_NVRAM},
	{"boot-order", required_argument, NULL, OPT_BOOT_ORDER},
	{"boot-menu", no_argument, NULL, OPT_BOOT_MENU},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"serial", required_argument, NULL, OPT_SERIAL},
	{"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
	{"firmware-debug", no_argument, NULL, OPT_FIRMWARE_DEBUG},
	{"exit-stats", no_argument, NULL, OPT_EXIT_STATS},
	{"paused", no_argument, NULL, OPT_PAUSED},
	{"debug-exit", no_argument, NULL, OPT_DEBUG_EXIT},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"status-file", required_argument, NULL, OPT_STATUS_FILE},
	{"restore", required_argument, NULL, OPT_RESTORE},
	{"fd", required_argument, NULL, OPT_FD},
	{"jail-user", required_argument, NULL, OPT_JAIL_USER},
	{"jail-root", required_argument, NULL, OPT_JAIL_ROOT},
	{"name", required_argument, NULL, OPT_NAME},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

/* Copy a command-line string into the description. */
static int set_text(char **dst, const char *v, char *err, size_t errlen)
{
	free(*dst);
	*dst = strdup(v);
	if (!*dst) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* A disk's format is never guessed from its contents (the guest writes them): one the
 * description leaves open is taken from the file's name. */
static void resolve_format(struct vm_disk *d)
{
	if (d->format == VM_DISK_AUTO)
		d->format = disk_format_from_name(d->path) == DISK_FORMAT_VHDX ? VM_DISK_VHDX
									       : VM_DISK_RAW;
}

/* One option that describes the VM (not how this worker runs it), into cfg->def. */
static int parse_description_option(int c, const char *arg, struct vm_config *cfg, char *err,
				    size_t errlen)
{
	struct vm_def *def = &cfg->def;
	uint64_t v;
	int r;

	switch (c) {
	case OPT_KERNEL:
		return vmdef_cli_set_path(&def->kernel, arg, err, errlen);
	case OPT_FIRMWARE: {
		const char *file = strchr(arg, '=');
		size_t n = file ? (size_t)(file - arg) : strlen(arg);

		if (n == 4 && !strncmp(arg, "bios", 4)) {
			def->firmware = VM_FIRMWARE_BIOS;
		} else if (n == 4 && !strncmp(arg, "uefi", 4)) {
			def->firmware = VM_FIRMWARE_UEFI;
		} else {
			snprintf(err, errlen,
				 "--firmware %s: expected bios or uefi, optionally "
				 "=FILE",
				 arg);
			return -EINVAL;
		}
		if (file && !file[1]) {
			snprintf(err, errlen, "--firmware %s: FILE is empty", arg);
			return -EINVAL;
		}
		free(def->firmware_file);
		def->firmware_file = NULL;
		return file ? vmdef_cli_set_path(&def->firmware_file, file + 1, err, errlen) : 0;
	}
	case OPT_NVRAM:
		return vmdef_cli_set_path(&def->nvram, arg, err, errlen);
	case OPT_BOOT_ORDER:
		return vmdef_boot_parse(def, arg, err, errlen);
	case OPT_BOOT_MENU:
		def->boot_menu = true;
		return 0;
	case OPT_INITRD:
		return vmdef_cli_set_path(&def->initrd, arg, err, errlen);
	case OPT_CMDLINE:
		if (strlen(arg) > VMDEF_CMDLINE_MAX) {
			snprintf(err, errlen, "--cmdline: at most %d bytes", VMDEF_CMDLINE_MAX);
			return -EINVAL;
		}
		return set_text(&def->cmdline, arg, err, errlen);
	case OPT_NAME:
		if (!vmdef_name_ok(arg)) {
			snprintf(err, errlen,
				 "--name %s: use 1 to %d letters, digits, '.', '_' or '-', not "
				 "starting with '.' or '-'",
				 arg, VMDEF_NAME_MAX);
			return -EINVAL;
		}
		strcpy(def->name, arg); /* length checked by vmdef_name_ok */
		return 0;
	case OPT_CPUS:
		if (parse_uint(arg, 1, VMDEF_CPUS_MAX, &v)) {
			snprintf(err, errlen, "--cpus %s: expected a whole number from 1 to %d",
				 arg, VMDEF_CPUS_MAX);
			return -EINVAL;
		}
		def->cpus = (uint32_t)v;
		return 0;
	case OPT_MEMORY:
		r = parse_size(arg, 1ull << 20, &v);
		if (r) {
			snprintf(err, errlen, "--memory %s: expected a size such as 512M or 2G%s",
				 arg, r == -ERANGE ? " (this one overflows)" : "");
			return -EINVAL;
		}
		if (v < VMDEF_MEM_MIN || v > VMDEF_MEM_MAX) {
			snprintf(err, errlen, "--memory %s: must be from %lluM to %lluM", arg,
				 VMDEF_MEM_MIN >> 20, VMDEF_MEM_MAX >> 20);
			return -EINVAL;
		}
		if (v & ((1u << 20) - 1)) {
			snprintf(err, errlen, "--memory %s: must be a whole number of MiB", arg);
			return -EINVAL;
		}
		def->memory = v;
		return 0;
	case OPT_DEBUG_EXIT:
		def->debug_exit = true;
		return 0;
	}
	return -EINVAL;
}

static bool is_description_option(int c)
{
	return c == OPT_KERNEL || c == OPT_FIRMWARE || c == OPT_NVRAM || c == OPT_BOOT_ORDER ||
	       c == OPT_BOOT_MENU || c == OPT_INITRD || c == OPT_CMDLINE || c == OPT_NAME ||
	       c == OPT_CPUS || c == OPT_MEMORY || c == OPT_DEBUG_EXIT;
}

/* Whether n is one of fds[0..count) or of their chains (chains NULL: none). */
static bool in_slots(const int *fds, const struct machine_chain *chains, unsigned count, int n)
{
	for (unsigned i = 0; i < count; i++) {
		if (fds[i] == n)
			return true;
		for (unsigned j = 0; chains && j < chains[i].n; j++)
			if (chains[i].fd[j] == n)
				return true;
	}
	return false;
}

/* Whether descriptor n is already given by another --fd (each file keeld passes is its own
 * descriptor: one given twice would be closed twice). */
static bool fd_given(const struct vm_config *cfg, int n)
{
	const int one[] = {cfg->kernel_fd,    cfg->initrd_fd,  cfg->kvm_fd,    cfg->firmware_fd,
			   cfg->nvram_dir_fd, cfg->control_fd, cfg->serial_fd, cfg->console_fd,
			   cfg->vsock_fd,     cfg->config_fd,  cfg->status_fd, cfg->state_fd,
			   cfg->memory_fd,    cfg->vars_fd};

	return in_slots(one, NULL, sizeof(one) / sizeof(one[0]), n) ||
	       in_slots(cfg->disk_fds, cfg->disk_chains, VMDEF_MAX_DISKS, n) ||
	       in_slots(cfg->lun_fds, cfg->lun_chains, VMDEF_MAX_LUNS, n) ||
	       in_slots(cfg->net_fds[0], NULL, VMDEF_MAX_NICS * VMDEF_NET_QUEUES_MAX, n) ||
	       in_slots(cfg->vhost_fds[0], NULL, VMDEF_MAX_NICS * VMDEF_NET_QUEUES_MAX, n);
}

/*
 * --fd disk.I.pJ=N, lun.I.pJ=N: the Jth parent (0: the nearest) of the differencing chain of
 * disk (SCSI LUN) I, opened by keeld, which resolved and checked the chain; given in order.
 * 1 when arg is not of this form.
 */
static int parse_chain_fd(const char *arg, const char *eq, struct vm_config *cfg, char *err,
			  size_t errlen)
{
	bool lun = !strncmp(arg, "lun.", 4);
	const char *idx = arg + (lun ? 4 : 5), *p = strstr(idx, ".p");
	char num[8] = {0}, lvl[8] = {0};
	uint64_t i, j, n;
	struct machine_chain *c;

	if ((!lun && strncmp(arg, "disk.", 5)) || !p || p > eq || p - idx >= (long)sizeof(num) ||
	    eq - p - 2 >= (long)sizeof(lvl))
		return 1;
	memcpy(num, idx, (size_t)(p - idx));
	memcpy(lvl, p + 2, (size_t)(eq - p - 2));
	if (parse_uint(num, 0, (lun ? VMDEF_MAX_LUNS : VMDEF_MAX_DISKS) - 1, &i) ||
	    parse_uint(lvl, 0, VMDEF_CHAIN_FDS_MAX - 1, &j) || parse_uint(eq + 1, 3, 65535, &n) ||
	    fcntl((int)n, F_GETFD) < 0) {
		snprintf(err, errlen,
			 "--fd %s: expected disk.I.pJ=N or lun.I.pJ=N with I a disk's or LUN's "
			 "index, J a parent's level (0: the nearest) and N an open descriptor",
			 arg);
		return -EINVAL;
	}
	c = lun ? &cfg->lun_chains[i] : &cfg->disk_chains[i];
	if (j != c->n || cfg->nchain_fds == VMDEF_CHAIN_FDS_MAX) {
		snprintf(err, errlen,
			 j != c->n ? "--fd %s: parents go in order from p0 (expected p%u)"
				   : "--fd %s: more than %u parents in all",
			 arg, j != c->n ? c->n : VMDEF_CHAIN_FDS_MAX);
		return -EINVAL;
	}
	if (fd_given(cfg, (int)n)) {
		snprintf(err, errlen, "--fd %.*s: descriptor %u is already given", (int)(eq - arg),
			 arg, (unsigned)n);
		return -EINVAL;
	}
	c->fd[c->n++] = (int)n;
	cfg->nchain_fds++;
	return 0;
}

/* The --fd names of one descriptor each: where config keeps it. */
static const struct {
	const char *name;
	size_t off;
} fd_names[] = {
	{"kernel", offsetof(struct vm_config, kernel_fd)},
	{"initrd", offsetof(struct vm_config, initrd_fd)},
	{"kvm", offsetof(struct vm_config, kvm_fd)},
	{"firmware", offsetof(struct vm_config, firmware_fd)},
	{"nvram", offsetof(struct vm_config, nvram_dir_fd)},
	{"control", offsetof(struct vm_config, control_fd)},
	{"serial", offsetof(struct vm_config, serial_fd)},
	{"console", offsetof(struct vm_config, console_fd)},
	{"vsock", offsetof(struct vm_config, vsock_fd)},
	{"config", offsetof(struct vm_config, config_fd)},
	{"status", offsetof(struct vm_config, status_fd)},
	{"state", offsetof(struct vm_config, state_fd)},
	{"memory", offsetof(struct vm_config, memory_fd)},
	{"vars", offsetof(struct vm_config, vars_fd)},
};

/* "I=" or "I.qJ=" (from s to eq) of --fd net.I[.qJ] and vhost.I[.qJ]: adapter I's queue
 * pair J's slot in fds (J 0 when not given), or NULL when I or J is out of range. */
static int *pair_fd_slot(const char *s, const char *eq, int (*fds)[VMDEF_NET_QUEUES_MAX])
{
	char idx[4] = {0}, q[4] = {0};
	const char *dot = memchr(s, '.', (size_t)(eq - s));
	uint64_t i, j = 0;

	if ((dot ? dot : eq) - s > 2 || (dot && (dot[1] != 'q' || eq - dot - 2 > 2)))
		return NULL;
	memcpy(idx, s, (size_t)((dot ? dot : eq) - s));
	if (parse_uint(idx, 0, VMDEF_MAX_NICS - 1, &i))
		return NULL;
	if (dot) {
		memcpy(q, dot + 2, (size_t)(eq - dot - 2));
		if (parse_uint(q, 1, VMDEF_NET_QUEUES_MAX - 1, &j))
			return NULL;
	}
	return &fds[i][j];
}

/*
 * --fd NAME=N: the file the description names as kernel, initrd or disk.I (its Ith disk) is
 * already open as descriptor N (keeld opened and checked it, and passed it at exec): the
 * worker uses N and never opens that path. N must be open, 3 or above, and not given twice.
 */
static int parse_fd_option(const char *arg, struct vm_config *cfg, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	uint64_t n, i;
	int *slot = NULL, r;

	if (eq && (r = parse_chain_fd(arg, eq, cfg, err, errlen)) <= 0)
		return r;
	for (size_t k = 0; eq && k < sizeof(fd_names) / sizeof(fd_names[0]); k++)
		if ((size_t)(eq - arg) == strlen(fd_names[k].name) &&
		    !strncmp(arg, fd_names[k].name, (size_t)(eq - arg)))
			slot = (int *)((char *)cfg + fd_names[k].off);
	/* (a name of fd_names has no '.') */
	if (eq && !strncmp(arg, "disk.", 5) && eq - arg <= 8) {
		char idx[4] = {0};

		memcpy(idx, arg + 5, (size_t)(eq - arg - 5));
		if (!parse_uint(idx, 0, VMDEF_MAX_DISKS - 1, &i))
			slot = &cfg->disk_fds[i];
	} else if (eq && !strncmp(arg, "net.", 4)) {
		slot = pair_fd_slot(arg + 4, eq, cfg->net_fds);
	} else if (eq && !strncmp(arg, "vhost.", 6)) {
		slot = pair_fd_slot(arg + 6, eq, cfg->vhost_fds);
	} else if (eq && !strncmp(arg, "lun.", 4) && eq - arg <= 6) {
		char idx[4] = {0};

		memcpy(idx, arg + 4, (size_t)(eq - arg - 4));
		if (!parse_uint(idx, 0, VMDEF_MAX_LUNS - 1, &i))
			slot = &cfg->lun_fds[i];
	}
	if (!slot || parse_uint(eq + 1, 3, 65535, &n) || fcntl((int)n, F_GETFD) < 0) {
		snprintf(err, errlen,
			 "--fd %s: expected NAME=N, N an open descriptor, 3 or above, NAME one of "
			 "kernel, initrd, kvm, firmware, nvram, control, serial, console, vsock, "
			 "config, status, state, memory, vars, disk.I (I 0 to %d), lun.I (0 to "
			 "%d), net.I[.qJ], vhost.I[.qJ] (0 to %d; J 1 to %d) (keel-vmm --help)",
			 arg, VMDEF_MAX_DISKS - 1, VMDEF_MAX_LUNS - 1, VMDEF_MAX_NICS - 1,
			 VMDEF_NET_QUEUES_MAX - 1);
		return -EINVAL;
	}
	if (*slot >= 0) {
		snprintf(err, errlen, "--fd %s: given twice", arg);
		return -EINVAL;
	}
	if (fd_given(cfg, (int)n)) {
		snprintf(err, errlen, "--fd %.*s: descriptor %u is already given", (int)(eq - arg),
			 arg, (unsigned)n);
		return -EINVAL;
	}
	*slot = (int)n;
	return 0;
}

/*
 * --fd config, status, state and memory stand for --config, --status-file and --restore
 * (each its own way: one of the pair, never both); state and memory go together.
 */
static int given_files(struct vm_config *cfg, char *err, size_t errlen)
{
	const struct {
		int fd;
		const char *name, *option;
		bool by_path;
	} alt[] = {
		{cfg->config_fd, "config", "--config", cfg->config_path != NULL},
		{cfg->status_fd, "status", "--status-file", cfg->status_path != NULL},
		{cfg->state_fd, "state", "--restore", cfg->restore_dir != NULL},
		{cfg->memory_fd, "memory", "--restore", cfg->restore_dir != NULL},
	};

	for (size_t i = 0; i < sizeof(alt) / sizeof(alt[0]); i++)
		if (alt[i].fd >= 0 && alt[i].by_path) {
			snprintf(err, errlen, "--fd %s and %s name the same file: give one",
				 alt[i].name, alt[i].option);
			return -EINVAL;
		}
	if ((cfg->state_fd >= 0) != (cfg->memory_fd >= 0)) {
		snprintf(err, errlen, "--fd state and --fd memory go together (a saved state)");
		return -EINVAL;
	}
	if (cfg->config_fd >= 0)
		cfg->config_path = CONFIG_FD_NAME;
	if (cfg->state_fd >= 0)
		cfg->restore_dir = RESTORE_FD_NAME;
	return 0;
}

/* --jail-user UID:GID: the worker's own user and group, neither 0. */
static int parse_jail_user(const char *arg, struct vm_config *cfg, char *err, size_t errlen)
{
	const char *colon = strchr(arg, ':');
	char uid[16] = {0};
	uint64_t u, g;

	if (!colon || colon - arg >= (long)sizeof(uid) ||
	    (memcpy(uid, arg, (size_t)(colon - arg)), parse_uint(uid, 1, 0xfffffffe, &u)) ||
	    parse_uint(colon + 1, 1, 0xfffffffe, &g)) {
		snprintf(err, errlen,
			 "--jail-user %s: expected UID:GID, two numbers from 1 to 4294967294", arg);
		return -EINVAL;
	}
	cfg->jail = true;
	cfg->jail_uid = (unsigned)u;
	cfg->jail_gid = (unsigned)g;
	return 0;
}

/* --help: the machine's options, then every device option from the table. */
static void print_usage(const struct config_optable *t)
{
	fputs(usage_head, stdout);
	for (size_t i = 0; i < t->ndev; i++)
		printf("  --%s%s%s\n        %s\n", t->dev[i]->name, t->dev[i]->value ? " " : "",
		       t->dev[i]->value ? t->dev[i]->value : "", t->dev[i]->help);
	fputs(usage_tail, stdout);
}

/* Options that say how this worker runs the VM. Returns 1 for --help and --version. */
static int parse_run_option(int c, int argc, char **argv, const struct config_optable *t,
			    struct vm_config *cfg, char *err, size_t errlen)
{
	switch (c) {
	case OPT_SERIAL:
		if (vmdef_chardev_parse(optarg, &cfg->serial)) {
			snprintf(err, errlen,
				 "--serial %s: expected stdio, file:PATH, unix:PATH or off",
				 optarg);
			return -EINVAL;
		}
		return 0;
	case OPT_NO_REBOOT:
		cfg->no_reboot = true;
		return 0;
	case OPT_FIRMWARE_DEBUG:
		cfg->firmware_debug = true;
		return 0;
	case OPT_EXIT_STATS:
		cfg->exit_stats = true;
		return 0;
	case OPT_PAUSED:
		cfg->paused = true;
		return 0;
	case OPT_CONTROL:
		cfg->control_path = optarg;
		return 0;
	case OPT_STATUS_FILE:
		cfg->status_path = optarg;
		return 0;
	case OPT_RESTORE:
		cfg->restore_dir = optarg;
		return 0;
	case OPT_CONFIG:
		cfg->config_path = optarg;
		return 0;
	case OPT_FD:
		return parse_fd_option(optarg, cfg, err, errlen);
	case OPT_JAIL_USER:
		return parse_jail_user(optarg, cfg, err, errlen);
	case OPT_JAIL_ROOT:
		if (optarg[0] != '/' || strstr(optarg, "/../") || strstr(optarg, "/./") ||
		    !strcmp(optarg, "/")) {
			snprintf(err, errlen,
				 "--jail-root %s: expected an absolute directory other than /, "
				 "without . or .. components",
				 optarg);
			return -EINVAL;
		}
		cfg->jail_root = optarg;
		return 0;
	case OPT_HELP:
		print_usage(t);
		return 1;
	case OPT_VERSION:
		puts("keel-vmm " KEEL_VERSION);
		return 1;
	case ':':
		snprintf(err, errlen, "%s needs a value", argv[optind - 1]);
		return -EINVAL;
	default:
		snprintf(err, errlen, "unknown option %s (see keel-vmm --help)",
			 argv[optind - 1 < argc ? optind - 1 : argc - 1]);
		return -EINVAL;
	}
}

/* A descriptor passed for the Ith disk or card of a VM that has only n of them. */
static int fds_beyond(const int *fds, unsigned n, unsigned max, const char *opt, const char *what,
		      char *err, size_t errlen)
{
	for (unsigned i = n; i < max; i++) {
		if (fds[i] >= 0) {
			snprintf(err, errlen, "--fd %s.%u: the VM has %u %s%s", opt, i, n, what,
				 n == 1 ? "" : "s");
			return -EINVAL;
		}
	}
	return 0;
}

/* The taps' queues (opt "net") or the adapters' /dev/vhost-net (opt "vhost"), one per queue
 * pair (what: "tap queue", "/dev/vhost-net"): every pair's or none of an adapter's (then keel-vmm
 * opens them), none beyond its pairs or its adapters. */
static int pair_fds_check(const struct vm_config *cfg, const int (*fds)[VMDEF_NET_QUEUES_MAX],
			  const char *opt, const char *what, char *err, size_t errlen)
{
	for (unsigned i = 0; i < VMDEF_MAX_NICS; i++) {
		unsigned nq = i < cfg->def.nnics ? vmdef_nic_queues(&cfg->def, i) : 0;
		bool first = fds[i][0] >= 0;

		if (first && i >= cfg->def.nnics) {
			snprintf(err, errlen, "--fd %s.%u: the VM has %u network card%s", opt, i,
				 cfg->def.nnics, cfg->def.nnics == 1 ? "" : "s");
			return -EINVAL;
		}
		for (unsigned j = 1; j < VMDEF_NET_QUEUES_MAX; j++) {
			if (fds[i][j] < 0 ? !first || j >= nq : j < nq && first)
				continue;
			if (j >= nq)
				snprintf(err, errlen,
					 "--fd %s.%u.q%u: that network card has %u queue pair%s",
					 opt, i, j, nq, nq == 1 ? "" : "s");
			else if (first)
				snprintf(err, errlen,
					 "--fd %s.%u.q%u is missing: network card %u has %u queue "
					 "pairs, a %s each",
					 opt, i, j, i, nq, what);
			else
				snprintf(err, errlen,
					 "--fd %s.%u.q%u without --fd %s.%u: pass every pair's %s "
					 "or "
					 "none",
					 opt, i, j, opt, i, what);
			return -EINVAL;
		}
	}
	return 0;
}

void config_free(struct vm_config *cfg)
{
	vmdef_free(&cfg->def);
}

/* Whether name is already in t (the machine's options, then the devices' so far). */
static const char *option_owner(const struct config_optable *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->opt[i].name, name))
			continue;
		return t->opt[i].val >= CONFIG_OPT_DEVICE
			       ? t->dev_kind[t->opt[i].val - CONFIG_OPT_DEVICE]->field
			       : "keel-vmm's own options";
	}
	return NULL;
}

int config_options_build(struct config_optable *t, const struct vmdef_device_kind *const *kinds,
			 size_t nkinds, char *err, size_t errlen)
{
	*t = (struct config_optable){0};
	for (size_t i = 0; machine_options[i].name; i++)
		t->opt[t->n++] = machine_options[i];
	for (size_t k = 0; k < nkinds; k++) {
		for (const struct vmdef_option *o = kinds[k]->options; o && o->name; o++) {
			const char *owner = option_owner(t, o->name);

			if (owner) {
				snprintf(err, errlen,
					 "option --%s of device kind '%s' is also one of %s%s",
					 o->name, kinds[k]->field,
					 owner[0] == 'k' ? "" : "device kind ", owner);
				return -EINVAL;
			}
			if (t->n == CONFIG_OPTIONS_MAX) {
				snprintf(err, errlen, "more than %d options (CONFIG_OPTIONS_MAX)",
					 CONFIG_OPTIONS_MAX);
				return -EINVAL;
			}
			t->dev[t->ndev] = o;
			t->dev_kind[t->ndev] = kinds[k];
			t->opt[t->n++] =
				(struct option){o->name, o->value ? required_argument : no_argument,
						NULL, CONFIG_OPT_DEVICE + (int)t->ndev};
			t->ndev++;
		}
	}
	return 0;
}

/* --fd NAME=FD (a socket keeld bound: control, serial, console, vsock) stands for the socket
 * at PATH, which the worker serves (NULL: it serves none there, what OPTION says). */
static int check_socket_fd(int fd, const char *name, const char *path, const char *option,
			   char *err, size_t errlen)
{
	int r;

	if (fd < 0)
		return 0;
	if (!path) {
		snprintf(err, errlen, "--fd %s: the worker serves no %s socket (%s)", name, name,
			 option);
		return -EINVAL;
	}
	r = unix_bound_to(fd, path);
	if (r)
		snprintf(err, errlen, "--fd %s=%d: not a Unix stream socket bound to %s (%s)", name,
			 fd, path,
			 r == -EPROTOTYPE      ? "another kind of descriptor"
			 : r == -EADDRNOTAVAIL ? "bound elsewhere or not at all"
					       : strerror(-r));
	return r ? -EINVAL : 0;
}

int config_run_words(int argc, char **argv, char **out, int max, char *err, size_t errlen)
{
	struct config_optable t;
	int c, idx, n = 0, r;

	r = config_options_build(&t, vmdef_devices, vmdef_ndevices, err, errlen);
	if (r)
		return r;
	optind = 0; /* a full reset of getopt, as config_parse */
	opterr = 0;
	for (int before = 1; (c = getopt_long(argc, argv, "+:", t.opt, &idx)) != -1;
	     before = optind) {
		const struct vmdef_option *dev =
			c >= CONFIG_OPT_DEVICE ? t.dev[c - CONFIG_OPT_DEVICE] : NULL;

		if (c == '?' || c == ':') {
			snprintf(err, errlen, "'%s': not an option keel-vmm takes with its value",
				 argv[before]);
			return -EINVAL;
		}
		if (is_description_option(c) || (dev && !dev->host))
			continue;
		for (int w = before; w < optind; w++) {
			if (n == max) {
				snprintf(err, errlen, "more than %d words of worker options", max);
				return -E2BIG;
			}
			out[n++] = argv[w];
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see keel-vmm --help)",
			 argv[optind]);
		return -EINVAL;
	}
	return n;
}

const char *config_socket(const struct vm_config *cfg, enum config_sock s, int *fd)
{
	const struct chardev_spec *con = &cfg->host.console;

	switch (s) {
	case CONFIG_SOCK_CONTROL:
		*fd = cfg->control_fd;
		return cfg->control_path;
	case CONFIG_SOCK_SERIAL:
		*fd = cfg->serial_fd;
		return cfg->serial.kind == CHARDEV_UNIX ? cfg->serial.path : NULL;
	case CONFIG_SOCK_CONSOLE:
		*fd = cfg->console_fd;
		return cfg->def.console.present && con->kind == CHARDEV_UNIX ? con->path : NULL;
	case CONFIG_SOCK_VSOCK:
		*fd = cfg->vsock_fd;
		return cfg->def.vsock.present && cfg->host.vsock_socket[0] ? cfg->host.vsock_socket
									   : NULL;
	}
	*fd = -1;
	return NULL;
}

static int check_socket_fds(const struct vm_config *cfg, char *err, size_t errlen)
{
	static const struct {
		const char *name, *option;
	} socks[CONFIG_NSOCKS] = {
		[CONFIG_SOCK_CONTROL] = {"control", "--control PATH"},
		[CONFIG_SOCK_SERIAL] = {"serial", "--serial unix:PATH"},
		[CONFIG_SOCK_CONSOLE] = {"console", "--console unix:PATH"},
		[CONFIG_SOCK_VSOCK] = {"vsock", "--vsock-socket PATH"},
	};
	int r = 0;

	for (unsigned s = 0; !r && s < CONFIG_NSOCKS; s++) {
		int fd;
		const char *path = config_socket(cfg, (enum config_sock)s, &fd);

		r = check_socket_fd(fd, socks[s].name, path, socks[s].option, err, errlen);
	}
	return r;
}

int config_parse(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
	const char *described_by = NULL; /* the first description option, for the message */
	struct config_optable t;
	int c, r, idx = -1;

	*cfg = (struct vm_config){
		.serial = {CHARDEV_STDIO, NULL},
		.host.console = {CHARDEV_OFF, NULL},
		.kernel_fd = -1,
		.initrd_fd = -1,
		.kvm_fd = -1,
		.firmware_fd = -1,
		.nvram_dir_fd = -1,
		.control_fd = -1,
		.serial_fd = -1,
		.console_fd = -1,
		.vsock_fd = -1,
		.config_fd = -1,
		.status_fd = -1,
		.state_fd = -1,
		.memory_fd = -1,
		.vars_fd = -1,
	};
	for (unsigned d = 0; d < VMDEF_MAX_DISKS; d++)
		cfg->disk_fds[d] = -1;
	for (unsigned d = 0; d < VMDEF_MAX_NICS; d++)
		for (unsigned q = 0; q < VMDEF_NET_QUEUES_MAX; q++)
			cfg->net_fds[d][q] = cfg->vhost_fds[d][q] = -1;
	for (unsigned d = 0; d < VMDEF_MAX_LUNS; d++)
		cfg->lun_fds[d] = -1;
	vmdef_init(&cfg->def);
	optind = 0; /* full reset of getopt, so tests can call this repeatedly */
	opterr = 0;
	r = config_options_build(&t, vmdef_devices, vmdef_ndevices, err, errlen);
	if (r)
		goto out;
	while ((c = getopt_long(argc, argv, ":", t.opt, &idx)) != -1) {
		const struct vmdef_option *dev =
			c >= CONFIG_OPT_DEVICE ? t.dev[c - CONFIG_OPT_DEVICE] : NULL;

		if (is_description_option(c) || (dev && !dev->host)) {
			if (!described_by)
				described_by = t.opt[idx].name;
		}
		if (dev)
			r = dev->parse(&cfg->def, &cfg->host, dev->value ? optarg : NULL, err,
				       errlen);
		else if (is_description_option(c))
			r = parse_description_option(c, optarg, cfg, err, errlen);
		else
			r = parse_run_option(c, argc, argv, &t, cfg, err, errlen);
		if (r)
			goto out;
	}
	r = -EINVAL;
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see keel-vmm --help)",
			 argv[optind]);
		goto out;
	}
	r = given_files(cfg, err, errlen);
	if (r)
		goto out;
	r = -EINVAL;
	if (cfg->config_path) {
		if (described_by) {
			snprintf(err, errlen,
				 "--%s describes the VM, and so does --config %s: put it in the "
				 "file (docs/vm-config.md)",
				 described_by, cfg->config_path);
			goto out;
		}
		vmdef_free(&cfg->def);
		r = cfg->config_fd >= 0 ? vmdef_load_fd(cfg->config_fd, cfg->config_path, &cfg->def,
							err, errlen)
					: vmdef_load_file(cfg->config_path, &cfg->def, err, errlen);
		if (cfg->config_fd >= 0) { /* read whole: the worker keeps no descriptor of it */
			close(cfg->config_fd);
			cfg->config_fd = -1;
		}
		if (r)
			goto out;
	}
	r = 0;
	/* Each kind reconciles its host side (--console, --vsock) with the description. */
	for (size_t k = 0; !r && k < vmdef_ndevices; k++)
		if (vmdef_devices[k]->options_done)
			r = vmdef_devices[k]->options_done(&cfg->def, &cfg->host, cfg->config_path,
							   err, errlen);
	if (r)
		goto out;
	r = -EINVAL;
	if (!cfg->config_path) {
		if (!cfg->def.kernel && cfg->def.firmware == VM_FIRMWARE_NONE) {
			snprintf(err, errlen,
				 "--kernel FILE, --firmware bios|uefi or --config FILE is required "
				 "(see keel-vmm --help)");
			goto out;
		}
		r = vmdef_assign_slots(&cfg->def, err, errlen);
		if (!r)
			r = vmdef_check(&cfg->def, err, errlen);
		if (r)
			goto out;
		r = -EINVAL;
	}
	r = check_socket_fds(cfg, err, errlen);
	if (r)
		goto out;
	r = -EINVAL;
	if (cfg->jail != (cfg->jail_root != NULL)) {
		snprintf(err, errlen, "--jail-user and --jail-root go together");
		r = -EINVAL;
		goto out;
	}
	/* Each passed descriptor stands for a file the description names. */
	if (cfg->initrd_fd >= 0 && !cfg->def.initrd) {
		snprintf(err, errlen, "--fd initrd: the VM has no initrd");
		r = -EINVAL;
		goto out;
	}
	if (cfg->firmware_fd >= 0 && cfg->def.firmware == VM_FIRMWARE_NONE) {
		snprintf(err, errlen, "--fd firmware: the VM boots its kernel directly");
		r = -EINVAL;
		goto out;
	}
	if (cfg->nvram_dir_fd >= 0 && !cfg->def.nvram) {
		snprintf(err, errlen, "--fd nvram: the VM has no NVRAM file");
		r = -EINVAL;
		goto out;
	}
	if (cfg->nvram_dir_fd >= 0) {
		struct stat st;

		if (fstat(cfg->nvram_dir_fd, &st) || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen,
				 "--fd nvram=%d: not a directory (pass the NVRAM file's "
				 "directory)",
				 cfg->nvram_dir_fd);
			r = -EINVAL;
			goto out;
		}
	}
	r = fds_beyond(cfg->disk_fds, cfg->def.ndisks, VMDEF_MAX_DISKS, "disk", "disk", err,
		       errlen);
	if (!r)
		r = pair_fds_check(cfg, cfg->net_fds, "net", "tap queue", err, errlen);
	if (!r)
		r = pair_fds_check(cfg, cfg->vhost_fds, "vhost", "/dev/vhost-net", err, errlen);
	if (!r)
		r = fds_beyond(cfg->lun_fds, cfg->def.scsi.nluns, VMDEF_MAX_LUNS, "lun", "SCSI LUN",
			       err, errlen);
	for (unsigned i = 0; !r && i < cfg->def.scsi.nluns; i++) {
		if (cfg->lun_fds[i] >= 0 && !cfg->def.scsi.luns[i].disk.path) {
			snprintf(err, errlen, "--fd lun.%u: that DVD drive is empty", i);
			r = -EINVAL;
		}
	}
	if (r)
		goto out;
	for (unsigned i = 0; i < cfg->def.ndisks; i++)
		resolve_format(&cfg->def.disks[i]);
	for (unsigned i = 0; i < cfg->def.scsi.nluns; i++)
		resolve_format(&cfg->def.scsi.luns[i].disk);
	/* A chain belongs to a passed VHDX disk. */
	for (unsigned i = 0; !r && i < VMDEF_MAX_DISKS + VMDEF_MAX_LUNS; i++) {
		bool lun = i >= VMDEF_MAX_DISKS;
		unsigned k = lun ? i - VMDEF_MAX_DISKS : i;
		const struct vm_disk *d =
			lun ? (k < cfg->def.scsi.nluns ? &cfg->def.scsi.luns[k].disk : NULL)
			    : (k < cfg->def.ndisks ? &cfg->def.disks[k] : NULL);

		if (!(lun ? cfg->lun_chains[k].n : cfg->disk_chains[k].n))
			continue;
		if (!d || (lun ? cfg->lun_fds[k] : cfg->disk_fds[k]) < 0 ||
		    d->format != VM_DISK_VHDX ||
		    (lun && cfg->def.scsi.luns[k].type != VM_LUN_DISK)) {
			snprintf(err, errlen,
				 "--fd %s.%u.p0: parents go with a VHDX disk passed as --fd %s.%u",
				 lun ? "lun" : "disk", k, lun ? "lun" : "disk", k);
			r = -EINVAL;
		}
	}
	if (r)
		goto out;
	/* An adapter without a MAC gets its stable default now, so that the description (and a
	 * saved state's) says what the guest sees. */
	for (unsigned i = 0; i < cfg->def.nnics; i++) {
		struct vm_nic *n = &cfg->def.nics[i];
		uint8_t m[6];

		if (n->mac[0])
			continue;
		virtio_net_default_mac(n->tap, m);
		vmdef_mac_format(m, n->mac);
	}
	if (cfg->serial.kind == CHARDEV_STDIO && cfg->host.console.kind == CHARDEV_STDIO) {
		snprintf(err, errlen,
			 "--serial and --console cannot both be stdio (set one of "
			 "them to off, file:PATH or unix:PATH)");
		goto out;
	}
	r = 0;
out:
	if (r)
		config_free(cfg);
	return r;
}
