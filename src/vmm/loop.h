/* SPDX-License-Identifier: Apache-2.0 */
/* The main thread's event loop (epoll): control sockets, console I/O, signals, VM events. */
#ifndef KEEL_VMM_LOOP_H
#define KEEL_VMM_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
typedef void (*loop_fn)(void *opaque, uint32_t events);

int loop_create(struct loop **out) __attribute__((warn_unused_result));
void loop_destroy(struct loop *l);
/* Watch fd for events (EPOLLIN etc.); cb runs on the loop thread. */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fn cb, void *opaque)
	__attribute__((warn_unused_result));
int loop_mod(struct loop *l, int fd, uint32_t events) __attribute__((warn_unused_result));
void loop_del(struct loop *l, int fd);
/* Run callbacks until loop_stop() is called from one of them. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
