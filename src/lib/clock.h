/* SPDX-License-Identifier: Apache-2.0 */
/* Time as keel reads and writes it: a monotonic clock in milliseconds for deadlines (and in
 * nanoseconds for timers and latencies), and UTC wall-clock text ("2026-12-05T10:00:00Z")
 * for the API, logs and the store. */
#ifndef KEEL_LIB_CLOCK_H
#define KEEL_LIB_CLOCK_H

#include <time.h>

/* "YYYY-MM-DDTHH:MM:SSZ" and its NUL. */
#define CLOCK_UTC_LEN 21

/* Milliseconds on CLOCK_MONOTONIC: for deadlines and durations, never for dates. */
static inline long long clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nanoseconds on CLOCK_MONOTONIC: for timers and latencies. */
static inline unsigned long long clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* t as UTC text into out; "" when t cannot be converted. */
static inline void clock_utc_text(time_t t, char out[CLOCK_UTC_LEN])
{
	struct tm tm;

	out[0] = '\0';
	if (gmtime_r(&t, &tm))
		strftime(out, CLOCK_UTC_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#endif
