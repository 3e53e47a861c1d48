/* SPDX-License-Identifier: Apache-2.0 */
/* Starting a jailed keel-vmm: its passed files and its process (worker_exec.h). */
#include "daemon/worker_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/error.h"
#include "lib/log.h"

int worker_files_add(struct worker_files *wf, const char *name, const char *path, int fd, char *err,
		     size_t errlen)
{
	int high;

	if (wf->n == WORKER_FILES) {
		close(fd);
		error_set(err, errlen, "%s %s: more than %d files for the worker", name, path,
			  WORKER_FILES);
		return -E2BIG;
	}
	/* Held above WORKER_FD_BASE, so that the child's dup2 onto 3.. never lands on one. */
	high = fcntl(fd, F_DUPFD_CLOEXEC, WORKER_FD_BASE);
	if (high < 0) {
		int e = errno;

		close(fd);
		error_set(err, errlen, "%s %s: %s", name, path, strerror(e));
		return -e;
	}
	close(fd);
	wf->fd[wf->n] = high;
	snprintf(wf->name[wf->n], sizeof(wf->name[0]), "%s", name);
	wf->n++;
	return 0;
}

void worker_files_close(struct worker_files *wf)
{
	for (unsigned i = 0; i < wf->n; i++)
		close(wf->fd[i]);
	wf->n = 0;
}

int worker_files_argv(const struct worker_files *wf, char **argv, int *argc, int max)
{
	for (unsigned i = 0; i < wf->n; i++) {
		if (*argc >= max - 1)
			return -E2BIG;
		if (asprintf(&argv[*argc], "--fd=%s=%u", wf->name[i], WORKER_FD_FIRST + i) < 0)
			return -ENOMEM;
		(*argc)++;
		argv[*argc] = NULL;
	}
	return 0;
}

int worker_fd_above(int *fd)
{
	int high = fcntl(*fd, F_DUPFD_CLOEXEC, WORKER_FD_BASE + WORKER_FILES);

	if (high < 0)
		return -errno;
	close(*fd);
	*fd = high;
	return 0;
}

