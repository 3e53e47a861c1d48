/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Differencing disks: the parent locator (keys and UTF-16 values), writing one for a new
 * child, and finding and opening the parent with its linkage checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk_internal.h"
#include "disk/vhdx_internal.h"
#include "lib/log.h"
#include "lib/utf16.h"

#define VHDX_MAX_DEPTH 256

void vhdx_locator_free(struct vhdx_locator *loc)
{
	for (unsigned i = 0; i < loc->count; i++) {
		free(loc->key[i]);
		free(loc->value[i]);
	}
	loc->count = 0;
}

const char *vhdx_locator_get(const struct vhdx_locator *loc, const char *key)
{
	for (unsigned i = 0; i < loc->count; i++)
		if (strcmp(loc->key[i], key) == 0)
			return loc->value[i];
	return NULL;
}

static char *decode(const uint8_t *buf, uint32_t len, uint32_t off, uint16_t n)
{
	size_t cap = (size_t)n * 2 + 1; /* UTF-8 needs at most 3 bytes per UTF-16 unit */
	char *s;

	if (n == 0 || n % 2 || (uint64_t)off + n > len)
		return NULL;
	s = malloc(cap);
	if (s && utf16_to_utf8(buf + off, n, s, cap) != 0) {
		free(s);
		s = NULL;
	}
	return s;
}

int vhdx_locator_parse(struct vhdx *v, const uint8_t *buf, uint32_t len)
{
	static const struct uuid type = VHDX_GUID_LOCATOR_TYPE;
	struct vhdx_locator *loc = &v->loc;
	uint16_t n = le16_load(buf + 18);
	struct uuid t;

	memcpy(t.b, buf, 16);
	if (!uuid_equal(&t, &type)) {
		disk_fail(v->base.err, "%s: VHDX parent locator has an unknown type", v->base.path);
		return -EINVAL;
	}
	if (n > VHDX_LOCATOR_MAX_KEYS ||
	    VHDX_LOCATOR_HDR_SIZE + (uint64_t)n * VHDX_LOCATOR_ENTRY_SIZE > len) {
		disk_fail(v->base.err, "%s: VHDX parent locator has %u entries, more than fit",
			  v->base.path, n);
		return -EINVAL;
	}
	vhdx_locator_free(loc);
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *e = buf + VHDX_LOCATOR_HDR_SIZE + i * VHDX_LOCATOR_ENTRY_SIZE;
		char *k = decode(buf, len, le32_load(e), le16_load(e + 8));
		char *val = decode(buf, len, le32_load(e + 4), le16_load(e + 10));

		if (!k || !val) {
			free(k);
			free(val);
			disk_fail(v->base.err, "%s: VHDX parent locator entry %u is malformed",
				  v->base.path, i);
			return -EINVAL;
		}
		loc->key[loc->count] = k;
		loc->value[loc->count] = val;
		loc->count++;
	}
	if (!vhdx_locator_get(loc, "parent_linkage")) {
		disk_fail(v->base.err, "%s: VHDX parent locator has no parent_linkage",
			  v->base.path);
		return -EINVAL;
	}
	return 0;
}

/* Splits an absolute path into its components (modifies s). Returns the count. */
static int split_path(char *s, char **comp, int max)
{
	int n = 0;

	for (char *tok = strtok(s, "/"); tok && n < max; tok = strtok(NULL, "/"))
		comp[n++] = tok;
	return n;
}

