/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: one line per message to stderr, with the program name and a level. */
#ifndef KEEL_LIB_LOG_H
#define KEEL_LIB_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set once at start-up: the name printed before each line, and the most verbose level shown. */
void log_init(const char *prog, enum log_level max);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether messages of this level are shown (to skip work for hidden ones). */
bool log_enabled(enum log_level lvl);
/*
 * s[0..n) made fit for a terminal and a log (the one way keel does it: log_msg's messages,
 * the audit log, a guest's text, a VM's log as keel prints it): every control character (C0,
 * DEL and, encoded in UTF-8, C1 such as U+009B CSI, or a 0xc2 that ends s, whose C1 byte may
 * follow in the next piece) becomes '?', byte for byte, so that nothing quoted can forge a
 * line of a log nor send escape sequences to a terminal. With lines, '\n' and '\t' stay.
 */
void log_text_safe(char *s, size_t n, bool lines);

#define log_err(...)   log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * Rate limit for messages the guest can trigger at will (DESIGN.md habit 4): at most
 * `burst` messages per `interval_ms`, then one line saying how many were suppressed.
 */
struct log_ratelimit {
	uint64_t window_start_ms;
	unsigned interval_ms;
	unsigned burst;
	unsigned printed;
	unsigned suppressed;
};

#define LOG_RATELIMIT_INIT(ms, n)                                                                  \
	{                                                                                          \
		.interval_ms = (ms), .burst = (n)                                                  \
	}

bool log_ratelimit_ok(struct log_ratelimit *rl);

#define log_warn_ratelimited(rl, ...)                                                              \
	do {                                                                                       \
		if (log_ratelimit_ok(rl))                                                          \
			log_warn(__VA_ARGS__);                                                     \
	} while (0)

#endif
