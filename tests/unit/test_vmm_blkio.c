/* SPDX-License-Identifier: Apache-2.0 */
/* The block backend's io_uring rings run only the operations it submits: a ring restricted by
 * blkio_uring_restrict refuses an open, a socket or a flagged SQE (what a taken-over worker
 * would try, out of seccomp's sight) and still reads, writes and flushes. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/blkio/blkio.h"

/* Submit one prepared SQE and return its completion's result. */
static int run_one(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int res;

	assert_int_equal(io_uring_submit(ring), 1);
	assert_int_equal(io_uring_wait_cqe(ring, &cqe), 0);
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

static void test_restricted_ring(void **state)
{
	struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};
	struct io_uring ring;
	char path[] = "/tmp/keel-blkio-XXXXXX", buf[512], back[512];
	struct iovec iov = {buf, sizeof(buf)}, iov_back = {back, sizeof(back)};
	struct io_uring_sqe *sqe;
	int fd, r;

	(void)state;
	r = io_uring_queue_init_params(8, &ring, &p);
	if (r) {
		/* The backend falls back to its thread pool on such a kernel; nothing to test. */
		print_message("io_uring unavailable here (%s)\n", strerror(-r));
		skip();
	}
	assert_int_equal(blkio_uring_restrict(&ring), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);

	/* What the backend does is allowed. */
	memset(buf, 0x5a, sizeof(buf));
	io_uring_prep_writev(io_uring_get_sqe(&ring), fd, &iov, 1, 0);
	assert_int_equal(run_one(&ring), (int)sizeof(buf));
	io_uring_prep_fsync(io_uring_get_sqe(&ring), fd, IORING_FSYNC_DATASYNC);
	assert_int_equal(run_one(&ring), 0);
	io_uring_prep_readv(io_uring_get_sqe(&ring), fd, &iov_back, 1, 0);
	assert_int_equal(run_one(&ring), (int)sizeof(back));
	assert_memory_equal(buf, back, sizeof(buf));

	/* Anything else is refused by the ring itself. */
	io_uring_prep_openat(io_uring_get_sqe(&ring), AT_FDCWD, "/etc/hostname", O_RDONLY, 0);
	assert_int_equal(run_one(&ring), -EACCES);
	io_uring_prep_symlinkat(io_uring_get_sqe(&ring), "/etc/shadow", AT_FDCWD, path);
	assert_int_equal(run_one(&ring), -EACCES);
	io_uring_prep_read(io_uring_get_sqe(&ring), fd, back, sizeof(back), 0);
	assert_int_equal(run_one(&ring), -EACCES);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, &iov_back, 1, 0);
	sqe->flags |= IOSQE_IO_DRAIN;
	assert_int_equal(run_one(&ring), -EACCES);
	/* And no registration once it runs (a new restriction set, files, buffers ...). */
	assert_int_equal(io_uring_register_eventfd(&ring, fd), -EACCES);

	close(fd);
	io_uring_queue_exit(&ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restricted_ring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
