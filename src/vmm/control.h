/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker's control socket: JSON lines over a Unix stream socket, one reply per
 * request (docs/keel-vmm.md). Served on the main loop thread.
 */
#ifndef KEEL_VMM_CONTROL_H
#define KEEL_VMM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"

struct vm;
struct control;

int control_create(struct vm *vm, const char *path, struct control **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void control_destroy(struct control *c);

enum control_cmd {
	CONTROL_STATUS,
	CONTROL_PAUSE,
	CONTROL_RESUME,
	CONTROL_POWERDOWN,
	CONTROL_RESET,
	CONTROL_QUIT,
	CONTROL_SAVE,	 /* arguments: {"dir": PATH} */
	CONTROL_RESTORE, /* arguments: {"dir": PATH, "paused": BOOL, "fd": BOOL (optional)} */
	CONTROL_DEVICES, /* each device's state, as the crash report gives it */
	CONTROL_DVD,	 /* arguments: {"drive": N, "path": PATH or null, "fd": BOOL} (optional) */
	CONTROL_VCPU_STATS, /* arguments: {"first": N} (optional): vCPU stats fds with the reply */
	CONTROL_LINK,	    /* arguments: {"nic": N, "up": BOOL} */
	/* Hot plug: nic-add {"tap": NAME, "mac": MAC, "slot": N, "fd": BOOL, "vhost":
	 * "auto"|"off"|"on", "vhost_fd": BOOL, "queues": N}; nic-remove
	 * {"slot": N} or {"mac": MAC}, "force": BOOL; nic-list, the network adapters. */
	CONTROL_NIC_ADD,
	CONTROL_NIC_REMOVE,
	CONTROL_NIC_LIST,
	/* disk-qos {"disk": N, "max_iops": N, "max_bandwidth": N, "min_iops": N} (the limits
	 * optional: those given change): the disk's QoS limits and counters; {"lun": N, ...}:
	 * the SCSI controller's disk at LUN N. */
	CONTROL_DISK_QOS,
#if defined(KEEL_TEST_HOOKS)
	CONTROL_TEST_PARSE_EUIDS, /* test builds only: the euids handed files were parsed as */
#endif
	CONTROL_CMD_COUNT
};

#define CONTROL_MAX_PATH 4096
#define CONTROL_BACKLOG	 8 /* the control socket's listen backlog */

/* A parsed request with its arguments. */
struct control_request {
	enum control_cmd cmd;
	char dir[CONTROL_MAX_PATH];					      /* save, restore */
	bool paused;							      /* restore */
	enum { CONTROL_DVD_LIST, CONTROL_DVD_INSERT, CONTROL_DVD_EJECT } dvd; /* dir: the ISO */
	unsigned drive;	   /* dvd: which DVD drive (0: the first) */
	bool passed;	   /* dvd: the image came with the request as a descriptor; restore:
			    * the state and memory files did, in that order; dir names them;
			    * nic-add: the tap's queues did (first, one per queue pair) */
	unsigned first;	   /* vcpu-stats: the first vCPU whose statistics fd is sent */
	unsigned nic;	   /* link: which network adapter (its index in the description) */
	bool up;	   /* link: up or down */
	char tap[16];	   /* nic-add: the tap's name */
	char mac[18];	   /* nic-add, nic-remove: the MAC ("": the default, or by slot) */
	unsigned slot;	   /* nic-add: the slot (0: any); nic-remove: the adapter's (0: by mac) */
	enum vm_vhost vhost; /* nic-add: the adapter's data path (nets[].vhost; default auto) */
	bool vhost_fd;	     /* nic-add: its /dev/vhost-nets came after the tap's queues */
	unsigned queues;     /* nic-add: the card's queue pairs (1 to VMDEF_NET_QUEUES_MAX) */
	bool force;	   /* nic-remove: without waiting for the guest */
	unsigned disk;	   /* disk-qos: the disk's index in the description (or its LUN) */
	bool lun;	   /* disk-qos: disk is a LUN of the SCSI controller */
	bool qos_given[3]; /* disk-qos: max_iops, max_bandwidth, min_iops given */
	uint64_t qos[3];   /* disk-qos: their values */
};

/*
 * Parse one request line (untrusted: any bytes, any length). Returns 0 with the command,
 * or -EINVAL with an error class and a one-line reason.
 */
int control_parse(const char *line, size_t len, enum control_cmd *cmd, const char **cls, char *why,
		  size_t whylen) __attribute__((warn_unused_result));
/* The same, with the command's arguments checked and copied into req. */
int control_parse_request(const char *line, size_t len, struct control_request *req,
			  const char **cls, char *why, size_t whylen)
	__attribute__((warn_unused_result));

#endif
