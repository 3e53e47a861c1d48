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
 * can open no tap itself (74-net-hotplug). With --queues N after it, N queues of the tap
 * (a multi-queue tap, tap_open_queues) are sent, one per queue pair, as keeld sends them for
 * an adapter of N pairs (the request says "queues":N). With --vhost after that, as many
 * /dev/vhost-nets are opened too and sent after them, as keeld sends a hot-added adapter's
 * kernel data path (the request says "vhost_fd":true).
 *
 * Built by meson (tests/lab/meson.build) and copied into the lab by tests/lab/lab.sh, whose
 * busybox has no Unix-socket client.
 */
#include <fcntl.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/vmdef.h"
#include "lib/tap.h"
#include "lib/unix_socket.h"

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

/* The descriptors to send along (--fd FILE, --tap NAME [--queues N] [--vhost]) into fds: how
 * many, or -1. */
static int open_passed(const char *file, const char *tap, unsigned nq, bool vhost, int *fds)
{
	char ifname[IFNAMSIZ], err[256];

	if (file) {
		fds[0] = open(file, O_RDONLY | O_CLOEXEC);
		if (fds[0] < 0)
			perror(file);
		return fds[0] < 0 ? -1 : 1;
	}
	if (!tap)
		return 0;
	if (tap_open_queues(tap, nq, fds, ifname, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (!vhost)
		return (int)nq;
	for (unsigned k = 0; k < nq; k++) {
		fds[nq + k] = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
		if (fds[nq + k] < 0) {
			perror("/dev/vhost-net");
			return -1;
		}
	}
	return (int)(2 * nq);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	const char *file = NULL, *tap = NULL, *path, *req;
	bool hmp = false, vhost = false;
	size_t got = 0;
	unsigned nq = 1;
	int a = 1, fd, fds[2 * VMDEF_NET_QUEUES_MAX], nfd;

	if (a < argc && !strcmp(argv[a], "--hmp")) {
		hmp = true;
		a++;
	} else if (a + 1 < argc && !strcmp(argv[a], "--fd")) {
		file = argv[a + 1];
		a += 2;
	} else if (a + 1 < argc && !strcmp(argv[a], "--tap")) {
		tap = argv[a + 1];
		a += 2;
		if (a + 1 < argc && !strcmp(argv[a], "--queues")) {
			nq = (unsigned)strtoul(argv[a + 1], NULL, 10);
			a += 2;
			if (nq < 1 || nq > VMDEF_NET_QUEUES_MAX)
				a = argc; /* the usage */
		}
		if (a < argc && !strcmp(argv[a], "--vhost")) {
			vhost = true;
			a++;
		}
	}
	if (argc - a != 2 || strlen(argv[a]) >= sizeof(addr.sun_path)) {
		fprintf(stderr,
			"usage: lab-vmmctl [--fd FILE | --tap NAME [--queues N] [--vhost]] SOCKET "
			"REQUEST | "
			"lab-vmmctl --hmp SOCKET COMMAND\n");
		return 2;
	}
	path = argv[a];
	req = argv[a + 1];
	nfd = open_passed(file, tap, nq, vhost, fds);
	if (nfd < 0)
		return 2;
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
	if (nfd) {
		/* The request line and the descriptors in one message. */
		char line[4096];
		int n = snprintf(line, sizeof(line), "%s\n", req);

		if (n >= (int)sizeof(line) ||
		    unix_send_fds(fd, line, (size_t)n, fds, (size_t)nfd, 0) != n) {
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
