/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Freeze and thaw of the guest's file systems (Hyper-V's VSS writer, qemu-ga's fsfreeze):
 * FIFREEZE on every mounted file system backed by a block device, deepest mounts first and
 * `/` last; FITHAW in the opposite order. A freeze has a deadline (default 10 s): a watchdog
 * process thaws everything by itself at the deadline, so a host that never comes back (or a
 * connection process blocked writing to it, or killed) cannot leave the guest frozen.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/clock.h"

#define FREEZE_MAX	       64
#define FREEZE_DEFAULT_TIMEOUT 10000
#define FREEZE_MAX_TIMEOUT     600000

/* What this connection froze, in freeze order. */
static struct {
	int fd[FREEZE_MAX];
	char path[FREEZE_MAX][AP_MAX_PATH];
	int count;
	pid_t watchdog;
} frozen = {.watchdog = -1};

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/* Mount points of block-device file systems, one per device, deepest first and "/" last. */
static int freeze_mounts(char (*paths)[AP_MAX_PATH], int max)
{
	static char line[3 * AP_MAX_PATH];
	dev_t devs[FREEZE_MAX];
	int n = 0, root = -1;
	FILE *f = fopen(agent_opts.test_mountinfo ? agent_opts.test_mountinfo
						  : "/proc/self/mountinfo",
			"re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f) && n < max) {
		char mnt[AP_MAX_PATH], src[AP_MAX_PATH];
		const char *sep = strstr(line, " - ");
		struct stat st;
		bool dup = false;

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%*s %4095s", src) != 1)
			continue;
		unescape(mnt);
		unescape(src);
		if (strncmp(src, "/dev/", 5) || stat(src, &st) < 0 || !S_ISBLK(st.st_mode))
			continue;
		for (int i = 0; i < n; i++)
			dup |= devs[i] == st.st_rdev;
		if (dup)
			continue;
		devs[n] = st.st_rdev;
		snprintf(paths[n], AP_MAX_PATH, "%s", mnt);
		if (!strcmp(mnt, "/"))
			root = n;
		n++;
	}
	fclose(f);
	/* mountinfo lists a mount after the one it sits on: reversed, deepest come first. */
	for (int i = 0; i < n / 2; i++) {
		char tmp[AP_MAX_PATH];

		memcpy(tmp, paths[i], AP_MAX_PATH);
		memcpy(paths[i], paths[n - 1 - i], AP_MAX_PATH);
		memcpy(paths[n - 1 - i], tmp, AP_MAX_PATH);
		if (root == i)
			root = n - 1 - i;
		else if (root == n - 1 - i)
			root = i;
	}
	if (root >= 0 && root != n - 1) {
		char tmp[AP_MAX_PATH];

		memcpy(tmp, paths[root], AP_MAX_PATH);
		memmove(paths[root], paths[root + 1], (size_t)(n - 1 - root) * AP_MAX_PATH);
		memcpy(paths[n - 1], tmp, AP_MAX_PATH);
	}
	return n;
}

static void thaw_fds(const int *fds, int n)
{
	for (int i = n - 1; i >= 0; i--)
		if (fds[i] >= 0)
			ioctl(fds[i], FITHAW, 0);
}

void freeze_thaw_all(struct conn *c)
{
	if (frozen.watchdog > 0) {
		kill(frozen.watchdog, SIGKILL);
		while (waitpid(frozen.watchdog, NULL, 0) < 0 && errno == EINTR)
			;
		frozen.watchdog = -1;
	}
	thaw_fds(frozen.fd, frozen.count);
	for (int i = 0; i < frozen.count; i++)
		close(frozen.fd[i]);
	frozen.count = 0;
	c->thaw_deadline_ms = 0;
}

int freeze_handle(struct conn *c, const struct ap_msg *m)
{
	static char paths[FREEZE_MAX][AP_MAX_PATH];
	uint32_t timeout_ms = FREEZE_DEFAULT_TIMEOUT;
	int n, r = 0, failed = 0;

	if (frozen.count)
		return conn_error(c, m, EBUSY, "the file systems are already frozen; thaw first");
	if (ap_get(m, AP_A_TIMEOUT_MS))
		(void)ap_get_u32(m, AP_A_TIMEOUT_MS, &timeout_ms);
	if (timeout_ms == 0 || timeout_ms > FREEZE_MAX_TIMEOUT)
		return conn_error(c, m, EINVAL, "a freeze's timeout is 1 to %d ms, not %u",
				  FREEZE_MAX_TIMEOUT, timeout_ms);
	n = freeze_mounts(paths, FREEZE_MAX);
	if (n < 0)
		return conn_error(c, m, -n, "cannot read the mount table: %s", strerror(-n));
	for (int i = 0; i < n; i++) {
		int fd = open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			continue;
		if (ioctl(fd, FIFREEZE, 0) < 0) {
			int e = errno;

			close(fd);
			if (e == EOPNOTSUPP || e == ENOTTY)
				continue; /* a file system that cannot freeze is left as it is */
			r = -e;
			failed = i;
			break;
		}
		frozen.fd[frozen.count] = fd;
		memcpy(frozen.path[frozen.count], paths[i], AP_MAX_PATH);
		frozen.count++;
	}
	if (r) {
		freeze_thaw_all(c);
		return conn_error(c, m, -r, "cannot freeze '%s': %s; everything is thawed again",
				  paths[failed], strerror(-r));
	}
	frozen.watchdog = fork();
	if (frozen.watchdog == 0) {
		struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
		int held[] = {c->fd,	     c->exec.in_fd, c->exec.out_fd, c->exec.err_fd,
			      c->exec.pidfd, c->copy.fd,    c->copy.dirfd};

		/* Only the frozen file systems: the connection and an exec's pipes held here
		 * would hide their end from the host and the program until the deadline. */
		for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
			if (held[i] >= 0)
				close(held[i]);

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		thaw_fds(frozen.fd, frozen.count);
		_exit(0);
	}
	c->thaw_deadline_ms = clock_mono_ms() + timeout_ms;
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u32(&c->out, AP_A_COUNT, (uint32_t)frozen.count);
	for (int i = 0; i < frozen.count && ap_room(&c->out, strlen(frozen.path[i]) + 1); i++)
		ap_put_str(&c->out, AP_A_PATH, frozen.path[i]);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

/* A thaw on a connection that froze nothing (the one that did is gone: a worker restarted
 * under it, say): every block-device file system that is frozen is thawed, as qemu-ga's
 * fsfreeze-thaw does, so the host can always end a freeze it asked for. */
static int thaw_mounts(void)
{
	static char paths[FREEZE_MAX][AP_MAX_PATH];
	int n = freeze_mounts(paths, FREEZE_MAX), count = 0;

	for (int i = n - 1; i >= 0; i--) {
		int fd = open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			continue;
		if (ioctl(fd, FITHAW, 0) == 0)
			count++; /* EINVAL: it was not frozen */
		close(fd);
	}
	return count;
}

int thaw_handle(struct conn *c, const struct ap_msg *m)
{
	int count = frozen.count;

	if (count)
		freeze_thaw_all(c);
	else
		count = thaw_mounts();
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u32(&c->out, AP_A_COUNT, (uint32_t)count);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}
