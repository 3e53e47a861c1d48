/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vm_import.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon/backup_layout.h"
#include "daemon/biglock.h"
#include "daemon/disk_policy.h"
#include "daemon/jobs.h"
#include "daemon/pools.h"
#include "daemon/switch.h"
#include "daemon/vm_macs.h"
#include "disk/disk.h"
#include "disk/vhdx.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/uefi_store.h"

/* A line of not_imported: the first IMPORT_NOTES_MAX, each with its control characters as
 * \xHH (a file name is the backup's: no terminal escapes into the CLI); the others counted. */
static void note(struct import_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct import_plan *p, const char *fmt, ...)
{
	char line[PATH_MAX + 256], out[4 * sizeof(line)];
	size_t n = 0;
	va_list ap;

	if (json_object_array_length(p->not_imported) >= IMPORT_NOTES_MAX) {
		p->notes_more++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (const unsigned char *c = (const unsigned char *)line; *c; c++)
		n += (size_t)snprintf(out + n, sizeof(out) - n,
				      *c < 0x20 || *c == 0x7f ? "\\x%02x" : "%c", *c);
	json_object_array_add(p->not_imported, json_object_new_string(out));
}

/* The count of lines note() left out, as a last line. */
static void notes_end(struct import_plan *p)
{
	char line[96];

	if (!p->notes_more)
		return;
	snprintf(line, sizeof(line), "and %u more not imported", p->notes_more);
	json_object_array_add(p->not_imported, json_object_new_string(line));
	p->notes_more = 0;
}

/* rel (a name, or "disks/NAME") inside the backup's directory, opened from the descriptor of
 * the directory checked: never above it, through no symlink, a FIFO not waited on. */
static int open_rel(const struct import_plan *p, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
	int fd = (int)syscall(SYS_openat2, p->dir_fd, rel, &how, sizeof(how));

	return fd < 0 ? -errno : fd;
}

/* What the directory (sub NULL), its disks/ or its nvram/ holds besides config.json, the
 * disks the description names and the variable store imported. */
static void list_extra(struct import_plan *p, const char *sub)
{
	int fd = open_rel(p, sub ? sub : ".", O_RDONLY | O_DIRECTORY);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	bool disks = sub && !strcmp(sub, "disks");
	struct dirent *e;

	if (fd >= 0 && !d)
		close(fd);
	while (d && (e = readdir(d))) {
		bool used = false;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!sub)
			used = !strcmp(e->d_name, "config.json") || !strcmp(e->d_name, "disks") ||
			       (p->nvram && !strcmp(e->d_name, BACKUP_NVRAM_DIR));
		else if (!disks)
			used = !strcmp(e->d_name, BACKUP_NVRAM_NAME);
		for (unsigned i = 0; disks && i < p->ndisks; i++)
			used |= !strcmp(p->src_file[i], e->d_name);
		if (!used)
			note(p, "%s%s%s/%s: not part of a keel backup's layout, not imported",
			     p->from, sub ? "/" : "", sub ? sub : "", e->d_name);
	}
	if (d)
		closedir(d);
}

/* A file of the backup (rel inside it): regular, no symlink on the way. */
static int open_backup_file(struct import_plan *p, const char *what, const char *rel, char *err,
			    size_t errlen)
{
	int fd = open_rel(p, rel, O_RDONLY);
	struct stat s;

	if (fd == -ELOOP) {
		error_set(err, errlen,
			  "%s %s/%s is a symlink or under one: a backup's files are "
			  "its own",
			  what, p->from, rel);
		return -EINVAL;
	}
	if (fd < 0) {
		error_set(err, errlen, "%s %s/%s: %s", what, p->from, rel, strerror(-fd));
		return fd == -ENOENT || fd == -ENOTDIR ? -EINVAL : fd;
	}
	if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode) || fcntl(fd, F_SETFL, 0) < 0) {
		close(fd);
		error_set(err, errlen, "%s %s/%s is not a regular file", what, p->from, rel);
		return -EINVAL;
	}
	return fd;
}

