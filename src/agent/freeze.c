/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Freeze and thaw of the guest's file systems (Hyper-V's VSS writer, qemu-ga's fsfreeze):
 * FIFREEZE on every mounted file system backed by a block device, deepest mounts first and
 * `/` last; FITHAW in the opposite order. A freeze has a deadline (default 10 s): a watchdog
 * process, started before the first FIFREEZE, thaws what the freeze recorded by itself at the
 * deadline, so a host that never comes back (or a connection process blocked writing to it,
 * or killed, or a FIFREEZE that blocks) cannot leave the guest frozen.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
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
	bool self_thawed; /* not thawed by us: a later thaw on this connection reports 0 */
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

/*
 * The record of what the agent froze, shared by its connection processes and the watchdog
 * (a file under /run: it goes with a reboot, and a connection made after the one that froze
 * went away still knows what to thaw): "pid PID\n", the watchdog's, then one mount point a
 * line, escaped as mountinfo does. Only what is listed here is ever thawed, never a file
 * system the guest's administrator froze. Test builds with --test-mountinfo keep it in the
 * state directory, and "freeze" a mount point by creating .keel-test-frozen in it (EBUSY if
 * it is there already, as FIFREEZE on a frozen file system), so that host tests never freeze
 * the host.
 */
#define TEST_FROZEN ".keel-test-frozen"

static void record_path(char *buf, size_t size)
{
	if (agent_opts.test_mountinfo) {
		(void)!mkdir(agent_opts.state_dir, 0755);
		snprintf(buf, size, "%s/frozen", agent_opts.state_dir);
	} else {
		/* An initramfs may have no /run yet (the nested lab's does not). */
		(void)!mkdir("/run", 0755);
		snprintf(buf, size, "/run/keel-agent.frozen");
	}
}

/*
 * Every look at the record, and every thaw of what it lists, is made holding an exclusive
 * flock of RECORD.lock: the freezing connection's end, a thaw on another connection and the
 * watchdog's deadline can come at the same moment (a production checkpoint's restart: the
 * transport reset ends the freezing connection just as keeld's thaw arrives on a new one),
 * and exactly one of them thaws and counts each file system. -1 when the lock cannot be had
 * (no /run): then nothing can be recorded either, and a freeze fails.
 */
