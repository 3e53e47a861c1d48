/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec (PowerShell Direct): run a program in a session and process group of its own, stream
 * its stdout and stderr to the host as they come (no cap), feed it the host's stdin, and
 * report its exit status. A timeout or the host going away kills the whole process group.
 * One exec at a time on a connection; the host opens a connection per exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/clock.h"

#define EXEC_MAX_ARGS 1024
#define EXEC_MAX_ENV  256

static const char *const exec_default_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C.UTF-8",
};

/* The program's whole process group, and the program itself: a child that has not reached
 * its setsid() yet is in the agent's group, where kill(-pid) does not find it, and would run
 * on unkilled (a timeout of 1 ms, a host that closes at once after the reply). */
static void exec_kill(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void close_pipe(int p[2])
{
	close_fd(&p[0]);
	close_fd(&p[1]);
}

/* In the child: never returns. */
static void exec_child(const struct exec_spec *s, const char *cwd, char **argv, char **envp)
{
	sigset_t none;

	setsid(); /* a session and process group of its own: one kill reaches all of it */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	if (exec_child_setup(s))
		_exit(126);
	/* Without a directory given: the user's home when it is there, else "/". */
	if (!cwd && s->user && chdir(s->user->home) == 0)
		cwd = s->user->home;
	if (chdir(cwd ? cwd : "/") < 0) {
		dprintf(2, "keel-agent: cannot change to directory '%s': %s\n", cwd,
			strerror(errno));
		_exit(126);
	}
	execvpe(argv[0], argv, envp);
	dprintf(2, "keel-agent: cannot run '%s': %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

int exec_start(struct conn *c, const struct ap_msg *m)
{
	static char *argv[EXEC_MAX_ARGS + 1];
	static char *envp[EXEC_MAX_ENV + 8];
	static char home_env[AP_MAX_PATH + 8], user_env[80], logname_env[80], slave[64];
	static struct exec_user user;
	struct exec_job *j = &c->exec;
	size_t nargs = ap_count(m, AP_A_ARG), nenv = ap_count(m, AP_A_ENV), k = 0;
	const char *cwd = ap_get_str(m, AP_A_CWD), *uname = ap_get_str(m, AP_A_USER), *bad;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, master = -1;
	uint32_t timeout_ms = 0, tty = 0, rows = 0, cols = 0;
	struct exec_spec spec = {-1, -1, -1, NULL, NULL};
	const char *defaults[8];
	size_t ndefaults = 0;
	pid_t pid;

	if (j->active)
		return conn_error(c, m, EBUSY, "an exec is already running on this connection");
	if (nargs == 0 || nargs > EXEC_MAX_ARGS)
		return conn_error(c, m, EINVAL, "exec needs 1 to %d arguments, not %zu",
				  EXEC_MAX_ARGS, nargs);
	if (nenv > EXEC_MAX_ENV)
		return conn_error(c, m, EINVAL, "exec takes at most %d environment entries",
				  EXEC_MAX_ENV);
	if (!*(const char *)ap_get_nth(m, AP_A_ARG, 0)->val)
		return conn_error(c, m, EINVAL, "exec's program name is empty");
	if (cwd && (bad = agent_check_path(cwd)))
		return conn_error(c, m, EINVAL, "exec's directory: %s", bad);
	if (ap_get(m, AP_A_TIMEOUT_MS))
		(void)ap_get_u32(m, AP_A_TIMEOUT_MS, &timeout_ms);
	if (ap_get(m, AP_A_TTY))
		(void)ap_get_u32(m, AP_A_TTY, &tty);
	if (ap_get(m, AP_A_ROWS))
		(void)ap_get_u32(m, AP_A_ROWS, &rows);
	if (ap_get(m, AP_A_COLS))
		(void)ap_get_u32(m, AP_A_COLS, &cols);
	if (tty > 1 || rows > AP_MAX_TTY || cols > AP_MAX_TTY)
		return conn_error(c, m, EINVAL, "exec's tty is 0 or 1 and its size at most %d",
				  AP_MAX_TTY);
	if (uname) {
		int r = exec_user_lookup(uname, &user);

		if (r == -ENOENT || r == -EINVAL)
			return conn_error(c, m, ENOENT, "no user '%s' in the guest's /etc/passwd",
					  uname);
		if (r)
			return conn_error(c, m, -r, "cannot read /etc/passwd: %s", strerror(-r));
		snprintf(home_env, sizeof(home_env), "HOME=%s", user.home);
		snprintf(user_env, sizeof(user_env), "USER=%s", user.name);
		snprintf(logname_env, sizeof(logname_env), "LOGNAME=%s", user.name);
		defaults[ndefaults++] = home_env;
		defaults[ndefaults++] = user_env;
		defaults[ndefaults++] = logname_env;
		spec.user = &user;
	}
	for (size_t d = 0; d < sizeof(exec_default_env) / sizeof(exec_default_env[0]); d++)
		defaults[ndefaults++] = exec_default_env[d];
	for (size_t i = 0; i < nargs; i++)
		argv[i] = (char *)ap_get_nth(m, AP_A_ARG, i)->val;
	argv[nargs] = NULL;
	/* The host's entries first, then each default the host did not give. */
	for (size_t i = 0; i < nenv; i++) {
		char *e = (char *)ap_get_nth(m, AP_A_ENV, i)->val;

		if (!strchr(e, '=') || e[0] == '=')
			return conn_error(c, m, EINVAL, "environment entry '%s' is not NAME=VALUE",
					  e);
		envp[k++] = e;
	}
	/* A default is left out when the host gave the same name (or an earlier default did:
	 * the user's HOME before root's). */
	for (size_t d = 0; d < ndefaults; d++) {
		size_t len = strcspn(defaults[d], "=") + 1;
		bool given = false;

		for (size_t i = 0; i < k; i++)
			given |= !strncmp(envp[i], defaults[d], len);
		if (!given)
			envp[k++] = (char *)defaults[d];
	}
	envp[k] = NULL;
	if (tty) {
		int r = exec_pty_open(rows, cols, &master, slave, sizeof(slave));

		if (r)
			return conn_error(c, m, -r, "cannot make a pseudo-terminal: %s",
					  strerror(-r));
		spec.tty = slave;
		/* The program's input and output are the terminal's one master side. */
		in[1] = master;
		out[0] = fcntl(master, F_DUPFD_CLOEXEC, 3);
		if (out[0] < 0) {
			int e = errno;

			close(master);
			return conn_error(c, m, e, "cannot make a pseudo-terminal: %s",
					  strerror(e));
		}
	} else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
		   pipe2(err, O_CLOEXEC) < 0) {
		int e = errno;

		close_pipe(in);
		close_pipe(out);
		close_pipe(err);
		return conn_error(c, m, e, "cannot make pipes: %s", strerror(e));
	}
	spec.in = in[0];
	spec.out = out[1];
	spec.err = err[1];
	pid = fork();
	if (pid == 0)
		exec_child(&spec, cwd, argv, envp);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	if (pid < 0) {
		int e = errno;

		close_pipe(in);
		close_pipe(out);
		close_pipe(err);
		return conn_error(c, m, e, "cannot fork: %s", strerror(e));
	}
	memset(j, 0, sizeof(*j));
	j->active = true;
	j->id = m->id;
	j->pid = pid;
	j->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	j->in_fd = in[1];
	j->out_fd = out[0];
	j->err_fd = err[0];
	j->deadline_ms = timeout_ms ? clock_mono_ms() + timeout_ms : 0;
	j->tty = tty != 0;
	fcntl(j->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(j->out_fd, F_SETFL, O_NONBLOCK);
	if (j->err_fd >= 0)
		fcntl(j->err_fd, F_SETFL, O_NONBLOCK);
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u32(&c->out, AP_A_PID, (uint32_t)pid);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

static void exec_write_pending(struct exec_job *j)
{
	while (j->in_fd >= 0 && j->pending_off < j->pending_len) {
		ssize_t w = write(j->in_fd, j->pending + j->pending_off,
				  j->pending_len - j->pending_off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) { /* the program closed its stdin: what it did not take is dropped */
			close_fd(&j->in_fd);
			break;
		}
		j->pending_off += (size_t)w;
	}
	j->pending_len = j->pending_off = 0;
	if (j->pending_eof)
		close_fd(&j->in_fd);
}

int exec_input(struct conn *c, const struct ap_msg *m)
{
	struct exec_job *j = &c->exec;
	const struct ap_attr *data = ap_get(m, AP_A_DATA);
	uint32_t eof = 0;

	/* No reply on success: input is a stream. A late chunk for an exec that just ended is
	 * no error either, the host cannot know. */
	if (!j->active || j->id != m->id)
		return 0;
	if (ap_get(m, AP_A_EOF))
		(void)ap_get_u32(m, AP_A_EOF, &eof);
	if (data && data->len) {
		memcpy(j->pending, data->val, data->len);
		j->pending_len = data->len;
		j->pending_off = 0;
	}
	j->pending_eof = eof != 0;
	exec_write_pending(j);
	return 0;
}

int exec_resize(struct conn *c, const struct ap_msg *m)
{
	struct exec_job *j = &c->exec;
	uint32_t rows = 0, cols = 0;
	struct winsize ws;
	int fd;

	if (ap_get_u32(m, AP_A_ROWS, &rows) || ap_get_u32(m, AP_A_COLS, &cols) || !rows || !cols ||
	    rows > AP_MAX_TTY || cols > AP_MAX_TTY)
		return conn_error(c, m, EINVAL, "exec-resize needs rows and cols of 1 to %d",
				  AP_MAX_TTY);
	/* Like input, a resize for an exec that just ended is no error: the host cannot know. */
	if (!j->active || j->id != m->id)
		return 0;
	if (!j->tty)
		return conn_error(c, m, ENOTTY, "exec %u has no terminal to resize", m->id);
	fd = j->out_fd >= 0 ? j->out_fd : j->in_fd;
	ws = (struct winsize){.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	/* The kernel signals the terminal's foreground process group (SIGWINCH) on a change. */
	if (fd >= 0 && ioctl(fd, TIOCSWINSZ, &ws) < 0)
		return conn_error(c, m, errno, "cannot resize the terminal: %s", strerror(errno));
	return 0;
}

int exec_poll_fds(struct conn *c, struct pollfd *p, int max)
{
	struct exec_job *j = &c->exec;
	int n = 0;

	if (!j->active || max < 4)
		return 0;
	p[n++] = (struct pollfd){.fd = j->out_fd, .events = POLLIN};
	p[n++] = (struct pollfd){.fd = j->err_fd, .events = POLLIN};
	p[n++] = (struct pollfd){.fd = j->pending_len ? j->in_fd : -1, .events = POLLOUT};
	p[n++] = (struct pollfd){.fd = j->pidfd, .events = POLLIN};
	return n;
}

long long exec_deadline(const struct conn *c)
{
	return c->exec.active ? c->exec.deadline_ms : 0;
}

/* Send what a pipe has; close it at its end. 0, or -errno when the host is gone. With
 * drain, read until the pipe is empty (the program has ended). */
static int exec_pump(struct conn *c, int *fd, uint32_t stream, bool drain)
{
	static uint8_t chunk[AP_MAX_DATA];

	while (*fd >= 0) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			close_fd(fd);
			return 0;
		}
		ap_begin(&c->out, AP_T_EXEC_OUTPUT, 0, c->exec.id);
		ap_put_u32(&c->out, AP_A_STREAM, stream);
		ap_put_bytes(&c->out, AP_A_DATA, chunk, (size_t)n);
		if (ap_end(&c->out) || conn_send(c))
			return -EIO;
		if (!drain)
			return 0;
	}
	return 0;
}

static void exec_reset(struct exec_job *j)
{
	close_fd(&j->in_fd);
	close_fd(&j->out_fd);
	close_fd(&j->err_fd);
	close_fd(&j->pidfd);
	j->active = false;
}

static int exec_finish(struct conn *c)
{
	struct exec_job *j = &c->exec;
	int status = 0, r;

	r = exec_pump(c, &j->out_fd, AP_STREAM_STDOUT, true);
	if (!r)
		r = exec_pump(c, &j->err_fd, AP_STREAM_STDERR, true);
	while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r)
		return r;
	ap_begin(&c->out, AP_T_EXEC_EXIT, 0, j->id);
	if (WIFSIGNALED(status)) {
		ap_put_u32(&c->out, AP_A_EXIT_STATUS, 128 + (uint32_t)WTERMSIG(status));
		ap_put_u32(&c->out, AP_A_SIGNAL, (uint32_t)WTERMSIG(status));
	} else {
		ap_put_u32(&c->out, AP_A_EXIT_STATUS, (uint32_t)WEXITSTATUS(status));
	}
	if (j->timed_out)
		ap_put_u32(&c->out, AP_A_TIMED_OUT, 1);
	exec_reset(j);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

int exec_after_poll(struct conn *c, const struct pollfd *p, int n)
{
	struct exec_job *j = &c->exec;
	bool ended = false;

	if (!j->active)
		return 0;
	if (j->deadline_ms && clock_mono_ms() >= j->deadline_ms) {
		exec_kill(j->pid);
		j->timed_out = true;
		j->deadline_ms = 0;
	}
	for (int i = 0; i < n; i++) {
		int r = 0;

		if (!p[i].revents || p[i].fd < 0)
			continue;
		if (p[i].fd == j->out_fd)
			r = exec_pump(c, &j->out_fd, AP_STREAM_STDOUT, false);
		else if (p[i].fd == j->err_fd)
			r = exec_pump(c, &j->err_fd, AP_STREAM_STDERR, false);
		else if (p[i].fd == j->in_fd)
			exec_write_pending(j);
		else if (p[i].fd == j->pidfd)
			ended = true;
		if (r)
			return r;
	}
	/* Without a pidfd (a kernel before 5.3), the program's end is seen as both pipes
	 * closing. */
	if (j->pidfd < 0 && j->out_fd < 0 && j->err_fd < 0)
		ended = true;
	return ended ? exec_finish(c) : 0;
}

void exec_abort(struct conn *c)
{
	struct exec_job *j = &c->exec;

	if (!j->active)
		return;
	exec_kill(j->pid);
	while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
		;
	exec_reset(j);
}
