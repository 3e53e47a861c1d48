/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/vcpu_progress.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "daemon/ctl.h"
#include "lib/unix_socket.h"

/* A small /proc file (comm, schedstat) into buf, NUL-terminated. Its length, or -errno. */
static ssize_t read_small(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

int vcpu_run_ns(const char *procdir, pid_t pid, uint64_t *ns)
{
	char path[256], buf[128];
	unsigned found = 0;
	struct dirent *d;
	DIR *dir;

	*ns = 0;
	if (pid <= 0)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/%d/task", procdir, (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		int tfd;
		char *end;
		uint64_t v;

		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		tfd = openat(dirfd(dir), d->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tfd < 0)
			continue; /* the thread ended meanwhile */
		if (read_small(tfd, "comm", buf, sizeof(buf)) > 0 && !strncmp(buf, "vcpu", 4) &&
		    buf[4] >= '0' && buf[4] <= '9' &&
		    read_small(tfd, "schedstat", buf, sizeof(buf)) > 0) {
			errno = 0;
			v = strtoull(buf, &end, 10);
			if (!errno && end != buf) {
				*ns += v;
				found++;
			}
		}
		close(tfd);
	}
	closedir(dir);
	return found ? 0 : -ENOENT;
}

void vcpu_stats_close(struct vcpu_stats *s)
{
	for (size_t i = 0; i < s->n; i++)
		close(s->fd[i]);
	s->n = 0;
}

/* Whether fd is KVM's statistics file of a vCPU. A worker hands over whatever it holds (a
 * pipe, a disk image on a slow mount, its guest's memory), and keeld reads what it gets: only
 * the kernel's own is read (an anon inode's link names its kind; no path can look so). */
#define STATS_LINK "anon_inode:kvm-vcpu-stats:"

static int stats_fd_check(int fd, char *what, size_t whatlen)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, what, whatlen - 1);
	if (n < 0) {
		snprintf(what, whatlen, "%s", strerror(errno));
		return -errno;
	}
	what[n] = '\0';
	/* The kernel names it "kvm-vcpu-stats:ID"; a file's link starts with "/". */
	return strncmp(what, STATS_LINK, sizeof(STATS_LINK) - 1) ? -ENOTSUP : 0;
}

/* One "vcpu-stats" request from vCPU first on: the fds into s, *total the worker's vCPUs. */
static int stats_request(const char *ctl_path, struct vcpu_stats *s, int timeout_ms, size_t *total,
			 char *err, size_t errlen)
{
	json_object *ret = NULL, *v;
	char args[64];
	size_t got = 0;
	int64_t count = -1, first = -1;
	int r;

	snprintf(args, sizeof(args), "{\"first\":%zu}", s->n);
	r = ctl_execute_recv_fds(ctl_path, "vcpu-stats", args, s->fd + s->n, VCPU_STATS_MAX - s->n,
				 &got, timeout_ms, &ret, err, errlen);
	if (r)
		return r;
	if (json_object_object_get_ex(ret, "vcpus", &v))
		*total = (size_t)json_object_get_int64(v);
	if (json_object_object_get_ex(ret, "count", &v))
		count = json_object_get_int64(v);
	if (json_object_object_get_ex(ret, "first", &v))
		first = json_object_get_int64(v);
	json_object_put(ret);
	s->n += got;
	if (count != (int64_t)got || first != (int64_t)(s->n - got) || *total > VCPU_STATS_MAX) {
		snprintf(err, errlen, "keel-vmm's vcpu-stats reply does not match its descriptors");
		return -EPROTO;
	}
	return 0;
}

int vcpu_stats_get(const char *ctl_path, struct vcpu_stats *s, int timeout_ms, char *err,
		   size_t errlen)
{
	size_t total = 0;
	int r;

	s->n = 0;
	do {
		size_t before = s->n;

		r = stats_request(ctl_path, s, timeout_ms, &total, err, errlen);
		if (!r && s->n > total) {
			snprintf(err, errlen, "keel-vmm sent %zu vCPU statistics fds for %zu vCPUs",
				 s->n, total);
			r = -EPROTO;
		}
		/* A reply holds all the rest up to UNIX_MAX_FDS but where a vCPU has no fd (the
		 * run ends there): a short one ends the asking (a worker sending one fd a time
		 * would hold the heartbeat for VCPU_STATS_MAX requests). */
		if (!r && s->n < total && s->n - before < UNIX_MAX_FDS) {
			snprintf(err, errlen, "keel-vmm has no statistics fd for vcpu%zu", s->n);
			r = -ENOTSUP;
		}
	} while (!r && s->n < total);
	for (size_t i = 0; !r && i < s->n; i++) {
		char what[64];

		if (stats_fd_check(s->fd[i], what, sizeof(what))) {
			snprintf(err, errlen,
				 "keel-vmm sent, as vcpu%zu's statistics, not KVM's but %s", i,
				 what);
			r = -ENOTSUP; /* never read: schedstat for this worker */
			break;
		}
		r = kvm_stats_map_fd(s->fd[i], &s->map[i]);
		if (r)
			snprintf(err, errlen, "vcpu%zu's statistics: %s", i,
				 r == -ENOENT ? "no counter of interrupts (" KVM_STATS_COUNTERS ")"
					      : strerror(-r));
		if (r == -ENOENT)
			r = -ENOTSUP;
	}
	if (!r && !s->n) {
		snprintf(err, errlen, "keel-vmm reported no vCPUs");
		r = -ENOTSUP;
	}
	if (r)
		vcpu_stats_close(s);
	return r;
}

bool vcpu_stats_same(const struct vcpu_stats *a, const struct vcpu_stats *b)
{
	pid_t self = getpid();

	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (syscall(SYS_kcmp, self, self, KCMP_FILE, a->fd[i], b->fd[i]) != 0)
			return false;
	return true;
}

int vcpu_stats_sum(const struct vcpu_stats *s, uint64_t *sum, uint64_t *injected)
{
	*sum = *injected = 0;
	for (size_t i = 0; i < s->n; i++) {
		uint64_t v, inj;
		int r = kvm_stats_sum(s->fd[i], &s->map[i], &v, &inj);

		if (r)
			return r;
		*sum += v;
		*injected += inj;
	}
	return 0;
}
