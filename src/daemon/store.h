/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's store: VM definitions and the last known runtime record of each VM, in SQLite.
 * Every change is one transaction: either all of it lands or none of it does.
 */
#ifndef KEEL_DAEMON_STORE_H
#define KEEL_DAEMON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/ckpt_tree.h"
#include "config/vmdef.h"

struct store;

/* What keeld must remember about a VM's worker across its own restarts. */
struct store_rt {
	char state[16];	  /* last state name: "Off", "Running", "Crashed", ... */
	char reason[256]; /* why the VM is in that state; "" when nothing to say */
	pid_t pid;	  /* the worker, 0 when none */
	uint64_t
		starttime; /* the worker's start time (/proc/PID/stat field 22): guards pid reuse */
	bool was_running;  /* the VM was running when last seen (AutomaticStartAction) */
};

/* Open (creating if needed) the database at path. Returns 0 or -errno; err says why. */
int store_open(const char *path, struct store **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void store_close(struct store *st);
/* The schema version store_open upgraded the store from (1, 2), or 0 (new or current). */
int store_upgraded_from(const struct store *st);

/*
 * Insert a new VM. def->uuid, created and MACs must be set. Returns 0, -EEXIST (the name,
 * UUID or a MAC is taken; err says which) or -EIO.
 */
int store_vm_insert(struct store *st, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/*
 * Replace a VM's definition if its revision is still def->revision - 1 (no one changed it
 * in between). Returns 0, -ENOENT, -EEXIST (name or MAC taken), -ESTALE or -EIO.
 */
int store_vm_update(struct store *st, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int store_vm_delete(struct store *st, const char *uuid) __attribute__((warn_unused_result));
/* Look a VM up by name, else by UUID. Returns 0, -ENOENT or -EIO; def is to be vmdef_free'd. */
int store_vm_get(struct store *st, const char *key, struct vm_def *def)
	__attribute__((warn_unused_result));
/* All VMs sorted by name; *out is an array of *n definitions, free with store_vm_list_free. */
int store_vm_list(struct store *st, struct vm_def **out, size_t *n)
	__attribute__((warn_unused_result));
void store_vm_list_free(struct vm_def *list, size_t n);
/* Is this MAC used by any VM other than except_uuid (may be NULL)? */
int store_mac_used(struct store *st, const char *mac, const char *except_uuid, bool *used)
	__attribute__((warn_unused_result));

int store_rt_get(struct store *st, const char *uuid, struct store_rt *rt)
	__attribute__((warn_unused_result));
int store_rt_set(struct store *st, const char *uuid, const struct store_rt *rt)
	__attribute__((warn_unused_result));

/* A VM's checkpoint tree (store_ckpt.c); free with ckpt_tree_free. */
int store_ckpt_load(struct store *st, const char *vm, struct ckpt_tree *t)
	__attribute__((warn_unused_result));
/*
 * Replace the VM's checkpoint tree with t and, when def is not NULL, its definition (as
 * store_vm_update: def->revision must be the stored one + 1), in one transaction. Returns 0,
 * -EEXIST (a name is taken), -ESTALE, -EIO; err says why.
 */
int store_ckpt_save(struct store *st, const char *vm, const struct ckpt_tree *t,
		    const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Storage pools (store_pool.c; the policy is pools.c). */
#define STORE_POOL_NAME_MAX    64
#define STORE_POOL_DEVICES_MAX 64
struct store_pool {
	char name[STORE_POOL_NAME_MAX + 1];
	bool block;	 /* a pool of block devices, else a directory */
	char path[4096]; /* dir: the directory, canonical (no symlink) */
	char **devices;	 /* block: the device paths it names */
	unsigned ndevices;
	int64_t created;
};
void store_pool_free(struct store_pool *p);
/* Every pool, by name; free each with store_pool_free, then the array. */
int store_pool_list(struct store *st, struct store_pool **out, size_t *n)
	__attribute__((warn_unused_result));
/* -EEXIST when the name or a device is taken (err says which). */
int store_pool_insert(struct store *st, const struct store_pool *p, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* -ENOENT when there is no such pool. */
int store_pool_delete(struct store *st, const char *name) __attribute__((warn_unused_result));

/* Virtual switches (store_switch.c; the policy is switch.c, docs/networking.md). */
#define STORE_SWITCH_ADDRS_MAX 4096
struct store_switch {
	char name[VMDEF_SWITCH_MAX + 1];
	char type[16];	 /* external, internal or private */
	char bridge[16]; /* the Linux bridge, kbrN */
	char subnet[20]; /* internal: "a.b.c.d/N", the network; "" otherwise */
	char adapter[16];
	bool allow_mgmt; /* external: the host keeps its address, on the bridge */
	bool nat;	 /* internal: NAT to the host's uplink, DHCP and DNS */
	bool is_default;
	/* external: what keeld took off the adapter, to give back (switch_addrs.h); internal:
	 * the host addresses of subnets it had, to take off its bridge (a change's) */
	char adapter_addrs[STORE_SWITCH_ADDRS_MAX];
	int64_t created;
};
/* Every switch, by name (*out malloc'd). */
int store_switch_list(struct store *st, struct store_switch **out, size_t *n)
	__attribute__((warn_unused_result));
/* 0 or -ENOENT. */
int store_switch_get(struct store *st, const char *name, struct store_switch *out)
	__attribute__((warn_unused_result));
/* -EEXIST when the name, bridge or default is taken (err says which). */
int store_switch_insert(struct store *st, const struct store_switch *sw, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Replace the record named sw->name: 0 or -ENOENT. */
int store_switch_update(struct store *st, const struct store_switch *sw)
	__attribute__((warn_unused_result));
/* Record switch name's adapter_addrs alone: 0 or -ENOENT. */
int store_switch_set_addrs(struct store *st, const char *name, const char *addrs)
	__attribute__((warn_unused_result));
/* Delete it unless an adapter uses it: 0, -ENOENT, or -EBUSY with the VMs in err. */
int store_switch_delete(struct store *st, const char *name, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The adapters on switch name (*out malloc'd; tap, mac, vlan and guards set), by MAC. */
int store_switch_ports(struct store *st, const char *name, struct vm_nic **out, size_t *n)
	__attribute__((warn_unused_result));
/* A NAT switch's port forward: host_port on the host's addresses to port on the VM's. */
struct store_forward {
	char sw[VMDEF_SWITCH_MAX + 1];
	char proto[4]; /* tcp or udp */
	unsigned host_port, port;
	char vm[VMDEF_UUID_LEN + 1];
	char vm_name[VMDEF_NAME_MAX + 1]; /* read only */
	char mac[VMDEF_MAC_LEN + 1];
	char address[16];
};
/* The forwards of switch name (or of every switch: NULL), by protocol and host port. */
int store_forward_list(struct store *st, const char *name, struct store_forward **out, size_t *n)
	__attribute__((warn_unused_result));
/* -EEXIST when the protocol and host port are taken (err says by which switch). */
int store_forward_insert(struct store *st, const struct store_forward *f, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* 0 or -ENOENT. */
int store_forward_delete(struct store *st, const char *name, const char *proto, unsigned host_port)
	__attribute__((warn_unused_result));
/* Drop the forwards of VM uuid to adapters it no longer has on their switch. */
int store_forward_prune(struct store *st, const char *uuid) __attribute__((warn_unused_result));
/* The names of the VMs with an adapter on the switch, ", "-separated, in users (empty when
 * none). */
int store_switch_users(struct store *st, const char *name, char *users, size_t size)
	__attribute__((warn_unused_result));

/* The audit log (store_audit.c): one record per state-changing API request and per refused
 * request, each kind kept apart: the newest STORE_AUDIT_KEEP of requests served, the newest
 * STORE_AUDIT_REFUSED_KEEP of refusals (403, 413, 414), which never push the others out. */
#define STORE_AUDIT_KEEP	 10000
#define STORE_AUDIT_REFUSED_KEEP 10000
enum store_audit_kind {
	STORE_AUDIT_ALL,
	STORE_AUDIT_CHANGES, /* requests served: what changed, or failed to */
	STORE_AUDIT_REFUSED, /* requests refused: nothing was done */
};
struct store_audit {
	int64_t time; /* Unix time */
	uint32_t uid;
	const char *user;
	const char *method;
	const char *path;
	const char *vm; /* "" when the request is about no one VM */
	unsigned status;
	const char *message; /* the error's message, or "" */
};
int store_audit_add(struct store *st, const struct store_audit *a)
	__attribute__((warn_unused_result));
/* Whether a record of status is a refusal (STORE_AUDIT_REFUSED). */
bool store_audit_refused(unsigned status);
/* The newest `limit` records of kind (of VM vm when not NULL), oldest first, as a JSON array. */
int store_audit_list(struct store *st, const char *vm, enum store_audit_kind kind, unsigned limit,
		     json_object **out) __attribute__((warn_unused_result));

/* Integration services (store_integration.c): the AP_S_* bits turned off for VM uuid, and
 * turning one on or off (its name, as ap_service_name gives it). */
int store_integration_disabled(struct store *st, const char *uuid, uint32_t *mask)
	__attribute__((warn_unused_result));
int store_integration_set(struct store *st, const char *uuid, const char *service, bool enabled)
	__attribute__((warn_unused_result));

#endif