/* Relative path, Windows style, from directory `from` to file `to` (absolute, canonical). */
static int relative_path(const char *from, const char *to, char *out, size_t cap)
{
	char a[PATH_MAX], b[PATH_MAX], *fc[256], *tc[256];
	int nf, nt, k = 0;
	size_t n = 0;

	if (strlen(from) >= sizeof(a) || strlen(to) >= sizeof(b))
		return -ENAMETOOLONG;
	strcpy(a, from);
	strcpy(b, to);
	nf = split_path(a, fc, 256);
	nt = split_path(b, tc, 256);
	while (k < nf && k < nt - 1 && strcmp(fc[k], tc[k]) == 0)
		k++;
	out[0] = 0;
	if (k == nf)
		n = (size_t)snprintf(out, cap, ".\\");
	for (int i = k; i < nf && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "..\\");
	for (int i = k; i < nt && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", tc[i], i + 1 < nt ? "\\" : "");
	return n < cap ? 0 : -ENAMETOOLONG;
}

static int put_kv(uint8_t *out, uint32_t cap, uint32_t *pos, unsigned i, const char *k,
		  const char *val)
{
	uint8_t *e = out + VHDX_LOCATOR_HDR_SIZE + i * VHDX_LOCATOR_ENTRY_SIZE;
	size_t kl, vl;
	int r;

	r = utf16_from_utf8(k, out + *pos, cap - *pos, &kl);
	if (r)
		return r;
	le32_store(e, *pos);
	le16_store(e + 8, (uint16_t)kl);
	*pos += (uint32_t)kl;
	r = utf16_from_utf8(val, out + *pos, cap - *pos, &vl);
	if (r)
		return r;
	if (kl > UINT16_MAX || vl > UINT16_MAX)
		return -ENAMETOOLONG;
	le32_store(e + 4, *pos);
	le16_store(e + 10, (uint16_t)vl);
	*pos += (uint32_t)vl;
	return 0;
}

int vhdx_locator_build(const char *child_path, const char *parent_path,
		       const struct uuid *parent_data_write, uint8_t *out, uint32_t cap,
		       uint32_t *len)
{
	static const struct uuid type = VHDX_GUID_LOCATOR_TYPE;
	char *child_dir = NULL, *dup = NULL, *parent_abs = NULL;
	char rel[PATH_MAX], linkage[UUID_STR_LEN];
	uint32_t pos = VHDX_LOCATOR_HDR_SIZE + 3 * VHDX_LOCATOR_ENTRY_SIZE;
	int r = -ENOMEM;

	parent_abs = realpath(parent_path, NULL);
	dup = strdup(child_path);
	if (!parent_abs || !dup) {
		r = parent_abs ? -ENOMEM : -errno;
		goto out;
	}
	child_dir = realpath(dirname(dup), NULL);
	if (!child_dir) {
		r = -errno;
		goto out;
	}
	r = relative_path(child_dir, parent_abs, rel, sizeof(rel));
	if (r)
		goto out;
	memset(out, 0, cap);
	memcpy(out, type.b, 16);
	le16_store(out + 18, 3);
	uuid_format(parent_data_write, true, linkage);
	r = put_kv(out, cap, &pos, 0, "parent_linkage", linkage);
	if (r == 0)
		r = put_kv(out, cap, &pos, 1, "relative_path", rel);
	if (r == 0)
		r = put_kv(out, cap, &pos, 2, "absolute_win32_path", parent_abs);
	*len = pos;
out:
	free(parent_abs);
	free(child_dir);
	free(dup);
	return r;
}

/* A locator path in POSIX form: backslashes to slashes; relative ones from the child's dir. */
static int locator_to_posix(const char *child, const char *val, bool relative, char *out,
			    size_t cap)
{
	char tmp[PATH_MAX];
	size_t n = strlen(val);
	int w;

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	for (size_t i = 0; i <= n; i++)
		tmp[i] = val[i] == '\\' ? '/' : val[i];
	if (!relative) {
		if (tmp[0] != '/')
			return -ENOENT; /* a Windows drive path: not reachable here */
		w = snprintf(out, cap, "%s", tmp);
	} else {
		char *dup = strdup(child);
		const char *rel = tmp;

		if (!dup)
			return -ENOMEM;
		const char *dir;

		while (rel[0] == '.' && rel[1] == '/')
			rel += 2;
		dir = dirname(dup);
		w = strcmp(dir, ".") ? snprintf(out, cap, "%s/%s", dir, rel)
				     : snprintf(out, cap, "%s", rel);
		free(dup);
	}
	return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
}

/* The path v's locator gives for its parent (key k of relative_path, absolute_win32_path):
 * 0 with cand, or -ENOENT when that key has none usable here. */
static int locator_path(struct vhdx *v, size_t k, char *cand, size_t cap)
{
	static const char *const keys[] = {"relative_path", "absolute_win32_path"};
	const char *val = k < 2 ? vhdx_locator_get(&v->loc, keys[k]) : NULL;

	if (!val || locator_to_posix(v->base.path, val, k == 0, cand, cap) != 0)
		return -ENOENT;
	return 0;
}

/* v's parent opened as one file (its own parent not followed; reasons into err): from fd when the
 * caller passed it (cand, the locator's path, only names it), else found through the locator. */
static int parent_one(struct vhdx *v, int fd, struct disk **out, char *cand, size_t cap,
		      struct disk_err *err)
{
	unsigned pflags = DISK_OPEN_RDONLY | (v->flags & DISK_OPEN_NOLOCK);
	const char *path = v->base.path;
	struct disk_err why = {{0}};
	int r = -ENOENT;

	if (fd >= 0) {
		if (locator_path(v, 0, cand, cap) && locator_path(v, 1, cand, cap))
			snprintf(cand, cap, "%s", "(a passed descriptor)");
		r = vhdx_open_one(fd, cand, pflags, out, &why);
	} else {
		char whyopen[128];

		/* A file a locator names is opened never waiting, and only when regular: what a
		 * child's writer wrote there may be a FIFO or a device (docs/security.md). */
		for (size_t k = 0; k < 2 && r == -ENOENT; k++) {
			if (locator_path(v, k, cand, cap))
				continue;
			fd = disk_open_file(cand, O_RDONLY, false, whyopen, sizeof(whyopen));
			if (fd >= 0)
				r = vhdx_open_one(fd, cand, pflags, out, &why);
			else if (fd == -EINVAL)
				r = fd;
		}
		if (r == -EINVAL && fd < 0) {
			disk_fail(err, "%s: cannot open its parent %s: %s", path, cand, whyopen);
			return r;
		}
		if (r == -ENOENT) {
			const char *rel = vhdx_locator_get(&v->loc, "relative_path");
			const char *abs = vhdx_locator_get(&v->loc, "absolute_win32_path");

			disk_fail(err,
				  "%s: parent disk not found (relative_path '%s', "
				  "absolute_win32_path '%s')",
				  path, rel ? rel : "", abs ? abs : "");
			return r;
		}
	}
	if (r) {
		disk_fail(err, "%s: cannot open its parent %s: %.384s", path, cand,
			  disk_why(&why, r));
	}
	return r;
}

int vhdx_parent_check(struct vhdx *v, struct disk *p, const char *cand, struct disk_err *err)
{
	const char *link = vhdx_locator_get(&v->loc, "parent_linkage");
	const char *link2 = vhdx_locator_get(&v->loc, "parent_linkage2");
	struct uuid want, want2, have = to_vhdx(p)->data_write;

	if (uuid_parse(link, &want) != 0) {
		disk_fail(err, "%s: VHDX parent_linkage '%s' is not a GUID", v->base.path, link);
		return -EINVAL;
	}
	if (!uuid_equal(&have, &want) &&
	    !(link2 && uuid_parse(link2, &want2) == 0 && uuid_equal(&have, &want2))) {
		char h[UUID_STR_LEN];

		uuid_format(&have, true, h);
		disk_fail(
			err,
			"%s: parent %s was modified after this disk was made (its DataWriteGuid is "
			"%s, the child expects %s)",
			v->base.path, cand, h, link);
		return -ESTALE;
	}
	if (to_vhdx(p)->lsec != v->lsec) {
		disk_fail(err, "%s: parent %s has %u-byte sectors, this disk %u", v->base.path,
			  cand, to_vhdx(p)->lsec, v->lsec);
		return -EINVAL;
	}
	return 0;
}

int vhdx_chain_open(struct vhdx *top, const int *parents, unsigned nparents)
{
	struct vhdx *v = top;
	unsigned depth = 0, used = 0;
	int r = 0;

	/* The one walk down a chain: each level opened alone, checked, then linked to its
	 * child; a loop of files or a chain too deep ends it. */
	for (; v->has_parent; depth++) {
		char cand[PATH_MAX];
		struct disk *p = NULL;

		if (depth + 1 >= VHDX_MAX_DEPTH) {
			disk_fail(top->base.err, "%s: differencing chain deeper than %d (a loop?)",
				  top->base.path, VHDX_MAX_DEPTH);
			r = -ELOOP;
			break;
		}
		if (parents && depth == nparents) {
			disk_fail(top->base.err,
				  "%s: its differencing chain has more than the %u parent%s passed",
				  top->base.path, nparents, nparents == 1 ? "" : "s");
			r = -ENOENT;
			break;
		}
		r = parent_one(v, parents ? parents[depth] : -1, &p, cand, sizeof(cand),
			       top->base.err);
		used = parents ? depth + 1 : 0;
		if (!r) {
			r = vhdx_parent_check(v, p, cand, top->base.err);
			if (r)
				p->ops->close(p);
		}
		if (r)
			break;
		v->parent = p;
		snprintf(v->parent_path, sizeof(v->parent_path), "%s", cand);
		v = to_vhdx(p);
	}
	if (!r && parents && depth < nparents) {
		disk_fail(top->base.err, "%s: %u parent%s passed, its differencing chain has %u",
			  top->base.path, nparents, nparents == 1 ? "" : "s", depth);
		r = -EINVAL;
	}
	for (unsigned i = used; parents && i < nparents; i++)
		close(parents[i]);
	return r;
}

int disk_parent_locator(struct disk *d, unsigned k, char *out, size_t cap)
{
	if (!d || d->ops != &vhdx_ops || !to_vhdx(d)->has_parent)
		return -ENODEV;
	return locator_path(to_vhdx(d), k, out, cap);
}

int disk_parents(struct disk *d, char (*paths)[DISK_PATH_MAX], unsigned max)
{
	unsigned n = 0;

	/* One loop down the chain: each level's parent, as vhdx_parent_open found it. */
	while (d && d->ops == &vhdx_ops && to_vhdx(d)->parent) {
		if (n == max)
			return -E2BIG;
		snprintf(paths[n++], DISK_PATH_MAX, "%s", to_vhdx(d)->parent_path);
		d = to_vhdx(d)->parent;
	}
	return (int)n;
}
