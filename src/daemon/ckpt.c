/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/agent_freeze.h"
#include "daemon/biglock.h"
#include "daemon/disk_policy.h"
#include "disk/disk.h"
#include "disk/vhdx.h"
#include "lib/clock.h"
#include "lib/error.h"
#include "lib/log.h"

#define CKPT_DIR   "checkpoints" /* in the VM's directory: one directory per saved state */
#define CKPT_MEDIA "media"	 /* in a saved state's directory: the DVD media it names */

/* Everything one operation works on: the VM, its tree and the definition to store. */
struct op {
	struct ckpt_ctx *ctx;
	const struct vm_def *def;
	struct vm_def nd; /* the new definition: Now's disk paths */
	struct ckpt_tree t;
	struct sup_status st;
	bool have_nd;
};

static int op_begin(struct op *op, struct ckpt_ctx *ctx, const struct vm_def *def, char *err,
		    size_t errlen)
{
	int ret;

	memset(op, 0, sizeof(*op));
	op->ctx = ctx;
	op->def = def;
	sup_status(ctx->sup, def->uuid, &op->st);
	ret = store_ckpt_load(ctx->store, def->uuid, &op->t);
	if (ret) {
		error_set(err, errlen, "cannot read the checkpoints of VM '%s' from the store",
			  def->name);
		return ret;
	}
	ret = vmdef_copy(&op->nd, def);
	if (ret) {
		ckpt_tree_free(&op->t);
		error_set(err, errlen, "out of memory");
		return ret;
	}
	op->have_nd = true;
	op->nd.revision = def->revision + 1;
	return 0;
}

static void op_end(struct op *op)
{
	ckpt_tree_free(&op->t);
	if (op->have_nd)
		vmdef_free(&op->nd);
}

static int op_commit(struct op *op, bool with_def, char *err, size_t errlen)
{
	int ret = store_ckpt_save(op->ctx->store, op->def->uuid, &op->t, with_def ? &op->nd : NULL,
				  err, errlen);

	if (!ret && with_def)
		op->nd.revision++; /* the next commit of this operation follows this one */
	return ret;
}

static bool is_running(const struct op *op)
{
	return op->st.state == VM_RUNNING || op->st.state == VM_PAUSED;
}

/* Off, Crashed and Saved VMs; running and paused ones too (the caller stops the worker). */
static int need_off(struct op *op, const char *verb, char *err, size_t errlen)
{
	switch (op->st.state) {
	case VM_OFF:
	case VM_CRASHED:
	case VM_SAVED:
	case VM_RUNNING:
	case VM_PAUSED:
		return 0;
	default:
		error_set(err, errlen,
			  "cannot %s VM '%s': it is %s; wait until it is running or off", verb,
			  op->def->name, vm_state_name(op->st.state));
		return -EBUSY;
	}
}

