/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Claiming a worker uid across processes (src/daemon/uid_claim.c): several processes that
 * claim at once (keeld and the lab's launcher, tests/lab/jailrun.c) each get a different uid,
 * though none of their workers runs yet; a claim skips uids processes run as and those the
 * caller says are taken, holds its uid until its descriptor is closed, and says which step
 * failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tmp_top.h"

#include "daemon/uid_claim.h"

#define FIRST	 1000u
#define CLAIMERS 4

static char proc[128], lock[128];

/* A fake /proc under top where one process runs as FIRST, and the lock file's path (its
 * directory not made yet: the claim makes it). */
static int setup(void **state)
{
	char path[PATH_MAX];
	FILE *f;

	tmp_top_setup(state);
	snprintf(proc, sizeof(proc), "%s/proc", top);
	snprintf(lock, sizeof(lock), "%s/run/worker-uids.lock", top);
	assert_int_equal(mkdir(proc, 0755), 0);
	snprintf(path, sizeof(path), "%s/7", proc);
	assert_int_equal(mkdir(path, 0755), 0);
	strcat(path, "/status");
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "Uid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\n", FIRST, FIRST, FIRST, FIRST,
		FIRST, FIRST, FIRST, FIRST);
	fclose(f);
	return 0;
}

/* CLAIMERS processes let go at the same moment each claim a uid and keep it while the
 * others claim theirs: all different (a scan alone gives each the same, FIRST + 1). */
static void test_concurrent(void **state)
{
	int go[2], out[2], hold[2];
	pid_t pids[CLAIMERS];
	uid_t got[CLAIMERS];

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(hold), 0);
	for (int i = 0; i < CLAIMERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (!pids[i]) {
			const char *step = "";
			uid_t uid = 0;
			char c;
			int fd;

			close(go[1]);
			close(hold[1]);
			(void)!read(go[0], &c, 1); /* all start when go closes */
			if (uid_claim(lock, proc, FIRST, 16, NULL, NULL, &uid, &fd, &step))
				uid = 0;
			(void)!write(out[1], &uid, sizeof(uid));
			(void)!read(hold[0], &c, 1); /* the claim held until the test is done */
			_exit(0);
		}
	}
	close(go[0]);
	close(hold[0]);
	close(out[1]);
	close(go[1]);
	for (int i = 0; i < CLAIMERS; i++)
		assert_int_equal(read(out[0], &got[i], sizeof(got[i])), sizeof(got[i]));
	close(hold[1]);
	for (int i = 0; i < CLAIMERS; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(got[i] > FIRST && got[i] < FIRST + 16);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(got[i], got[j]);
	}
	close(out[0]);
}

static bool odd_taken(uid_t uid, void *arg)
{
	(*(int *)arg)++;
	return uid % 2;
}

/* In one process too: a second claim does not get the first's uid; one closed is free. */
static void test_hold_release(void **state)
{
	const char *step = "";
	uid_t a = 0, b = 0, c = 0;
	int fa, fb, fc, asked = 0;

	assert_int_equal(uid_claim(lock, proc, FIRST, 4, NULL, NULL, &a, &fa, &step), 0);
	assert_int_equal(a, FIRST + 1);
	assert_int_equal(uid_claim(lock, proc, FIRST, 4, NULL, NULL, &b, &fb, &step), 0);
	assert_int_equal(b, FIRST + 2);
	/* A re-attached worker's uid: another holds it. */
	assert_int_equal(uid_claim_hold(lock, a, &fc), -EBUSY);
	close(fa);
	assert_int_equal(uid_claim_hold(lock, a, &fc), 0);
	close(fc);
	/* The caller's own word: odd uids taken, so FIRST + 1 and FIRST + 3 are skipped. */
	assert_int_equal(uid_claim(lock, proc, FIRST, 5, odd_taken, &asked, &c, &fc, &step), 0);
	assert_int_equal(c, FIRST + 4);
	assert_true(asked >= 3);
	/* FIRST is a process's, FIRST + 1 is free but the caller says taken, the rest held. */
	assert_int_equal(uid_claim(lock, proc, FIRST, 5, odd_taken, &asked, &a, &fa, &step),
			 -EAGAIN);
	close(fb);
	close(fc);
	assert_int_equal(uid_claim(lock, proc, FIRST, 1, NULL, NULL, &a, &fa, &step), -EAGAIN);
}

/* A process that holds the lock file's flock and stopped (a lab launcher under a debugger)
 * does not hang a claim: it gives up after UID_CLAIM_WAIT_MS with -EBUSY at "flock", holding
 * nothing, and claims again once the holder lets go. */
static void test_flock_held(void **state)
{
	char dir[PATH_MAX];
	int ready[2], fd = -1;
	const char *step = "";
	uid_t uid = 0;
	pid_t pid;
	char c;

	snprintf(dir, sizeof(dir), "%s/run", top);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		int l = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (l < 0 || flock(l, LOCK_EX) || write(ready[1], "x", 1) != 1)
			_exit(1);
		pause(); /* until killed: the lock is held all along */
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(uid_claim(lock, proc, FIRST, 4, NULL, NULL, &uid, &fd, &step), -EBUSY);
	assert_string_equal(step, "flock");
	assert_int_equal(fd, -1);
	/* Nothing held by the failed claim: FIRST + 1 is free to hold. */
	assert_int_equal(uid_claim_hold(lock, FIRST + 1, &fd), 0);
	close(fd);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(uid_claim(lock, proc, FIRST, 4, NULL, NULL, &uid, &fd, &step), 0);
	assert_int_equal(uid, FIRST + 1);
	close(fd);
}

/* What fails is named: a lock file whose directory cannot be made, a /proc that is not. */
static void test_errors(void **state)
{
	char bad[PATH_MAX + 16];
	const char *step = "";
	uid_t uid = 0;
	int fd = -1;
	FILE *f;

	snprintf(bad, sizeof(bad), "%s/file", top);
	f = fopen(bad, "w");
	assert_non_null(f);
	fclose(f);
	strcat(bad, "/dir/lock");
	assert_int_equal(uid_claim(bad, proc, FIRST, 4, NULL, NULL, &uid, &fd, &step), -ENOTDIR);
	assert_string_equal(step, "open");
	snprintf(bad, sizeof(bad), "%s/no-proc", top);
	assert_int_equal(uid_claim(lock, bad, FIRST, 4, NULL, NULL, &uid, &fd, &step), -ENOENT);
	assert_string_equal(step, "scan /proc");
	assert_int_equal(fd, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent, setup, tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_hold_release, setup, tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_flock_held, setup, tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, tmp_top_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
