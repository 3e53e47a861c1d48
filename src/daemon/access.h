/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who may use keeld's API (docs/security.md). Every request's caller is who the kernel says
 * is at the other end of the Unix socket (SO_PEERCRED, SO_PEERGROUPS), never what the
 * request claims: root and members of the administrators' group (default `keel`) may change
 * anything; members of the viewers' group (default `keel-viewers`) may read (list, show,
 * events, logs, jobs) and nothing else; anyone else is refused. The check takes the VM a
 * request is about, so that a per-VM owner can be added without changing its callers.
 */
#ifndef KEEL_DAEMON_ACCESS_H
#define KEEL_DAEMON_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum api_role { API_ROLE_NONE, API_ROLE_VIEWER, API_ROLE_ADMIN };

struct api_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	enum api_role role;
	char user[33]; /* the uid's name, or its number */
};

/* The groups that grant each role, resolved once at start; a group that does not exist
 * grants nothing (root is always an administrator). Returns 0. */
int access_init(const char *admin_group, const char *viewer_group);
/*
 * Who may connect to the API socket at path at all: root, the administrators' group (the
 * socket's group, mode 0660) and the viewers' group (a POSIX ACL entry), so that no one else
 * can even open a connection (and hold it, or flood the audit log). 0 or -errno; a file
 * system without ACLs leaves the viewers out, with a warning.
 */
int access_socket_perms(const char *path) __attribute__((warn_unused_result));
/* Who is connected on fd (a Unix stream socket), and their role. 0 or -errno. */
int access_identify(int fd, struct api_caller *out) __attribute__((warn_unused_result));
/* The caller keeld itself acts as when no socket is involved (its own jobs, tests). */
void access_root(struct api_caller *out);
/*
 * May caller do method on path (about VM vm, or NULL)? Reads (GET) need a viewer, anything
 * else, and the audit log, an administrator. When not, why says so in words for the 403
 * reply.
 */
bool access_allows(const struct api_caller *caller, const char *method, const char *path,
		   const char *vm, char *why, size_t len);
const char *access_role_name(enum api_role r);

#endif
