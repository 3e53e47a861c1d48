/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lab-vmmctl SOCKET REQUEST: send one JSON request line to a keel-vmm control socket
 * (docs/keel-vmm.md) and print the reply line. Exit status 0 when the reply is a
 * "return", 1 for an "error" reply, 2 when the socket cannot be used. Built static by
 * tests/lab/lab.sh for the lab, whose busybox has no Unix-socket client.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char reply[4096];
	size_t got = 0;
	int fd;

	if (argc != 3 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: lab-vmmctl SOCKET REQUEST\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror(argv[1]);
		return 2;
	}
	if (write(fd, argv[2], strlen(argv[2])) < 0 || write(fd, "\n", 1) != 1) {
		perror("write");
		return 2;
	}
	while (got < sizeof(reply) - 1) {
		ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(reply, '\n', got))
			break;
	}
	reply[got] = 0;
	close(fd);
	fputs(reply, stdout);
	if (!got || reply[got - 1] != '\n')
		putchar('\n');
	return strstr(reply, "\"return\"") ? 0 : 1;
}