/* Disk i of the backup (vd, a virtio-blk disk or one on a SCSI LUN, whose path names a file of
 * the backup's disks/ directory): a standalone VHDX file of FROM/disks, opened cleanly. */
static int check_disk(struct import_plan *p, unsigned i, struct vm_disk *vd, const char *name,
		      char *err, size_t errlen)
{
	char src[PATH_MAX], rel[NAME_MAX + 8], loc[PATH_MAX];
	const char *file = p->src_file[i];
	struct disk *d = NULL;
	struct disk_err why;
	int fd, dfd, r;

	/* Copied out of vd->path (checked by backup_disk_files), which this replaces. */
	if ((size_t)snprintf(p->src_file[i], sizeof(p->src_file[i]), "%s", name) >=
	    sizeof(p->src_file[i])) {
		error_set(err, errlen, "backup %s: the disk file name %.300s is too long", p->from,
			  name);
		return -EINVAL;
	}
	if (vd->format == VM_DISK_RAW ||
	    (vd->format == VM_DISK_AUTO && disk_format_from_name(file) != DISK_FORMAT_VHDX)) {
		error_set(err, errlen,
			  "backup %s: disk %s is not a VHDX (a backup's disks are VHDX copies)",
			  p->from, file);
		return -EINVAL;
	}
	if ((size_t)snprintf(src, sizeof(src), "%s/disks/%s", p->from, file) >= sizeof(src)) {
		error_set(err, errlen, "backup %s: the path of disk %s is too long", p->from, file);
		return -EINVAL;
	}
	snprintf(rel, sizeof(rel), "disks/%s", file);
	fd = open_backup_file(p, "backup disk", rel, err, errlen);
	if (fd < 0)
		return fd;
	p->src_fd[i] = fd;
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	r = dfd < 0 ? -errno
		    : disk_open_fd_as(dfd, src, DISK_FORMAT_VHDX,
				      DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT | DISK_OPEN_NOLOCK, &d,
				      &why);
	if (r) {
		error_set(err, errlen, "backup disk %s does not open as a VHDX: %s", src,
			  dfd < 0 ? strerror(-r) : disk_why(&why, r));
		return -EINVAL;
	}
	r = disk_parent_locator(d, 0, loc, sizeof(loc));
	if (r != -ENODEV) {
		disk_close(d);
		error_set(err, errlen,
			  "backup disk %s is a differencing disk (its parent: %.300s): a backup's "
			  "disks are standalone copies",
			  src, r ? "a locator not usable here" : loc);
		return -EINVAL;
	}
	p->total += disk_size(d);
	disk_close(d);
	free(vd->path);
	vd->path = strdup(src);
	vd->format = VM_DISK_VHDX;
	return vd->path ? 0 : -ENOMEM;
}

/* No VM has the name, the id or (keeping the ids) a MAC address of the one imported. */
static int check_clash(struct store *st, const struct import_plan *p, char *err, size_t errlen)
{
	struct vm_def other;
	int r = store_vm_get(st, p->def.name, &other);

	if (!r) {
		vmdef_free(&other);
		error_set(err, errlen,
			  "a VM named '%s' exists already: import under another name "
			  "(--name NAME)",
			  p->def.name);
		return -EEXIST;
	}
	r = store_vm_get(st, p->def.uuid, &other);
	if (!r) {
		bool same = !strcmp(other.uuid, p->def.uuid);

		if (same)
			error_set(err, errlen,
				  "VM '%s' has the backup's id %s already: import a copy with a "
				  "new id (--new-id), or delete that VM first",
				  other.name, p->def.uuid);
		vmdef_free(&other);
		if (same)
			return -EEXIST;
	}
	for (unsigned i = 0; i < p->def.nnics; i++) {
		bool used = false;

		if (!p->def.nics[i].mac[0])
			continue;
		r = store_mac_used(st, p->def.nics[i].mac, p->def.uuid, &used);
		if (r)
			return r;
		if (used) {
			error_set(
				err, errlen,
				"MAC address %s of the backup's VM is another VM's: import a copy "
				"with new addresses (--new-id)",
				p->def.nics[i].mac);
			return -EEXIST;
		}
	}
	return 0;
}

