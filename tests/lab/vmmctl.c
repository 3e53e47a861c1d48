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
 * lab-vmmctl --fd FILE SOCKET REQUEST: the same, with FILE opened (read-only) and its
 * descriptor sent along with the request (SCM_RIGHTS), as keeld hands a jailed worker a DVD
 * medium ({"execute":"dvd","arguments":{"path":...,"fd":true}}).
 *
 * lab-vmmctl --tap NAME SOCKET REQUEST: the same with the tap NAME attached (tap_open, as
 * keeld attaches a tap for a worker: src/lib/tap.c) and its descriptor sent along
 * ({"execute":"nic-add","arguments":{"tap":NAME,"mac":...,"fd":true}}): a jailed worker
 * can open no tap itself (74-net-hotplug).
 *
 * Built by meson (tests/lab/meson.build) and copied into the lab by tests/lab/lab.sh, whose
 * busybox has no Unix-socket client.
 */
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/tap.h"

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
	int give = argc == 5 && (!strcmp(argv[1], "--fd") || !strcmp(argv[1], "--tap")) ? 2 : 0;
	const char *path = argv[1 + hmp + give], *req = argv[2 + hmp + give];
	size_t got = 0;
	int fd, passed = -1;

	if ((argc != 3 && !hmp && !give) || strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: lab-vmmctl [--fd FILE | --tap NAME] SOCKET REQUEST | "
				"lab-vmmctl --hmp SOCKET COMMAND\n");
		return 2;
	}
	if (give && !strcmp(argv[1], "--tap")) {
		char ifname[IFNAMSIZ], err[256];

		passed = tap_open(argv[2], ifname, err, sizeof(err));
		if (passed < 0) {
			fprintf(stderr, "%s\n", err);
			return 2;
		}
	} else if (give && (passed = open(argv[2], O_RDONLY | O_CLOEXEC)) < 0) {
		perror(argv[2]);
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
	if (passed >= 0) {
		/* The request line and the descriptor in one message. */
		char line[4096];
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} c = {.h = {.cmsg_len = CMSG_LEN(sizeof(int)),
			     .cmsg_level = SOL_SOCKET,
			     .cmsg_type = SCM_RIGHTS}};
		struct iovec iov = {.iov_base = line};
		struct msghdr m = {.msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = c.b,
				   .msg_controllen = sizeof(c.b)};
		int n = snprintf(line, sizeof(line), "%s\n", req);

		memcpy(CMSG_DATA(&c.h), &passed, sizeof(int));
		iov.iov_len = (size_t)n;
		if (n >= (int)sizeof(line) || sendmsg(fd, &m, 0) != n) {
			perror("sendmsg");
			return 2;
		}
	} else if (write(fd, req, strlen(req)) < 0 || write(fd, "\n", 1) != 1) {
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