void worker_close_from(int first, int keep, int close_range_errno)
{
	struct rlimit rl;
	long max = 65536;

	if (close_range_errno != ENOSYS) {
		bool done = keep < first ? !syscall(SYS_close_range, first, ~0U, 0)
					 : (first == keep ||
					    !syscall(SYS_close_range, first, keep - 1, 0)) &&
						   !syscall(SYS_close_range, keep + 1, ~0U, 0);

		if (done)
			return;
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY)
		max = (long)rl.rlim_cur;
	for (long fd = first; fd < max; fd++)
		if (fd != keep)
			close((int)fd);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void __attribute__((noreturn)) exec_worker(const struct worker_exec *we, int errpipe)
{
	sigset_t none;
	int in = we->in, e;
	bool cloexec;

	if (we->setsid)
		setsid(); /* its own session: survives keeld, gets no terminal signals */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (in < 0)
		in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (in < 0 || dup2(in, 0) < 0 || dup2(we->out, 1) < 0 || dup2(we->out, 2) < 0)
		goto fail;
	/* Every other descriptor closes at exec: keeld's own without O_CLOEXEC too. */
	cloexec = !we->close_range_errno &&
		  !syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	/* The passed files, at 3, 4, ...: dup2 makes the copies survive exec. */
	for (unsigned i = 0; i < we->wf->n; i++)
		if (dup2(we->wf->fd[i], WORKER_FD_FIRST + (int)i) < 0)
			goto fail;
	/* No CLOSE_RANGE_CLOEXEC (before 5.11): every descriptor above the passed ones is
	 * closed now, but the error pipe (O_CLOEXEC, above them all). */
	if (!cloexec)
		worker_close_from(WORKER_FD_FIRST + (int)we->wf->n, errpipe, we->close_range_errno);
	execv(we->vmm, we->argv);
fail:
	e = errno;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

/*
 * The worker by clone(CLONE_NEWPID) when clone3 is missing: the child waits on a pipe before
 * exec; the parent writes its pid into cgfd's cgroup.procs (when there is a cgroup), then lets
 * it go (a byte) or, when that fails, kills it. The child's pid, or -errno with err.
 */
static pid_t clone_held(const struct worker_exec *we, int errpipe, char *err, size_t errlen)
{
	int go[2], fd, r = 0;
	char num[16];
	pid_t pid;

	if (pipe2(go, O_CLOEXEC) < 0) {
		error_set(err, errlen, "pipe: %s", strerror(errno));
		return -errno;
	}
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		char c;

		close(go[1]);
		if (read(go[0], &c, 1) != 1) /* the parent ended it or went away */
			_exit(127);
		exec_worker(we, errpipe);
	}
	close(go[0]);
	if (pid < 0) {
		r = -errno;
		error_set(err, errlen, "clone: %s", strerror(errno));
	} else if (we->cgfd >= 0) {
		int n = snprintf(num, sizeof(num), "%d", (int)pid);

		fd = openat(we->cgfd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || write(fd, num, (size_t)n) != n) {
			r = errno ? -errno : -EIO;
			error_set(err, errlen, "cannot move the worker into its cgroup: %s",
				  strerror(-r));
		}
		if (fd >= 0)
			close(fd);
	}
	if (!r && write(go[1], "g", 1) != 1) {
		r = -errno;
		error_set(err, errlen, "cannot let the worker go: %s", strerror(errno));
	}
	close(go[1]);
	if (r && pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return r ? r : pid;
}

pid_t worker_exec_start(struct worker_exec *we, char *err, size_t errlen)
{
	struct clone_args ca = {.flags = CLONE_NEWPID, .exit_signal = SIGCHLD};
	int pipefd[2], e = 0;
	pid_t pid;

	we->fell_back = false;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		e = errno;
		error_set(err, errlen, "pipe: %s", strerror(e));
		return -e;
	}
	e = -worker_fd_above(&pipefd[1]);
	if (e) { /* both ends go: a start that fails leaves keeld no descriptor */
		close(pipefd[0]);
		close(pipefd[1]);
		error_set(err, errlen, "pipe: %s", strerror(e));
		return -e;
	}
	/* The worker is PID 1 of a PID namespace of its own (it sees no other process); it
	 * makes its other namespaces itself (src/vmm/jail.c). Raw clone3 without a stack forks
	 * as fork does, and the child only calls what is async-signal-safe before exec. */
	if (we->cgfd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)we->cgfd;
	}
	if (we->no_clone3) {
		pid = -1;
		errno = ENOSYS;
	} else {
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	}
	if (pid == 0)
		exec_worker(we, pipefd[1]);
	/* No clone3 (a kernel before 5.3, or one before 5.7 without CLONE_INTO_CGROUP, or a
	 * container's seccomp filter): clone, with the child held before exec until it is in
	 * its cgroup, so it still runs nothing outside it. */
	if (pid < 0 && (errno == ENOSYS || errno == E2BIG || errno == EINVAL)) {
		we->fell_back = true;
		we->clone3_errno = errno;
		pid = clone_held(we, pipefd[1], err, errlen);
	} else if (pid < 0) {
		pid = -errno;
		error_set(err, errlen, "clone3%s: %s", we->cgfd >= 0 ? " into its cgroup" : "",
			  strerror(errno));
	}
	close(pipefd[1]);
	/* Blocks until exec (pipe closed) or its failure (errno written). */
	if (pid > 0 && read(pipefd[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
		waitpid(pid, NULL, 0);
		error_set(err, errlen, "cannot run keel-vmm %s: %s", we->vmm, strerror(e));
		pid = -ENOEXEC;
	}
	close(pipefd[0]);
	return pid;
}

void worker_pair_name(char *name, size_t len, const char *opt, unsigned i, unsigned j)
{
	if (j)
		snprintf(name, len, "%s.%u.q%u", opt, i, j);
	else
		snprintf(name, len, "%s.%u", opt, i);
}

int worker_vhost_open(const char *vm, const char *adapter, enum vm_vhost mode, unsigned n, int *fds,
		      char *err, size_t errlen)
{
	unsigned j;
	int e = 0;

	if (mode == VM_VHOST_OFF)
		return 0;
	for (j = 0; j < n; j++) {
		fds[j] = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
		if (fds[j] < 0) {
			e = errno;
			break;
		}
	}
	if (j == n)
		return (int)n;
	while (j--)
		close(fds[j]);
	if (mode == VM_VHOST_ON) {
		error_set(
			err, errlen,
			"%s has vhost=on, but /dev/vhost-net cannot be opened: %s%s; set vhost to "
			"auto or off for the user-space data path",
			adapter, strerror(e),
			e == ENOENT ? " (this host has no vhost-net: modprobe vhost_net)" : "");
		return -ENODEV;
	}
	log_info("VM %s: %s: /dev/vhost-net: %s: its worker uses the user-space data path", vm,
		 adapter, strerror(e));
	return 0;
}

/* Adapter i's kernel data path (nets[].vhost, docs/virtio.md): one /dev/vhost-net per queue
 * pair (the worker's vhost-net for pair J serves tap queue J) passed as vhost.I, vhost.I.q1
 * ... unless the adapter opts out: all of them or none (worker_vhost_open). Without them the
 * worker uses its user-space path; with vhost=on that fails the start here, saying why. */
int worker_files_vhost(const struct vm_def *def, unsigned i, struct worker_files *wf, char *err,
		       size_t errlen)
{
	const struct vm_nic *nic = &def->nics[i];
	int fds[VMDEF_NET_QUEUES_MAX], n, r = 0;
	char name[16], adapter[64];

	snprintf(adapter, sizeof(adapter), "network adapter %u (tap %s)", i, nic->tap);
	n = worker_vhost_open(def->name, adapter, nic->vhost, vmdef_nic_queues(def, i), fds, err,
			      errlen);
	if (n < 0)
		return -ENOEXEC; /* the start fails (StartFailed), whatever the open's errno */
	for (int j = 0; j < n; j++) {
		worker_pair_name(name, sizeof(name), "vhost", i, (unsigned)j);
		if (r)
			close(fds[j]);
		else
			r = worker_files_add(wf, name, "/dev/vhost-net", fds[j], err, errlen);
	}
	return r;
}
