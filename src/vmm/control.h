/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker's control socket: JSON lines over a Unix stream socket, one reply per
 * request (docs/keel-vmm.md). Served on the main loop thread.
 */
#ifndef KEEL_VMM_CONTROL_H
#define KEEL_VMM_CONTROL_H

#include <stddef.h>

struct vm;
struct control;

int control_create(struct vm *vm, const char *path, struct control **out, char *err,
		   size_t errlen) __attribute__((warn_unused_result));
void control_destroy(struct control *c);

/*
 * Handle one request line; returns the reply line (without newline), which the caller
 * frees. Exposed for tests and fuzzing: it never trusts the line.
 */
char *control_handle_line(struct vm *vm, const char *line, size_t len);

#endif
