/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker's jail (vmm/jail.h) on a real process: each case forks a child that enters a
 * jail in a scratch directory (its own mount namespace, so nothing reaches the host) and
 * checks, as the jailed uid, what the descriptors it was handed reach. Needs root.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tmp_top.h"

#include "vmm/config.h"
#include "vmm/jail.h"
#include "vmm/jail_prep.h"

#define JAIL_ID 3221291006u /* from the end of keeld's default range, as the guest tests' */

/* The child's exit statuses. */
#define CHILD_OK    0
#define CHILD_SETUP 2 /* could not set up the case */
#define CHILD_JAIL  3 /* jail_enter failed */
#define CHILD_ESC   4 /* the NVRAM directory's descriptor reached outside the jail */

static void mkfile(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	close(fd);
}

/*
 * keeld passes the NVRAM store's directory (--fd nvram=N), opened on the host. Inside the
 * jail, ".." from it stops at the jail's root: the host's files beside the jail root stay out
 * of reach, by name or by walking up.
 */
static int nvram_dir_child(const char *root, const char *nvdir)
{
	struct vm_config cfg = {.jail = true,
				.jail_root = root,
				.jail_uid = JAIL_ID,
				.jail_gid = JAIL_ID,
				.nvram_dir_fd = -1};
	char nvram[PATH_MAX + 16], err[512];
	struct stat up, slash;
	int fd;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return CHILD_SETUP;
	fd = open(nvdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return CHILD_SETUP;
	snprintf(nvram, sizeof(nvram), "%s/OVMF_VARS.fd", nvdir);
	cfg.def.nvram = nvram;
	cfg.def.cpus = 1;
	cfg.nvram_dir_fd = fd;
	if (jail_enter(&cfg, err, sizeof(err))) {
		fprintf(stderr, "jail_enter: %s\n", err);
		return CHILD_JAIL;
	}
	/* The descriptor is still the store's directory, */
	if (faccessat(cfg.nvram_dir_fd, "OVMF_VARS.fd", F_OK, AT_SYMLINK_NOFOLLOW))
		return CHILD_JAIL;
	/* but two levels up is the jail's root, not the directory that holds it, */
	if (fstatat(cfg.nvram_dir_fd, "../..", &up, 0) || stat("/", &slash))
		return CHILD_ESC;
	if (up.st_dev != slash.st_dev || up.st_ino != slash.st_ino) {
		fprintf(stderr, "../.. from the NVRAM directory is not the jail's root\n");
		return CHILD_ESC;
	}
	/* and a host file beside the jail root is not found through it. */
	if (faccessat(cfg.nvram_dir_fd, "../../beside", F_OK, 0) == 0 ||
	    faccessat(cfg.nvram_dir_fd, "../../../../../../../../beside", F_OK, 0) == 0) {
		fprintf(stderr, "the host's file beside the jail root is reachable\n");
		return CHILD_ESC;
	}
	return CHILD_OK;
}

static void test_nvram_dir_stays_inside(void **state)
{
	char root[128], nvdir[160], path[200];
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0 && !getenv("KEEL_TEST_NO_SKIP"))
		skip();
	assert_int_equal(geteuid(), 0);
	/* top/root is the VM's directory (the jail root), top/root/nvram the store's, and
	 * top/beside a host file the worker's uid could read were it in reach. */
	assert_int_equal(chmod(top, 0755), 0);
	snprintf(root, sizeof(root), "%s/root", top);
	snprintf(nvdir, sizeof(nvdir), "%s/nvram", root);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(nvdir, 0755), 0);
	snprintf(path, sizeof(path), "%s/OVMF_VARS.fd", nvdir);
	mkfile(path);
	snprintf(path, sizeof(path), "%s/beside", top);
	mkfile(path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(nvram_dir_child(root, nvdir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), CHILD_OK);
}

/* What the worker opens before the jail for use inside it is never a directory of the
 * host's: a saved state's "state" made a directory is refused, not handed in. */
static void test_prep_no_directory(void **state)
{
	char dir[128], file[128];
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/state", top);
	snprintf(file, sizeof(file), "%s/memory", top);
	assert_int_equal(mkdir(dir, 0755), 0);
	mkfile(file);
	jail_prep_open(dir, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	jail_prep_open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	errno = 0;
	assert_int_equal(jail_open(dir, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0), -1);
	assert_int_equal(errno, EISDIR);
	fd = jail_open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	assert_true(fd >= 0);
	close(fd);
	jail_prep_close();
}

/* A file keeld passed (jail_prep_give) is what jail_open of its path gives: that very
 * descriptor, with the path never opened (it need not exist); a directory is refused. */
static void test_prep_give(void **state)
{
	const int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
	char path[128], dir[128];
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), dfd;

	(void)state;
	snprintf(path, sizeof(path), "%s/nowhere/state", top);
	snprintf(dir, sizeof(dir), "%s/nowhere/memory", top);
	dfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0 && dfd >= 0);
	jail_prep_give(path, flags, fd);
	jail_prep_give(dir, flags, dfd);
	assert_int_equal(jail_open(path, flags, 0), fd);
	errno = 0;
	assert_int_equal(jail_open(dir, flags, 0), -1);
	assert_int_equal(errno, EISDIR);
	assert_int_equal(fcntl(dfd, F_GETFD), -1); /* closed, never handed in */
	errno = 0;
	assert_int_equal(jail_open(path, flags, 0), -1); /* taken once; then the path */
	assert_int_equal(errno, ENOENT);
	close(fd);
	jail_prep_close();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nvram_dir_stays_inside, tmp_top_setup,
						tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_prep_no_directory, tmp_top_setup,
						tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_prep_give, tmp_top_setup, tmp_top_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
