/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checkpoints (Hyper-V's standard checkpoints, docs/checkpoints.md): create, list, apply,
 * delete and rename, on a VM's tree of differencing VHDX files. Each operation checks
 * everything it can before it touches a file, and records the new tree and the VM's disk
 * paths in one store transaction. Misuse returns -EINVAL (bad name), -ENOENT (no such
 * checkpoint), -EBUSY (the VM's state does not allow it), -EEXIST (name taken) or
 * -EMEDIUMTYPE (a raw disk), with err saying why and nothing changed.
 */
#ifndef KEEL_DAEMON_CKPT_H
#define KEEL_DAEMON_CKPT_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "daemon/store.h"
#include "daemon/sup.h"
#include "config/vmdef.h"

/* A Generation 2 VM's UEFI variable store read by ckpt_create while no worker runs: after
 * the old worker's save and stop, before the restored one starts, so it is the store as of
 * the point the checkpoint's disks are taken (a backup's nvram/OVMF_VARS.fd). taken: read
 * (the checkpoint stopped a running worker; otherwise nothing is read and the caller reads
 * the store itself, no worker writing it); ret: sup_nvram_read's result, why its message;
 * data: size bytes when ret is 0, the caller's to free. */
struct ckpt_nvram {
	bool taken;
	int ret;
	uint8_t *data;
	size_t size;
	char why[PATH_MAX + 200];
};

struct ckpt_ctx {
	struct store *store;
	struct sup *sup;
	struct ckpt_nvram *nvram; /* NULL, or where ckpt_create puts the stopped VM's store */
};

/* Hyper-V's CheckpointType. production: the guest's file systems frozen through keel-agent
 * and only the disks kept (applying it boots the guest afresh), falling back to standard
 * when that cannot be done; production-only: refused instead; standard: memory too. */
enum ckpt_type { CKPT_PRODUCTION, CKPT_PRODUCTION_ONLY, CKPT_STANDARD };

/* "VM - KIND(2026-12-05 - 10:00:00)", Hyper-V's names: kind "" for a checkpoint's default,
 * "Backup - " for a backup's recovery checkpoint. Returns buf. */
const char *ckpt_stamped_name(const struct vm_def *def, const char *kind, char *buf, size_t size);
/* "production", "production-only", "standard" into *out: 0, or -EINVAL. */
int ckpt_type_parse(const char *s, enum ckpt_type *out) __attribute__((warn_unused_result));

/* ckpt_create's checks alone (-EINVAL, -EEXIST, -EBUSY, -EMEDIUMTYPE with err), for a
 * request that runs the creation as a job. */
int ckpt_create_check(struct ckpt_ctx *ctx, const struct vm_def *def, const char *name,
		      enum ckpt_type type, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The error of a production-only checkpoint that cannot be taken: an errno nothing else in
 * keeld returns, so that the API's 409 ProductionCheckpointUnavailable is this one only. */
#define CKPT_ENOPRODUCTION ENOANO

/* name may be NULL: "VM - (YYYY-MM-DD - HH:MM:SS)". *out gets the new checkpoint's JSON, with
 * "fallback" saying why a production checkpoint became a standard one. A production-only
 * checkpoint that cannot be taken is -CKPT_ENOPRODUCTION with err saying why. */
int ckpt_create(struct ckpt_ctx *ctx, const struct vm_def *def, const char *name,
		enum ckpt_type type, json_object **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* {"checkpoints": [...], "now": {...}}: the visible tree and where the VM is. */
int ckpt_list(struct ckpt_ctx *ctx, const struct vm_def *def, json_object **out)
	__attribute__((warn_unused_result));
/* Before an apply or delete starts as a job: the checkpoint exists, the VM is in a state
 * where verb ("apply a checkpoint to") can begin, and the differencing chains the operation
 * may follow pass disk_policy_check_chain (a delete: every chain of the tree, the VM's current
 * disks too; an apply: the checkpoints' chains, not the current disks it throws away).
 * 0, -ENOENT, -EBUSY or -EINVAL (a chain, naming the file) with err set. */
int ckpt_change_check(struct ckpt_ctx *ctx, const struct vm_def *def, const char *key,
		      const char *verb, bool apply, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int ckpt_apply(struct ckpt_ctx *ctx, const struct vm_def *def, const char *key, char *err,
	       size_t errlen) __attribute__((warn_unused_result));
int ckpt_delete(struct ckpt_ctx *ctx, const struct vm_def *def, const char *key, bool subtree,
		char *err, size_t errlen) __attribute__((warn_unused_result));
int ckpt_rename(struct ckpt_ctx *ctx, const struct vm_def *def, const char *key, const char *name,
		char *err, size_t errlen) __attribute__((warn_unused_result));
/* The name of the visible checkpoint the VM's current state comes from: 0, or -ENOENT. */
int ckpt_now_parent(struct ckpt_ctx *ctx, const char *vm, char *name, size_t size)
	__attribute__((warn_unused_result));
/* How many visible checkpoints the VM has (-errno on a store error). */
/* At keeld's start: remove the saved state in the VM's checkpoint directories that no
 * checkpoint keeps (a production checkpoint's restart state when keeld ended between its
 * commit and the restore). The number removed, or -errno. */
int ckpt_sweep(struct ckpt_ctx *ctx, const struct vm_def *def);
int ckpt_count(struct ckpt_ctx *ctx, const char *vm) __attribute__((warn_unused_result));

#endif
