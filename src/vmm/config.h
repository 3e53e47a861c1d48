/* SPDX-License-Identifier: Apache-2.0 */
/* keel-vmm's description of one VM: parsed from the command line, validated here. */
#ifndef KEEL_VMM_CONFIG_H
#define KEEL_VMM_CONFIG_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"
#include "config/vmdef_cli.h"
#include "config/vmdef_device.h"
#include "vmm/machine.h"

/*
 * One run of keel-vmm: the VM (its description, the same structure keeld stores, from
 * --config FILE or from the command line's --kernel, --disk, ...) and how this worker
 * connects it to the host, which is not part of the VM: where its serial port and
 * virtio-console go, the control socket, the status file, a saved state to carry on from.
 */
/* What config_path and restore_dir say when keeld passed the files (--fd config, --fd state
 * and memory): the names messages show. */
#define CONFIG_FD_NAME	"(--fd config)"
#define RESTORE_FD_NAME "(--fd state, memory)"

struct vm_config {
	struct vm_def def;
	const char *config_path; /* --config: where def came from (CONFIG_FD_NAME), or NULL */
	struct chardev_spec serial;
	/* The host side of the devices (--console, --vsock): what the kinds' options set. */
	struct vmdef_host host;
	bool no_reboot;
	bool firmware_debug; /* port 0x402's firmware log to stderr */
	bool exit_stats;     /* count exits by kind and address, logged at the end */
	bool paused;	     /* --paused: the vCPUs wait for "resume" on the control socket */
	const char *control_path;
	const char *status_path;
	const char *restore_dir; /* --restore: carry on from a saved state (docs/state.md) */
	/* --fd: files the description names, already open (keeld opened and checked them);
	 * -1: open the path. */
	int kernel_fd, initrd_fd;
	int disk_fds[VMDEF_MAX_DISKS];
	int kvm_fd; /* --fd kvm=N: /dev/kvm, opened by keeld; -1: open it */
	/* --fd net.I=N, net.I.qJ=N: the Ith card's tap, attached by keeld, one queue per
	 * queue pair (J 1 and up: a multi-queue tap's further queues); -1: not given */
	int net_fds[VMDEF_MAX_NICS][VMDEF_NET_QUEUES_MAX];
	/* --fd vhost.I=N, vhost.I.qJ=N: its /dev/vhost-net, opened by keeld, one per queue
	 * pair; -1: not given */
	int vhost_fds[VMDEF_MAX_NICS][VMDEF_NET_QUEUES_MAX];
	int lun_fds[VMDEF_MAX_LUNS]; /* --fd lun.I=N: SCSI LUN I's disk or DVD image */
	int firmware_fd;	     /* --fd firmware=N: the firmware image, opened by keeld */
	int nvram_dir_fd;	     /* --fd nvram=N: the NVRAM file's directory, opened by keeld */
	/* --fd control|serial|console|vsock=N: the Unix socket at the path --control, --serial
	 * unix:, --console unix: or --vsock-socket names, bound by keeld and not yet listening
	 * (the worker listens when it is ready to serve it: vm_create); -1: bind the path. */
	int control_fd, serial_fd, console_fd, vsock_fd;
	/* --fd config|status|state|memory|vars=N: the files a worker keeld starts reads or
	 * writes besides the description's, opened by keeld (its description, in place of
	 * --config; its status file, written in place, in place of --status-file; a saved
	 * state's two files, in place of --restore; the UEFI variable store's template): the
	 * worker opens none of them by path. -1: the path options, or nothing. */
	int config_fd, status_fd, state_fd, memory_fd, vars_fd;
	/* --fd disk.I.pJ=N, lun.I.pJ=N: the parents of a passed VHDX disk, nearest first */
	struct machine_chain disk_chains[VMDEF_MAX_DISKS], lun_chains[VMDEF_MAX_LUNS];
	unsigned nchain_fds; /* in all, at most VMDEF_CHAIN_FDS_MAX */
	/* --jail-user UID:GID and --jail-root DIR: once built, the worker confines itself to
	 * DIR as UID:GID (jail.c, docs/security.md). */
	bool jail;
	unsigned jail_uid, jail_gid;
	const char *jail_root;
};

/*
 * Parse keel-vmm's arguments. Returns 0 on success, 1 if --help or --version was given
 * (text already printed), or -EINVAL (or -ENOMEM) with a one-line reason in err. On
 * success the description has passed vmdef_check and every device has its PCI slot; free it
 * with config_free.
 */
int config_parse(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void config_free(struct vm_config *cfg);
/*
 * The words of a command line that config_parse takes (argv[1..]) that say how the worker
 * runs the VM (--serial, --control, --status-file, --restore, --paused, a device's host side
 * such as --vsock or --console ...) rather than describe it: what goes beside --config FILE
 * when the description is handed over as a document, as keeld does (the lab's launcher,
 * tests/lab/jailrun.c). Pointers into argv into out (at most max); how many, or -errno with
 * err.
 */
int config_run_words(int argc, char **argv, char **out, int max, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The Unix sockets a worker serves: its control socket, its serial port's and virtio-console's
 * (unix:PATH) and virtio-vsock's host side. */
enum config_sock {
	CONFIG_SOCK_CONTROL,
	CONFIG_SOCK_SERIAL,
	CONFIG_SOCK_CONSOLE,
	CONFIG_SOCK_VSOCK
};
#define CONFIG_NSOCKS 4
/* The path the worker serves socket S at (NULL: it serves none) and, in *fd, the socket
 * keeld bound there and passed (--fd NAME=N; -1: none). The one place that says which. */
const char *config_socket(const struct vm_config *cfg, enum config_sock s, int *fd);
/*
 * keel-vmm's option table: its own options (the machine's and the worker's) and then every
 * device kind's (config/vmdef_cli.h), for getopt_long. A device option's val is
 * CONFIG_OPT_DEVICE + i, i its index in dev. Built from kinds[0..nkinds) (vmdef_devices in
 * keel-vmm); -EINVAL with err when two options share a name or the table is full.
 */
#define CONFIG_OPTIONS_MAX 64
#define CONFIG_OPT_DEVICE  1024
struct config_optable {
	struct option opt[CONFIG_OPTIONS_MAX + 1]; /* ended by a zero entry */
	const struct vmdef_option *dev[CONFIG_OPTIONS_MAX];
	const struct vmdef_device_kind *dev_kind[CONFIG_OPTIONS_MAX];
	size_t n, ndev;
};
int config_options_build(struct config_optable *t, const struct vmdef_device_kind *const *kinds,
			 size_t nkinds, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
