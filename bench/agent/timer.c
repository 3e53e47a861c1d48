// SPDX-License-Identifier: MIT
/*
 * bench-agent-time: the agent benchmark's timer, run inside the nested lab (built static by
 * bench/agent/run.sh into the benchmark's own lab initramfs as /bin/bench-agent-time).
 *
 *   bench-agent-time [--stdin FILE] -- COMMAND [ARG...]
 *
 * Runs COMMAND once (stdin FILE or /dev/null, stdout to /dev/null, stderr inherited) and
 * prints the time from just before fork() to its exit on CLOCK_MONOTONIC, in microseconds:
 *   us=N
 * Exit status 0 when COMMAND exited 0; otherwise 1, with a line on stderr saying how it
 * ended (no figure is printed for a failed run). busybox has no clock finer than the
 * hundredths of /proc/uptime, and a shell's own fork of date would be counted.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench-agent-time [--stdin FILE] -- COMMAND [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *in = "/dev/null";
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "--stdin") == 0) {
		in = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc)
		return usage();
	char **cmd = argv + i + 1;
	int fd = open(in, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bench-agent-time: cannot open %s: %m\n", in);
		return 1;
	}
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0) {
		fprintf(stderr, "bench-agent-time: cannot open /dev/null: %m\n");
		return 1;
	}
	long long t0 = now_us();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bench-agent-time: fork: %m\n");
		return 1;
	}
	if (pid == 0) {
		if (dup2(fd, 0) < 0 || dup2(null, 1) < 0)
			_exit(126);
		execvp(cmd[0], cmd);
		fprintf(stderr, "bench-agent-time: cannot run %s: %m\n", cmd[0]);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		fprintf(stderr, "bench-agent-time: waitpid: %m\n");
		return 1;
	}
	long long t1 = now_us();
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "bench-agent-time: %s was killed by signal %d\n", cmd[0],
			WTERMSIG(st));
		return 1;
	}
	if (WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench-agent-time: %s exited with status %d\n", cmd[0],
			WEXITSTATUS(st));
		return 1;
	}
	printf("us=%lld\n", t1 - t0);
	return 0;
}