/* The description: FROM/config.json through its pool, as a description document. */
static int load_description(struct import_plan *p, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], why[768];
	int fd, r;

	snprintf(path, sizeof(path), "%s/config.json", p->from);
	fd = open_backup_file(p, "backup description", "config.json", err, errlen);
	if (fd < 0)
		return fd;
	r = vmdef_load_fd(fd, path, &p->def, why, sizeof(why));
	close(fd);
	if (r)
		error_set(err, errlen, "backup %s: %s", p->from, why);
	return r == -ENOMEM ? r : r ? -EINVAL : 0;
}

/* One boot file or DVD medium of the description dropped (*path freed), said in
 * not_imported (unless how is NULL: the request gives the file). */
static void drop_file(struct import_plan *p, char **path, const char *what, const char *how)
{
	if (!*path)
		return;
	if (how)
		note(p,
		     "%s %.300s: a backup's description may name no file outside the backup; "
		     "not imported%s",
		     what, *path, how);
	free(*path);
	*path = NULL;
}

/*
 * The files a description may name besides its disks (kernel, initrd, firmware file, DVD
 * media) are not imported: the description is untrusted and such a path could be any file of
 * any pool (another VM's disk as an initrd). The request gives the kernel and initrd again.
 */
static int boot_files(struct import_plan *p, const struct import_req *req, char *err, size_t errlen)
{
	bool direct = p->def.kernel != NULL;

	drop_file(p, &p->def.kernel, "kernel", req->kernel ? NULL : " (give it with --kernel)");
	drop_file(p, &p->def.initrd, "initrd", req->initrd ? NULL : " (give it with --initrd)");
	drop_file(p, &p->def.firmware_file, "firmware file", ": the VM uses the default one");
	for (unsigned k = 0; k < p->def.scsi.nluns; k++)
		if (p->def.scsi.luns[k].type == VM_LUN_DVD)
			drop_file(p, &p->def.scsi.luns[k].disk.path, "DVD medium",
				  ": the drive is empty");
	if ((req->kernel && !(p->def.kernel = strdup(req->kernel))) ||
	    (req->initrd && !(p->def.initrd = strdup(req->initrd))))
		return -ENOMEM;
	if (direct && !req->kernel) {
		error_set(err, errlen,
			  "backup %s: its VM boots a kernel directly, and a backup holds none: "
			  "give one (--kernel PATH, a file in a storage pool)",
			  p->from);
		return -EINVAL;
	}
	return 0;
}

/* Copy mode: POOL/NAME free, and POOL/.NAME.import made for the copies. */
static int make_stage(struct store *st, struct import_plan *p, const char *pool, char *err,
		      size_t errlen)
{
	struct vm_disk *disks[BACKUP_DISKS_MAX];
	struct store_pool sp;
	struct stat s;
	int r = pools_get(st, pool, &sp, err, errlen);

	if (r)
		return r;
	if (sp.block) {
		error_set(err, errlen,
			  "pool '%s' names block devices: an import copies into a directory pool",
			  pool);
		return -EINVAL;
	}
	if ((size_t)snprintf(p->final, sizeof(p->final), "%s/%s", sp.path, p->def.name) >=
		    sizeof(p->final) ||
	    (size_t)snprintf(p->stage, sizeof(p->stage), "%s/.%s.import", sp.path, p->def.name) >=
		    sizeof(p->stage)) {
		p->final[0] = p->stage[0] = '\0';
		error_set(err, errlen, "pool '%s': its path is too long", pool);
		return -EINVAL;
	}
	if (lstat(p->final, &s) == 0) {
		error_set(err, errlen,
			  "%s exists already: VM '%s' is imported into a new directory "
			  "of pool '%s'",
			  p->final, p->def.name, pool);
		p->final[0] = p->stage[0] = '\0';
		return -EEXIST;
	}
	if (mkdir(p->stage, 0750) < 0) {
		r = -errno;
		error_set(err, errlen,
			  r == -EEXIST ? "%s exists: an import of VM '%s' is under way or was "
					 "interrupted (remove the directory if none runs)"
				       : "cannot create %s for VM '%s': %s",
			  p->stage, p->def.name, strerror(-r));
		p->final[0] = p->stage[0] = '\0';
		return r;
	}
	/* The copies' paths, each disk on its LUN or virtio-blk slot as in the backup. */
	ckpt_vm_disks(&p->def, disks);
	for (unsigned i = 0; i < p->ndisks; i++) {
		char dst[PATH_MAX + 32], *d;

		snprintf(dst, sizeof(dst), "%s/disk%u.vhdx", p->final, i);
		d = strdup(dst);
		if (!d)
			return -ENOMEM;
		free(disks[i]->path);
		disks[i]->path = d;
	}
	snprintf(p->progress, sizeof(p->progress), "%s/%s", p->stage, IMPORT_PROGRESS_FILE);
	return 0;
}

