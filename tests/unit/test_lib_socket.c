/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unix_connect_timeout: a listener that accepts nothing (a stopped worker) fills its backlog;
 * later connects must give up with -ETIMEDOUT after the timeout instead of blocking keeld.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/unix_socket.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void test_full_backlog_times_out(void **state)
{
	char dir[] = "/tmp/keel-sock-XXXXXX", path[64];
	int lfd, fds[16], n = 0, r = 0;
	long long t0, dt;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	lfd = unix_listen(path, 1);
	assert_true(lfd >= 0);
	/* Nobody accepts: connect until the backlog is full and one times out. */
	while (n < 16) {
		t0 = now_ms();
		r = unix_connect_timeout(path, 200);
		dt = now_ms() - t0;
		if (r < 0)
			break;
		fds[n++] = r;
	}
	assert_int_equal(r, -ETIMEDOUT);
	assert_true(n >= 1);
	assert_true(dt >= 190 && dt < 2000);
	/* A listener that does not exist fails at once, as before. */
	unlink(path);
	assert_int_equal(unix_connect_timeout(path, 200), -ENOENT);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);
	rmdir(dir);
}

/* unix_bind_for: bound with its mode, refusing connects until unix_listen_on; a socket
 * bound elsewhere, or not a Unix stream socket, is refused by unix_listen_on. */
static void test_bind_for_then_listen(void **state)
{
	char dir[] = "/tmp/keel-sock-XXXXXX", path[64], other[64];
	struct stat st;
	int fd, c, dg;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(other, sizeof(other), "%s/o.sock", dir);
	fd = unix_bind_for(path, 0600, (gid_t)-1);
	assert_true(fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(unix_connect_now(path), -ECONNREFUSED); /* not listening yet */
	assert_int_equal(unix_bound_to(fd, other), -EADDRNOTAVAIL);
	assert_int_equal(unix_bound_to(fd, path), 0);
	assert_int_equal(unix_listen_on(fd, path, 4), fd);
	c = unix_connect_now(path);
	assert_true(c >= 0);
	close(c);
	/* Another file in the way, and a live socket, are refused. */
	assert_int_equal(unix_bind_for(path, 0600, (gid_t)-1), -EADDRINUSE);
	close(fd);
	dg = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(dg >= 0);
	assert_int_equal(unix_listen_on(dg, path, 4), -EPROTOTYPE); /* and closed */
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_backlog_times_out),
		cmocka_unit_test(test_bind_for_then_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