static int check_name(const struct ckpt_tree *t, const char *name, const char *vm, char *err,
		      size_t errlen)
{
	size_t len = strlen(name);

	if (len == 0 || len > CKPT_NAME_MAX) {
		error_set(err, errlen, "a checkpoint name must have 1 to %d characters",
			  CKPT_NAME_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '/') {
			error_set(err, errlen,
				  "checkpoint name '%s' has a '/' or a control character", name);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < t->n; i++) {
		if (!t->v[i].hidden && !strcmp(t->v[i].name, name)) {
			error_set(err, errlen, "VM '%s' already has a checkpoint named '%s'", vm,
				  name);
			return -EEXIST;
		}
	}
	return 0;
}

/* Every disk a checkpoint takes (ckpt_vm_disks: virtio-blk and SCSI) must be VHDX (as pinned
 * when it was attached: raw files cannot have differencing children) and open as one. */
static int check_disks(const struct vm_def *def, char *err, size_t errlen)
{
	struct vm_disk *disks[CKPT_DISKS_MAX];
	unsigned n = ckpt_vm_disks(def, disks);
	struct disk_err why;

	for (unsigned i = 0; i < n; i++) {
		const char *kind = i < def->ndisks ? "disk" : "SCSI disk";
		struct disk *d = NULL;
		int ret;

		if (disks[i]->format != VM_DISK_VHDX) {
			error_set(err, errlen,
				  "%s %s of VM '%s' is a raw file: checkpoints need VHDX disks; "
				  "convert it with 'keel disk convert %s NEW.vhdx' and give the VM "
				  "the new file (keel vm set --disk%s)",
				  kind, disks[i]->path, def->name, disks[i]->path,
				  i < def->ndisks ? "" : " NEW.vhdx,bus=scsi");
			return -EMEDIUMTYPE;
		}
		ret = disk_open_as(disks[i]->path, DISK_FORMAT_VHDX,
				   DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT | DISK_OPEN_NOLOCK, &d,
				   &why);
		disk_close(d);
		if (ret) {
			error_set(err, errlen, "cannot open %s %s of VM '%s': %s", kind,
				  disks[i]->path, def->name, disk_why(&why, ret));
			return ret == -ENOENT ? -EINVAL : ret;
		}
	}
	return 0;
}

/* The differencing chain of one of the VM's files, checked as at attach and start
 * (disk_policy_check_chain: each file through its pool, a regular file opened without waiting,
 * depth bounded, linkage GUIDs), before the disk library follows its locators by path as root:
 * a locator the VM's worker rewrote to point anywhere else is refused, naming the file. */
static int check_chain(struct op *op, const char *verb, const char *path, char *err, size_t errlen)
{
	char why[768];

	if (disk_policy_check_chain(op->ctx->store, "disk", path, NULL, 0, why, sizeof(why)) >= 0)
		return 0;
	error_set(err, errlen, "cannot %s VM '%s': %s", verb, op->def->name, why);
	return -EINVAL;
}

/* Every chain of the VM's checkpoint tree that an operation may follow: each leaf's disks
 * (every other checkpoint's files are in a leaf's chain) and, with_now, the disks of the VM's
 * current state (an apply throws those away without opening them, so that a VM whose
 * current disk is damaged can still go back to a checkpoint). 0, or -EINVAL with err. */
static int check_chains(struct op *op, bool with_now, const char *verb, char *err, size_t errlen)
{
	struct vm_disk *now[CKPT_DISKS_MAX];
	unsigned nnow = ckpt_vm_disks(&op->nd, now);
	int ret = 0;

	for (size_t i = 0; !ret && i < op->t.n; i++) {
		const struct ckpt *c = &op->t.v[i];
		bool leaf = !with_now || strcmp(op->t.now, c->id);

		for (size_t j = 0; leaf && j < op->t.n; j++)
			if (!strcmp(op->t.v[j].parent, c->id))
				leaf = false;
		for (unsigned d = 0; leaf && !ret && d < c->ndisks; d++)
			ret = check_chain(op, verb, c->disks[d], err, errlen);
	}
	for (unsigned d = 0; with_now && !ret && d < nnow; d++)
		if (now[d]->format == VM_DISK_VHDX)
			ret = check_chain(op, verb, now[d]->path, err, errlen);
	return ret;
}

/* DIR/STEM_XXXXXXXX.avhdx next to parent, STEM being parent's name without its extension and
 * without an earlier _XXXXXXXX suffix. */
static int child_path(const char *parent, const char *tag, char *out, size_t size)
{
	char copy[PATH_MAX], dir[PATH_MAX], stem[NAME_MAX + 1];
	char *dot;
	size_t n;

	if (snprintf(copy, sizeof(copy), "%s", parent) >= (int)sizeof(copy))
		return -ENAMETOOLONG;
	snprintf(dir, sizeof(dir), "%s", dirname(copy));
	snprintf(copy, sizeof(copy), "%s", parent);
	snprintf(stem, sizeof(stem), "%s", basename(copy));
	dot = strrchr(stem, '.');
	if (dot && dot != stem)
		*dot = '\0';
	n = strlen(stem);
	if (n > 9 && stem[n - 9] == '_' && strspn(stem + n - 8, "0123456789abcdef") == 8)
		stem[n - 9] = '\0';
	if (snprintf(out, size, "%s/%s_%.8s.avhdx", dir, stem, tag) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* New differencing children of files[0..n) into out[]; on failure none is left behind. Each
 * parent is opened with its chain through the pools, checked (disk_policy_open_chain), and
 * handed to the library as it is: no file of a chain is opened by path as root. */
static int make_children(struct op *op, const char *verb, char *const *files, unsigned n,
			 char **out, char *err, size_t errlen)
{
	char tag[VMDEF_UUID_LEN + 1], path[PATH_MAX], why2[768];
	unsigned made = 0;
	int ret = vmdef_gen_uuid(tag);

	for (; !ret && made < n; made++) {
		struct disk_create_opts o = {
			.format = DISK_FORMAT_VHDX,
			.type = DISK_TYPE_DIFFERENCING,
			.parent = files[made],
		};

		struct disk_err why = {{0}};

		if (disk_policy_open_chain(op->ctx->store, "disk", files[made], &o.parent_disk,
					   why2, sizeof(why2))) {
			error_set(err, errlen, "cannot %s VM '%s': %s", verb, op->def->name, why2);
			ret = -EINVAL;
			break;
		}
		ret = child_path(files[made], tag, path, sizeof(path));
		if (!ret)
			ret = disk_create(path, &o, &why);
		disk_close(o.parent_disk);
		if (ret) {
			error_set(err, errlen, "cannot create a differencing disk for %s: %s",
				  files[made], disk_why(&why, ret));
			break;
		}
		out[made] = strdup(path);
		if (!out[made]) {
			unlink(path);
			ret = -ENOMEM;
			error_set(err, errlen, "out of memory");
			break;
		}
	}
	if (ret) {
		while (made-- > 0) {
			unlink(out[made]);
			free(out[made]);
			out[made] = NULL;
		}
	}
	return ret;
}

static void unlink_all(char **files, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (files[i] && unlink(files[i]) < 0 && errno != ENOENT)
			log_warn("cannot remove %s: %s", files[i], strerror(errno));
}

static int state_dir(struct op *op, const char *id, char *buf, size_t size)
{
	char vm[PATH_MAX];
	int ret = sup_vm_dir(op->ctx->sup, op->def->uuid, vm, sizeof(vm));

	if (ret)
		return ret;
	if (snprintf(buf, size, "%s/" CKPT_DIR "/%s", vm, id ? id : "") >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* A checkpoint's state directory and the saved state in it. */
static void remove_state_dir(const char *dir)
{
	static const char *const files[] = {"state", "memory", CKPT_MEDIA};
	char path[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, files[i]) < sizeof(path))
			unlink(path);
	rmdir(dir);
}

static void remove_state(struct op *op, struct ckpt *c)
{
	char dir[PATH_MAX];

	c->saved = false;
	if (!state_dir(op, c->id, dir, sizeof(dir)))
		remove_state_dir(dir);
}

/* Hard links of the VM's saved state into the checkpoint's directory. */
static int keep_saved_state(struct op *op, const char *id, char *err, size_t errlen)
{
	static const char *const files[] = {"state", "memory"};
	char vm[PATH_MAX], dir[PATH_MAX], from[PATH_MAX + 16], to[PATH_MAX + 16];
	int ret;

	ret = sup_vm_dir(op->ctx->sup, op->def->uuid, vm, sizeof(vm));
	if (!ret)
		ret = state_dir(op, NULL, dir, sizeof(dir));
	if (ret)
		return ret;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	ret = state_dir(op, id, dir, sizeof(dir));
	if (ret)
		return ret;
	if (mkdir(dir, 0700) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(from, sizeof(from), "%s/saved/%s", vm, files[i]);
		snprintf(to, sizeof(to), "%s/%s", dir, files[i]);
		if (link(from, to) < 0)
			goto fail;
	}
	return 0;
fail:
	ret = -errno;
	error_set(err, errlen, "cannot keep the saved state of VM '%s' in %s: %s", op->def->name,
		  dir, strerror(errno));
	return ret;
}

/* The DVD media of the VM's description, which its saved state names: `media` in the
 * checkpoint's directory, [{"lun": I, "path": P or null}] for each DVD drive. */
static int save_media(struct op *op, const char *id, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	json_object *a = json_object_new_array();
	int ret = a ? state_dir(op, id, dir, sizeof(dir)) : -ENOMEM;

	for (unsigned i = 0; !ret && i < op->def->scsi.nluns; i++) {
		const struct vm_lun *l = &op->def->scsi.luns[i];
		json_object *o;

		if (l->type != VM_LUN_DVD)
			continue;
		o = json_object_new_object();
		if (!o || json_object_array_add(a, o)) {
			json_object_put(o);
			ret = -ENOMEM;
			break;
		}
		json_object_object_add(o, "lun", json_object_new_int((int)i));
		json_object_object_add(o, "path",
				       l->disk.path ? json_object_new_string(l->disk.path) : NULL);
	}
	if (!ret) {
		/* A new file in keeld's directory (the worker's save is taken back), its name
		 * made durable with the directory. */
		int fd, dfd = -1;

		snprintf(path, sizeof(path), "%s/" CKPT_MEDIA, dir);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			ret = -errno;
		else if (json_object_to_fd(fd, a, JSON_C_TO_STRING_PLAIN) < 0)
			ret = -EIO; /* json-c keeps no errno */
		else if (fsync(fd) ||
			 (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
			 fsync(dfd))
			ret = -errno;
		if (dfd >= 0)
			close(dfd);
		if (fd >= 0)
			close(fd);
	}
	if (ret)
		error_set(err, errlen,
			  "cannot record the DVD media of VM '%s' with its checkpoint: %s",
			  op->def->name, strerror(-ret));
	json_object_put(a);
	return ret;
}

/* Put the media a checkpoint's saved state names (save_media) back into op->nd's DVD
 * drives, each through the DVD checks of `keel vm set --dvd` (disk_policy_attach_media: the
 * media only, the current disks the apply throws away are not opened): the saved state is
 * restored with them. A medium that is gone or fails the checks refuses the apply, naming
 * it. A checkpoint taken before media were recorded leaves the drives as they are. */
static int restore_media(struct op *op, const struct ckpt *c, const char *dir, char *err,
			 size_t errlen)
{
	char path[PATH_MAX + 16], why[512];
	json_object *a;
	bool changed = false;
	int ret = 0, fd;

	snprintf(path, sizeof(path), "%s/" CKPT_MEDIA, dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	a = fd >= 0 ? json_object_from_fd(fd) : NULL;
	if (fd >= 0)
		close(fd);
	if (!a || !json_object_is_type(a, json_type_array)) {
		error_set(err, errlen, "the DVD media record of checkpoint '%s' (%s) is unreadable",
			  c->name, path);
		json_object_put(a);
		return -EIO;
	}
	for (size_t k = 0; k < json_object_array_length(a); k++) {
		json_object *o = json_object_array_get_idx(a, k), *jl, *jp;
		const char *p;
		int64_t lun;
		struct vm_lun *l;

		if (!json_object_object_get_ex(o, "lun", &jl) ||
		    !json_object_is_type(jl, json_type_int) ||
		    !json_object_object_get_ex(o, "path", &jp) ||
		    (jp && !json_object_is_type(jp, json_type_string)) ||
		    (lun = json_object_get_int64(jl)) < 0 || lun >= op->nd.scsi.nluns ||
		    op->nd.scsi.luns[lun].type != VM_LUN_DVD) {
			error_set(err, errlen,
				  "checkpoint '%s' has a DVD drive that VM '%s' no longer has",
				  c->name, op->def->name);
			ret = -EBUSY;
			break;
		}
		l = &op->nd.scsi.luns[lun];
		p = jp ? json_object_get_string(jp) : NULL;
		if (p ? l->disk.path && !strcmp(p, l->disk.path) : !l->disk.path)
			continue;
		free(l->disk.path);
		l->disk.path = p ? strdup(p) : NULL;
		if (p && !l->disk.path) {
			ret = -ENOMEM;
			error_set(err, errlen, "out of memory");
			break;
		}
		l->disk.format = VM_DISK_RAW;
		changed = true;
	}
	json_object_put(a);
	if (!ret && changed) {
		ret = disk_policy_attach_media(op->ctx->store, op->ctx->sup, &op->nd, why,
					       sizeof(why));
		if (ret)
			error_set(err, errlen,
				  "the saved state of checkpoint '%s' holds the DVD medium the VM "
				  "had then, which cannot go back in: %s",
				  c->name, why);
	}
	return ret;
}

static struct ckpt *add_checkpoint(struct op *op, const char *name, char *err, size_t errlen)
{
	int64_t seq = 0;
	struct ckpt *c;

	for (size_t i = 0; i < op->t.n; i++)
		if (op->t.v[i].seq > seq)
			seq = op->t.v[i].seq;
	c = ckpt_tree_add(&op->t);
	if (!c) {
		error_set(err, errlen, "out of memory");
		return NULL;
	}
	if (vmdef_gen_uuid(c->id)) {
		error_set(err, errlen, "cannot generate a checkpoint id");
		ckpt_tree_remove(&op->t, c->id);
		return NULL;
	}
	memcpy(c->name, name, strnlen(name, CKPT_NAME_MAX)); /* checked: at most that long */
	c->created = (int64_t)time(NULL);
	c->seq = seq + 1;
	snprintf(c->parent, sizeof(c->parent), "%s", op->t.now);
	return c;
}

static json_object *ckpt_json(struct ckpt_tree *t, const struct ckpt *c)
{
	json_object *o = json_object_new_object(), *disks = json_object_new_array();
	struct ckpt *p = ckpt_tree_visible_parent(t, c);
	char when[CLOCK_UTC_LEN];

	clock_utc_text((time_t)c->created, when);
	json_object_object_add(o, "id", json_object_new_string(c->id));
	json_object_object_add(o, "name", json_object_new_string(c->name));
	json_object_object_add(o, "created", json_object_new_string(when));
	json_object_object_add(o, "parent", p ? json_object_new_string(p->name) : NULL);
	json_object_object_add(o, "parent_id", p ? json_object_new_string(p->id) : NULL);
	json_object_object_add(o, "saved_state", json_object_new_boolean(c->saved));
	json_object_object_add(o, "type",
			       json_object_new_string(c->production ? "production" : "standard"));
	for (unsigned i = 0; i < c->ndisks; i++)
		json_object_array_add(disks, json_object_new_string(c->disks[i]));
	json_object_object_add(o, "disks", disks);
	return o;
}

/* What a new checkpoint named name needs: a free name, a VM that may take one, room in
 * the tree, VHDX disks. */
static int create_checks(struct op *op, const struct vm_def *def, const char *name, char *err,
			 size_t errlen)
{
	int ret = check_name(&op->t, name, def->name, err, errlen);

	if (!ret)
		ret = need_off(op, "checkpoint", err, errlen);
	if (!ret && (ckpt_tree_visible(&op->t) >= CKPT_MAX || op->t.n >= CKPT_MAX_ALL)) {
		error_set(err, errlen,
			  "VM '%s' has %u checkpoints, the most it may have; delete some",
			  def->name, ckpt_tree_visible(&op->t));
		ret = -EBUSY;
	}
	if (!ret)
		ret = check_disks(def, err, errlen);
	if (!ret) {
		/* A checkpoint adds one parent to every disk: the VM must still start after it. */
		struct vm_disk *disks[CKPT_DISKS_MAX];
		unsigned nd = ckpt_vm_disks(def, disks);
		int n = disk_policy_chain_total(op->ctx->store, def, err, errlen);

		if (n >= 0 && (unsigned)n + nd > VMDEF_CHAIN_FDS_MAX) {
			error_set(err, errlen,
				  "a checkpoint would give VM '%s' %u disk parents in all (%u "
				  "now, one more for each of its %u disks), more than the %d a "
				  "VM's disks may have: delete some checkpoints first (keel "
				  "checkpoint delete merges their disks)",
				  def->name, (unsigned)n + nd, (unsigned)n, nd,
				  VMDEF_CHAIN_FDS_MAX);
			n = -E2BIG;
		}
		ret = n < 0 ? (n == -E2BIG ? -EBUSY : n) : 0;
	}
	return ret;
}

const char *ckpt_stamped_name(const struct vm_def *def, const char *kind, char *buf, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;
	char when[32];

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d - %H:%M:%S", &tm);
	snprintf(buf, size, "%.64s - %s(%s)", def->name, kind, when);
	return buf;
}

/* A checkpoint's default name, Hyper-V style: "VM - (2026-12-05 - 10:00:00)". */
static const char *default_name(const struct vm_def *def, char *buf, size_t size)
{
	return ckpt_stamped_name(def, "", buf, size);
}

int ckpt_type_parse(const char *s, enum ckpt_type *out)
{
	static const char *const names[] = {"production", "production-only", "standard"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum ckpt_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Whether a production checkpoint of the VM can be tried as it is: an Off VM's disks are
 * consistent already; a running guest needs its agent's freeze; a Saved, Crashed or Paused
 * one cannot have one. 0, or -errno with why. */
static int production_possible(struct op *op, char *why, size_t whylen)
{
	switch (op->st.state) {
	case VM_OFF:
		return 0;
	case VM_RUNNING:
		return agent_freeze_ready(op->ctx->store, op->def, why, whylen);
	default:
		error_set(why, whylen,
			  "VM '%s' is %s: a production checkpoint needs a running guest with "
			  "integration services, or a VM that is off",
			  op->def->name, vm_state_name(op->st.state));
		return -EOPNOTSUPP;
	}
}

static int production_refused(const struct vm_def *def, const char *why, char *err, size_t errlen)
{
	error_set(err, errlen, "cannot take a production checkpoint of VM '%s': %s", def->name,
		  why);
	return -CKPT_ENOPRODUCTION;
}

int ckpt_create_check(struct ckpt_ctx *ctx, const struct vm_def *def, const char *name,
		      enum ckpt_type type, char *err, size_t errlen)
{
	char dflt[VMDEF_NAME_MAX + 40], why[512];
	struct op op;
	int ret = op_begin(&op, ctx, def, err, errlen);

	if (ret)
		return ret;
	ret = create_checks(&op, def, name ? name : default_name(def, dflt, sizeof(dflt)), err,
			    errlen);
	if (!ret && type == CKPT_PRODUCTION_ONLY && production_possible(&op, why, sizeof(why)))
		ret = production_refused(def, why, err, errlen);
	op_end(&op);
	return ret;
}

int ckpt_sweep(struct ckpt_ctx *ctx, const struct vm_def *def)
{
	char vm[PATH_MAX], dir[PATH_MAX + 16], sub[PATH_MAX + 16 + 256];
	struct ckpt_tree t;
	struct dirent *de;
	int ret, n = 0;
	DIR *d;

	ret = sup_vm_dir(ctx->sup, def->uuid, vm, sizeof(vm));
	if (ret)
		return ret;
	snprintf(dir, sizeof(dir), "%s/" CKPT_DIR, vm);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	ret = store_ckpt_load(ctx->store, def->uuid, &t);
	if (ret) {
		closedir(d);
		return ret;
	}
	while ((de = readdir(d))) {
		struct ckpt *c;

		if (de->d_name[0] == '.')
			continue;
		c = ckpt_tree_by_id(&t, de->d_name);
		if (c && c->saved)
			continue;
		/* A production checkpoint's restart state (keeld ended between the commit and
		 * the restore), or one of a checkpoint that is gone: RAM-sized, and kept by
		 * nothing (the VM's saved/ has links of its own). */
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		log_info("VM %s: removing the leftover saved state %s", def->name, sub);
		remove_state_dir(sub);
		n++;
	}
	closedir(d);
	ckpt_tree_free(&t);
	return n;
}

/* End the guest's freeze (*frozen NULL after); *thawed the file systems still frozen. false
 * when the agent could not be asked (logged: the guest thaws by itself). */
static bool thaw_now(struct ckpt_ctx *ctx, const struct vm_def *def, struct agent_conn **frozen,
		     unsigned *thawed)
{
	char why[400];
	bool ok = true;

	if (agent_thaw(ctx->sup, def, *frozen, thawed, why, sizeof(why))) {
		log_warn("VM %s: cannot thaw the guest's file systems (it thaws by itself within "
			 "%u s): %s",
			 def->name, agent_freeze_timeout_ms / 1000, why);
		ok = false;
	}
	*frozen = NULL;
	return ok;
}

/* How much of the guest's freeze deadline must be left when the VM pauses. */
#define CKPT_FREEZE_MARGIN_MS 2000

/* How long a checkpoint operation that restarted the VM waits for it to run again before it
 * returns (a large VM's memory takes long to load): its job is done when the VM is back, so
 * that what the user does next (turn it off, back it up) finds it Running, not Starting. */
#define CKPT_RESTART_WAIT_MS 120000

/* Start VM def again from its saved state (from_dir's, with reason, when from_dir is given;
 * paused again if it was), and wait up to wait_ms for it to run. Failures are logged (the
 * VM's status says what became of it); 0 when it runs. */
static int carry_on(struct ckpt_ctx *ctx, const struct vm_def *def, const char *from_dir,
		    const char *reason, bool was_paused, unsigned wait_ms, const char *after)
{
	char why[400];

	if ((from_dir && sup_set_saved(ctx->sup, def, from_dir, reason, why, sizeof(why))) ||
	    sup_start_restore(ctx->sup, def, was_paused, why, sizeof(why))) {
		log_err("VM %s: cannot carry on after %s: %s", def->name, after, why);
		return -EIO;
	}
	if (sup_wait_started(ctx->sup, def, wait_ms)) {
		log_warn("VM %s: not running again within %u s of %s", def->name, wait_ms / 1000,
			 after);
		return -ETIMEDOUT;
	}
	return 0;
}

int ckpt_create(struct ckpt_ctx *ctx, const struct vm_def *def, const char *name,
		enum ckpt_type type, json_object **out, char *err, size_t errlen)
{
	char dflt[VMDEF_NAME_MAX + 40], id[VMDEF_UUID_LEN + 1], dir[PATH_MAX] = "";
	char *children[CKPT_DISKS_MAX] = {NULL};
	struct vm_disk *disks[CKPT_DISKS_MAX], *now[CKPT_DISKS_MAX];
	unsigned ndisks = ckpt_vm_disks(def, disks);
	char why[512] = "", fallback[600] = "";
	bool running, stopped = false, was_paused = false, production = false, we_paused = false;
	struct agent_conn *frozen = NULL;
	unsigned nfrozen = 0, thawed = 0;
	long long frozen_at = 0;
	struct ckpt *c;
	struct op op;
	int ret;

	ret = op_begin(&op, ctx, def, err, errlen);
	if (ret)
		return ret;
	if (!name)
		name = default_name(def, dflt, sizeof(dflt));
	ret = create_checks(&op, def, name, err, errlen);
	if (ret)
		goto out;
	if (type != CKPT_STANDARD) {
		ret = production_possible(&op, why, sizeof(why));
		if (!ret && op.st.state == VM_RUNNING) {
			/* keeld's lock is let go while the guest freezes: look again after. The
			 * guest's deadline starts after this, so the host's count is early. */
			frozen_at = clock_mono_ms();
			ret = agent_freeze(ctx->store, ctx->sup, def, &frozen, &nfrozen, why,
					   sizeof(why));
			sup_status(ctx->sup, def->uuid, &op.st);
			if (!ret && op.st.state != VM_RUNNING) {
				error_set(why, sizeof(why), "VM '%s' became %s during the freeze",
					  def->name, vm_state_name(op.st.state));
				ret = -EBUSY;
			} else if (!ret && nfrozen == 0) {
				/* Nothing frozen is no application consistency (a guest whose
				 * block devices the agent did not find, say). */
				error_set(why, sizeof(why),
					  "the agent in VM '%s' froze no file system", def->name);
				ret = -ENODEV;
			}
			if (ret && frozen) {
				/* Thawed before anything else: what follows is not frozen. */
				(void)thaw_now(ctx, def, &frozen, &thawed);
				nfrozen = 0;
			}
		}
		if (!ret) {
			production = true;
		} else if (type == CKPT_PRODUCTION_ONLY) {
			ret = production_refused(def, why, err, errlen);
			goto out;
		} else {
			snprintf(fallback, sizeof(fallback),
				 "a standard checkpoint instead of a production one: %s", why);
			log_info("VM %s: checkpoint '%s': %s", def->name, name, fallback);
			ret = 0;
		}
		ret = create_checks(&op, def, name, err, errlen); /* the state, again */
		if (ret)
			goto out;
	}
	running = is_running(&op);
	c = add_checkpoint(&op, name, err, errlen);
	if (!c) {
		ret = -ENOMEM;
		goto out;
	}
	c->production = production;
	snprintf(id, sizeof(id), "%s", c->id);
	for (unsigned i = 0; i < ndisks; i++) {
		c->disks[i] = strdup(disks[i]->path);
		if (!c->disks[i]) {
			ret = -ENOMEM;
			goto out;
		}
		c->ndisks++;
	}
	if (running) {
		/* Its memory and devices go into the checkpoint (a production one: only through
		 * the restart); the worker ends, and a new one carries on from there on the new
		 * disk files (the VM pauses briefly). */
		ret = state_dir(&op, NULL, dir, sizeof(dir));
		if (!ret && mkdir(dir, 0700) < 0 && errno != EEXIST)
			ret = -errno;
		if (!ret)
			ret = state_dir(&op, id, dir, sizeof(dir));
		if (!ret && mkdir(dir, 0700) < 0)
			ret = -errno;
		if (ret) {
			error_set(err, errlen, "cannot create %s: %s", dir, strerror(-ret));
			goto out;
		}
		if (frozen) {
			/* The disks are taken as of the pause, and a paused guest cannot thaw:
			 * the deadline is checked once the vCPUs have stopped (the save that
			 * follows finds the VM paused, and the restore runs it again). */
			ret = sup_pause(ctx->sup, def, err, errlen);
			if (ret) {
				rmdir(dir);
				goto out;
			}
			we_paused = true;
		}
		if (frozen && clock_mono_ms() - frozen_at >
				      (long long)agent_freeze_timeout_ms - CKPT_FREEZE_MARGIN_MS) {
			/* Too close to the guest's deadline when it paused: it may have thawed
			 * first. It runs again to be thawed; a standard checkpoint, or none. */
			char why2[400];

			if (sup_resume(ctx->sup, def, why2, sizeof(why2)))
				log_err("VM %s: cannot resume it after its pause: %s", def->name,
					why2);
			we_paused = false;
			(void)thaw_now(ctx, def, &frozen, &thawed);
			error_set(why, sizeof(why),
				  "the guest's freeze came within %d ms of its %u s deadline "
				  "before the VM paused",
				  CKPT_FREEZE_MARGIN_MS, agent_freeze_timeout_ms / 1000);
			if (type == CKPT_PRODUCTION_ONLY) {
				rmdir(dir);
				ret = production_refused(def, why, err, errlen);
				goto out;
			}
			snprintf(fallback, sizeof(fallback),
				 "a standard checkpoint instead of a production one: %s", why);
			log_info("VM %s: checkpoint '%s': %s", def->name, name, fallback);
			production = false;
			c->production = false;
		}
		ret = sup_save_stop(ctx->sup, def, dir, &was_paused, err, errlen);
		if (ret) {
			char why2[400];

			if (we_paused && sup_resume(ctx->sup, def, why2, sizeof(why2)))
				log_err("VM %s: cannot resume it after a failed save: %s",
					def->name, why2);
			rmdir(dir);
			goto out;
		}
		if (we_paused)
			was_paused = false; /* paused here, not by its owner */
		stopped = true;
		if (ctx->nvram && def->firmware == VM_FIRMWARE_UEFI) {
			/* No worker runs until the restore: the store is the disks' point. */
			ctx->nvram->ret = sup_nvram_read(ctx->sup, def->uuid, &ctx->nvram->data,
							 &ctx->nvram->size, ctx->nvram->why,
							 sizeof(ctx->nvram->why));
			ctx->nvram->taken = true;
		}
		c = ckpt_tree_by_id(&op.t, id);
		c->saved = !production;
	}
	/* The VM's files freeze as the checkpoint's; it goes on in new children of them. A
	 * worker that ran until now could have rewritten its disk's locator after the checks
	 * above: make_children checks the chains again, with no worker left to change them. */
	ret = make_children(&op, "checkpoint", c->disks, c->ndisks, children, err, errlen);
	if (ret)
		goto undo;
	if (op.st.state == VM_SAVED) {
		ret = keep_saved_state(&op, id, err, errlen);
		if (ret)
			goto undo;
		c->saved = true;
	}
	if (c->saved) {
		ret = save_media(&op, id, err, errlen);
		if (ret)
			goto undo;
	}
	if (ckpt_vm_disks(&op.nd, now) != ndisks) {
		ret = -EIO; /* op.nd is a copy of def */
		goto undo;
	}
	for (unsigned i = 0; i < ndisks; i++) {
		free(now[i]->path);
		now[i]->path = children[i];
		now[i]->format = VM_DISK_VHDX;
		children[i] = NULL;
	}
	snprintf(op.t.now, sizeof(op.t.now), "%s", id);
	ret = op_commit(&op, true, err, errlen);
	if (ret) {
		for (unsigned i = 0; i < ndisks; i++)
			children[i] = strdup(now[i]->path);
		goto undo;
	}
	log_info("VM %s: %s checkpoint '%s' created (id %s%s)", def->name,
		 production ? "production" : "standard", name, id,
		 frozen ? ", file systems frozen" : "");
	if (stopped) {
		/* Frozen file systems: thawed once the worker is back, at the guest's deadline
		 * at the latest. */
		(void)carry_on(ctx, &op.nd, dir, "restoring after a checkpoint", was_paused,
			       frozen ? agent_freeze_timeout_ms : CKPT_RESTART_WAIT_MS,
			       "the checkpoint");
		if (frozen) {
			/* The checkpoint is application-consistent or not from the moment of
			 * the pause, checked above: the guest cannot thaw while paused, and its
			 * clock carries on from the save. A file system the guest's deadline
			 * thawed during the restart (a large VM's memory takes long to save)
			 * was frozen when its disk was taken. */
			if (thaw_now(ctx, def, &frozen, &thawed) && thawed < nfrozen)
				log_warn("VM %s: checkpoint '%s': %u of the %u frozen file systems "
					 "were thawed at the guest's deadline during the restart, "
					 "after the pause",
					 def->name, name, nfrozen - thawed, nfrozen);
		}
		if (production)
			remove_state_dir(dir); /* the restart's: saved/ has its links */
	}
	if (out) {
		*out = ckpt_json(&op.t, ckpt_tree_by_id(&op.t, id));
		if (*out && fallback[0])
			json_object_object_add(*out, "fallback", json_object_new_string(fallback));
		if (*out && production && nfrozen)
			json_object_object_add(*out, "frozen_filesystems",
					       json_object_new_int((int)nfrozen));
	}
	goto out;
undo:
	unlink_all(children, ndisks);
	if (stopped) /* back onto the disks it had, from the state just saved */
		(void)carry_on(ctx, def, dir, "restoring after a failed checkpoint", was_paused,
			       CKPT_RESTART_WAIT_MS, "a failed checkpoint");
	if (ckpt_tree_by_id(&op.t, id))
		remove_state(&op, ckpt_tree_by_id(&op.t, id));
	if (production && stopped)
		remove_state_dir(dir); /* the restart's: saved/ has its links */
out:
	if (ret && ctx->nvram && ctx->nvram->taken) {
		free(ctx->nvram->data);
		ctx->nvram->data = NULL;
		ctx->nvram->taken = false;
	}
	if (frozen)
		(void)thaw_now(ctx, def, &frozen, &thawed);
	for (unsigned i = 0; i < CKPT_DISKS_MAX; i++)
		free(children[i]);
	op_end(&op);
	return ret;
}

int ckpt_count(struct ckpt_ctx *ctx, const char *vm)
{
	struct ckpt_tree t;
	int ret = store_ckpt_load(ctx->store, vm, &t);

	if (ret)
		return ret;
	ret = (int)ckpt_tree_visible(&t);
	ckpt_tree_free(&t);
	return ret;
}

int ckpt_now_parent(struct ckpt_ctx *ctx, const char *vm, char *name, size_t size)
{
	struct ckpt_tree t;
	struct ckpt *p;
	int ret = store_ckpt_load(ctx->store, vm, &t);

	if (ret)
		return ret;
	p = ckpt_tree_by_id(&t, t.now);
	if (p && p->hidden)
		p = ckpt_tree_visible_parent(&t, p);
	ret = p ? 0 : -ENOENT;
	if (p)
		snprintf(name, size, "%s", p->name);
	ckpt_tree_free(&t);
	return ret;
}

int ckpt_list(struct ckpt_ctx *ctx, const struct vm_def *def, json_object **out)
{
	json_object *o, *arr, *now;
	struct ckpt_tree t;
	struct ckpt *p;
	int ret;

	ret = store_ckpt_load(ctx->store, def->uuid, &t);
	if (ret)
		return ret;
	o = json_object_new_object();
	arr = json_object_new_array();
	now = json_object_new_object();
	for (size_t i = 0; i < t.n; i++)
		if (!t.v[i].hidden)
			json_object_array_add(arr, ckpt_json(&t, &t.v[i]));
	p = ckpt_tree_by_id(&t, t.now);
	if (p && p->hidden)
		p = ckpt_tree_visible_parent(&t, p);
	json_object_object_add(now, "parent", p ? json_object_new_string(p->name) : NULL);
	json_object_object_add(now, "parent_id", p ? json_object_new_string(p->id) : NULL);
	json_object_object_add(o, "vm", json_object_new_string(def->name));
	json_object_object_add(o, "checkpoints", arr);
	json_object_object_add(o, "now", now);
	ckpt_tree_free(&t);
	*out = o;
	return 0;
}

static struct ckpt *find(struct op *op, const char *key, char *err, size_t errlen)
{
	struct ckpt *c = ckpt_tree_lookup(&op->t, key);

	if (!c)
		error_set(err, errlen, "VM '%s' has no checkpoint named '%s'", op->def->name, key);
	return c;
}

int ckpt_change_check(struct ckpt_ctx *ctx, const struct vm_def *def, const char *key,
		      const char *verb, bool apply, char *err, size_t errlen)
{
	struct op op;
	int ret = op_begin(&op, ctx, def, err, errlen);

	if (ret)
		return ret;
	if (!find(&op, key, err, errlen))
		ret = -ENOENT;
	else
		ret = need_off(&op, verb, err, errlen);
	if (!ret)
		ret = check_chains(&op, !apply, verb, err, errlen);
	op_end(&op);
	return ret;
}

int ckpt_rename(struct ckpt_ctx *ctx, const struct vm_def *def, const char *key, const char *name,
		char *err, size_t errlen)
{
	struct ckpt *c;
	struct op op;
	int ret;

	ret = op_begin(&op, ctx, def, err, errlen);
	if (ret)
		return ret;
	c = find(&op, key, err, errlen);
	if (!c) {
		ret = -ENOENT;
		goto out;
	}
	if (!strcmp(c->name, name))
		goto out;
	ret = check_name(&op.t, name, def->name, err, errlen);
	if (ret)
		goto out;
	log_info("VM %s: checkpoint '%s' renamed to '%s'", def->name, c->name, name);
	memset(c->name, 0, sizeof(c->name));
	memcpy(c->name, name, strnlen(name, CKPT_NAME_MAX));
	ret = op_commit(&op, false, err, errlen);
out:
	op_end(&op);
	return ret;
}

/* The disk files of the VM's current state ("Now"), which no checkpoint owns. */
static bool owned(struct op *op, const char *path)
{
	for (size_t i = 0; i < op->t.n; i++)
		for (unsigned j = 0; j < op->t.v[i].ndisks; j++)
			if (!strcmp(op->t.v[i].disks[j], path))
				return true;
	return false;
}

/*
 * Remove hidden checkpoint x if the tree allows: with no children its files go; with one
 * child (a checkpoint or the VM's current state) that child's files are merged into x's
 * and the child takes x's files and place; with more, x stays. *changed says if it went.
 */
static int collapse(struct op *op, const char *xid, bool *changed, char *err, size_t errlen)
{
	struct ckpt *x = ckpt_tree_by_id(&op->t, xid), *k = NULL;
	char id[VMDEF_UUID_LEN + 1], parent[VMDEF_UUID_LEN + 1];
	unsigned n = ckpt_tree_children(&op->t, xid, true);
	struct vm_disk *now[CKPT_DISKS_MAX];
	unsigned nnow = ckpt_vm_disks(&op->nd, now);
	bool k_is_now;
	int ret = 0;

	*changed = false;
	if (!x || !x->hidden || n > 1)
		return 0;
	snprintf(id, sizeof(id), "%s", x->id);
	snprintf(parent, sizeof(parent), "%s", x->parent);
	remove_state(op, x);
	if (n == 0) {
		if (x->parent[0]) /* a root's files are the VM's own disks: never removed */
			unlink_all(x->disks, x->ndisks);
		ckpt_tree_remove(&op->t, id);
		*changed = true;
		return 0;
	}
	k_is_now = !strcmp(op->t.now, id);
	for (size_t i = 0; !k_is_now && i < op->t.n; i++)
		if (!strcmp(op->t.v[i].parent, id))
			k = &op->t.v[i];
	for (unsigned d = 0; d < x->ndisks && d < nnow; d++) {
		const char *kpath = k_is_now ? now[d]->path : k->disks[d];
		struct disk_policy_merge m;
		char why[PATH_MAX * 2 + 256];

		/* The child's chain through the pools and x's file the one it leads to, both
		 * kept open: the merge works on those files, never on what a path names later. */
		ret = disk_policy_merge_open(op->ctx->store, kpath, x->disks[d], &m, why,
					     sizeof(why));
		if (ret) {
			error_set(err, errlen, "cannot merge %s into %s: %s", kpath, x->disks[d],
				  why);
			return ret;
		}
		/* Merging can take long (gigabytes): it touches only this VM's files, which its
		 * operation holds (sup_op_begin), so keeld goes on serving everything else. */
		keeld_unlock();
		ret = disk_policy_merge_run(&m, why, sizeof(why));
		keeld_lock();
		disk_policy_merge_close(&m);
		if (ret) {
			error_set(err, errlen, "%s", why); /* it names both files */
			return ret;
		}
		/* kpath is gone; whatever was its child now reads x's file, which holds it. */
		if (!k_is_now) {
			const char *kid = k->id;

			for (size_t i = 0; i < op->t.n && !ret; i++)
				if (!strcmp(op->t.v[i].parent, kid))
					ret = disk_policy_relink(op->ctx->store,
								 op->t.v[i].disks[d], x->disks[d],
								 why, sizeof(why));
			if (!ret && !strcmp(op->t.now, kid))
				ret = disk_policy_relink(op->ctx->store, now[d]->path, x->disks[d],
							 why, sizeof(why));
			if (ret) {
				error_set(err, errlen, "cannot point the children of %s at %s: %s",
					  kpath, x->disks[d], why);
				return ret;
			}
			free(k->disks[d]);
			k->disks[d] = x->disks[d];
		} else {
			free(now[d]->path);
			now[d]->path = x->disks[d];
		}
		x->disks[d] = NULL;
	}
	if (k_is_now)
		snprintf(op->t.now, sizeof(op->t.now), "%s", parent);
	else
		snprintf(k->parent, sizeof(k->parent), "%s", parent);
	ckpt_tree_remove(&op->t, id);
	*changed = true;
	return 0;
}

/* Collapse every hidden checkpoint that can go, until none can. */
static int collapse_all(struct op *op, char *err, size_t errlen)
{
	bool again = true;

	while (again) {
		again = false;
		for (size_t i = 0; i < op->t.n; i++) {
			char id[VMDEF_UUID_LEN + 1];
			bool changed;
			int ret;

			if (!op->t.v[i].hidden)
				continue;
			snprintf(id, sizeof(id), "%s", op->t.v[i].id);
			ret = collapse(op, id, &changed, err, errlen);
			if (!ret && changed)
				ret = op_commit(op, true, err, errlen); /* each fold on its own */
			if (ret)
				return ret;
			if (changed) {
				again = true;
				break;
			}
		}
	}
	return 0;
}

/* Ids of c's subtree, children before parents. */
static int post_order(struct ckpt_tree *t, const char *id, char (*out)[VMDEF_UUID_LEN + 1],
		      size_t *n, unsigned depth)
{
	if (depth > CKPT_MAX_ALL)
		return -ELOOP;
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].parent, id))
			continue;
		int ret = post_order(t, t->v[i].id, out, n, depth + 1);
		if (ret)
			return ret;
	}
	if (*n >= CKPT_MAX_ALL)
		return -E2BIG;
	snprintf(out[(*n)++], VMDEF_UUID_LEN + 1, "%s", id);
	return 0;
}

int ckpt_delete(struct ckpt_ctx *ctx, const struct vm_def *def, const char *key, bool subtree,
		char *err, size_t errlen)
{
	char(*ids)[VMDEF_UUID_LEN + 1] = NULL;
	char name[CKPT_NAME_MAX + 1];
	bool stopped = false, was_paused = false;
	size_t n = 0;
	struct ckpt *c;
	struct op op;
	int ret;

	ret = op_begin(&op, ctx, def, err, errlen);
	if (ret)
		return ret;
	c = find(&op, key, err, errlen);
	if (!c) {
		ret = -ENOENT;
		goto out;
	}
	snprintf(name, sizeof(name), "%s", c->name);
	ret = need_off(&op, "delete a checkpoint of", err, errlen);
	if (ret)
		goto out;
	ids = calloc(CKPT_MAX_ALL, sizeof(*ids));
	if (!ids) {
		ret = -ENOMEM;
		goto out;
	}
	if (subtree)
		ret = post_order(&op.t, c->id, ids, &n, 0);
	else
		snprintf(ids[n++], sizeof(ids[0]), "%s", c->id);
	if (ret) {
		error_set(err, errlen, "the checkpoint tree of VM '%s' is damaged", def->name);
		goto out;
	}
	/* Its merges may reach any chain of the tree: all checked before anything changes. */
	ret = check_chains(&op, true, "delete a checkpoint of", err, errlen);
	if (ret)
		goto out;
	if (is_running(&op)) {
		/* Merges rewrite files the worker has open: save it as Save-VM does, end it,
		 * merge, and restore it (the VM pauses briefly). */
		char saved[PATH_MAX];

		ret = sup_vm_dir(ctx->sup, def->uuid, saved, sizeof(saved));
		if (!ret && strlen(saved) + sizeof("/saved") > sizeof(saved))
			ret = -ENAMETOOLONG;
		if (ret)
			goto out;
		strcat(saved, "/saved");
		if (mkdir(saved, 0700) < 0 && errno != EEXIST) {
			ret = -errno;
			error_set(err, errlen, "cannot create %s: %s", saved, strerror(errno));
			goto out;
		}
		ret = sup_save_stop(ctx->sup, def, saved, &was_paused, err, errlen);
		if (ret)
			goto out;
		stopped = true;
		/* The worker could write its disk until it ended: its chain again. */
		ret = check_chains(&op, true, "delete a checkpoint of", err, errlen);
		if (ret) {
			(void)carry_on(ctx, def, NULL, NULL, was_paused, CKPT_RESTART_WAIT_MS,
				       "a refused checkpoint delete");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct ckpt *x = ckpt_tree_by_id(&op.t, ids[i]);
		bool changed;

		if (!x)
			continue;
		x->hidden = true;
		remove_state(&op, x);
		ret = collapse(&op, ids[i], &changed, err, errlen);
		/* Record each fold as soon as its files changed: a keeld that dies in the
		 * middle of a subtree leaves a store that matches the files. */
		if (!ret && changed)
			ret = op_commit(&op, true, err, errlen);
		if (ret)
			break;
	}
	if (!ret)
		ret = collapse_all(&op, err, errlen);
	/* Record what was done even after a failed merge: the files changed. */
	{
		char why[256];
		int r2 = op_commit(&op, true, why, sizeof(why));

		if (r2 && !ret) {
			ret = r2;
			error_set(err, errlen, "%s", why);
		}
	}
	if (!ret)
		log_info("VM %s: checkpoint '%s'%s deleted", def->name, name,
			 subtree ? " and its subtree" : "");
	if (stopped)
		(void)carry_on(ctx, &op.nd, NULL, NULL, was_paused, CKPT_RESTART_WAIT_MS,
			       "deleting a checkpoint");
out:
	free(ids);
	op_end(&op);
	return ret;
}

int ckpt_apply(struct ckpt_ctx *ctx, const struct vm_def *def, const char *key, char *err,
	       size_t errlen)
{
	char *children[CKPT_DISKS_MAX] = {NULL}, *old[CKPT_DISKS_MAX] = {NULL};
	char dir[PATH_MAX], reason[CKPT_NAME_MAX + 64], why[256];
	struct vm_disk *now[CKPT_DISKS_MAX];
	unsigned nnow;
	bool had_now, saved;
	struct ckpt *c;
	struct op op;
	int ret;

	ret = op_begin(&op, ctx, def, err, errlen);
	if (ret)
		return ret;
	nnow = ckpt_vm_disks(&op.nd, now);
	c = find(&op, key, err, errlen);
	if (!c) {
		ret = -ENOENT;
		goto out;
	}
	ret = need_off(&op, "apply a checkpoint to", err, errlen);
	if (ret)
		goto out;
	if (c->ndisks != nnow) {
		error_set(err, errlen,
			  "checkpoint '%s' has %u disks and VM '%s' now has %u: give the VM its "
			  "disks back first",
			  c->name, c->ndisks, def->name, nnow);
		ret = -EBUSY;
		goto out;
	}
	ret = state_dir(&op, c->id, dir, sizeof(dir));
	if (ret)
		goto out;
	if (c->saved) {
		char f[PATH_MAX + 16];

		snprintf(f, sizeof(f), "%s/memory", dir);
		if (access(f, R_OK) < 0) {
			error_set(err, errlen, "the saved state of checkpoint '%s' is missing: %s",
				  c->name, strerror(errno));
			ret = -EIO;
			goto out;
		}
		ret = restore_media(&op, c, dir, err, errlen);
		if (ret)
			goto out;
	}
	/* The chains it branches from and may merge after, before anything changes. */
	ret = check_chains(&op, false, "apply a checkpoint to", err, errlen);
	if (ret)
		goto out;
	if (is_running(&op)) {
		/* The state it runs in is thrown away, as Restore-VMSnapshot does. */
		ret = sup_turn_off_wait(ctx->sup, def, err, errlen);
		if (ret)
			goto out;
	}
	ret = make_children(&op, "apply a checkpoint to", c->disks, c->ndisks, children, err,
			    errlen);
	if (ret)
		goto out;
	had_now = op.t.now[0] != '\0';
	for (unsigned i = 0; i < nnow; i++) {
		old[i] = now[i]->path;
		now[i]->path = children[i];
		now[i]->format = VM_DISK_VHDX;
		children[i] = NULL;
	}
	snprintf(op.t.now, sizeof(op.t.now), "%s", c->id);
	snprintf(reason, sizeof(reason), "checkpoint '%s' applied", c->name);
	saved = c->saved;
	ret = op_commit(&op, true, err, errlen);
	if (ret) {
		for (unsigned i = 0; i < nnow; i++) {
			children[i] = now[i]->path;
			now[i]->path = old[i];
			old[i] = NULL;
		}
		unlink_all(children, nnow);
		goto out;
	}
	/* Memory too, when the checkpoint has it: the VM becomes Saved, else Off. */
	if (sup_set_saved(ctx->sup, def, saved ? dir : NULL, reason, why, sizeof(why)))
		log_warn("VM %s: %s", def->name, why);
	/* The state the VM had is thrown away, as Restore-VMSnapshot does. */
	for (unsigned i = 0; had_now && i < nnow; i++)
		if (old[i] && !owned(&op, old[i]))
			unlink_all(&old[i], 1);
	if (collapse_all(&op, why, sizeof(why)) || op_commit(&op, true, why, sizeof(why)))
		log_warn("VM %s: after applying a checkpoint: %s", def->name, why);
	log_info("VM %s: %s", def->name, reason);
out:
	for (unsigned i = 0; i < CKPT_DISKS_MAX; i++) {
		free(children[i]);
		free(old[i]);
	}
	op_end(&op);
	return ret;
}
