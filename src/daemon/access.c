/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/access.h"

#include <errno.h>
#include <stdint.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/log.h"

#define ACCESS_MAX_GROUPS 256

static struct {
	bool have_admin, have_viewer;
	gid_t admin, viewer;
	char admin_name[64], viewer_name[64];
} cfg;

int access_init(const char *admin_group, const char *viewer_group)
{
	struct group *g;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.admin_name, sizeof(cfg.admin_name), "%s", admin_group);
	snprintf(cfg.viewer_name, sizeof(cfg.viewer_name), "%s", viewer_group);
	g = getgrnam(admin_group);
	if (g) {
		cfg.have_admin = true;
		cfg.admin = g->gr_gid;
	}
	g = getgrnam(viewer_group);
	if (g) {
		cfg.have_viewer = true;
		cfg.viewer = g->gr_gid;
	}
	log_info("API access: root%s%s%s are administrators; %s%s%s",
		 cfg.have_admin ? " and group '" : "", cfg.have_admin ? cfg.admin_name : "",
		 cfg.have_admin ? "'" : "", cfg.have_viewer ? "group '" : "no viewers' group ('",
		 cfg.viewer_name, cfg.have_viewer ? "' may read" : "' does not exist)");
	return 0;
}

/* The POSIX ACL xattr (linux/posix_acl_xattr.h): a version, then entries sorted by tag. */
#define ACL_XATTR_VERSION 2
#define ACL_TAG_USER_OBJ  0x01
#define ACL_TAG_GROUP_OBJ 0x04
#define ACL_TAG_GROUP	  0x08
#define ACL_TAG_MASK	  0x10
#define ACL_TAG_OTHER	  0x20
#define ACL_NO_ID	  0xffffffffu

struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

int access_socket_perms(const char *path)
{
	struct {
		uint32_t version;
		struct acl_entry e[5];
	} __attribute__((packed)) acl = {
		.version = ACL_XATTR_VERSION,
		.e = {{ACL_TAG_USER_OBJ, 6, ACL_NO_ID},
		      {ACL_TAG_GROUP_OBJ, 6, ACL_NO_ID},
		      {ACL_TAG_GROUP, 6, cfg.viewer},
		      {ACL_TAG_MASK, 6, ACL_NO_ID},
		      {ACL_TAG_OTHER, 0, ACL_NO_ID}},
	};

	if (chmod(path, cfg.have_admin ? 0660 : 0600) < 0 ||
	    (cfg.have_admin && chown(path, 0, cfg.admin) < 0))
		return -errno;
	if (cfg.have_viewer && setxattr(path, "system.posix_acl_access", &acl, sizeof(acl), 0) < 0)
		log_warn("cannot give group '%s' access to %s (%s): viewers cannot connect",
			 cfg.viewer_name, path, strerror(errno));
	return 0;
}

static enum api_role role_of(uid_t uid, gid_t gid, const gid_t *groups, size_t n)
{
	bool viewer = false;

	if (uid == 0 || (cfg.have_admin && gid == cfg.admin))
		return API_ROLE_ADMIN;
	viewer = cfg.have_viewer && gid == cfg.viewer;
	for (size_t i = 0; i < n; i++) {
		if (cfg.have_admin && groups[i] == cfg.admin)
			return API_ROLE_ADMIN;
		viewer |= cfg.have_viewer && groups[i] == cfg.viewer;
	}
	return viewer ? API_ROLE_VIEWER : API_ROLE_NONE;
}

int access_identify(int fd, struct api_caller *out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t few[ACCESS_MAX_GROUPS], *groups = few;
	socklen_t glen = sizeof(few);
	struct passwd pw, *res = NULL;
	char buf[1024];
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	/* The peer's supplementary groups as they were when it connected (Linux 4.13); the
	 * kernel says how much room a caller in many groups needs. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
		n = glen / sizeof(gid_t);
	} else if (errno == ERANGE && (groups = malloc(glen))) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
			n = glen / sizeof(gid_t);
	} else {
		groups = few; /* none known: judged by the primary group */
	}
	out->uid = cred.uid;
	out->gid = cred.gid;
	out->pid = cred.pid;
	out->role = role_of(cred.uid, cred.gid, groups, n);
	if (groups != few)
		free(groups);
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out->user, sizeof(out->user), "%s", pw.pw_name);
	else
		snprintf(out->user, sizeof(out->user), "%u", (unsigned)cred.uid);
	return 0;
}

void access_root(struct api_caller *out)
{
	memset(out, 0, sizeof(*out));
	out->role = API_ROLE_ADMIN;
	snprintf(out->user, sizeof(out->user), "root");
}

bool access_allows(const struct api_caller *caller, const char *method, const char *path,
		   const char *vm, char *why, size_t len)
{
	/* The audit log says who did what: for administrators only. */
	bool read = (!strcmp(method, "GET") || !strcmp(method, "HEAD")) &&
		    strncmp(path, "/v1/audit", 9);

	if (caller->role == API_ROLE_ADMIN || (read && caller->role == API_ROLE_VIEWER))
		return true;
	if (caller->role == API_ROLE_VIEWER)
		snprintf(why, len,
			 "user %s (uid %u) may only read: %s %s needs an administrator (root or "
			 "group '%s')",
			 caller->user, (unsigned)caller->uid, method, path, cfg.admin_name);
	else
		snprintf(why, len,
			 "user %s (uid %u) may not use keeld: administrators are root and group "
			 "'%s', readers group '%s'",
			 caller->user, (unsigned)caller->uid, cfg.admin_name, cfg.viewer_name);
	(void)vm; /* no per-VM owners yet: the role decides for every VM */
	return false;
}

const char *access_role_name(enum api_role r)
{
	return r == API_ROLE_ADMIN ? "administrator" : r == API_ROLE_VIEWER ? "viewer" : "none";
}
