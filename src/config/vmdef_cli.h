/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel-vmm's command-line options for devices: each device kind (config/vmdef_device.h)
 * lists its own, in its own file, with what --help says of them and the function that
 * applies one to the description (or to how the worker connects the device to the host).
 * vmm/config.c builds its option table from its machine options plus every kind's, and
 * dispatches device options through it without naming a device (docs/devices.md).
 */
#ifndef KEEL_CONFIG_VMDEF_CLI_H
#define KEEL_CONFIG_VMDEF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"

enum chardev_kind { CHARDEV_STDIO, CHARDEV_FILE, CHARDEV_UNIX, CHARDEV_OFF };

struct chardev_spec {
	enum chardev_kind kind;
	const char *path; /* file: and unix: */
};

/* "stdio", "off", "file:PATH" or "unix:PATH" into spec (path points into s); -EINVAL. */
int vmdef_chardev_parse(const char *s, struct chardev_spec *spec)
	__attribute__((warn_unused_result));

/*
 * How one keel-vmm connects the VM's devices to the host, which is not part of the VM's
 * description (the same VM may run with its console on a file or a socket).
 */
struct vmdef_host {
	struct chardev_spec console; /* the host side of def.console */
	/* --vsock: the Unix socket the host side of def.vsock listens on (docs/virtio.md), an
	 * absolute path; cid given there (0: none). */
	char vsock_socket[VMDEF_VSOCK_SOCKET_MAX + 1];
	uint32_t vsock_cid;
};

/* One keel-vmm option of a device kind; a kind's list ends with one whose name is NULL. */
struct vmdef_option {
	const char *name;  /* the long option without "--": "disk" */
	const char *value; /* what its value looks like in --help; NULL: it takes none */
	const char *help;  /* what it does, one line of --help */
	/* true: it says how this worker connects the device to the host, and goes with --config
	 * too; false: it describes the VM, which --config FILE does instead. */
	bool host;
	/* Apply the option (arg: its value, NULL when it takes none) to def or host, with the
	 * description's limits; 0, or -EINVAL (-ENOMEM) with a one-line reason in err. */
	int (*parse)(struct vm_def *def, struct vmdef_host *host, const char *arg, char *err,
		     size_t errlen);
};

/* The helpers the kinds' options share. */
/* Split "key=value,key=value": the next key and value into k and v; returns the rest or NULL
 * at the end. An item without '=' gets an empty value; *too_long when one does not fit. */
const char *vmdef_cli_next_kv(const char *s, char *k, size_t klen, char *v, size_t vlen,
			      int *too_long);
int vmdef_cli_on_off(const char *v, bool *out) __attribute__((warn_unused_result));
/* A PCI slot, VMDEF_PCI_SLOT_MIN..MAX. */
int vmdef_cli_slot(const char *v, uint8_t *slot) __attribute__((warn_unused_result));
/* path made absolute against the working directory into out (size bytes); -EINVAL when it
 * cannot be or does not fit. */
int vmdef_cli_abs_path(const char *path, char *out, size_t size)
	__attribute__((warn_unused_result));
/* A file named on the command line, made absolute against the working directory (not
 * resolved) into a new *dst (the old one freed): a description, and so a saved state, names
 * files by absolute path. At most VMDEF_PATH_MAX bytes. */
int vmdef_cli_set_path(char **dst, const char *v, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The kinds' option parsers that tests call directly. One --disk value into a fresh d (*scsi:
 * bus=scsi); one --net value into a fresh n; one --vsock value "[cid=N,]socket=PATH" into
 * cid (0 when not given) and socket (made absolute). -EINVAL with a reason in err. */
int vmdef_cli_disk(const char *s, struct vm_disk *d, bool *scsi, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int vmdef_cli_net(const char *s, struct vm_nic *n, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int vmdef_cli_vsock(const char *s, uint32_t *cid, char socket[VMDEF_VSOCK_SOCKET_MAX + 1],
		    char *err, size_t errlen) __attribute__((warn_unused_result));
/* --disk ...,bus=scsi and --dvd: the next LUN of the SCSI controller takes d (and its path,
 * made absolute; a DVD drive's may be NULL: empty); d's path is freed on error. */
int vmdef_cli_add_lun(struct vm_def *def, enum vm_lun_type type, struct vm_disk *d, char *err,
		      size_t errlen) __attribute__((warn_unused_result));

#endif
