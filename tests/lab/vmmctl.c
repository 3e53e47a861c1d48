/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lab-vmmctl SOCKET REQUEST: send one JSON request line to a keel-vmm control socket
 * (docs/keel-vmm.md) and print the reply line. Exit status 0 when the reply is a
 * "return", 1 for an "error" reply, 2 when the socket cannot be used.
 *
 * lab-vmmctl --hmp SOCKET COMMAND: the same for QEMU's human monitor on a Unix socket
 * (for bench/state): wait for the "(qemu) " prompt, send COMMAND, print what QEMU answers
 * up to the next prompt (a synchronous command such as migrate returns only when done).
 *
 * Built static by tests/lab/lab.sh for the lab, whose busybox has no Unix-socket client.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PROMPT "(qemu) "

static char buf[1 << 16];

/* Read until the buffer ends with end (or, with end NULL, holds a newline); 0 or -1. */
static int read_until(int fd, size_t *got, const char *end)
{
	for (;;) {
		ssize_t n;

		if (end && *got >= strlen(end) &&
		    !memcmp(buf + *got - strlen(end), end, strlen(end)))
			return 0;
		if (!end && memchr(buf, '\n', *got))
			return 0;
		if (*got == sizeof(buf) - 1)
			*got = 0; /* keep only the tail of a long answer */
		n = read(fd, buf + *got, sizeof(buf) - 1 - *got);
		if (n <= 0)
			return -1;
		*got += (size_t)n;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int hmp = argc == 4 && !strcmp(argv[1], "--hmp");
	const char *path = argv[1 + hmp], *req = argv[2 + hmp];
	size_t got = 0;
	int fd;

	if ((argc != 3 && !hmp) || strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr,
			"usage: lab-vmmctl SOCKET REQUEST | lab-vmmctl --hmp SOCKET COMMAND\n");
		return 2;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror(path);
		return 2;
	}
	if (hmp && read_until(fd, &got, PROMPT)) {
		fprintf(stderr, "%s: no monitor prompt\n", path);
		return 2;
	}
	got = 0;
	if (write(fd, req, strlen(req)) < 0 || write(fd, "\n", 1) != 1) {
		perror("write");
		return 2;
	}
	if (read_until(fd, &got, hmp ? PROMPT : NULL) && !got) {
		fprintf(stderr, "%s: no answer\n", path);
		return 2;
	}
	buf[got] = 0;
	close(fd);
	fputs(buf, stdout);
	if (!got || buf[got - 1] != '\n')
		putchar('\n');
	if (hmp)
		return strstr(buf, "rror") ? 1 : 0;
	return strstr(buf, "\"return\"") ? 0 : 1;
}