/* A Generation 2 VM's variable store in the backup (nvram/OVMF_VARS.fd), untrusted: a regular
 * file of the backup, no symlink on the way, that passes the store check keeld makes before
 * every start. None: the VM gets a new one from the template at its first start. */
static int load_nvram(struct import_plan *p, char *err, size_t errlen)
{
	char shown[PATH_MAX + 32], why[PATH_MAX + 200];
	struct stat s;
	int fd, r;

	if (fstatat(p->dir_fd, BACKUP_NVRAM_DIR, &s, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		return 0;
	if (p->def.firmware != VM_FIRMWARE_UEFI)
		return 0; /* Generation 1 has none: listed as not imported */
	fd = open_backup_file(p, "UEFI variable store", BACKUP_NVRAM_FILE, err, errlen);
	if (fd < 0)
		return fd;
	snprintf(shown, sizeof(shown), "%s/%s", p->from, BACKUP_NVRAM_FILE);
	r = uefi_store_read(fd, shown, &p->nvram, &p->nvram_size, why, sizeof(why));
	close(fd);
	if (r)
		error_set(err, errlen, "backup %s: %s", p->from, why);
	return r == -ENOMEM ? r : r ? -EINVAL : 0;
}

/* The VM's own settings: its id (a new one with new MACs), nvram place, and its record. */
static int set_identity(struct sup *sup, struct import_plan *p, char *err, size_t errlen)
{
	char nv[PATH_MAX];
	int r;

	if (p->new_id || !p->def.uuid[0]) {
		r = vmdef_gen_uuid(p->def.uuid);
		if (r) {
			error_set(err, errlen, "cannot generate a VM id: %s", strerror(-r));
			return r;
		}
		for (unsigned i = 0; i < p->def.nnics; i++)
			p->def.nics[i].mac[0] = '\0'; /* new ones at registration */
	}
	free(p->def.nvram);
	p->def.nvram = NULL;
	if (p->def.firmware == VM_FIRMWARE_UEFI) {
		if (sup_nvram_path(sup, p->def.uuid, nv, sizeof(nv)) ||
		    !(p->def.nvram = strdup(nv)))
			return -ENOMEM;
		if (!p->nvram)
			note(p,
			     "%s: the backup holds no UEFI variable store; the VM gets a new one "
			     "from the template at its first start",
			     p->from);
	}
	p->def.created = (int64_t)time(NULL);
	p->def.revision = 1;
	p->def.version = VMDEF_CONFIG_VERSION;
	p->def.damaged[0] = '\0';
	return 0;
}

int import_prepare(struct store *st, struct sup *sup, const struct import_req *req,
		   struct import_plan *p, char *err, size_t errlen)
{
	struct vm_disk *disks[BACKUP_DISKS_MAX];
	const char *files[BACKUP_DISKS_MAX];
	char why[768];
	struct stat s;
	int r;

	memset(p, 0, sizeof(*p));
	vmdef_init(&p->def);
	for (unsigned i = 0; i < BACKUP_DISKS_MAX; i++)
		p->src_fd[i] = -1;
	p->dir_fd = -1;
	p->in_place = req->in_place;
	p->new_id = req->new_id;
	p->not_imported = json_object_new_array();
	if (!p->not_imported)
		return -ENOMEM;
	if (req->from[0] != '/') {
		error_set(err, errlen, "the backup directory '%.200s' is not an absolute path",
			  req->from);
		return -EINVAL;
	}
	if (strlen(req->from) >= sizeof(p->from) - 64) {
		error_set(err, errlen,
			  "the backup directory '%.200s...' is too long (%zu bytes, "
			  "at most %zu)",
			  req->from, strlen(req->from), sizeof(p->from) - 65);
		return -EINVAL;
	}
	snprintf(p->from, sizeof(p->from), "%s", req->from);
	/* The directory once, through its pool; each of its files from this descriptor. */
	p->dir_fd = pools_open(st, "backup directory", p->from, O_PATH | O_DIRECTORY | O_NOFOLLOW,
			       false, err, errlen);
	if (p->dir_fd < 0) {
		r = p->dir_fd;
		return r == -ENOTDIR || r == -ELOOP || r == -ENOENT ? -EINVAL : r;
	}
	if (req->in_place && req->copy_to) {
		error_set(err, errlen,
			  "an import is either a copy (copy_to) or in place, not both");
		return -EINVAL;
	}
	if (req->in_place && req->new_id) {
		error_set(err, errlen,
			  "a new id needs a copy (Hyper-V: Import-VM -Copy -GenerateNewId): an "
			  "import in place keeps the backup's id");
		return -EINVAL;
	}
	r = load_description(p, err, errlen);
	if (r)
		return r;
	if (req->name) {
		if (!vmdef_name_ok(req->name)) {
			error_set(err, errlen, "invalid VM name '%.100s'", req->name);
			return -EINVAL;
		}
		snprintf(p->def.name, sizeof(p->def.name), "%s", req->name);
	}
	if (!p->def.name[0]) {
		error_set(err, errlen, "backup %s: its description has no name: give one (--name)",
			  p->from);
		return -EINVAL;
	}
	if (!p->def.uuid[0] && !p->new_id) {
		error_set(err, errlen,
			  "backup %s: its description has no id: import a copy with a new one "
			  "(--new-id)",
			  p->from);
		return -EINVAL;
	}
	r = boot_files(p, req, err, errlen);
	if (r)
		return r;
	/* Every disk (virtio-blk, and on its LUN of the SCSI controller) names a file of the
	 * backup's disks/ directory. */
	r = backup_disk_files(&p->def, disks, files, &p->ndisks, why, sizeof(why));
	if (r) {
		error_set(err, errlen, "backup %s: %s", p->from, why);
		return r;
	}
	/* For the message only: the opens below refuse a symlink on the way anyway. */
	if (p->ndisks &&
	    (fstatat(p->dir_fd, "disks", &s, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(s.st_mode))) {
		error_set(err, errlen, "backup %s: %s/disks is not a directory%s", p->from, p->from,
			  S_ISLNK(s.st_mode) ? " (a symlink)" : "");
		return -EINVAL;
	}
#ifdef KEEL_TEST_HOOKS
	/* Test builds: DIR/test-import-swap names a directory, which disks/ is swapped for (as
	 * a symlink) between the check above and the opens of its files. */
	{
		char to[PATH_MAX] = "";
		int hfd = open_rel(p, "test-import-swap", O_RDONLY);

		if (hfd >= 0 && read(hfd, to, sizeof(to) - 1) > 0 &&
		    renameat(p->dir_fd, "disks", p->dir_fd, "disks.was") == 0 &&
		    symlinkat(to, p->dir_fd, "disks") < 0)
			log_warn("test-import-swap: %s", strerror(errno));
		if (hfd >= 0)
			close(hfd);
	}
#endif
	for (unsigned i = 0; i < p->ndisks; i++) {
		r = check_disk(p, i, disks[i], files[i], err, errlen);
		if (r)
			return r;
	}
	r = load_nvram(p, err, errlen);
	if (!r)
		r = set_identity(sup, p, err, errlen);
	if (!r)
		r = check_clash(st, p, err, errlen);
	/* What a create checks, on the backup's files (and the kernel, DVDs: in pools). */
	if (!r)
		r = vmdef_validate(&p->def, err, errlen);
	if (!r)
		r = disk_policy_attach(st, sup, &p->def, NULL, err, errlen);
	if (r)
		return r;
	list_extra(p, NULL);
	if (p->ndisks)
		list_extra(p, "disks");
	if (p->nvram)
		list_extra(p, BACKUP_NVRAM_DIR);
	notes_end(p);
	if (!p->in_place)
		r = make_stage(st, p, req->copy_to ? req->copy_to : POOL_DEFAULT, err, errlen);
	return r;
}

/* The job's progress: the size of the progress file is the bytes copied (jobs.h). */
struct import_progress {
	int fd;
	uint64_t base, last;
};

static bool on_progress(void *arg, uint64_t done)
{
	struct import_progress *ip = arg;

	ip->last = done;
	if (ip->fd >= 0 && ftruncate(ip->fd, (off_t)(ip->base + done)) < 0)
		ip->fd = -1;
	return !jobs_exiting(); /* keeld's exit stops the copy: the job removes it */
}

/* The first line of a check report that says "error:", for a message. */
static void first_error(const char *rep, char *out, size_t len)
{
	const char *e = rep ? strstr(rep, "error: ") : NULL;

	snprintf(out, len, "%.*s", e ? (int)strcspn(e + 7, "\n") : 0, e ? e + 7 : "");
}

/*
 * Disk i again, from the descriptor checked at the request (never by its path, which may
 * name another file now, nor through a parent locator): still a standalone VHDX, and no
 * block overlapping another or the metadata (a BAT of a few MiB file pointing every entry at
 * one block would make a copy many times its size). *need: the room its copy takes at
 * most (its data, no more than its virtual size, its BAT and the VHDX's own structures).
 */
static int verify_disk(struct import_plan *p, unsigned i, struct disk **out, uint64_t *need,
		       char *err, size_t errlen)
{
	char src[PATH_MAX + NAME_MAX + 16], *rep = NULL, line[512];
	struct disk_info info;
	struct disk_err why;
	size_t replen = 0;
	FILE *f;
	int fd = fcntl(p->src_fd[i], F_DUPFD_CLOEXEC, 0), r;

	snprintf(src, sizeof(src), "%s/disks/%s", p->from, p->src_file[i]);
	*out = NULL;
	r = fd < 0 ? -errno
		   : disk_open_fd_as(fd, src, DISK_FORMAT_VHDX,
				     DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT | DISK_OPEN_NOLOCK, out,
				     &why);
	if (r) {
		error_set(err, errlen, "backup disk %s no longer opens as a VHDX: %s", src,
			  fd < 0 ? strerror(-r) : disk_why(&why, r));
		return -EINVAL;
	}
	r = disk_info(*out, &info);
	if (!r && info.has_parent) {
		error_set(err, errlen,
			  "backup disk %s became a differencing disk after it was checked: a "
			  "backup's disks are standalone copies",
			  src);
		r = -EINVAL;
	} else if (r) {
		error_set(err, errlen, "backup disk %s: %s", src, strerror(-r));
	}
	f = r ? NULL : open_memstream(&rep, &replen);
	if (!r && !f)
		r = -ENOMEM;
	if (!r) {
		r = vhdx_check_disk(*out, f);
		fclose(f);
		first_error(rep, line, sizeof(line));
		if (r == -EUCLEAN)
			error_set(err, errlen, "backup disk %s is inconsistent: %s", src, line);
		else if (r)
			error_set(err, errlen, "backup disk %s cannot be checked: %s", src,
				  strerror(-r));
		free(rep);
	}
	if (r) {
		disk_close(*out);
		*out = NULL;
		return r == -ENOMEM || r == -EIO ? r : -EINVAL;
	}
	*need = (info.allocated_size < info.virtual_size ? info.allocated_size
							 : info.virtual_size) +
		(info.blocks_total + 1) * 8 + IMPORT_DISK_OVERHEAD;
	return 0;
}

/* Room in the pool for copies holding need bytes of data (and their own structures). */
static int check_room(const struct import_plan *p, uint64_t need, char *err, size_t errlen)
{
	struct statvfs v;
	uint64_t avail;

	if (statvfs(p->stage, &v) < 0) {
		error_set(err, errlen, "cannot see the free space of %s: %s", p->stage,
			  strerror(errno));
		return -errno;
	}
	avail = (uint64_t)v.f_bavail * v.f_frsize;
	if (avail < need) {
		error_set(err, errlen,
			  "not enough space for the copies in %s: %llu MiB free, the backup's "
			  "disks need %llu MiB",
			  p->stage, (unsigned long long)(avail >> 20),
			  (unsigned long long)((need + (1 << 20) - 1) >> 20));
		return -ENOSPC;
	}
	return 0;
}

/* The disks checked, then copied into the staging directory; keeld's lock let go. */
static int check_and_copy(struct import_plan *p, char *err, size_t errlen)
{
	struct import_progress ip = {-1, 0, 0};
	struct disk *src[BACKUP_DISKS_MAX] = {NULL};
	uint64_t need = 0;
	int r = 0;

	if (!p->in_place)
		ip.fd = open(p->progress, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			     0600);
	keeld_unlock();
#ifdef KEEL_TEST_HOOKS
	/* Test builds: the job waits before its checks while the backup holds
	 * test-import-hold-check (60 s at most). */
	{
		char hook[PATH_MAX + 32];

		snprintf(hook, sizeof(hook), "%s/test-import-hold-check", p->from);
		for (int t = 0; t < 600 && access(hook, F_OK) == 0 && !jobs_exiting(); t++)
			usleep(100000);
	}
#endif
	for (unsigned i = 0; i < p->ndisks && !r; i++) {
		uint64_t a = 0;

		r = verify_disk(p, i, &src[i], &a, err, errlen);
		need += a;
	}
	if (!r && !p->in_place)
		r = check_room(p, need, err, errlen);
	for (unsigned i = 0; i < p->ndisks && !r && !p->in_place; i++) {
		const struct disk_create_opts o = {.format = DISK_FORMAT_VHDX,
						   .type = DISK_TYPE_DYNAMIC};
		char dst[PATH_MAX + 32];
		struct disk_err why;

		snprintf(dst, sizeof(dst), "%s/disk%u.vhdx", p->stage, i);
		ip.last = 0;
		r = disk_convert_from(src[i], dst, &o, on_progress, &ip, &why);
		if (r == -ECANCELED)
			error_set(err, errlen,
				  "keeld is exiting: the import of %s was stopped "
				  "and its copies removed",
				  p->from);
		else if (r)
			error_set(err, errlen, "cannot copy backup disk %s/disks/%s to %s: %s",
				  p->from, p->src_file[i], dst, disk_why(&why, r));
		ip.base += ip.last;
#ifdef KEEL_TEST_HOOKS
		/* Test builds: after the first disk, the copy waits while the backup holds
		 * test-import-hold (60 s at most, or until keeld exits: the next disk's copy
		 * then stops); it fails after the last disk when the backup holds
		 * test-import-fail. */
		{
			char hook[PATH_MAX + 32];

			snprintf(hook, sizeof(hook), "%s/test-import-hold", p->from);
			for (int t = 0;
			     i == 0 && t < 600 && access(hook, F_OK) == 0 && !jobs_exiting(); t++)
				usleep(100000);
			snprintf(hook, sizeof(hook), "%s/test-import-fail", p->from);
			if (!r && i + 1 == p->ndisks && access(hook, F_OK) == 0) {
				error_set(err, errlen,
					  "cannot copy backup disk %u of %s: test hook", i,
					  p->from);
				r = -EIO;
			}
		}
#endif
	}
	for (unsigned i = 0; i < p->ndisks; i++)
		disk_close(src[i]);
	keeld_lock();
	if (ip.fd >= 0)
		close(ip.fd);
	if (!p->in_place)
		unlink(p->progress);
	return r;
}

/* Remove the copies (in dir) and dir. */
static void remove_copies(const struct import_plan *p, const char *dir)
{
	char f[PATH_MAX + 32];

	for (unsigned i = 0; i < p->ndisks; i++) {
		snprintf(f, sizeof(f), "%s/disk%u.vhdx", dir, i);
		unlink(f);
	}
	snprintf(f, sizeof(f), "%s/%s", dir, IMPORT_PROGRESS_FILE);
	unlink(f);
	rmdir(dir);
}

int import_run(struct store *st, struct sup *sup, struct import_plan *p, json_object **out,
	       char *err, size_t errlen)
{
	struct vm_disk *vd[BACKUP_DISKS_MAX];
	bool renamed = false, installed = false;
	json_object *o, *disks;
	int r = 0;

	*out = NULL;
	r = check_and_copy(p, err, errlen);
	if (!p->in_place) {
		if (!r && renameat2(AT_FDCWD, p->stage, AT_FDCWD, p->final, RENAME_NOREPLACE) < 0) {
			r = -errno;
			error_set(err, errlen, "cannot rename %s to %s: %s", p->stage, p->final,
				  strerror(-r));
		}
		renamed = !r;
	}
	/* Registered as a create is, on the files it will use; another request may have taken
	 * the name or a MAC meanwhile (store_vm_insert refuses a clash). */
	if (!r)
		r = check_clash(st, p, err, errlen);
	if (!r)
		r = disk_policy_attach(st, sup, &p->def, NULL, err, errlen);
	if (!r)
		r = vm_macs_assign(st, &p->def, err, errlen);
	/* The store first: a VM is registered only with the variables it had. Removed again
	 * only when this import wrote it (a clash above may be another VM's id). */
	if (!r && p->nvram) {
		r = sup_nvram_install(sup, p->def.uuid, p->nvram, p->nvram_size, err, errlen);
		installed = true; /* or partly: the directories it made */
	}
	if (!r)
		r = store_vm_insert(st, &p->def, err, errlen);
	if (r && installed) {
		char vmdir[PATH_MAX];

		sup_nvram_remove(sup, p->def.uuid);
		if (!sup_vm_dir(sup, p->def.uuid, vmdir, sizeof(vmdir)))
			rmdir(vmdir); /* made for the store, if nothing else is in it */
	}
	if (r) {
		if (!p->in_place)
			remove_copies(p, renamed ? p->final : p->stage);
		p->stage[0] = '\0';
		log_warn("import of VM '%s' from %s failed: %s", p->def.name, p->from, err);
		return r;
	}
	p->stage[0] = '\0';
	switches_ports_changed(st, NULL, &p->def);
	log_info("VM %s: imported from %s (id %s, %s)", p->def.name, p->from, p->def.uuid,
		 p->in_place ? "in place" : "copied");
	o = json_object_new_object();
	disks = json_object_new_array();
	for (unsigned i = 0, n = ckpt_vm_disks(&p->def, vd); i < n; i++)
		json_object_array_add(disks, json_object_new_string(vd[i]->path));
	json_object_object_add(o, "vm", json_object_new_string(p->def.name));
	json_object_object_add(o, "id", json_object_new_string(p->def.uuid));
	json_object_object_add(o, "mode",
			       json_object_new_string(p->in_place ? "in-place" : "copy"));
	json_object_object_add(o, "new_id", json_object_new_boolean(p->new_id));
	json_object_object_add(o, "disks", disks);
	json_object_object_add(o, "not_imported", json_object_get(p->not_imported));
	*out = o;
	return 0;
}

void import_plan_free(struct import_plan *p)
{
	if (p->dir_fd >= 0)
		close(p->dir_fd);
	for (unsigned i = 0; i < BACKUP_DISKS_MAX; i++)
		if (p->src_fd[i] >= 0)
			close(p->src_fd[i]);
	if (p->stage[0]) /* made for a job that never ran */
		remove_copies(p, p->stage);
	json_object_put(p->not_imported);
	free(p->nvram);
	vmdef_free(&p->def);
}
