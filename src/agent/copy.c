/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File copy host to guest (Copy-VMFile): COPY_BEGIN names the destination, its mode, owner,
 * size and flags; COPY_DATA chunks follow without replies; COPY_END gets the one answer. The
 * data goes to a temporary file beside the destination, which is fsynced, given its mode and
 * owner and renamed into place only when every byte arrived, so the destination is either
 * the old file or the whole new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/clock.h"
#include "lib/parse.h"

const char *agent_check_path(const char *path)
{
	const char *p = path;
	size_t len = strlen(path);

	if (path[0] != '/')
		return "the path is not absolute";
	if (len >= AP_MAX_PATH)
		return "the path is too long";
	if (len > 1 && path[len - 1] == '/')
		return "the path ends with '/'";
	while (*p) {
		size_t n;

		p++; /* the slash */
		n = strcspn(p, "/");
		if (len == 1)
			break; /* "/" itself */
		if (n == 0)
			return "the path has an empty component ('//')";
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return "the path has a '.' or '..' component";
		if (n > 255)
			return "a component of the path is longer than 255 bytes";
		p += n;
	}
	return NULL;
}

/*
 * The directory of path, opened one component at a time without following a symbolic link
 * that someone other than root could have placed or changed: a link is followed only when
 * root owns it and the directory it is in (not writable by group or others), so that a
 * guest user who owns a directory on the path cannot redirect a copy written as root (what
 * fs.protected_symlinks does for sticky directories). Such a link's target is read and
 * walked here too, component by component with the same rules (never by the kernel, which
 * would follow a user's link inside it), at most AGENT_MAX_LINKS links in all. With create,
 * missing directories are made (0755, root's). Returns the directory's descriptor, or
 * -errno with *at the component.
 */
#define AGENT_MAX_LINKS 40

static int open_parent(const char *path, bool create, char *at, size_t atlen)
{
	char rem[2 * AP_MAX_PATH], target[AP_MAX_PATH + 1];
	char *p = rem;
	unsigned links = 0;
	int dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return -errno;
	snprintf(rem, sizeof(rem), "%s", path);
	*strrchr(rem, '/') = '\0'; /* the last component is the file */
	for (;;) {
		struct stat st, dst;
		char comp[256];
		size_t n;
		ssize_t len;
		int fd;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		n = strcspn(p, "/");
		if (n >= sizeof(comp)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		snprintf(at, atlen, "%s", comp);
		fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && create) {
			if (mkdirat(dfd, comp, 0755) < 0 && errno != EEXIST)
				goto fail;
			fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0 && (errno == ELOOP || errno == ENOTDIR) &&
		    fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
			char rest[2 * AP_MAX_PATH];

			if (st.st_uid != 0 || fstat(dfd, &dst) < 0 || dst.st_uid != 0 ||
			    (dst.st_mode & 022)) {
				close(dfd);
				return -EPERM;
			}
			if (++links > AGENT_MAX_LINKS) {
				errno = ELOOP;
				goto fail;
			}
			len = readlinkat(dfd, comp, target, sizeof(target));
			if (len < 0)
				goto fail;
			if ((size_t)len >= sizeof(target)) {
				errno = ENAMETOOLONG;
				goto fail;
			}
			target[len] = '\0';
			/* What is left: the link's target, then the rest of the path. */
			if ((size_t)snprintf(rest, sizeof(rest), "%s/%s", target, p) >=
			    sizeof(rest)) {
				errno = ENAMETOOLONG;
				goto fail;
			}
			snprintf(rem, sizeof(rem), "%s", rest);
			p = rem;
			if (target[0] == '/') {
				fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (fd < 0)
					goto fail;
				close(dfd);
				dfd = fd;
			}
			continue;
		}
		if (fd < 0)
			goto fail;
		close(dfd);
		dfd = fd;
	}
	return dfd;
fail : {
	int e = errno;

	close(dfd);
	return -e;
}
}

/* A name for the temporary file beside name: ".NAME.keel-XXXXXX", X random. */
static void temp_name(char *out, size_t size, const char *name)
{
	static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[6];
	char x[7];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)(clock_mono_ms() >> (i * 3));
	for (size_t i = 0; i < sizeof(rnd); i++)
		x[i] = digits[rnd[i] % (sizeof(digits) - 1)];
	x[6] = '\0';
	snprintf(out, size, ".%.200s.keel-%s", name, x);
}

