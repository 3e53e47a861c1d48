/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `keel console NAME`: attach to a running VM's serial console, like VMConnect. keel-vmm
 * serves the console on a Unix socket that any number of viewers may join; each one first
 * gets the last 64 KiB of output. Ctrl-] detaches. From a pipe, input is sent as is and,
 * once it ends, output is shown for --linger seconds more.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "lib/clock.h"
#include "cli/client.h"
#include "cli/cli.h"
#include "lib/parse.h"
#include "lib/unix_socket.h"

#define DETACH_CHAR 0x1d /* Ctrl-] */

static const char console_usage[] =
	"usage: keel console NAME [--read-only] [--linger SEC] [--timeout SEC]\n"
	"  Attach to the VM's serial console (recent output is shown first). Ctrl-] detaches.\n"
	"  --read-only    show output only, never send input\n"
	"  --linger SEC   when input from a pipe ends, keep showing output this long (1)\n"
	"  --timeout SEC  detach after SEC seconds\n";

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tio_saved = false;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = fd == STDOUT_FILENO ? write(fd, p, n) : send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Ask keeld where the VM's console is. */
static int console_socket(const char *name, char *out, size_t size)
{
	json_object *vm = NULL, *v;
	char path[512], esc[256], what[128];
	int ret;

	snprintf(path, sizeof(path), "/v1/vms/%s", client_escape(name, esc, sizeof(esc)));
	snprintf(what, sizeof(what), "console of VM '%s'", name);
	ret = client_call("GET", path, NULL, &vm, what);
	if (ret)
		return ret;
	if (!json_object_object_get_ex(vm, "console_socket", &v) ||
	    json_object_is_type(v, json_type_null)) {
		json_object_object_get_ex(vm, "state", &v);
		fprintf(stderr, "keel: %s: the VM is %s; start it first ('keel vm start %s')\n",
			what, v ? json_object_get_string(v) : "not running", name);
		json_object_put(vm);
		return EXIT_BAD_STATE;
	}
	snprintf(out, size, "%s", json_object_get_string(v));
	json_object_put(vm);
	return EXIT_OK;
}

int cli_console_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"read-only", no_argument, NULL, 'r'},
		{"linger", required_argument, NULL, 'l'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *name = NULL;
	bool read_only = false, tty, stdin_open;
	long long linger_ms = 1000, timeout_ms = -1, deadline = -1;
	char sock[4096], buf[16384];
	uint64_t v;
	int c, fd = -1, ret;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1 || (optind < argc && !name)) {
		switch (c) {
		case -1:
			name = argv[optind++];
			break;
		case 'r':
			read_only = true;
			break;
		case 'l':
		case 't':
			if (parse_uint(optarg, 0, 86400, &v)) {
				fprintf(stderr,
					"keel console: --%s: '%s' is not a number of seconds\n",
					c == 'l' ? "linger" : "timeout", optarg);
				return EXIT_USAGE;
			}
			if (c == 'l')
				linger_ms = (long long)v * 1000;
			else
				timeout_ms = (long long)v * 1000;
			break;
		case 'h':
			fputs(console_usage, stdout);
			return EXIT_OK;
		default:
			fputs(console_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (!name || optind < argc) {
		return cli_usage_error("console", console_usage, "%s",
				       name ? "unexpected argument" : "missing the VM name");
	}
	ret = console_socket(name, sock, sizeof(sock));
	if (ret)
		return ret;
	fd = unix_connect(sock);
	if (fd < 0) {
		fprintf(stderr, "keel: console of VM '%s': cannot connect to %s: %s%s\n", name,
			sock, strerror(-fd),
			fd == -EACCES ? " (are you root or in group keel?)" : "");
		return fd == -ENOENT || fd == -ECONNREFUSED ? EXIT_BAD_STATE : EXIT_FAIL;
	}
	signal(SIGPIPE, SIG_IGN);
	tty = isatty(STDIN_FILENO) && !read_only;
	if (tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		tio_saved = true;
		atexit(restore_tty);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
		fprintf(stderr, "Connected to the console of VM '%s'. Ctrl-] detaches.\r\n", name);
	}
	if (timeout_ms >= 0)
		deadline = clock_mono_ms() + timeout_ms;
	stdin_open = !read_only;
	ret = EXIT_OK;
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN}};
		long long wait = -1, now = clock_mono_ms();
		ssize_t n;

		if (deadline >= 0) {
			if (now >= deadline)
				break;
			wait = deadline - now;
		}
		if (poll(p, 2, wait > 1000 ? 1000 : (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, buf, sizeof(buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				restore_tty();
				fprintf(stderr,
					"\nkeel: the console of VM '%s' closed (the VM "
					"stopped)\n",
					name);
				break;
			}
			if (write_all(STDOUT_FILENO, buf, (size_t)n)) {
				ret = EXIT_FAIL;
				break;
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			char *detach;
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* Input from a pipe ended: show what the guest answers, then go. */
				stdin_open = false;
				long long end = clock_mono_ms() + linger_ms;
				if (deadline < 0 || end < deadline)
					deadline = end;
				continue;
			}
			detach = memchr(buf, DETACH_CHAR, (size_t)n);
			if (write_all(fd, buf, detach ? (size_t)(detach - buf) : (size_t)n)) {
				ret = EXIT_FAIL;
				break;
			}
			if (detach)
				break;
		}
	}
	/*
	 * Leave no unread output behind: closing a Unix socket with data still queued makes
	 * the other end see a reset, which could cost the guest the input just sent.
	 */
	shutdown(fd, SHUT_WR);
	for (long long end = clock_mono_ms() + 200; clock_mono_ms() < end;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		if (ret == EXIT_OK && write_all(STDOUT_FILENO, buf, (size_t)n))
			ret = EXIT_FAIL;
	}
	restore_tty();
	if (tty)
		fprintf(stderr, "\nDetached from the console of VM '%s'.\n", name);
	close(fd);
	return ret;
}
