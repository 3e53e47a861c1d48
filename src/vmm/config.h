/* SPDX-License-Identifier: Apache-2.0 */
/* keel-vmm's description of one VM: parsed from the command line, validated here. */
#ifndef KEEL_VMM_CONFIG_H
#define KEEL_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"
#include "vmm/machine.h"

enum chardev_kind { CHARDEV_STDIO, CHARDEV_FILE, CHARDEV_UNIX, CHARDEV_OFF };

struct chardev_spec {
	enum chardev_kind kind;
	const char *path; /* file: and unix: */
};

/*
 * One run of keel-vmm: the VM (its description, the same structure keeld stores, from
 * --config FILE or from the command line's --kernel, --disk, ...) and how this worker
 * connects it to the host, which is not part of the VM: where its serial port and
 * virtio-console go, the control socket, the status file, a saved state to carry on from.
 */
struct vm_config {
	struct vm_def def;
	const char *config_path; /* --config: where def came from, or NULL */
	struct chardev_spec serial;
	struct chardev_spec console; /* the host side of def.console */
	/* --vsock: the Unix socket the host side of def.vsock listens on (docs/virtio.md), an
	 * absolute path; cid given there (0: none). */
	char vsock_socket[VMDEF_VSOCK_SOCKET_MAX + 1];
	uint32_t vsock_cid;
	bool no_reboot;
	bool firmware_debug; /* port 0x402's firmware log to stderr */
	bool paused;	     /* --paused: the vCPUs wait for "resume" on the control socket */
	const char *control_path;
	const char *status_path;
	const char *restore_dir; /* --restore: carry on from a saved state (docs/state.md) */
	/* --fd: files the description names, already open (keeld opened and checked them);
	 * -1: open the path. */
	int kernel_fd, initrd_fd;
	int disk_fds[VMDEF_MAX_DISKS];
	int kvm_fd;		     /* --fd kvm=N: /dev/kvm, opened by keeld; -1: open it */
	int net_fds[VMDEF_MAX_NICS]; /* --fd net.I=N: the Ith card's tap, attached by keeld */
	int lun_fds[VMDEF_MAX_LUNS]; /* --fd lun.I=N: SCSI LUN I's disk or DVD image */
	int firmware_fd;	     /* --fd firmware=N: the firmware image, opened by keeld */
	int nvram_dir_fd;	     /* --fd nvram=N: the NVRAM file's directory, opened by keeld */
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
/* One --disk or --net value, into a fresh d or n; -EINVAL with a one-line reason in err.
 * *scsi: the disk goes on the SCSI controller (bus=scsi). */
int config_parse_disk(const char *s, struct vm_disk *d, bool *scsi, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int config_parse_net(const char *s, struct vm_nic *n, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int config_parse_chardev(const char *s, struct chardev_spec *spec)
	__attribute__((warn_unused_result));
/* One --vsock value "[cid=N,]socket=PATH" into cid (0 when not given) and socket (made
 * absolute); -EINVAL with a one-line reason in err. */
int config_parse_vsock(const char *s, uint32_t *cid, char socket[VMDEF_VSOCK_SOCKET_MAX + 1],
		       char *err, size_t errlen) __attribute__((warn_unused_result));
/* One --vsock-socket value: the whole of it is the socket's path (made absolute into
 * socket), never split at a comma; -EINVAL with a one-line reason in err. */
int config_parse_vsock_socket(const char *path, char socket[VMDEF_VSOCK_SOCKET_MAX + 1], char *err,
			      size_t errlen) __attribute__((warn_unused_result));

#endif