static int record_lock(void)
{
	char path[AP_MAX_PATH + 24];
	int fd;

	record_path(path, sizeof(path) - 8);
	strcat(path, ".lock");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

static void record_unlock(int lock)
{
	if (lock >= 0)
		close(lock);
}

static void record_line(FILE *f, const char *path)
{
	for (const char *p = path; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			fprintf(f, "\\%03o", (unsigned char)*p);
		else
			fputc(*p, f);
	fputc('\n', f);
}

/* Rewrite the record: the watchdog's pid and the paths frozen so far; or, with closed >= 0,
 * "closed N" (a freeze its connection's end thawed). */
static int record_put(pid_t watchdog, char (*paths)[AP_MAX_PATH], int n, int closed)
{
	char path[AP_MAX_PATH + 16], tmp[AP_MAX_PATH + 32];
	FILE *f;
	int ok;

	record_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	if (closed >= 0)
		fprintf(f, "closed %d\n", closed);
	else
		fprintf(f, "pid %d\n", (int)watchdog);
	for (int i = 0; i < n; i++)
		record_line(f, paths[i]);
	ok = fflush(f) == 0 && !ferror(f);
	if (fclose(f) != 0 || !ok || rename(tmp, path) < 0) {
		int e = errno ? errno : EIO;

		unlink(tmp);
		return -e;
	}
	return 0;
}

/* The recorded paths; *watchdog its pid. -ENOENT: nothing recorded. A freeze its
 * connection's end thawed is "closed N" (*closed N, no paths): N file systems frozen until
 * then, which a thaw on a new connection reports. */
static int record_read(pid_t *watchdog, int *closed, char (*paths)[AP_MAX_PATH], int max)
{
	static char line[3 * AP_MAX_PATH];
	char path[AP_MAX_PATH + 16];
	int n = 0, pid = -1;
	FILE *f;

	*closed = -1;
	record_path(path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fscanf(f, "closed %d\n", closed) == 1) {
		fclose(f);
		*watchdog = 0;
		return 0;
	}
	*closed = -1;
	rewind(f);
	if (fscanf(f, "pid %d\n", &pid) != 1)
		pid = -1;
	while (n < max && fgets(line, sizeof(line), f)) {
		size_t len;

		line[strcspn(line, "\n")] = '\0';
		unescape(line);
		len = strlen(line);
		if (!len || len >= AP_MAX_PATH)
			continue;
		memcpy(paths[n++], line, len + 1);
	}
	fclose(f);
	*watchdog = pid;
	return n;
}

static int record_write(pid_t watchdog, char (*paths)[AP_MAX_PATH], int n)
{
	return record_put(watchdog, paths, n, -1);
}

/* Under the lock, the record rewritten with n paths if it is still the freeze's of watchdog:
 * -ETIMEDOUT when its deadline has passed (the watchdog thawed and removed it). */
static int record_extend(pid_t watchdog, char (*paths)[AP_MAX_PATH], int n)
{
	int lock = record_lock(), closed, r;
	pid_t owner = -1;

	if (lock < 0)
		return -ENOLCK;
	r = record_read(&owner, &closed, NULL, 0);
	r = r < 0 || owner != watchdog ? -ETIMEDOUT : record_write(watchdog, paths, n);
	record_unlock(lock);
	return r;
}

static void record_remove(void)
{
	char path[AP_MAX_PATH + 16];

	record_path(path, sizeof(path));
	unlink(path);
}

static int do_freeze(int fd)
{
	if (agent_opts.test_mountinfo) {
		int t = openat(fd, TEST_FROZEN, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (t < 0)
			return errno == EEXIST ? -EBUSY : -errno;
		close(t);
		return 0;
	}
	return ioctl(fd, FIFREEZE, 0) < 0 ? -errno : 0;
}

/* 0 thawed; -EINVAL: it was not frozen. */
static int do_thaw(int fd)
{
	if (agent_opts.test_mountinfo)
		return unlinkat(fd, TEST_FROZEN, 0) < 0 ? (errno == ENOENT ? -EINVAL : -errno) : 0;
	return ioctl(fd, FITHAW, 0) < 0 ? -errno : 0;
}

/* Whether maj:min is a block device (sysfs; test builds: a file in the mount table's
 * directory, sys-dev-block/MAJ:MIN). */
static bool is_block(unsigned maj, unsigned min)
{
	char path[AP_MAX_PATH + 64];

	if (agent_opts.test_mountinfo) {
		const char *slash = strrchr(agent_opts.test_mountinfo, '/');
		int len = slash ? (int)(slash - agent_opts.test_mountinfo) : 1;

		snprintf(path, sizeof(path), "%.*s/sys-dev-block/%u:%u", len,
			 slash ? agent_opts.test_mountinfo : ".", maj, min);
	} else {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", maj, min);
	}
	return access(path, F_OK) == 0;
}

/* Mount points of block-device file systems, one per device, deepest first and "/" last.
 * A mount is block-backed by its device number (mountinfo's major:minor, in
 * /sys/dev/block), not its source's name: "/dev/root" (a kernel booted without an initramfs)
 * names no device node. */
static int freeze_mounts(char (*paths)[AP_MAX_PATH], int max)
{
	static char line[3 * AP_MAX_PATH];
	unsigned devs[FREEZE_MAX][2];
	int n = 0, root = -1;
	FILE *f = fopen(agent_opts.test_mountinfo ? agent_opts.test_mountinfo
						  : "/proc/self/mountinfo",
			"re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f) && n < max) {
		char mnt[AP_MAX_PATH];
		unsigned maj, min;
		bool dup = false;

		if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &maj, &min, mnt) != 3)
			continue;
		unescape(mnt);
		if (maj == 0 || !is_block(maj, min))
			continue;
		for (int i = 0; i < n; i++)
			dup |= devs[i][0] == maj && devs[i][1] == min;
		if (dup)
			continue;
		devs[n][0] = maj;
		devs[n][1] = min;
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

/* Thaw the paths, last first; the number that were frozen. */
static int thaw_paths(char (*paths)[AP_MAX_PATH], int n)
{
	int count = 0;

	for (int i = n - 1; i >= 0; i--) {
		int fd = open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			continue;
		count += do_thaw(fd) == 0;
		close(fd);
	}
	return count;
}

static int thaw_fds(const int *fds, int n)
{
	int count = 0;

	for (int i = n - 1; i >= 0; i--)
		if (fds[i] >= 0)
			count += do_thaw(fds[i]) == 0;
	return count;
}

/* The watchdog: at the deadline, what the record lists if it is still its own. */
static void watchdog_run(uint32_t timeout_ms)
{
	static char paths[FREEZE_MAX][AP_MAX_PATH];
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
	pid_t owner = -1;
	int n, closed;

	int lock;

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	lock = record_lock();
	n = record_read(&owner, &closed, paths, FREEZE_MAX);
	if (n >= 0 && owner == getpid()) {
		thaw_paths(paths, n);
		record_remove();
	}
	record_unlock(lock);
	_exit(0);
}

/*
 * End this connection's freeze, under the record's lock: its watchdog stopped and, when the
 * record is still its own (neither the deadline nor a thaw on another connection came
 * first), its file systems thawed and the record removed, or with closing (the connection
 * ended) replaced by "closed N" for a thaw on a new connection to report. The number thawed
 * now; otherwise 0 and self_thawed. failed_freeze (the freeze is failing): its file systems
 * are thawed even when the record is no longer its own, since a deadline that passed during
 * the freeze thawed only what was recorded by then; otherwise a file system thawed by the
 * deadline or another connection is left alone (an administrator may have frozen it since).
 */
static int thaw_own(struct conn *c, bool closing, bool failed_freeze)
{
	int lock, count = 0, closed;
	pid_t owner = -1;
	bool ours = false;

	if (!frozen.count && frozen.watchdog <= 0)
		return 0;
	lock = record_lock();
	if (frozen.watchdog > 0) {
		/* Under the lock the watchdog is asleep, waiting for the lock or done: never in
		 * the middle of its thaw. */
		kill(frozen.watchdog, SIGKILL);
		while (waitpid(frozen.watchdog, NULL, 0) < 0 && errno == EINTR)
			;
		ours = record_read(&owner, &closed, NULL, 0) >= 0 && owner == frozen.watchdog;
		frozen.watchdog = -1;
	}
	if (ours)
		count = thaw_fds(frozen.fd, frozen.count);
	else if (failed_freeze)
		(void)thaw_fds(frozen.fd, frozen.count);
	for (int i = 0; i < frozen.count; i++)
		close(frozen.fd[i]);
	if (ours && closing && count > 0)
		(void)!record_put(0, NULL, 0, count);
	else if (ours)
		record_remove();
	frozen.self_thawed = !ours;
	frozen.count = 0;
	c->thaw_deadline_ms = 0;
	record_unlock(lock);
	return count;
}

void freeze_thaw_all(struct conn *c)
{
	(void)thaw_own(c, false, false);
	frozen.self_thawed = true; /* the deadline's thaw, whoever made it */
}

void freeze_conn_end(struct conn *c)
{
	/* The host's connection went away while frozen (a worker restarted under a production
	 * checkpoint, after its pause): frozen until now, which the host's thaw on a new
	 * connection is told. Not after the deadline. */
	bool deadline = c->thaw_deadline_ms && clock_mono_ms() >= c->thaw_deadline_ms;

	(void)thaw_own(c, !deadline, false);
}

int freeze_handle(struct conn *c, const struct ap_msg *m)
{
	static char paths[FREEZE_MAX][AP_MAX_PATH];
	uint32_t timeout_ms = FREEZE_DEFAULT_TIMEOUT;
	pid_t owner;
	int n, r = 0, failed = 0, closed, lock;
	bool recording = false; /* r is the record's write, not a FIFREEZE */

	if (frozen.count || frozen.watchdog > 0)
		return conn_error(c, m, EBUSY, "the file systems are already frozen; thaw first");
	if (ap_get(m, AP_A_TIMEOUT_MS))
		(void)ap_get_u32(m, AP_A_TIMEOUT_MS, &timeout_ms);
	if (timeout_ms == 0 || timeout_ms > FREEZE_MAX_TIMEOUT)
		return conn_error(c, m, EINVAL, "a freeze's timeout is 1 to %d ms, not %u",
				  FREEZE_MAX_TIMEOUT, timeout_ms);
	/* Under the lock until the record names this freeze's watchdog: two connections
	 * freezing at once cannot both find no freeze under way. */
	lock = record_lock();
	n = record_read(&owner, &closed, paths, FREEZE_MAX);
	if (n >= 0 && owner > 0 && kill(owner, 0) == 0) {
		record_unlock(lock);
		return conn_error(c, m, EBUSY,
				  "another connection's freeze is under way; thaw first");
	}
	if (n >= 0) {
		/* Its watchdog is gone (the agent ended), or a "closed" record no thaw came
		 * for: what it recorded is thawed now. */
		thaw_paths(paths, n);
		record_remove();
	}
	n = freeze_mounts(paths, FREEZE_MAX);
	if (n < 0) {
		record_unlock(lock);
		return conn_error(c, m, -n, "cannot read the mount table: %s", strerror(-n));
	}
	frozen.self_thawed = false;
	/* The watchdog first: a FIFREEZE that blocks leaves the ones before it frozen, and the
	 * deadline covers them too (it thaws what the record lists). */
	frozen.watchdog = fork();
	if (frozen.watchdog < 0) {
		frozen.watchdog = -1;
		record_unlock(lock);
		return conn_error(c, m, errno, "cannot start the freeze's watchdog: %s",
				  strerror(errno));
	}
	if (frozen.watchdog == 0) {
		int held[] = {c->fd,	     c->exec.in_fd, c->exec.out_fd, c->exec.err_fd,
			      c->exec.pidfd, c->copy.fd,    c->copy.dirfd, lock};

		/* Only the record: the connection and an exec's pipes held here would hide
		 * their end from the host and the program until the deadline. */
		for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
			if (held[i] >= 0)
				close(held[i]);
		watchdog_run(timeout_ms);
	}
	c->thaw_deadline_ms = clock_mono_ms() + timeout_ms;
	r = lock < 0 ? -ENOLCK : record_write(frozen.watchdog, frozen.path, 0);
	record_unlock(lock);
	recording = r != 0;
	for (int i = 0; i < n && !r; i++) {
		int fd = open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			continue;
		/* Recorded before it freezes: the record may name one more than is frozen (a
		 * thaw of it fails harmlessly), never one less. */
		memcpy(frozen.path[frozen.count], paths[i], AP_MAX_PATH);
		r = record_extend(frozen.watchdog, frozen.path, frozen.count + 1);
		if (r) {
			close(fd);
			recording = r != -ETIMEDOUT;
			failed = i;
			break;
		}
		r = do_freeze(fd);
		if (r) {
			close(fd);
			if (r == -EOPNOTSUPP || r == -ENOTTY) {
				r = record_extend(frozen.watchdog, frozen.path, frozen.count);
				recording = r && r != -ETIMEDOUT;
				failed = i; /* if the record could not follow */
				continue; /* a file system that cannot freeze is left as it is */
			}
			failed = i;
			break;
		}
		frozen.fd[frozen.count++] = fd;
	}
	if (!r) {
		/* The deadline may have passed while freezing: the watchdog thawed what the
		 * record listed then, perhaps before the last FIFREEZE. */
		r = record_extend(frozen.watchdog, frozen.path, frozen.count);
		recording = r && r != -ETIMEDOUT;
		failed = n - 1;
	}
	if (r) {
		int e = -r;

		/* Everything this freeze froze thawed, whether or not the watchdog came
		 * first (it may have missed a FIFREEZE made after its thaw). */
		(void)thaw_own(c, false, true);
		if (recording) {
			char path[AP_MAX_PATH + 16];

			record_path(path, sizeof(path));
			return conn_error(c, m, e,
					  "cannot record the freeze in %s: %s; nothing is left "
					  "frozen",
					  path, strerror(e));
		}
		return conn_error(c, m, e,
				  "cannot freeze '%s': %s; what this freeze froze is thawed again",
				  n ? paths[failed] : "/", strerror(e));
	}
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u32(&c->out, AP_A_COUNT, (uint32_t)frozen.count);
	for (int i = 0; i < frozen.count && ap_room(&c->out, strlen(frozen.path[i]) + 1); i++)
		ap_put_str(&c->out, AP_A_PATH, frozen.path[i]);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

/* A thaw ends this connection's freeze or, on a connection that froze nothing (the one
 * that did is gone: a worker restarted under it, say), the one the record lists: only what
 * the agent froze, never a file system someone else froze. COUNT: the file systems that
 * were still frozen and are thawed now (0 when the deadline thawed them already). */
int thaw_handle(struct conn *c, const struct ap_msg *m)
{
	static char paths[FREEZE_MAX][AP_MAX_PATH];
	int count = 0;

	if (frozen.count || frozen.watchdog > 0) {
		count = thaw_own(c, false, false);
	} else if (!frozen.self_thawed) {
		pid_t owner = -1;
		int closed, lock = record_lock();
		int n = record_read(&owner, &closed, paths, FREEZE_MAX);

		if (n >= 0) {
			count = closed >= 0 ? closed : thaw_paths(paths, n);
			record_remove();
		}
		record_unlock(lock);
	}
	frozen.self_thawed = false;
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u32(&c->out, AP_A_COUNT, (uint32_t)count);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}
