/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/biglock.h"

#include <pthread.h>

static pthread_mutex_t keeld_mutex = PTHREAD_MUTEX_INITIALIZER;

void keeld_lock(void)
{
	pthread_mutex_lock(&keeld_mutex);
}

void keeld_unlock(void)
{
	pthread_mutex_unlock(&keeld_mutex);
}

void keeld_wait(pthread_cond_t *cond, const struct timespec *deadline)
{
	(void)pthread_cond_timedwait(cond, &keeld_mutex, deadline);
}
