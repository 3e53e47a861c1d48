/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client of keel-vmm's control socket (docs/keel-vmm.md): one JSON request line, one JSON
 * reply line. keeld never links VMM code; this is all it knows about the worker.
 */
#ifndef KEEL_DAEMON_CTL_H
#define KEEL_DAEMON_CTL_H

#include <stddef.h>

#include <json-c/json.h>

/*
 * Send {"execute":cmd} to the worker listening on sock_path and wait up to timeout_ms for
 * the reply. On success *ret (if not NULL) is the "return" object (json_object_put it).
 * Returns 0; -ENOENT or -ECONNREFUSED (no worker listening); -ETIMEDOUT; -EBADMSG (a reply
 * that is not the protocol); -EREMOTEIO (the worker answered with an error: err holds its
 * description); or another -errno. err always says what failed.
 */
int ctl_execute(const char *sock_path, const char *cmd, int timeout_ms, json_object **ret,
		char *err, size_t errlen) __attribute__((warn_unused_result));
/* The same with "arguments": args, a JSON object text (the caller escapes it). */
int ctl_execute_args(const char *sock_path, const char *cmd, const char *args, int timeout_ms,
		     json_object **ret, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The same with the descriptors pass[0..npass) sent along with the request, in that order
 * (SCM_RIGHTS, at most UNIX_MAX_FDS; the caller keeps them): the worker opens nothing by
 * name ("dvd" takes the image so, "nic-add" the tap and its /dev/vhost-net). */
int ctl_execute_fds(const char *sock_path, const char *cmd, const char *args, const int *pass,
		    size_t npass, int timeout_ms, json_object **ret, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The same receiving descriptors with the reply (SCM_RIGHTS, close-on-exec): at most max
 * into fds, their number in *nfds (the caller closes them; extra ones are closed here). */
int ctl_execute_recv_fds(const char *sock_path, const char *cmd, const char *args, int *fds,
			 size_t max, size_t *nfds, int timeout_ms, json_object **ret, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

#endif
