/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vm_files.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "daemon/ckpt_tree.h"
#include "daemon/disk_policy.h"
#include "disk/disk.h"

/* A chain walk's visit: the parents of one VHDX, named "parent of WHAT". */
struct chain_visit {
	int (*visit)(void *ctx, const char *what, const char *path);
	void *ctx;
	char what[PATH_MAX + 64];
	int ret;
};

static int one_parent(void *ctx, const char *parent)
{
	struct chain_visit *cv = ctx;

	cv->ret = cv->visit(cv->ctx, cv->what, parent);
	return cv->ret;
}

/* visit path, then (a VHDX) every parent of its chain. */
static int with_chain(struct store *st, const char *what, const char *path, bool vhdx,
		      int (*visit)(void *ctx, const char *what, const char *path), void *ctx)
{
	struct chain_visit cv = {.visit = visit, .ctx = ctx};
	int r = visit(ctx, what, path);

	if (r || !vhdx)
		return r;
	snprintf(cv.what, sizeof(cv.what), "parent in the differencing chain of %s %s", what, path);
	disk_policy_chain_each(st, path, one_parent, &cv);
	return cv.ret;
}

int vm_files_each(struct store *st, const struct vm_def *def,
		  int (*visit)(void *ctx, const char *what, const char *path), void *ctx)
{
	struct vmdef_file files[VMDEF_FILES_MAX];
	unsigned n = vmdef_files(def, files);
	struct ckpt_tree t = {0};
	int r = 0;

	for (unsigned i = 0; !r && i < n; i++) {
		const struct vm_disk *d =
			files[i].slot < 0 ? NULL
			: (unsigned)files[i].slot < def->ndisks
				? &def->disks[files[i].slot]
				: &def->scsi.luns[(unsigned)files[i].slot - def->ndisks].disk;
		/* As pinned; one not pinned yet by its name, as the worker would open it. */
		bool vhdx = d && !files[i].dvd &&
			    (d->format == VM_DISK_VHDX ||
			     (d->format == VM_DISK_AUTO &&
			      disk_format_from_name(d->path) == DISK_FORMAT_VHDX));

		r = with_chain(st, files[i].what, files[i].path, vhdx, visit, ctx);
	}
	if (r)
		return r;
	r = store_ckpt_load(st, def->uuid, &t);
	if (r)
		return r < 0 ? r : -EIO;
	/* Every checkpoint's files; the chains of the leaves (every other checkpoint's files are
	 * in a leaf's chain, or the VM's current disks', walked above) and of the root (the
	 * parents the VM's first disk had, found even when a chain below it is damaged). */
	for (size_t i = 0; !r && i < t.n; i++) {
		const struct ckpt *c = &t.v[i];
		bool leaf = strcmp(t.now, c->id) != 0;
		char what[CKPT_NAME_MAX + 64];

		for (size_t j = 0; leaf && j < t.n; j++)
			if (!strcmp(t.v[j].parent, c->id))
				leaf = false;
		snprintf(what, sizeof(what), "checkpoint '%s' disk", c->name);
		for (unsigned d = 0; !r && d < c->ndisks; d++)
			r = with_chain(st, what, c->disks[d], leaf || !c->parent[0], visit, ctx);
	}
	ckpt_tree_free(&t);
	return r;
}
