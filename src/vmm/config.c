/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "lib/parse.h"
#include "vmm/virtio/net.h"

static const char config_usage[] =
	"usage: keel-vmm --config FILE | --kernel FILE [--initrd FILE] [--cmdline STRING]\n"
	"                | --firmware bios|uefi[=FILE] [--nvram FILE] [--boot-order LIST]\n"
	"                [--cpus N] [--memory SIZE] [--name NAME]\n"
	"                [--disk "
	"path=FILE[,format=raw|vhdx][,readonly=on][,serial=S][,slot=N][,bus=scsi]]...\n"
	"                [--dvd FILE|none]...\n"
	"                [--net tap=IFNAME[,mac=MAC][,slot=N]]... [--no-rng] [--debug-exit]\n"
	"                [--serial stdio|file:PATH|unix:PATH|off]\n"
	"                [--console stdio|file:PATH|unix:PATH|off]\n"
	"                [--vsock [cid=N,]socket=PATH] [--vsock-socket PATH]\n"
	"                [--no-reboot] [--firmware-debug] [--control PATH] [--status-file PATH]\n"
	"                [--restore DIR] [--paused] [--fd "
	"kernel|initrd|kvm|firmware|nvram|disk.I|net.I|lun.I=N]...\n"
	"                [--jail-user UID:GID --jail-root DIR]\n"
	"\n"
	"Runs one virtual machine on KVM. The VM is described by a JSON document (--config,\n"
	"docs/vm-config.md) or by the options from --kernel to --debug-exit, not both.\n"
	"SIZE takes K, M, G or T (plain numbers are MiB). Defaults: 1 vCPU, 512M, serial on\n"
	"stdio. See docs/keel-vmm.md.\n";

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

static int parse_slot(const char *v, uint8_t *slot)
{
	uint64_t x;

	if (parse_uint(v, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX, &x))
		return -EINVAL;
	*slot = (uint8_t)x;
	return 0;
}

int config_parse_disk(const char *s, struct vm_disk *d, bool *scsi, char *err, size_t errlen)
{
	char k[16], v[VMDEF_PATH_MAX + 1];
	const char *p = s;
	int too_long;

	memset(d, 0, sizeof(*d));
	*scsi = false;
	while ((p = next_kv(p, k, sizeof(k), v, sizeof(v), &too_long))) {
		if (too_long) {
			snprintf(err, errlen, "--disk %s: an option or value is too long", s);
			goto fail;
		}
		if (!strcmp(k, "path") && *v && !d->path) {
			d->path = strdup(v);
			if (!d->path) {
				snprintf(err, errlen, "--disk %s: out of memory", s);
				return -ENOMEM;
			}
		} else if (!strcmp(k, "readonly") && !parse_on_off(v, &d->readonly)) {
		} else if (!strcmp(k, "format") && (!strcmp(v, "raw") || !strcmp(v, "vhdx"))) {
			d->format = !strcmp(v, "raw") ? VM_DISK_RAW : VM_DISK_VHDX;
		} else if (!strcmp(k, "cache") && !vmdef_disk_cache_parse(v, &d->cache)) {
		} else if (!strcmp(k, "slot") && !parse_slot(v, &d->pci_slot)) {
		} else if (!strcmp(k, "bus") && (!strcmp(v, "virtio") || !strcmp(v, "scsi"))) {
			*scsi = !strcmp(v, "scsi");
		} else if (!strcmp(k, "serial")) {
			if (strlen(v) > VMDEF_SERIAL_MAX) {
				snprintf(err, errlen, "--disk %s: serial is at most %d characters",
					 s, VMDEF_SERIAL_MAX);
				goto fail;
			}
			memcpy(d->serial, v, strlen(v) + 1); /* length checked above */
		} else {
			snprintf(err, errlen,
				 "--disk %s: expected path=FILE[,format=raw|vhdx][,readonly=on|off]"
				 "[,cache=none|writeback|unsafe][,serial=STRING][,slot=%d..%d]"
				 "[,bus=virtio|scsi] (a path with a comma needs --config)",
				 s, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX);
			goto fail;
		}
	}
	if (!d->path) {
		snprintf(err, errlen, "--disk %s: path=FILE is required", s);
		return -EINVAL;
	}
	if (*scsi && d->pci_slot) {
		snprintf(err, errlen,
			 "--disk %s: a disk on the SCSI bus has no PCI slot of its own (the "
			 "controller has one)",
			 s);
		goto fail;
	}
	return 0;
fail:
	free(d->path);
	d->path = NULL;
	return -EINVAL;
}

