/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage pools (Hyper-V: the host's default virtual hard disk and VM paths): the only
 * places a VM's files (disks, kernels, initrds) may come from (docs/security.md). A pool of
 * type `dir` is a directory: a file inside it is resolved beneath it, never following a
 * symlink out of it and refusing `..`; a pool of type `block` names block devices one by
 * one. keeld opens every VM file through here and passes the descriptor on, so the file it
 * checked is the file the worker uses. The pool `default` (STATE_DIR/pools/default) always
 * exists.
 */
#ifndef KEEL_DAEMON_POOLS_H
#define KEEL_DAEMON_POOLS_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "daemon/store.h"

#define POOL_DEFAULT "default"

/* Make sure the default pool exists (its directory 0750, and its record). 0 or -errno. */
int pools_init(struct store *st, const char *state_dir, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* A pool from an API request: {"name", "path"} or {"name", "type": "block", "devices": [...]}.
 * 0, -EINVAL or -EEXIST with err; nothing is stored on error. */
int pools_create(struct store *st, json_object *req, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Every pool as the API shows it, or the one named name (NULL when there is none). NULL on
 * allocation or store failure. */
json_object *pools_json(struct store *st);
json_object *pools_one_json(struct store *st, const char *name);
/* The pool named name, for the routes under /v1/pools/NAME: 0 or -ENOENT with err. */
int pools_get(struct store *st, const char *name, struct store_pool *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/*
 * Delete a pool that holds no file any VM uses (pools_delete.c): a file of its description
 * (vmdef_files: kernel, firmware file, initrd, disks, SCSI LUN disks, DVD media), a disk of
 * one of its checkpoints, or a parent anywhere in the differencing chain of one of those
 * (vm_files.h). 0, -ENOENT, or -EBUSY with err naming the VM and the file; nothing changed.
 */
int pools_delete(struct store *st, const char *name, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Is path in pool p: beneath its directory (as written or as either resolves today), or a
 * device the block pool names? */
bool pools_holds(const struct store_pool *p, const char *path);
/*
 * Open path (absolute) for a VM: a regular file inside a directory pool, or (allow_blk) a
 * device a block pool names. flags: O_RDONLY or O_RDWR (O_CLOEXEC is added); with
 * O_DIRECTORY (and O_PATH), a directory of a directory pool instead of a file. Returns the
 * descriptor, or -errno with err saying which rule refused it (outside every pool, `..`, a
 * symlink out of its pool, a block device no pool names, not a regular file).
 */
int pools_open(struct store *st, const char *what, const char *path, int flags, bool allow_blk,
	       char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * A DVD medium at path opened through pools_open (read-only, a pool's block device too) and
 * checked to be an ISO image on that descriptor. Returns it, or -EINVAL/-errno with err.
 */
int pools_open_medium(struct store *st, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/*
 * Every file def names (vmdef_files, into files) opened through pools_open into fds, in the
 * same order: read-only or read-write as the VM uses it, a disk or DVD medium a block pool's
 * device too, a DVD medium as pools_open_medium opens it. The descriptors are what keeld
 * checks further (disk_policy_attach): nothing is opened by path again. Returns how many
 * (close them with pools_close_def), or -EINVAL/-errno with err, none left open.
 */
int pools_open_def(struct store *st, const struct vm_def *def, struct vmdef_file *files, int *fds,
		   char *err, size_t errlen) __attribute__((warn_unused_result));
void pools_close_def(int *fds, unsigned n);

#endif
