/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lab-vsock: copy stdin to a stream socket and the socket to stdout, for virtio-vsock's lab
 * scenario (67-virtio-vsock). The guest's side uses AF_VSOCK, the lab host's side the Unix
 * sockets of keel-vmm's hybrid vsock (docs/virtio.md):
 *
 *   lab-vsock listen PORT             (guest) accept one AF_VSOCK connection on PORT
 *   lab-vsock connect CID PORT        (guest) connect to CID:PORT (the host is CID 2)
 *   lab-vsock unix-listen PATH        (host) accept one connection on PATH (PATH_<port>;
 *                                     mode 0666, so that a jailed worker may connect)
 *   lab-vsock unix-connect PATH PORT  (host) connect to PATH, "CONNECT PORT", wait for OK
 *
 * At the end of stdin the socket's sending side is shut down; the program ends when both
 * stdin and the socket have ended. Exit status 0, or 1 with a message on stderr (a refused
 * connect, a reset connection, a write that failed).
 *
 * Built static by tests/lab/lab.sh, into the guest's initramfs and the lab host's.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char buf[1 << 16];

static int die(const char *what)
{
	fprintf(stderr, "lab-vsock: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		errno = ENAMETOOLONG;
		die(path);
	}
	strcpy(sa->sun_path, path);
}

static int accept_one(int lfd)
{
	int fd;

	if (listen(lfd, 1) < 0)
		die("listen");
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	close(lfd);
	return fd;
}

/* The worker's answer to CONNECT: "OK <host port>\n", read a byte at a time. */
static void read_ok(int fd)
{
	char line[64];
	size_t n = 0;

	while (n < sizeof(line) - 1) {
		ssize_t r = read(fd, line + n, 1);

		if (r <= 0) {
			fprintf(stderr, "lab-vsock: the connection ended before OK (refused)\n");
			exit(1);
		}
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	if (strncmp(line, "OK ", 3)) {
		fprintf(stderr, "lab-vsock: expected OK, got '%s'\n", line);
		exit(1);
	}
}

static int open_socket(int argc, char **argv)
{
	int fd;

	if (argc == 3 && !strcmp(argv[1], "listen")) {
		struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
					 .svm_cid = VMADDR_CID_ANY,
					 .svm_port = (unsigned)atoi(argv[2])};

		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("vsock bind");
		return accept_one(fd);
	}
	if (argc == 4 && !strcmp(argv[1], "connect")) {
		struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
					 .svm_cid = (unsigned)atoi(argv[2]),
					 .svm_port = (unsigned)atoi(argv[3])};

		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("vsock connect");
		return fd;
	}
	if (argc == 3 && !strcmp(argv[1], "unix-listen")) {
		struct sockaddr_un sa;

		unix_addr(argv[2], &sa);
		unlink(argv[2]);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    chmod(argv[2], 0666) < 0)
			die("unix bind");
		return accept_one(fd);
	}
	if (argc == 4 && !strcmp(argv[1], "unix-connect")) {
		struct sockaddr_un sa;
		char line[32];
		int n = snprintf(line, sizeof(line), "CONNECT %s\n", argv[3]);

		unix_addr(argv[2], &sa);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("unix connect");
		if (write_all(fd, line, (size_t)n))
			die("writing CONNECT");
		read_ok(fd);
		return fd;
	}
	fprintf(stderr, "usage: lab-vsock listen PORT | connect CID PORT | unix-listen PATH | "
			"unix-connect PATH PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int fd = open_socket(argc, argv);
	struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	int in_open = 1, sock_open = 1;

	signal(SIGPIPE, SIG_IGN); /* a reset connection is an error message, not a signal */
	while (in_open || sock_open) {
		int n = poll(p, 2, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("poll");
		if (in_open && p[0].revents) {
			ssize_t r = read(0, buf, sizeof(buf));

			if (r < 0)
				die("reading stdin");
			if (r == 0) {
				in_open = 0;
				p[0].fd = -1;
				shutdown(fd, SHUT_WR);
			} else if (write_all(fd, buf, (size_t)r)) {
				die("writing the socket");
			}
		}
		if (p[1].revents) {
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r < 0)
				die("reading the socket");
			if (r == 0) {
				sock_open = 0;
				p[1].fd = -1;
			} else if (write_all(1, buf, (size_t)r))
				die("writing stdout");
		}
	}
	close(fd);
	return 0;
}