int config_parse_net(const char *s, struct vm_nic *n, char *err, size_t errlen)
{
	char k[16], v[64];
	const char *p = s;
	uint8_t mac[6];
	int too_long;

	memset(n, 0, sizeof(*n));
	while ((p = next_kv(p, k, sizeof(k), v, sizeof(v), &too_long))) {
		if (too_long) {
			snprintf(err, errlen, "--net %s: an option or value is too long", s);
			return -EINVAL;
		}
		if (!strcmp(k, "tap") && vmdef_tap_ok(v)) {
			memcpy(n->tap, v, strlen(v) + 1); /* length checked by vmdef_tap_ok */
		} else if (!strcmp(k, "mac") && !vmdef_mac_parse(v, mac)) {
			vmdef_mac_format(mac, n->mac);
		} else if (!strcmp(k, "slot") && !parse_slot(v, &n->pci_slot)) {
		} else {
			snprintf(err, errlen,
				 "--net %s: expected tap=IFNAME (1 to %d characters)[,mac=52:54:00:"
				 "xx:xx:xx] (a unicast MAC)[,slot=%d..%d]",
				 s, VMDEF_TAP_MAX, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX);
			return -EINVAL;
		}
	}
	if (!n->tap[0]) {
		snprintf(err, errlen, "--net %s: tap=IFNAME is required", s);
		return -EINVAL;
	}
	return 0;
}

/* Make path absolute against the working directory into out (size bytes); -EINVAL when it
 * cannot be or does not fit. */
static int absolute_path(const char *path, char *out, size_t size)
{
	char cwd[VMDEF_PATH_MAX + 1];
	int n;

	if (path[0] == '/')
		n = snprintf(out, size, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, size, "%s/%s", cwd, path);
	else
		return -EINVAL;
	return n < 0 || (size_t)n >= size ? -EINVAL : 0;
}

int config_parse_vsock(const char *s, uint32_t *cid, char socket[VMDEF_VSOCK_SOCKET_MAX + 1],
		       char *err, size_t errlen)
{
	char k[16], v[VMDEF_PATH_MAX + 1];
	const char *p = s;
	uint64_t x;
	int too_long;

	*cid = 0;
	socket[0] = 0;
	while ((p = next_kv(p, k, sizeof(k), v, sizeof(v), &too_long))) {
		if (too_long) {
			snprintf(err, errlen, "--vsock %s: an option or value is too long", s);
			return -EINVAL;
		}
		if (socket[0]) {
			/* Whatever follows socket=PATH was part of the path: a path is never split
			 * (nor a second socket= taken in its place). */
			snprintf(err, errlen,
				 "--vsock %s: the socket path cannot contain a comma (and comes "
				 "last); pass such a path whole with --vsock-socket=PATH",
				 s);
			return -EINVAL;
		}
		if (!strcmp(k, "cid") &&
		    !parse_uint(v, VMDEF_VSOCK_CID_MIN, VMDEF_VSOCK_CID_MAX, &x)) {
			*cid = (uint32_t)x;
		} else if (!strcmp(k, "socket") && *v) {
			if (absolute_path(v, socket, VMDEF_VSOCK_SOCKET_MAX + 1)) {
				snprintf(err, errlen,
					 "--vsock: the socket's absolute path must be at most %d "
					 "bytes (PATH_<port> must fit a Unix socket address): %s",
					 VMDEF_VSOCK_SOCKET_MAX, v);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen,
				 "--vsock %s: expected [cid=N,]socket=PATH with N the guest's "
				 "context ID (%d to %u)",
				 s, VMDEF_VSOCK_CID_MIN, VMDEF_VSOCK_CID_MAX);
			return -EINVAL;
		}
	}
	if (!socket[0]) {
		snprintf(err, errlen, "--vsock %s: socket=PATH is required", s);
		return -EINVAL;
	}
	return 0;
}

