/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's one lock. Everything keeld keeps (the store, the supervisor's records, checkpoint
 * trees, jobs) is read and changed with it held: by the main loop (supervision), by each API
 * request (libmicrohttpd runs one thread per connection) and by job threads. It is let go
 * only while a thread waits on a worker (a control-socket reply, a save, a worker's end:
 * sup.c), so that one slow, hung or stopped worker never delays the API or the supervision
 * of any other VM. A VM with an operation in progress belongs to that operation until it
 * ends (sup_op_begin): nobody else changes it meanwhile. docs/locking.md has the whole graph.
 */
#ifndef KEEL_DAEMON_BIGLOCK_H
#define KEEL_DAEMON_BIGLOCK_H

#include <pthread.h>
#include <time.h>

void keeld_lock(void);
void keeld_unlock(void);
/* Wait on cond (CLOCK_MONOTONIC) until it is signalled or deadline passes, letting go of
 * keeld's lock meanwhile (pthread_cond_timedwait); the caller holds the lock. */
void keeld_wait(pthread_cond_t *cond, const struct timespec *deadline);

#endif
