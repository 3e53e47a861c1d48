/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel-agent: with no arguments, serve the host in the foreground on vsock port 52. Each
 * connection gets a process of its own. `keel-agent kvp ...` reads and sets the KVP pools
 * from inside the guest.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agent/agent.h"
#include "lib/parse.h"

struct agent_opts agent_opts = {
	.state_dir = "/var/lib/keel-agent",
	.services = AP_S_ALL,
};

static const char agent_usage[] =
	"usage: keel-agent [--port N] [--disable SERVICE,...] [--state-dir DIR]\n"
	"       keel-agent [--state-dir DIR] kvp list [guest|host|auto]\n"
	"       keel-agent [--state-dir DIR] kvp get KEY [guest|host|auto]\n"
	"       keel-agent [--state-dir DIR] kvp set KEY VALUE\n"
	"       keel-agent [--state-dir DIR] kvp delete KEY\n"
	"  Serve keel's integration services on vsock port 52 (docs/integration-services.md).\n"
	"  --port N           the vsock port (52)\n"
	"  --disable LIST     services not to serve: heartbeat,shutdown,time,kvp,exec,copy,freeze\n"
	"  --state-dir DIR    where the KVP pools live (/var/lib/keel-agent)\n"
	"  --listen-unix PATH listen on a Unix socket instead of vsock (for tests on the host)\n"
	"  kvp                the guest's side of key-value exchange: `set` and `delete` change "
	"the\n"
	"                     guest pool the host reads; `get` and `list` read a pool (host: what\n"
	"                     the host set, the default for get)\n";

/* A listening stream socket of domain at sa. */
static int listen_at(int domain, const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, sa, len) < 0 || listen(fd, 16) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int listen_vsock(unsigned port)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};

	return listen_at(AF_VSOCK, (struct sockaddr *)&sa, sizeof(sa));
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	unlink(path);
	return listen_at(AF_UNIX, (struct sockaddr *)&sa, sizeof(sa));
}

static int disable_services(char *list)
{
	for (char *save = NULL, *s = strtok_r(list, ",", &save); s;
	     s = strtok_r(NULL, ",", &save)) {
		int svc = ap_service_by_name(s);

		if (svc < 0) {
			fprintf(stderr,
				"keel-agent: unknown service '%s' (heartbeat, shutdown, time, kvp, "
				"exec, copy or freeze)\n",
				s);
			return -1;
		}
		agent_opts.services &= ~(1u << svc);
	}
	return 0;
}

static int kvp_print(const char *key, const char *value, void *arg)
{
	printf("%s=%s\n", key, value);
	return 0;
}

static int pool_by_name(const char *name)
{
	if (!strcmp(name, "guest"))
		return AP_POOL_GUEST;
	if (!strcmp(name, "host"))
		return AP_POOL_HOST;
	if (!strcmp(name, "auto"))
		return AP_POOL_AUTO;
	fprintf(stderr, "keel-agent: unknown pool '%s' (guest, host or auto)\n", name);
	return -1;
}