/* A number as the user or group attribute: the id itself, whether the guest's files list
 * it or not (as chown does). */
static bool owner_number(const char *s, uint32_t *id)
{
	uint64_t v;

	if (parse_uint(s, 0, UINT32_MAX - 1, &v))
		return false;
	*id = (uint32_t)v;
	return true;
}

/*
 * The owner from the user and group attributes (names or numbers of the guest's, which the
 * numbers of the host's users are not): a user gives its uid and primary group, a group its
 * gid; a number the guest's files lack is that id (its group root's unless one is given).
 * With AP_COPY_OWNER_IF_ANY (the host's own names, sent by default) a name the guest lacks
 * is root's; else it is an error (-ENOENT, with what[] naming it).
 */
static int copy_owner(const struct ap_msg *m, uint32_t flags, uint32_t *uid, uint32_t *gid,
		      char *what, size_t whatlen)
{
	const char *user = ap_get_str(m, AP_A_USER), *group = ap_get_str(m, AP_A_GROUP);
	bool optional = flags & AP_COPY_OWNER_IF_ANY;
	struct exec_user u;
	gid_t g;
	int r;

	if (user) {
		r = exec_user_lookup(user, &u);
		if (!r) {
			*uid = u.uid;
			*gid = u.gid;
		} else if (r == -ENOENT && owner_number(user, uid)) {
			*gid = 0;
		} else if (optional) {
			*uid = *gid = 0;
		} else {
			snprintf(what, whatlen, "user '%s'", user);
			return r;
		}
	}
	if (group) {
		r = exec_group_lookup(group, &g);
		if (!r) {
			*gid = g;
		} else if (r == -ENOENT && owner_number(group, gid)) {
			/* the number itself */
		} else if (optional) {
			*gid = 0;
		} else {
			snprintf(what, whatlen, "group '%s'", group);
			return r;
		}
	}
	return 0;
}

void copy_abort(struct conn *c)
{
	struct copy_job *j = &c->copy;

	if (!j->active)
		return;
	close(j->fd);
	unlinkat(j->dirfd, j->tmp, 0);
	close(j->dirfd);
	j->fd = -1;
	j->dirfd = -1;
	j->active = false;
}

