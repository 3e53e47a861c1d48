/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KEEL_LIB_LOCK_H
#define KEEL_LIB_LOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

/* Lock m if it comes free within about ms milliseconds (polled each millisecond); false if
 * not. For diagnostics that must not hang on a lock another thread holds (crash reports). */
static inline bool lock_within_ms(pthread_mutex_t *m, unsigned ms)
{
	for (unsigned i = 0; pthread_mutex_trylock(m); i++) {
		if (i >= ms)
			return false;
		usleep(1000);
	}
	return true;
}

#endif
