/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/ckpt_tree.h"

#include <stdlib.h>
#include <string.h>

#include "config/vmdef_device.h"

static void ckpt_clear(struct ckpt *c)
{
	for (unsigned i = 0; i < c->ndisks; i++)
		free(c->disks[i]);
	memset(c, 0, sizeof(*c));
}

void ckpt_tree_free(struct ckpt_tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		ckpt_clear(&t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

struct ckpt *ckpt_tree_add(struct ckpt_tree *t)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct ckpt *bigger = realloc(t->v, cap * sizeof(*bigger));

		if (!bigger)
			return NULL;
		t->v = bigger;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	return &t->v[t->n++];
}

void ckpt_tree_remove(struct ckpt_tree *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].id, id))
			continue;
		ckpt_clear(&t->v[i]);
		memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
		t->n--;
		return;
	}
}

struct ckpt *ckpt_tree_by_id(struct ckpt_tree *t, const char *id)
{
	for (size_t i = 0; id && id[0] && i < t->n; i++)
		if (!strcmp(t->v[i].id, id))
			return &t->v[i];
	return NULL;
}

struct ckpt *ckpt_tree_lookup(struct ckpt_tree *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].hidden && !strcmp(t->v[i].name, key))
			return &t->v[i];
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].hidden && !strcmp(t->v[i].id, key))
			return &t->v[i];
	return NULL;
}

unsigned ckpt_tree_children(const struct ckpt_tree *t, const char *id, bool count_now)
{
	unsigned n = count_now && !strcmp(t->now, id);

	for (size_t i = 0; i < t->n; i++)
		n += !strcmp(t->v[i].parent, id);
	return n;
}

struct ckpt *ckpt_tree_visible_parent(struct ckpt_tree *t, const struct ckpt *c)
{
	struct ckpt *p = ckpt_tree_by_id(t, c->parent);

	for (size_t hops = 0; p && p->hidden && hops < t->n; hops++)
		p = ckpt_tree_by_id(t, p->parent);
	return p && !p->hidden ? p : NULL;
}

bool ckpt_tree_descends(struct ckpt_tree *t, const char *id, const char *anc)
{
	const char *cur = id ? id : t->now;

	for (size_t hops = 0; cur && cur[0] && hops <= t->n; hops++) {
		struct ckpt *c;

		if (!strcmp(cur, anc))
			return true;
		c = ckpt_tree_by_id(t, cur);
		cur = c ? c->parent : NULL;
	}
	return false;
}

unsigned ckpt_tree_visible(const struct ckpt_tree *t)
{
	unsigned n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += !t->v[i].hidden;
	return n;
}

unsigned ckpt_vm_disks(const struct vm_def *def, struct vm_disk *out[CKPT_DISKS_MAX])
{
	unsigned n = 0;

	/* Every disk id in order: disks[], then the LUNs (vmdef_disk_of: NULL for a DVD). */
	for (unsigned k = 0; k < VMDEF_DISK_IDS && n < CKPT_DISKS_MAX; k++) {
		struct vm_disk *d = vmdef_disk_of(def, vmdef_disk_id_at(k));

		if (d && d->path)
			out[n++] = d;
	}
	return n;
}
