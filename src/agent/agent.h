/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel-agent: the integration services inside a Linux guest (docs/integration-services.md).
 * One process listens; each host connection is served by a process of its own (conn.c), so
 * an exec, a copy or a hung request never holds up the heartbeat on another connection.
 */
#ifndef KEEL_AGENT_AGENT_H
#define KEEL_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/agentproto.h"

/* What the agent was started with. */
struct agent_opts {
	const char *state_dir; /* KVP pools: STATE_DIR/kvp_guest, STATE_DIR/kvp_host */
	uint32_t services;     /* AP_S_* bits the agent serves (--disable takes some away) */
	/* Test builds only (-Dtest_hooks=true): run this with "poweroff" or "reboot" instead
	 * of shutting down, so that host tests can check a stop through the agent. */
	const char *test_shutdown_command;
	/* Test builds only: the mount table freeze reads instead of /proc/self/mountinfo (an
	 * empty file: nothing to freeze), so that host tests drive a production checkpoint
	 * without freezing the host. */
	const char *test_mountinfo;
};

extern struct agent_opts agent_opts;

/* One host connection: its socket, what it negotiated and its exec, copy and freeze. */
struct exec_job {
	bool active;
	uint32_t id;
	pid_t pid;
	int pidfd;
	int in_fd, out_fd, err_fd; /* -1 once closed */
	long long deadline_ms;	   /* 0: none */
	bool timed_out;
	bool tty; /* out_fd (and in_fd until EOF) is a pseudo-terminal's master */
	uint8_t pending[AP_MAX_DATA]; /* stdin bytes the child has not taken yet */
	size_t pending_len, pending_off;
	bool pending_eof; /* close stdin once pending is written */
};

struct copy_job {
	bool active;
	uint32_t id;
	int fd;
	int dirfd; /* the destination's directory, reached without following others' links */
	int err;   /* the first failure, reported at COPY_END */
	char path[AP_MAX_PATH];
	char tmp[300]; /* the temporary file's name in dirfd */
	uint32_t mode, uid, gid, flags;
	uint64_t size, written;
};

struct conn {
	int fd;
	bool hello;
	struct ap_out out;
	struct exec_job exec;
	struct copy_job copy;
	long long thaw_deadline_ms; /* 0: nothing frozen */
};

/* Send c->out (ap_end'ed by the caller); on failure the connection is over. */
int conn_send(struct conn *c) __attribute__((warn_unused_result));
/* Send an error reply to m. */
int conn_error(struct conn *c, const struct ap_msg *m, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), warn_unused_result));
/* Send an empty success reply to m. */
int conn_ok(struct conn *c, const struct ap_msg *m) __attribute__((warn_unused_result));

/* Serve one connection until the host goes away; never returns an error for bad input. */
void conn_serve(int fd);

/* Request handlers: 0 (answered, maybe with an error) or -errno when the connection broke. */
int svc_hello(struct conn *c, const struct ap_msg *m);
int svc_ping(struct conn *c, const struct ap_msg *m);
int svc_shutdown(struct conn *c, const struct ap_msg *m);
int svc_time_set(struct conn *c, const struct ap_msg *m);
int svc_time_get(struct conn *c, const struct ap_msg *m);
int kvp_handle(struct conn *c, const struct ap_msg *m);
int exec_start(struct conn *c, const struct ap_msg *m);
/* exec_setup.c: the user an exec runs as (from /etc/passwd, by name or number) and its
 * pseudo-terminal. */
struct exec_user {
	uid_t uid;
	gid_t gid;
	char name[64];
	char home[AP_MAX_PATH];
};
/* In the child, before exec: the tty (a slave path) or the three pipe ends, then the user. */
struct exec_spec {
	int in, out, err;
	const char *tty;
	const struct exec_user *user;
};
int exec_user_lookup(const char *user, struct exec_user *u) __attribute__((warn_unused_result));
/* A group of the guest's /etc/group, by name or number. 0, -ENOENT, or -errno. */
int exec_group_lookup(const char *group, gid_t *gid) __attribute__((warn_unused_result));
int exec_pty_open(uint32_t rows, uint32_t cols, int *master, char *slave, size_t n)
	__attribute__((warn_unused_result));
int exec_child_setup(const struct exec_spec *s) __attribute__((warn_unused_result));
int exec_input(struct conn *c, const struct ap_msg *m);
/* A new size for the running exec's terminal: TIOCSWINSZ, so its program gets SIGWINCH. */
int exec_resize(struct conn *c, const struct ap_msg *m);
/* Poll set management for the running exec: fds to watch and work to do after poll. */
int exec_poll_fds(struct conn *c, struct pollfd *p, int max);
int exec_after_poll(struct conn *c, const struct pollfd *p, int n);
long long exec_deadline(const struct conn *c);
void exec_abort(struct conn *c); /* the host went away: kill the process group */
int copy_begin(struct conn *c, const struct ap_msg *m);
int copy_data(struct conn *c, const struct ap_msg *m);
int copy_end(struct conn *c, const struct ap_msg *m);
void copy_abort(struct conn *c);
int freeze_handle(struct conn *c, const struct ap_msg *m);
int thaw_handle(struct conn *c, const struct ap_msg *m);
/* Thaw everything this connection froze (deadline passed or host gone). */
void freeze_thaw_all(struct conn *c);
/* The connection ends: its freeze thawed, and recorded as frozen until now (freeze.c). */
void freeze_conn_end(struct conn *c);

/* KVP pool files, also used by `keel-agent kvp` in the guest. */
int kvp_pool_path(int pool, char *out, size_t n);
int kvp_pool_set(int pool, const char *key, const char *value) __attribute__((warn_unused_result));
/* value gets AP_MAX_VALUE bytes. 0, -ENOENT or -errno. */
int kvp_pool_get(int pool, const char *key, char *value) __attribute__((warn_unused_result));
int kvp_pool_delete(int pool, const char *key) __attribute__((warn_unused_result));
/* Call fn for each pair in order; stops at fn's non-zero return. */
int kvp_pool_each(int pool, int (*fn)(const char *key, const char *value, void *arg), void *arg)
	__attribute__((warn_unused_result));
/* The guest's facts (pool auto): FQDN, OS, kernel, agent version, interfaces. */
int kvp_facts_each(int (*fn)(const char *key, const char *value, void *arg), void *arg);
/* Whether key and value are acceptable pair text: UTF-8, within limits, key not empty. */
const char *kvp_check(const char *key, const char *value);

/* A path the host gives: absolute, within AP_MAX_PATH, no empty, "." or ".." component,
 * no trailing slash. NULL or the reason. */
const char *agent_check_path(const char *path);

#endif