int config_parse_vsock_socket(const char *path, char socket[VMDEF_VSOCK_SOCKET_MAX + 1], char *err,
			      size_t errlen)
{
	if (!*path || absolute_path(path, socket, VMDEF_VSOCK_SOCKET_MAX + 1)) {
		snprintf(err, errlen,
			 "--vsock-socket: the socket's absolute path must be 1 to %d bytes "
			 "(PATH_<port> must fit a Unix socket address): %s",
			 VMDEF_VSOCK_SOCKET_MAX, path);
		return -EINVAL;
	}
	return 0;
}

enum {
	OPT_KERNEL = 256,
	OPT_FIRMWARE,
	OPT_NVRAM,
	OPT_BOOT_ORDER,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_SERIAL,
	OPT_NO_REBOOT,
	OPT_FIRMWARE_DEBUG,
	OPT_PAUSED,
	OPT_DEBUG_EXIT,
	OPT_CONTROL,
	OPT_STATUS_FILE,
	OPT_NAME,
	OPT_RESTORE,
	OPT_HELP,
	OPT_VERSION,
	OPT_DISK,
	OPT_DVD,
	OPT_NET,
	OPT_CONSOLE,
	OPT_NO_RNG,
	OPT_VSOCK,
	OPT_VSOCK_SOCKET,
	OPT_CONFIG,
	OPT_FD,
	OPT_JAIL_USER,
	OPT_JAIL_ROOT,
};

static const struct option config_options[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"firmware", required_argument, NULL, OPT_FIRMWARE},
	{"nvram", required_argument, NULL, OPT_NVRAM},
	{"boot-order", required_argument, NULL, OPT_BOOT_ORDER},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"serial", required_argument, NULL, OPT_SERIAL},
	{"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
	{"firmware-debug", no_argument, NULL, OPT_FIRMWARE_DEBUG},
	{"paused", no_argument, NULL, OPT_PAUSED},
	{"debug-exit", no_argument, NULL, OPT_DEBUG_EXIT},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"status-file", required_argument, NULL, OPT_STATUS_FILE},
	{"restore", required_argument, NULL, OPT_RESTORE},
	{"fd", required_argument, NULL, OPT_FD},
	{"jail-user", required_argument, NULL, OPT_JAIL_USER},
	{"jail-root", required_argument, NULL, OPT_JAIL_ROOT},
	{"name", required_argument, NULL, OPT_NAME},
	{"disk", required_argument, NULL, OPT_DISK},
	{"dvd", required_argument, NULL, OPT_DVD},
	{"net", required_argument, NULL, OPT_NET},
	{"console", required_argument, NULL, OPT_CONSOLE},
	{"no-rng", no_argument, NULL, OPT_NO_RNG},
	{"vsock", required_argument, NULL, OPT_VSOCK},
	{"vsock-socket", required_argument, NULL, OPT_VSOCK_SOCKET},
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

/* A file named on the command line, made absolute against the working directory (not
 * resolved): a description, and so a saved state, names files by absolute path. */
static int set_path(char **dst, const char *v, char *err, size_t errlen)
{
	char cwd[VMDEF_PATH_MAX + 1], *abs;

	if (v[0] == '/')
		return set_text(dst, v, err, errlen);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, v) < 0) {
		snprintf(err, errlen, "%s: cannot make it an absolute path: %s", v,
			 strerror(errno));
		return -EINVAL;
	}
	if (strlen(abs) > VMDEF_PATH_MAX) {
		snprintf(err, errlen, "%s: the absolute path is longer than %d bytes", v,
			 VMDEF_PATH_MAX);
		free(abs);
		return -EINVAL;
	}
	free(*dst);
	*dst = abs;
	return 0;
}

