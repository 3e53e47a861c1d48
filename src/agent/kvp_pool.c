/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KVP pool files, laid out as Hyper-V's hv_kvp_daemon keeps its pools: records of a 512-byte
 * key and a 2048-byte value, each NUL-padded, one file per pool (STATE_DIR/kvp_guest,
 * STATE_DIR/kvp_host), locked with flock while read or changed. Guest programs use them
 * through `keel-agent kvp`; the host through the agent's KVP requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"

#define KVP_RECORD   (AP_MAX_KEY + AP_MAX_VALUE)
#define KVP_MAX_KEYS 1024 /* pairs in one pool */

struct kvp_record {
	char key[AP_MAX_KEY];
	char value[AP_MAX_VALUE];
};

int kvp_pool_path(int pool, char *out, size_t n)
{
	const char *name = pool == AP_POOL_GUEST  ? "kvp_guest"
			   : pool == AP_POOL_HOST ? "kvp_host"
						  : NULL;

	if (!name)
		return -EINVAL;
	if ((size_t)snprintf(out, n, "%s/%s", agent_opts.state_dir, name) >= n)
		return -ENAMETOOLONG;
	return 0;
}

const char *kvp_check(const char *key, const char *value)
{
	size_t k = strlen(key);

	if (k == 0)
		return "a key may not be empty";
	if (k >= AP_MAX_KEY)
		return "a key is at most 511 bytes";
	if (!ap_utf8_valid((const uint8_t *)key, k))
		return "a key must be UTF-8";
	if (value && strlen(value) >= AP_MAX_VALUE)
		return "a value is at most 2047 bytes";
	if (value && !ap_utf8_valid((const uint8_t *)value, strlen(value)))
		return "a value must be UTF-8";
	return NULL;
}

/* Open and lock a pool. A missing pool reads as empty (-ENOENT when !create). */
static int kvp_open(int pool, bool create)
{
	char path[AP_MAX_PATH];
	int fd, r = kvp_pool_path(pool, path, sizeof(path));

	if (r)
		return r;
	if (create && mkdir(agent_opts.state_dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = open(path, (create ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, create ? LOCK_EX : LOCK_SH) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Read record i; 1 when there is one, 0 past the end. A record whose key or value has no
 * NUL (a file written by something else) is made to end at its last byte. */
static int kvp_read(int fd, size_t i, struct kvp_record *rec)
{
	ssize_t n = pread(fd, rec, sizeof(*rec), (off_t)(i * KVP_RECORD));

	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(*rec))
		return 0;
	rec->key[AP_MAX_KEY - 1] = '\0';
	rec->value[AP_MAX_VALUE - 1] = '\0';
	return 1;
}

/* The record index of key, or -ENOENT; *count gets the number of records. */
static long kvp_find(int fd, const char *key, size_t *count)
{
	struct kvp_record rec;
	long found = -ENOENT;
	size_t i = 0;
	int r;

	while ((r = kvp_read(fd, i, &rec)) == 1) {
		if (found < 0 && !strcmp(rec.key, key))
			found = (long)i;
		i++;
	}
	*count = i;
	return r < 0 ? r : found;
}

/* One operation on key's record: i is its index (or -ENOENT), count the pool's records. */
struct kvp_op {
	const char *key;
	const char *value; /* set: the new value */
	char *out;	   /* get: AP_MAX_VALUE bytes */
};

static int kvp_get_at(int fd, long i, size_t count, const struct kvp_op *op)
{
	struct kvp_record rec;
	int r;

	if (i < 0)
		return (int)i;
	r = kvp_read(fd, (size_t)i, &rec);
	if (r <= 0)
		return r ? r : -ENOENT;
	memcpy(op->out, rec.value, AP_MAX_VALUE);
	return 0;
}

/* Write the record at i, or append it. */
static int kvp_put_at(int fd, long i, size_t count, const struct kvp_op *op)
{
	struct kvp_record rec;

	if (i == -ENOENT && count >= KVP_MAX_KEYS)
		return -ENOSPC;
	if (i < 0 && i != -ENOENT)
		return (int)i;
	memset(&rec, 0, sizeof(rec));
	strncpy(rec.key, op->key, sizeof(rec.key) - 1);
	strncpy(rec.value, op->value, sizeof(rec.value) - 1);
	if (pwrite(fd, &rec, sizeof(rec), (off_t)((i < 0 ? count : (size_t)i) * KVP_RECORD)) !=
	    (ssize_t)sizeof(rec))
		return -EIO;
	return 0;
}

/* Remove the record at i: the last record takes its place, as in Hyper-V's pools. */
static int kvp_remove_at(int fd, long i, size_t count, const struct kvp_op *op)
{
	struct kvp_record last;

	if (i < 0)
		return (int)i;
	if ((size_t)i != count - 1 &&
	    (kvp_read(fd, count - 1, &last) != 1 ||
	     pwrite(fd, &last, sizeof(last), (off_t)((size_t)i * KVP_RECORD)) !=
		     (ssize_t)sizeof(last)))
		return -EIO;
	if (ftruncate(fd, (off_t)((count - 1) * KVP_RECORD)) < 0)
		return -errno;
	return 0;
}

/* fn on key's record with the pool locked (for writing when change). */
static int kvp_locked(int pool, bool change, const struct kvp_op *op,
		      int (*fn)(int fd, long i, size_t count, const struct kvp_op *op))
{
	size_t count;
	long i;
	int fd = kvp_open(pool, change), r;

	if (fd < 0)
		return fd;
	i = kvp_find(fd, op->key, &count);
	r = fn(fd, i, count, op);
	close(fd);
	return r;
}

int kvp_pool_set(int pool, const char *key, const char *value)
{
	struct kvp_op op = {key, value, NULL};

	return kvp_locked(pool, true, &op, kvp_put_at);
}

int kvp_pool_delete(int pool, const char *key)
{
	struct kvp_op op = {key, NULL, NULL};

	return kvp_locked(pool, true, &op, kvp_remove_at);
}

int kvp_pool_get(int pool, const char *key, char *value)
{
	struct kvp_op op = {key, NULL, value};

	return kvp_locked(pool, false, &op, kvp_get_at);
}

int kvp_pool_each(int pool, int (*fn)(const char *key, const char *value, void *arg), void *arg)
{
	static struct kvp_record rec;
	int fd = kvp_open(pool, false), r;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	for (size_t i = 0; (r = kvp_read(fd, i, &rec)) == 1; i++) {
		/* Pairs a guest program wrote badly are not passed on. */
		if (kvp_check(rec.key, rec.value))
			continue;
		r = fn(rec.key, rec.value, arg);
		if (r)
			break;
	}
	close(fd);
	return r < 0 ? r : 0;
}
