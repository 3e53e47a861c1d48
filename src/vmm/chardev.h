/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Character back ends for a guest console: stdio (raw terminal, Ctrl-A x quits), file
 * (output only), unix (a listening socket with any number of clients, each first sent the
 * recent output), off. Output may be written from any thread; input is read on the main
 * loop and handed to the device, which takes what it has room for.
 */
#ifndef KEEL_VMM_CHARDEV_H
#define KEEL_VMM_CHARDEV_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/config.h"

/* A socket console's listen backlog, and how a file console is opened (jail_prep.h). */
#define CHARDEV_BACKLOG	   8
#define CHARDEV_FILE_FLAGS (O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC)

struct loop;
struct chardev;

struct chardev_client_ops {
	/* Offer input; returns how many bytes the device took (the rest is offered again
	 * after chardev_input_ready()). Runs on the loop thread. */
	size_t (*input)(void *opaque, const uint8_t *buf, size_t len);
	/* The user asked to quit (Ctrl-A x on a terminal). Runs on the loop thread. */
	void (*quit)(void *opaque);
};

int chardev_open(const struct chardev_spec *spec, struct loop *loop, struct chardev **out,
		 char *err, size_t errlen) __attribute__((warn_unused_result));
void chardev_attach(struct chardev *cd, const struct chardev_client_ops *ops, void *opaque);
/* Any thread. Never blocks on a slow socket client (that client loses bytes instead). */
void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len);
/* Any thread: the device has room for input again. */
void chardev_input_ready(struct chardev *cd);
void chardev_close(struct chardev *cd);

#endif
