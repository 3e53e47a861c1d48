/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an exec runs as and on: the user (`keel vm exec --user`), found in the guest's
 * /etc/passwd (a static agent has no name service), and the pseudo-terminal of `--tty`.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/parse.h"

int exec_user_lookup(const char *user, struct exec_user *u)
{
	char line[1024];
	uint64_t want = UINT64_MAX;
	FILE *f;

	if (!user[0])
		return -EINVAL;
	if (parse_uint(user, 0, UINT32_MAX - 1, &want))
		want = UINT64_MAX; /* a name */
	f = fopen("/etc/passwd", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* strsep, not strtok: an empty field (a GECOS, a password) is a field, and
		 * the home is the sixth whatever the ones before hold. */
		char *rest = line, *name = strsep(&rest, ":"), *pw = strsep(&rest, ":");
		char *uid = strsep(&rest, ":"), *gid = strsep(&rest, ":");
		char *gecos = strsep(&rest, ":"), *home = strsep(&rest, ":\n");
		uint64_t uv, gv;

		(void)pw;
		(void)gecos;
		if (!name || !name[0] || !uid || !gid || !home ||
		    parse_uint(uid, 0, UINT32_MAX - 1, &uv) ||
		    parse_uint(gid, 0, UINT32_MAX - 1, &gv))
			continue;
		if (want == UINT64_MAX ? strcmp(name, user) : uv != want)
			continue;
		u->uid = (uid_t)uv;
		u->gid = (gid_t)gv;
		snprintf(u->name, sizeof(u->name), "%s", name);
		snprintf(u->home, sizeof(u->home), "%s", home);
		fclose(f);
		return 0;
	}
	fclose(f);
	return -ENOENT;
}

int exec_group_lookup(const char *group, gid_t *gid)
{
	char line[4096];
	uint64_t want = UINT64_MAX;
	FILE *f;

	if (!group[0])
		return -EINVAL;
	if (parse_uint(group, 0, UINT32_MAX - 1, &want))
		want = UINT64_MAX; /* a name */
	f = fopen("/etc/group", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *rest = line, *name = strsep(&rest, ":"), *pw = strsep(&rest, ":");
		char *id = strsep(&rest, ":\n");
		uint64_t gv;

		(void)pw;
		if (!name || !name[0] || !id || parse_uint(id, 0, UINT32_MAX - 1, &gv))
			continue;
		if (want == UINT64_MAX ? strcmp(name, group) : gv != want)
			continue;
		*gid = (gid_t)gv;
		fclose(f);
		return 0;
	}
	fclose(f);
	return -ENOENT;
}

int exec_pty_open(uint32_t rows, uint32_t cols, int *master, char *slave, size_t n)
{
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	if (grantpt(fd) < 0 || unlockpt(fd) < 0 || (r = ptsname_r(fd, slave, n)) != 0) {
		r = errno ? -errno : -EIO;
		close(fd);
		return r;
	}
	if (rows && cols)
		ioctl(fd, TIOCSWINSZ, &ws);
	*master = fd;
	return 0;
}

int exec_child_setup(const struct exec_spec *s)
{
	if (s->tty) {
		/* The session leader opens the slave: it becomes the controlling terminal. */
		int t = open(s->tty, O_RDWR);

		if (t < 0 || ioctl(t, TIOCSCTTY, 0) < 0 || dup2(t, 0) < 0 || dup2(t, 1) < 0 ||
		    dup2(t, 2) < 0)
			return -errno;
		if (t > 2)
			close(t);
	} else if (dup2(s->in, 0) < 0 || dup2(s->out, 1) < 0 || dup2(s->err, 2) < 0) {
		return -errno;
	}
	if (s->user) {
		gid_t g = s->user->gid;

		if (setgroups(1, &g) < 0 || setgid(s->user->gid) < 0 || setuid(s->user->uid) < 0) {
			dprintf(2, "keel-agent: cannot become user '%s': %s\n", s->user->name,
				strerror(errno));
			return -errno;
		}
	}
	return 0;
}
