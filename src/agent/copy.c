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
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"

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

/* mkdir -p of path's parent directories, mode 0755, root's. */
static int make_parents(const char *path)
{
	char dir[AP_MAX_PATH];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *s = strchr(dir + 1, '/'); s; s = strchr(s + 1, '/')) {
		struct stat st;

		*s = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (stat(dir, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		*s = '/';
	}
	return 0;
}

void copy_abort(struct conn *c)
{
	struct copy_job *j = &c->copy;

	if (!j->active)
		return;
	close(j->fd);
	unlink(j->tmp);
	j->fd = -1;
	j->active = false;
}

int copy_begin(struct conn *c, const struct ap_msg *m)
{
	struct copy_job *j = &c->copy;
	const char *path = ap_get_str(m, AP_A_PATH), *bad;
	uint32_t mode = 0644, uid = 0, gid = 0, flags = 0;
	uint64_t size;
	struct stat st;
	char *slash;
	int r;

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
	if (flags & ~(uint32_t)(AP_COPY_CREATE_PATH | AP_COPY_OVERWRITE))
		return conn_error(c, m, EINVAL, "unknown copy flags 0x%x", flags);
	if (uid == UINT32_MAX || gid == UINT32_MAX)
		return conn_error(c, m, EINVAL, "uid and gid 4294967295 mean no one");
	if (lstat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return conn_error(c, m, EISDIR, "'%s' is a directory", path);
		if (!(flags & AP_COPY_OVERWRITE))
			return conn_error(c, m, EEXIST,
					  "'%s' exists (overwrite it with --overwrite)", path);
	}
	if (flags & AP_COPY_CREATE_PATH) {
		r = make_parents(path);
		if (r)
			return conn_error(c, m, -r, "cannot create the directories of '%s': %s",
					  path, strerror(-r));
	}
	memset(j, 0, sizeof(*j));
	snprintf(j->path, sizeof(j->path), "%s", path);
	slash = strrchr(j->path, '/');
	snprintf(j->tmp, sizeof(j->tmp), "%.*s/.%s.keel-XXXXXX", (int)(slash - j->path), j->path,
		 slash + 1);
	j->fd = mkostemp(j->tmp, O_CLOEXEC);
	if (j->fd < 0) {
		r = errno;
		if (r == ENOENT)
			return conn_error(c, m, r,
					  "the directory of '%s' does not exist (create it with "
					  "--create-path)",
					  path);
		return conn_error(c, m, r, "cannot create a file beside '%s': %s", path,
				  strerror(r));
	}
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
	if (!r) {
		if (j->flags & AP_COPY_OVERWRITE)
			r = rename(j->tmp, j->path) < 0 ? -errno : 0;
		else
			r = renameat2(AT_FDCWD, j->tmp, AT_FDCWD, j->path, RENAME_NOREPLACE) < 0
				    ? -errno
				    : 0;
	}
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
	{
		/* The rename itself must survive a crash: sync the directory. */
		char dir[AP_MAX_PATH];
		char *slash;
		int dfd;

		snprintf(dir, sizeof(dir), "%s", j->path);
		slash = strrchr(dir, '/');
		slash[slash == dir ? 1 : 0] = '\0';
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u64(&c->out, AP_A_SIZE, j->written);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}