/* `keel-agent kvp VERB ...`: 0, 1 for a missing key, 2 for bad use. */
static int kvp_main(int argc, char **argv)
{
	static char value[AP_MAX_VALUE];
	const char *verb = argc > 0 ? argv[0] : "", *bad;
	int pool, r;

	if (!strcmp(verb, "list") && argc <= 2) {
		pool = argc == 2 ? pool_by_name(argv[1]) : AP_POOL_GUEST;
		if (pool < 0)
			return 2;
		r = pool == AP_POOL_AUTO ? kvp_facts_each(kvp_print, NULL)
					 : kvp_pool_each(pool, kvp_print, NULL);
	} else if (!strcmp(verb, "get") && (argc == 2 || argc == 3)) {
		pool = argc == 3 ? pool_by_name(argv[2]) : AP_POOL_HOST;
		if (pool < 0)
			return 2;
		if (pool == AP_POOL_AUTO) {
			fprintf(stderr, "keel-agent: `kvp list auto` shows the facts\n");
			return 2;
		}
		r = kvp_pool_get(pool, argv[1], value);
		if (r == 0)
			printf("%s\n", value);
	} else if (!strcmp(verb, "set") && argc == 3) {
		if ((bad = kvp_check(argv[1], argv[2]))) {
			fprintf(stderr, "keel-agent: %s\n", bad);
			return 2;
		}
		r = kvp_pool_set(AP_POOL_GUEST, argv[1], argv[2]);
	} else if (!strcmp(verb, "delete") && argc == 2) {
		r = kvp_pool_delete(AP_POOL_GUEST, argv[1]);
	} else {
		fputs(agent_usage, stderr);
		return 2;
	}
	if (r == -ENOENT) {
		fprintf(stderr, "keel-agent: no key '%s'\n", argc > 1 ? argv[1] : "");
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "keel-agent: kvp %s: %s\n", verb, strerror(-r));
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"disable", required_argument, NULL, 'd'},
		{"state-dir", required_argument, NULL, 's'},
		{"listen-unix", required_argument, NULL, 'u'},
		{"version", no_argument, NULL, 'V'},
#ifdef KEEL_TEST_HOOKS
		{"test-shutdown-command", required_argument, NULL, 'T'},
		{"test-mountinfo", required_argument, NULL, 'M'},
#endif
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *unix_path = NULL;
	char where[AP_MAX_PATH + 16];
	uint64_t port = AP_PORT;
	int c, lfd;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_uint(optarg, 1, UINT32_MAX - 1, &port)) {
				fprintf(stderr, "keel-agent: --port '%s' is not a port number\n",
					optarg);
				return 2;
			}
			break;
		case 'd':
			if (disable_services(optarg))
				return 2;
			break;
		case 's':
			agent_opts.state_dir = optarg;
			break;
		case 'u':
			unix_path = optarg;
			break;
		case 'T':
			agent_opts.test_shutdown_command = optarg;
			break;
		case 'M':
			agent_opts.test_mountinfo = optarg;
			break;
		case 'V':
			printf("keel-agent %s (protocol %d)\n", KEEL_VERSION, AP_VERSION);
			return 0;
		case 'h':
			fputs(agent_usage, stdout);
			return 0;
		default:
			fputs(agent_usage, stderr);
			return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "kvp"))
		return kvp_main(argc - optind - 1, argv + optind + 1);
	if (optind < argc) {
		fprintf(stderr, "keel-agent: unknown command '%s'\n", argv[optind]);
		fputs(agent_usage, stderr);
		return 2;
	}
	if (unix_path)
		snprintf(where, sizeof(where), "%s", unix_path);
	else
		snprintf(where, sizeof(where), "vsock port %llu", (unsigned long long)port);
	lfd = unix_path ? listen_unix(unix_path) : listen_vsock((unsigned)port);
	if (lfd < 0) {
		fprintf(stderr, "keel-agent: cannot listen on %s: %s%s\n", where, strerror(-lfd),
			!unix_path && lfd == -EAFNOSUPPORT
				? " (load the vmw_vsock_virtio_transport module)"
				: "");
		return 1;
	}
	fprintf(stderr, "keel-agent %s: serving on %s\n", KEEL_VERSION, where);
	/* Connection processes are reaped by the kernel; a host gone mid-reply is an error on
	 * that connection, not a signal. */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				if (errno != EINTR && errno != ECONNABORTED)
					sleep(1);
				continue;
			}
			fprintf(stderr, "keel-agent: accept: %s\n", strerror(errno));
			return 1;
		}
		pid = fork();
		if (pid == 0) {
			close(lfd);
			signal(SIGCHLD, SIG_DFL); /* the connection waits for its own children */
			conn_serve(fd);
			_exit(0);
		}
		if (pid < 0)
			fprintf(stderr, "keel-agent: cannot fork for a connection: %s\n",
				strerror(errno));
		close(fd);
	}
}
