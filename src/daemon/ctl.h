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
/* The same with the descriptor pass_fd (>= 0) sent along (SCM_RIGHTS; the caller keeps it):
 * the worker opens nothing by name (its "dvd" takes the image so). */
int ctl_execute_fd(const char *sock_path, const char *cmd, const char *args, int pass_fd,
		   int timeout_ms, json_object **ret, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The same receiving descriptors with the reply (SCM_RIGHTS, close-on-exec): at most max
 * into fds, their number in *nfds (the caller closes them; extra ones are closed here). */
int ctl_execute_recv_fds(const char *sock_path, const char *cmd, const char *args, int *fds,
			 size_t max, size_t *nfds, int timeout_ms, json_object **ret, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

#endif
