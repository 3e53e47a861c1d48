/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting a worker (src/daemon/worker_exec.c), with /bin/sh standing in for keel-vmm: the
 * passed files arrive at 3, 4, ... with their --fd words and nothing else is open above them
 * (a descriptor of the caller's without O_CLOEXEC neither, also when close_range has no
 * CLOSE_RANGE_CLOEXEC or is missing),
 * the worker is PID 1 of a PID namespace of its own, with clone3 and with the clone fallback;
 * a keel-vmm that cannot run is -ENOEXEC with no child left; and a start that fails before
 * the clone leaves the caller no descriptor (as root: CLONE_NEWPID).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tmp_top.h"

#include "daemon/worker_exec.h"

/* What the stand-in prints: its pid, each passed file's contents, whether descriptor 6 (one
 * past the files) is open, and its words after the script. */
#define SCRIPT                                                                                     \
	"echo pid=$$; cat <&3; cat <&4; cat <&5; if (: <&6) 2>/dev/null; then echo fd6=open; "     \
	"else echo fd6=closed; fi; echo \"$@\""

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A file under top holding text, opened read-only. */
static int text_file(const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* keeld's descriptor opened without O_CLOEXEC, at 6 (one past the files): the worker must not
 * see it, whatever close_range the kernel has. */
static int stray_at_6(void)
{
	int fd = open("/dev/null", O_RDONLY);

	assert_true(fd >= 0);
	assert_true(fcntl(6, F_GETFD) < 0 || fd == 6);
	if (fd != 6) {
		assert_int_equal(dup2(fd, 6), 6);
		close(fd);
	}
	return 6;
}

static void start_and_check(bool no_clone3, int close_range_errno)
{
	struct worker_files wf = {.n = 0};
	char *argv[16] = {"sh", "-c", SCRIPT, "sh"}, path[PATH_MAX], err[256] = "", got[512] = "";
	int argc = 4, out, status, n, stray;
	const char *names[] = {"x", "y", "z"}, *texts[] = {"a\n", "b\n", "c\n"};
	struct worker_exec we = {.vmm = "/bin/sh", .argv = argv, .in = -1, .cgfd = -1};
	pid_t pid;

	for (int i = 0; i < 3; i++)
		assert_int_equal(worker_files_add(&wf, names[i], names[i],
						  text_file(names[i], texts[i]), err, sizeof(err)),
				 0);
	assert_int_equal(worker_files_argv(&wf, argv, &argc, 16), 0);
	snprintf(path, sizeof(path), "%s/out", top);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(out >= 0);
	assert_int_equal(worker_fd_above(&out), 0);
	we.out = out;
	we.no_clone3 = no_clone3;
	we.close_range_errno = close_range_errno;
	we.wf = &wf;
	stray = stray_at_6();
	pid = worker_exec_start(&we, err, sizeof(err));
	close(stray);
	assert_true(pid > 0);
	assert_int_equal(we.fell_back, no_clone3);
	if (no_clone3)
		assert_int_equal(we.clone3_errno, ENOSYS);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(out);
	worker_files_close(&wf);
	out = open(path, O_RDONLY | O_CLOEXEC);
	n = (int)read(out, got, sizeof(got) - 1);
	close(out);
	assert_true(n > 0);
	assert_string_equal(got, "pid=1\na\nb\nc\nfd6=closed\n--fd=x=3 --fd=y=4 --fd=z=5\n");
	for (int i = 4; i < argc; i++)
		free(argv[i]);
}

static void test_files_placed(void **state)
{
	(void)state;
	start_and_check(false, 0);
}

static void test_clone_fallback(void **state)
{
	(void)state;
	start_and_check(true, 0);
}

/* A kernel of 5.9 or 5.10: close_range has no CLOSE_RANGE_CLOEXEC (EINVAL). */
static void test_no_close_range_cloexec(void **state)
{
	(void)state;
	start_and_check(false, EINVAL);
}

/* A kernel before 5.9: no close_range at all (ENOSYS), with either clone. */
static void test_no_close_range(void **state)
{
	(void)state;
	start_and_check(false, ENOSYS);
	start_and_check(true, ENOSYS);
}

/* A keel-vmm that cannot run: -ENOEXEC saying why, the child reaped, no descriptor left. */
static void test_exec_fails(void **state)
{
	struct worker_files wf = {.n = 0};
	char *argv[] = {"keel-vmm", NULL}, err[256] = "";
	int before = open_fds();
	struct worker_exec we = {.vmm = "/nonexistent/keel-vmm",
				 .argv = argv,
				 .in = -1,
				 .out = 2,
				 .cgfd = -1,
				 .wf = &wf};

	(void)state;
	assert_int_equal(worker_exec_start(&we, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "cannot run keel-vmm /nonexistent/keel-vmm: No such file"));
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(open_fds(), before);
}

/* No descriptor above WORKER_FD_BASE + WORKER_FILES to be had (RLIMIT_NOFILE below it): the
 * start fails before any clone, and both ends of its pipe are closed. */
static void test_no_leak_when_no_high_fd(void **state)
{
	struct worker_files wf = {.n = 0};
	char *argv[] = {"keel-vmm", NULL}, err[256] = "";
	struct worker_exec we = {
		.vmm = "/bin/true", .argv = argv, .in = -1, .out = 2, .cgfd = -1, .wf = &wf};
	struct rlimit was, low;
	int before = open_fds();
	pid_t pid;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
	low = was;
	low.rlim_cur = WORKER_FD_BASE + WORKER_FILES - 8;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	pid = worker_exec_start(&we, err, sizeof(err));
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
	assert_int_equal(pid, -EINVAL);
	assert_non_null(strstr(err, "pipe: "));
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(open_fds(), before);
}

/* What keeld's dnsmasq child does when close_range(CLOSE_RANGE_CLOEXEC) fails (before 5.11):
 * every descriptor from 3 up is closed, none kept, with close_range (5.9, 5.10) or without
 * (ENOSYS: one close each); in a child, as there. */
static void close_all_from(int close_range_errno)
{
	int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY), status;
	pid_t pid;

	assert_true(a >= 3 && b > a);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		worker_close_from(3, -1, close_range_errno);
		_exit(fcntl(a, F_GETFD) < 0 && fcntl(b, F_GETFD) < 0 && fcntl(2, F_GETFD) >= 0 ? 0
											       : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(a);
	close(b);
}

static void test_close_from_none_kept(void **state)
{
	(void)state;
	close_all_from(0);
	close_all_from(EINVAL);
	close_all_from(ENOSYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_files_placed, tmp_top_setup, tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_clone_fallback, tmp_top_setup,
						tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_no_close_range_cloexec, tmp_top_setup,
						tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_no_close_range, tmp_top_setup,
						tmp_top_teardown),
		cmocka_unit_test(test_exec_fails),
		cmocka_unit_test(test_close_from_none_kept),
		cmocka_unit_test(test_no_leak_when_no_high_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