/* --disk ...,bus=scsi and --dvd: the next LUN of the SCSI controller takes d (and its path,
 * made absolute; a DVD drive's may be NULL: empty). */
static int add_lun(struct vm_def *def, enum vm_lun_type type, struct vm_disk *d, char *err,
		   size_t errlen)
{
	struct vm_lun *l;

	if (def->scsi.nluns == VMDEF_MAX_LUNS) {
		snprintf(err, errlen,
			 "--%s: the SCSI controller has at most %d LUNs (disks and DVD "
			 "drives)",
			 type == VM_LUN_DVD ? "dvd" : "disk", VMDEF_MAX_LUNS);
		free(d->path);
		return -EINVAL;
	}
	l = &def->scsi.luns[def->scsi.nluns++];
	*l = (struct vm_lun){.type = type, .disk = *d};
	if (type == VM_LUN_DVD) {
		l->disk.readonly = true;
		l->disk.format = VM_DISK_RAW;
	}
	return l->disk.path && l->disk.path[0] != '/'
		       ? set_path(&l->disk.path, l->disk.path, err, errlen)
		       : 0;
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
		return set_path(&def->kernel, arg, err, errlen);
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
		return file ? set_path(&def->firmware_file, file + 1, err, errlen) : 0;
	}
	case OPT_NVRAM:
		return set_path(&def->nvram, arg, err, errlen);
	case OPT_BOOT_ORDER:
		return vmdef_boot_parse(def, arg, err, errlen);
	case OPT_INITRD:
		return set_path(&def->initrd, arg, err, errlen);
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
	case OPT_DISK: {
		struct vm_disk d;
		bool scsi;

		r = config_parse_disk(arg, &d, &scsi, err, errlen);
		if (r)
			return r;
		if (scsi)
			return add_lun(def, VM_LUN_DISK, &d, err, errlen);
		if (def->ndisks == VMDEF_MAX_DISKS) {
			snprintf(err, errlen, "--disk: at most %d disks", VMDEF_MAX_DISKS);
			free(d.path);
			return -EINVAL;
		}
		def->disks[def->ndisks++] = d;
		return def->disks[def->ndisks - 1].path[0] == '/'
			       ? 0
			       : set_path(&def->disks[def->ndisks - 1].path,
					  def->disks[def->ndisks - 1].path, err, errlen);
	}
	case OPT_DVD: {
		struct vm_disk d = {0};

		if (!*arg) {
			snprintf(err, errlen,
				 "--dvd: expected an ISO image, or none for an empty "
				 "drive");
			return -EINVAL;
		}
		if (strcmp(arg, "none")) {
			d.path = strdup(arg);
			if (!d.path) {
				snprintf(err, errlen, "--dvd %s: out of memory", arg);
				return -ENOMEM;
			}
		}
		return add_lun(def, VM_LUN_DVD, &d, err, errlen);
	}
	case OPT_NET:
		if (def->nnics == VMDEF_MAX_NICS) {
			snprintf(err, errlen, "--net: at most %d network cards", VMDEF_MAX_NICS);
			return -EINVAL;
		}
		r = config_parse_net(arg, &def->nics[def->nnics], err, errlen);
		if (!r)
			def->nnics++;
		return r;
	case OPT_NO_RNG:
		def->rng.present = false;
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
	       c == OPT_INITRD || c == OPT_CMDLINE || c == OPT_NAME || c == OPT_CPUS ||
	       c == OPT_MEMORY || c == OPT_DISK || c == OPT_DVD || c == OPT_NET ||
	       c == OPT_NO_RNG || c == OPT_DEBUG_EXIT;
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
	const int one[] = {cfg->kernel_fd, cfg->initrd_fd, cfg->kvm_fd, cfg->firmware_fd,
			   cfg->nvram_dir_fd};

	return in_slots(one, NULL, sizeof(one) / sizeof(one[0]), n) ||
	       in_slots(cfg->disk_fds, cfg->disk_chains, VMDEF_MAX_DISKS, n) ||
	       in_slots(cfg->lun_fds, cfg->lun_chains, VMDEF_MAX_LUNS, n) ||
	       in_slots(cfg->net_fds, NULL, VMDEF_MAX_NICS, n);
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
	if (eq && eq - arg == 6 && !strncmp(arg, "kernel", 6))
		slot = &cfg->kernel_fd;
	else if (eq && eq - arg == 6 && !strncmp(arg, "initrd", 6))
		slot = &cfg->initrd_fd;
	else if (eq && eq - arg == 3 && !strncmp(arg, "kvm", 3))
		slot = &cfg->kvm_fd;
	else if (eq && eq - arg == 8 && !strncmp(arg, "firmware", 8))
		slot = &cfg->firmware_fd;
	else if (eq && eq - arg == 5 && !strncmp(arg, "nvram", 5))
		slot = &cfg->nvram_dir_fd;
	else if (eq && !strncmp(arg, "disk.", 5) && eq - arg <= 8) {
		char idx[4] = {0};

		memcpy(idx, arg + 5, (size_t)(eq - arg - 5));
		if (!parse_uint(idx, 0, VMDEF_MAX_DISKS - 1, &i))
			slot = &cfg->disk_fds[i];
	} else if (eq && !strncmp(arg, "net.", 4) && eq - arg <= 6) {
		char idx[4] = {0};

		memcpy(idx, arg + 4, (size_t)(eq - arg - 4));
		if (!parse_uint(idx, 0, VMDEF_MAX_NICS - 1, &i))
			slot = &cfg->net_fds[i];
	} else if (eq && !strncmp(arg, "lun.", 4) && eq - arg <= 6) {
		char idx[4] = {0};

		memcpy(idx, arg + 4, (size_t)(eq - arg - 4));
		if (!parse_uint(idx, 0, VMDEF_MAX_LUNS - 1, &i))
			slot = &cfg->lun_fds[i];
	}
	if (!slot || parse_uint(eq + 1, 3, 65535, &n) || fcntl((int)n, F_GETFD) < 0) {
		snprintf(err, errlen,
			 "--fd %s: expected kernel=N, initrd=N, kvm=N, firmware=N, nvram=N "
			 "(a directory), disk.I=N, net.I=N or "
			 "lun.I=N with N an open descriptor (3 or above) and I a disk's (0 to %d), "
			 "a network card's (0 to %d) or a SCSI LUN's (0 to %d) index",
			 arg, VMDEF_MAX_DISKS - 1, VMDEF_MAX_NICS - 1, VMDEF_MAX_LUNS - 1);
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

/* Options that say how this worker runs the VM. Returns 1 for --help and --version. */
static int parse_run_option(int c, int argc, char **argv, struct vm_config *cfg, char *err,
			    size_t errlen)
{
	switch (c) {
	case OPT_SERIAL:
		if (config_parse_chardev(optarg, &cfg->serial)) {
			snprintf(err, errlen,
				 "--serial %s: expected stdio, file:PATH, unix:PATH or off",
				 optarg);
			return -EINVAL;
		}
		return 0;
	case OPT_CONSOLE:
		if (config_parse_chardev(optarg, &cfg->console)) {
			snprintf(err, errlen,
				 "--console %s: expected stdio, file:PATH, unix:PATH or off",
				 optarg);
			return -EINVAL;
		}
		return 0;
	case OPT_VSOCK:
		return config_parse_vsock(optarg, &cfg->vsock_cid, cfg->vsock_socket, err, errlen);
	case OPT_VSOCK_SOCKET:
		return config_parse_vsock_socket(optarg, cfg->vsock_socket, err, errlen);
	case OPT_NO_REBOOT:
		cfg->no_reboot = true;
		return 0;
	case OPT_FIRMWARE_DEBUG:
		cfg->firmware_debug = true;
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

void config_free(struct vm_config *cfg)
{
	vmdef_free(&cfg->def);
}

int config_parse(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
	const char *described_by = NULL; /* the first description option, for the message */
	int c, r, idx = -1;

	*cfg = (struct vm_config){
		.serial = {CHARDEV_STDIO, NULL},
		.console = {CHARDEV_OFF, NULL},
		.kernel_fd = -1,
		.initrd_fd = -1,
		.kvm_fd = -1,
		.firmware_fd = -1,
		.nvram_dir_fd = -1,
	};
	for (unsigned d = 0; d < VMDEF_MAX_DISKS; d++)
		cfg->disk_fds[d] = -1;
	for (unsigned d = 0; d < VMDEF_MAX_NICS; d++)
		cfg->net_fds[d] = -1;
	for (unsigned d = 0; d < VMDEF_MAX_LUNS; d++)
		cfg->lun_fds[d] = -1;
	vmdef_init(&cfg->def);
	optind = 0; /* full reset of getopt, so tests can call this repeatedly */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", config_options, &idx)) != -1) {
		if (is_description_option(c)) {
			if (!described_by)
				described_by = config_options[idx].name;
			r = parse_description_option(c, optarg, cfg, err, errlen);
		} else {
			r = parse_run_option(c, argc, argv, cfg, err, errlen);
		}
		if (r)
			goto out;
	}
	r = -EINVAL;
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see keel-vmm --help)",
			 argv[optind]);
		goto out;
	}
	if (cfg->config_path) {
		if (described_by) {
			snprintf(err, errlen,
				 "--%s describes the VM, and so does --config %s: put it in the "
				 "file (docs/vm-config.md)",
				 described_by, cfg->config_path);
			goto out;
		}
		vmdef_free(&cfg->def);
		r = vmdef_load_file(cfg->config_path, &cfg->def, err, errlen);
		if (r)
			goto out;
		r = -EINVAL;
		if (cfg->def.console.present && cfg->console.kind == CHARDEV_OFF) {
			snprintf(err, errlen,
				 "the VM has a virtio console: say where it goes with --console "
				 "stdio|file:PATH|unix:PATH");
			goto out;
		}
		if (!cfg->def.console.present && cfg->console.kind != CHARDEV_OFF) {
			snprintf(err, errlen,
				 "--console: the VM described in %s has no virtio console",
				 cfg->config_path);
			goto out;
		}
		if (cfg->def.vsock.present && !cfg->vsock_socket[0]) {
			snprintf(err, errlen,
				 "the VM has a virtio-vsock device: say where its host side "
				 "listens with --vsock socket=PATH");
			goto out;
		}
		if (!cfg->def.vsock.present && cfg->vsock_socket[0]) {
			snprintf(err, errlen,
				 "--vsock: the VM described in %s has no virtio-vsock device",
				 cfg->config_path);
			goto out;
		}
		if (cfg->vsock_cid && cfg->vsock_cid != cfg->def.vsock.cid) {
			snprintf(err, errlen,
				 "--vsock cid=%u: the VM described in %s has guest CID %u (leave "
				 "cid= out with --config)",
				 cfg->vsock_cid, cfg->config_path, cfg->def.vsock.cid);
			goto out;
		}
	} else {
		cfg->def.console.present = cfg->console.kind != CHARDEV_OFF;
		if (cfg->vsock_socket[0])
			cfg->def.vsock = (struct vm_vsock){
				.present = true,
				.cid = cfg->vsock_cid ? cfg->vsock_cid : VMDEF_VSOCK_CID_DEFAULT};
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
		r = fds_beyond(cfg->net_fds, cfg->def.nnics, VMDEF_MAX_NICS, "net", "network card",
			       err, errlen);
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
	if (cfg->serial.kind == CHARDEV_STDIO && cfg->console.kind == CHARDEV_STDIO) {
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