int copy_begin(struct conn *c, const struct ap_msg *m)
{
	struct copy_job *j = &c->copy;
	const char *path = ap_get_str(m, AP_A_PATH), *bad;
	uint32_t mode = 0644, uid = 0, gid = 0, flags = 0;
	uint64_t size;
	struct stat st;
	char at[256] = "";
	const char *base;
	int r, dfd;

	if (j->active)
		return conn_error(c, m, EBUSY, "a copy is already under way on this connection");
	if (!path || ap_count(m, AP_A_PATH) != 1)
		return conn_error(c, m, EINVAL, "copy-begin needs one path");
	if ((bad = agent_check_path(path)))
		return conn_error(c, m, EINVAL, "'%s': %s", path, bad);
	if (!strcmp(path, "/"))
		return conn_error(c, m, EISDIR, "'/' is a directory");
	if (ap_get_u64(m, AP_A_SIZE, &size))
		return conn_error(c, m, EINVAL, "copy-begin needs the size");
	(void)ap_get_u32(m, AP_A_FILE_MODE, &mode);
	(void)ap_get_u32(m, AP_A_UID, &uid);
	(void)ap_get_u32(m, AP_A_GID, &gid);
	(void)ap_get_u32(m, AP_A_COPY_FLAGS, &flags);
	if (mode & ~07777u)
		return conn_error(c, m, EINVAL, "mode %o has bits other than permissions", mode);
	if (flags & ~(uint32_t)(AP_COPY_CREATE_PATH | AP_COPY_OVERWRITE | AP_COPY_OWNER_IF_ANY))
		return conn_error(c, m, EINVAL, "unknown copy flags 0x%x", flags);
	if (uid == UINT32_MAX || gid == UINT32_MAX)
		return conn_error(c, m, EINVAL, "uid and gid 4294967295 mean no one");
	r = copy_owner(m, flags, &uid, &gid, at, sizeof(at));
	if (r)
		return conn_error(c, m, -r, "no %s in the guest's /etc/%s", at,
				  strncmp(at, "user", 4) ? "group" : "passwd");
	dfd = open_parent(path, flags & AP_COPY_CREATE_PATH, at, sizeof(at));
	if (dfd == -ENOENT)
		return conn_error(c, m, ENOENT,
				  "the directory of '%s' does not exist (create it with "
				  "--create-path)",
				  path);
	if (dfd == -EPERM)
		return conn_error(c, m, EPERM,
				  "'%s' in the path of '%s' is a symbolic link that a user other "
				  "than root could change: a copy does not follow it",
				  at, path);
	if (dfd < 0)
		return conn_error(c, m, -dfd, "cannot open the directory of '%s' at '%s': %s", path,
				  at, strerror(-dfd));
	base = strrchr(path, '/') + 1;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode) || !(flags & AP_COPY_OVERWRITE)) {
			close(dfd);
			if (S_ISDIR(st.st_mode))
				return conn_error(c, m, EISDIR, "'%s' is a directory", path);
			return conn_error(c, m, EEXIST,
					  "'%s' exists (overwrite it with --overwrite)", path);
		}
	}
	memset(j, 0, sizeof(*j));
	j->dirfd = -1;
	snprintf(j->path, sizeof(j->path), "%s", path);
	for (int tries = 0; tries < 16; tries++) {
		temp_name(j->tmp, sizeof(j->tmp), base);
		j->fd = openat(dfd, j->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			       0600);
		if (j->fd >= 0 || errno != EEXIST)
			break;
	}
	if (j->fd < 0) {
		r = errno;
		close(dfd);
		return conn_error(c, m, r, "cannot create a file beside '%s': %s", path,
				  strerror(r));
	}
	j->dirfd = dfd;
	j->active = true;
	j->id = m->id;
	j->mode = mode;
	j->uid = uid;
	j->gid = gid;
	j->flags = flags;
	j->size = size;
	return conn_ok(c, m);
}

int copy_data(struct conn *c, const struct ap_msg *m)
{
	struct copy_job *j = &c->copy;
	const struct ap_attr *data = ap_get(m, AP_A_DATA);

	/* Data is a stream without replies; what goes wrong is told at COPY_END. */
	if (!j->active || j->id != m->id || j->err || !data)
		return 0;
	if (data->len > j->size - j->written) {
		j->err = -EFBIG;
		return 0;
	}
	j->err = ap_write_all(j->fd, data->val, data->len);
	j->written += data->len;
	return 0;
}

int copy_end(struct conn *c, const struct ap_msg *m)
{
	struct copy_job *j = &c->copy;
	int r;

	if (!j->active || j->id != m->id)
		return conn_error(c, m, EINVAL, "copy-end without its copy-begin");
	r = j->err;
	if (!r && j->written != j->size)
		r = -EPIPE;
	if (!r && fchown(j->fd, j->uid, j->gid) < 0)
		r = -errno;
	if (!r && fchmod(j->fd, j->mode) < 0)
		r = -errno;
	if (!r && fsync(j->fd) < 0)
		r = -errno;
	if (!r)
		r = renameat2(j->dirfd, j->tmp, j->dirfd, strrchr(j->path, '/') + 1,
			      j->flags & AP_COPY_OVERWRITE ? 0 : RENAME_NOREPLACE) < 0
			    ? -errno
			    : 0;
	if (r) {
		uint64_t written = j->written, size = j->size;

		copy_abort(c);
		if (r == -EFBIG)
			return conn_error(c, m, EFBIG, "more data than the %llu bytes announced",
					  (unsigned long long)size);
		if (r == -EPIPE)
			return conn_error(c, m, EPIPE, "%llu of the %llu bytes announced arrived",
					  (unsigned long long)written, (unsigned long long)size);
		return conn_error(c, m, -r, "cannot write '%s': %s", j->path, strerror(-r));
	}
	close(j->fd);
	j->fd = -1;
	j->active = false;
	/* The rename itself must survive a crash: sync the directory. */
	fsync(j->dirfd);
	close(j->dirfd);
	j->dirfd = -1;
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u64(&c->out, AP_A_SIZE, j->written);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}
