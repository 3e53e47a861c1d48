/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /v1/vms/NAME/log: a VM's worker log (docs/keeld.md, "Logs"). Without a query, its last
 * MiB as text. With since=OFFSET[&wait=SEC], the log from that byte on as JSON, waiting up
 * to SEC seconds for it to grow when there is nothing new (long-poll): what `keel vm log
 * --follow` streams.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api_internal.h"
#include "daemon/biglock.h"
#include "daemon/events.h"
#include "lib/clock.h"

#define LOG_WAIT_MAX	 50  /* seconds a follow request may wait */
#define LOG_WAIT_STEP_MS 200 /* how often a waiting request looks at the file */

/* The log's size now (0 when it does not exist yet). */
static uint64_t log_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Bytes [from, to) of the log, at most API_LOG_MAX; *n is how many were read (the file may
 * have been rotated meanwhile). NULL when out of memory. */
static char *log_read(const char *path, uint64_t from, uint64_t to, size_t *n)
{
	size_t want = (size_t)(to - from);
	char *buf = malloc(want + 1);
	ssize_t r = -1;
	int fd;

	*n = 0;
	if (!buf)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		r = pread(fd, buf, want, (off_t)from);
		close(fd);
	}
	*n = r > 0 ? (size_t)r : 0;
	buf[*n] = '\0';
	return buf;
}

/* Wait (keeld's lock let go) until the log is no longer size bytes long, until wait_s
 * seconds have passed, or until keeld exits. */
static void log_wait(const char *path, uint64_t size, unsigned wait_s)
{
	long long until = clock_mono_ms() + (long long)wait_s * 1000;
	bool closing = events_closing();

	while (!closing && log_size(path) == size && clock_mono_ms() < until) {
		keeld_unlock();
		usleep(LOG_WAIT_STEP_MS * 1000);
		keeld_lock();
		closing = events_closing();
	}
}

static void log_tail(const char *path, struct api_reply *out)
{
	uint64_t size = log_size(path);
	size_t n;

	out->status = 200;
	out->content_type = "text/plain; charset=utf-8";
	out->body = log_read(path, size > API_LOG_MAX ? size - API_LOG_MAX : 0, size, &n);
	out->len = n;
	if (!out->body)
		api_error_reply(out, 500, "Internal", "out of memory reading the log");
}

/* since: the offset the client has read to; a log shorter than that was started again (it
 * is rotated when a worker starts): it is read from its start, and "restarted" says so. */
static void log_follow(const char *path, uint64_t since, unsigned wait_s, struct api_reply *out)
{
	uint64_t size = log_size(path), from;
	bool restarted = false;
	json_object *o;
	size_t n;
	char *text;

	if (size == since && wait_s) {
		log_wait(path, size, wait_s);
		size = log_size(path);
	}
	if (since > size) {
		restarted = true;
		since = 0;
	}
	/* At most a MiB at a time, the newest: what is older is skipped, as the plain log does. */
	from = size - since > API_LOG_MAX ? size - API_LOG_MAX : since;
	text = log_read(path, from, size, &n);
	o = json_object_new_object();
	if (!text || !o) {
		free(text);
		json_object_put(o);
		api_error_reply(out, 500, "Internal", "out of memory reading the log");
		return;
	}
	json_object_object_add(o, "text", json_object_new_string_len(text, (int)n));
	json_object_object_add(o, "next", json_object_new_int64((int64_t)(from + n)));
	json_object_object_add(o, "skipped", json_object_new_int64((int64_t)(from - since)));
	json_object_object_add(o, "restarted", json_object_new_boolean(restarted));
	free(text);
	api_reply_json(out, 200, o);
}

void api_vm_log(struct api_ctx *ctx, const struct vm_def *def, char *query, struct api_reply *out)
{
	char path[PATH_MAX];
	uint64_t since, wait;
	bool follow;

	if (api_since_wait(query, "OFFSET (bytes)", LOG_WAIT_MAX, &since, &follow, &wait, out))
		return;
	if (wait && !follow) {
		api_error_reply(out, 400, "InvalidArgument", "wait=SEC needs since=OFFSET");
		return;
	}
	if (sup_log_path(ctx->sup, def->uuid, path, sizeof(path))) {
		api_error_reply(out, 500, "Internal", "the VM's log path is too long");
		return;
	}
	if (follow && events_closing()) {
		api_error_reply(out, 503, "ShuttingDown", "keeld is exiting");
		return;
	}
	if (follow)
		log_follow(path, since, (unsigned)wait, out);
	else
		log_tail(path, out);
}
