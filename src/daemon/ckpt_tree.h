/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's checkpoint tree as plain data (docs/checkpoints.md): what the store keeps and
 * ckpt.c works on. Each checkpoint owns one frozen disk file per VM disk (the files the
 * VM wrote to until the checkpoint was taken); the VM's current disks ("Now") are
 * differencing children of the files of the checkpoint `now` names. A hidden checkpoint was
 * deleted by the user but its files still hold data that two or more children read.
 */
#ifndef KEEL_DAEMON_CKPT_TREE_H
#define KEEL_DAEMON_CKPT_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"

#define CKPT_NAME_MAX 100 /* as Hyper-V */
#define CKPT_MAX      50  /* visible checkpoints per VM, as Hyper-V */
#define CKPT_MAX_ALL  256 /* with hidden ones */
/* A checkpoint's disk files: one per virtio-blk disk and per disk on the SCSI controller. */
#define CKPT_DISKS_MAX (VMDEF_MAX_DISKS + VMDEF_MAX_LUNS)

struct ckpt {
	char id[VMDEF_UUID_LEN + 1];
	char name[CKPT_NAME_MAX + 1];
	int64_t created;		 /* Unix time, seconds */
	int64_t seq;			 /* creation order */
	char parent[VMDEF_UUID_LEN + 1]; /* "" for the root */
	bool hidden;
	bool saved;	 /* has a saved state (memory and devices) besides the disks */
	bool production; /* taken with the guest's file systems frozen (no memory): production */
	char *disks[CKPT_DISKS_MAX]; /* in the order of ckpt_vm_disks */
	unsigned ndisks;
};

struct ckpt_tree {
	struct ckpt *v;
	size_t n, cap;
	char now[VMDEF_UUID_LEN + 1]; /* the checkpoint the VM's current state derives from */
};

void ckpt_tree_free(struct ckpt_tree *t);
/* Appends a zeroed checkpoint (pointers into the tree move on every add). NULL on ENOMEM. */
struct ckpt *ckpt_tree_add(struct ckpt_tree *t);
/* Removes (and frees) the checkpoint with this id, if any. */
void ckpt_tree_remove(struct ckpt_tree *t, const char *id);
struct ckpt *ckpt_tree_by_id(struct ckpt_tree *t, const char *id);
/* A visible checkpoint by name, else by id. */
struct ckpt *ckpt_tree_lookup(struct ckpt_tree *t, const char *key);
/* Checkpoints whose parent is id; with the VM's current state counted when now is id. */
unsigned ckpt_tree_children(const struct ckpt_tree *t, const char *id, bool count_now);
/* The nearest visible ancestor of c, or NULL. */
struct ckpt *ckpt_tree_visible_parent(struct ckpt_tree *t, const struct ckpt *c);
/* Is id (or the VM's current state, for id NULL) below anc, or anc itself? */
bool ckpt_tree_descends(struct ckpt_tree *t, const char *id, const char *anc);
unsigned ckpt_tree_visible(const struct ckpt_tree *t);
/* The VM's disks a checkpoint takes, in the order of its disk files: the virtio-blk disks,
 * then the disks on the SCSI controller in LUN order (DVD drives hold read-only media and
 * stay as they are). Returns how many. */
unsigned ckpt_vm_disks(const struct vm_def *def, struct vm_disk *out[CKPT_DISKS_MAX]);

#endif
