/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"

static const char *log_prog = "keel";
static enum log_level log_max = LOG_INFO;

void log_init(const char *prog, enum log_level max)
{
	log_prog = prog;
	log_max = max;
}

bool log_enabled(enum log_level lvl)
{
	return lvl <= log_max;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char line[1024];
	va_list ap;

	if (lvl > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* A message is one line whatever it quotes (a guest's text, a file name): a control
	 * character becomes '?', so that nothing can forge a line of its own in the log. */
	log_text_safe(line, strlen(line), false);
	/* One write per line so that lines from several threads never interleave. */
	fprintf(stderr, "%s: %s: %s\n", log_prog, names[lvl], line);
}

void log_text_safe(char *s, size_t n, bool lines)
{
	unsigned char *p = (unsigned char *)s;

	for (size_t i = 0; i < n; i++) {
		if (lines && (p[i] == '\n' || p[i] == '\t'))
			continue;
		if (p[i] < 0x20 || p[i] == 0x7f) {
			p[i] = '?';
		} else if (p[i] == 0xc2 && (i + 1 == n || (p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))) {
			p[i] = '?';
			if (i + 1 < n)
				p[++i] = '?';
		}
	}
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* protects every rl's fields */
	uint64_t now = (uint64_t)clock_mono_ms();
	bool ok;

	pthread_mutex_lock(&lock);
	if (now - rl->window_start_ms >= rl->interval_ms) {
		if (rl->suppressed)
			log_warn("%u similar messages suppressed", rl->suppressed);
		rl->window_start_ms = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	ok = rl->printed < rl->burst;
	if (ok)
		rl->printed++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&lock);
	return ok;
}
