/* SPDX-License-Identifier: Apache-2.0 */
/* The small services: hello (version negotiation), heartbeat, time sync and shutdown. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"

/* How long init gets to act on `poweroff` before the agent powers off itself. */
#define SHUTDOWN_INIT_WAIT_S 20
#include "lib/clock.h"

int svc_hello(struct conn *c, const struct ap_msg *m)
{
	uint32_t lo = 0, hi = 0;

	if (ap_get_u32(m, AP_A_VERSION_MIN, &lo) || ap_get_u32(m, AP_A_VERSION_MAX, &hi))
		return conn_error(c, m, EINVAL, "hello needs version-min and version-max");
	if (lo > hi)
		return conn_error(c, m, EINVAL, "hello's version-min %u is above version-max %u",
				  lo, hi);
	if (lo > AP_VERSION || hi < AP_VERSION)
		return conn_error(c, m, EPROTONOSUPPORT,
				  "this agent speaks protocol version %u, the host offers %u to %u",
				  AP_VERSION, lo, hi);
	c->hello = true;
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u32(&c->out, AP_A_VERSION, AP_VERSION);
	ap_put_str(&c->out, AP_A_AGENT_VERSION, KEEL_VERSION);
	ap_put_u32(&c->out, AP_A_SERVICES, agent_opts.services);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int svc_ping(struct conn *c, const struct ap_msg *m)
{
	struct timespec up;

	clock_gettime(CLOCK_BOOTTIME, &up);
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u64(&c->out, AP_A_UPTIME_MS,
		   (uint64_t)up.tv_sec * 1000 + (uint64_t)up.tv_nsec / 1000000);
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

int svc_time_get(struct conn *c, const struct ap_msg *m)
{
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u64(&c->out, AP_A_TIME_NS, realtime_ns());
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

/* Hyper-V's hard sync: the clock is set at once, however far off it is. */
int svc_time_set(struct conn *c, const struct ap_msg *m)
{
	struct timespec ts;
	uint64_t ns, before;

	if (ap_get_u64(m, AP_A_TIME_NS, &ns))
		return conn_error(c, m, EINVAL, "time-set needs time-ns");
	/* 2000-01-01 to 2200-01-01: anything else is a host bug, not a time. */
	if (ns < 946684800ull * 1000000000u || ns > 7258118400ull * 1000000000u)
		return conn_error(c, m, EINVAL, "time-ns %llu is not between 2000 and 2200",
				  (unsigned long long)ns);
	before = realtime_ns();
	ts.tv_sec = (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		return conn_error(c, m, errno, "cannot set the clock: %s", strerror(errno));
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_u64(&c->out, AP_A_OFFSET_NS, ns - before); /* two's complement: host - guest */
	if (ap_end(&c->out))
		return -EIO;
	return conn_send(c);
}

static bool program_found(const char *name)
{
	static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/sbin", "/bin"};
	char path[64];

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

/* A clean shutdown as the guest's init would do it: systemd's when systemd runs, else the
 * init's own poweroff or reboot program, else the system call after a sync. */
int svc_shutdown(struct conn *c, const struct ap_msg *m)
{
	uint32_t mode = AP_SHUTDOWN_POWEROFF;
	const char *verb, *method;
	struct stat st;
	pid_t pid;

	if (ap_get(m, AP_A_MODE) && ap_get_u32(m, AP_A_MODE, &mode) == 0 &&
	    mode != AP_SHUTDOWN_POWEROFF && mode != AP_SHUTDOWN_REBOOT)
		return conn_error(c, m, EINVAL,
				  "shutdown mode %u is neither poweroff (0) nor reboot (1)", mode);
	verb = mode == AP_SHUTDOWN_REBOOT ? "reboot" : "poweroff";
	if (agent_opts.test_shutdown_command)
		method = agent_opts.test_shutdown_command;
	else if (stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode))
		method = mode == AP_SHUTDOWN_REBOOT ? "systemctl reboot" : "systemctl poweroff";
	else if (program_found(verb))
		method = verb;
	else
		method = "reboot(2)";
	ap_begin(&c->out, m->type, AP_F_REPLY, m->id);
	ap_put_str(&c->out, AP_A_METHOD, method);
	if (ap_end(&c->out) || conn_send(c))
		return -EIO;
	fprintf(stderr, "keel-agent: the host asked for %s: %s\n", verb, method);
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid > 0)
		return 0;
	setsid();
	if (method == agent_opts.test_shutdown_command) {
		execl(method, method, verb, (char *)NULL);
		_exit(127);
	}
	if (!strncmp(method, "systemctl", 9)) {
		execl("/bin/systemctl", "systemctl", verb, (char *)NULL);
	} else if (strcmp(method, "reboot(2)")) {
		/* poweroff asks init; an init that does not act on it (a shell as PID 1 in an
		 * initramfs) would leave the guest up: after SHUTDOWN_INIT_WAIT_S, power off
		 * directly. A working init has ended this process by then. */
		pid_t p = fork();
		struct timespec wait = {SHUTDOWN_INIT_WAIT_S, 0};

		if (p == 0) {
			execlp(verb, verb, (char *)NULL);
			_exit(127);
		}
		if (p > 0)
			while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
				;
		while (nanosleep(&wait, &wait) < 0 && errno == EINTR)
			;
		fprintf(stderr,
			"keel-agent: %s did not end the system in %d s; calling reboot(2)\n", verb,
			SHUTDOWN_INIT_WAIT_S);
	}
	sync();
	reboot(mode == AP_SHUTDOWN_REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
	_exit(1);
}
