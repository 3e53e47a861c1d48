/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `keel vm kvp|integration|exec|copy-file`: the integration services (docs/cli.md,
 * docs/integration-services.md). kvp and integration go through keeld's API; exec and
 * copy-file stream, so keel speaks the agent protocol itself on the VM's vsock socket, which
 * keeld gives to its administrators' group as it does the console's.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/client.h"
#include "lib/agent_client.h"
#include "lib/parse.h"

#define AGENT_OPEN_TIMEOUT_MS 5000
#define EXEC_OWN_FAILURE      255 /* keel vm exec's own failures, as ssh's */

static const char agent_usage[] =
	"usage: keel vm kvp list NAME [--pool auto|guest|host] [--json]\n"
	"       keel vm kvp get NAME KEY [--pool auto|guest|host]\n"
	"       keel vm kvp set NAME KEY VALUE\n"
	"       keel vm kvp delete NAME KEY\n"
	"       keel vm integration NAME [--json]\n"
	"       keel vm integration NAME enable|disable SERVICE\n"
	"       keel vm exec NAME [--user U] [--tty] [--timeout SEC] [--env NAME=VALUE]... -- CMD\n"
	"            [ARG]...\n"
	"       keel vm copy-file NAME SRC DEST [--create-path] [--overwrite]\n"
	"            [--owner USER[:GROUP]]\n"
	"  kvp: key-value exchange. The guest's facts (auto), the pairs set in the guest (guest)\n"
	"       and those the host set (host, which set and delete change).\n"
	"  integration: the services (heartbeat, shutdown, time, kvp, exec, copy, freeze) and\n"
	"       whether each is enabled and running.\n"
	"  exec: run CMD in the guest with stdin, stdout and stderr streamed; keel exits with its\n"
	"       status (255 when keel itself fails). --timeout kills it after SEC seconds; --user\n"
	"       runs it as a user of the guest; --tty on a pseudo-terminal (an interactive shell:\n"
	"       keel vm exec NAME --tty -- /bin/sh).\n"
	"  copy-file: copy the host file SRC to DEST (absolute) in the guest, with its mode and\n"
	"       its owner's and group's names when the guest has them (else root's); --owner\n"
	"       gives a user (and group) of the guest, by name or number; --create-path makes\n"
	"       DEST's directories, --overwrite replaces a file.\n";

#define usage_error(...) cli_usage_error("vm", agent_usage, __VA_ARGS__)

static const char *pool_option(int argc, char **argv, int *i)
{
	if (*i + 1 < argc && !strcmp(argv[*i], "--pool")) {
		*i += 2;
		return argv[*i - 1];
	}
	if (!strncmp(argv[*i], "--pool=", 7))
		return argv[(*i)++] + 7;
	return NULL;
}

/* `keel vm kvp VERB NAME ...` (argv[0] is "kvp"). */
int cli_vm_kvp(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "", *name = NULL, *pool = NULL, *args[2] = {0};
	json_object *o = NULL, *body = NULL;
	char path[2048], what[160], esc[1600];
	size_t nargs = 0;
	bool json = false;
	int ret;

	for (int i = 2; i < argc;) {
		const char *p = pool_option(argc, argv, &i);

		if (p) {
			pool = p;
			continue;
		}
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return usage_error("unknown option '%s'", argv[i]);
		else if (!name)
			name = argv[i];
		else if (nargs < 2)
			args[nargs++] = argv[i];
		else
			return usage_error("too many arguments");
		i++;
	}
	if (!name)
		return usage_error("missing the VM name");
	if (pool && strcmp(pool, "auto") && strcmp(pool, "guest") && strcmp(pool, "host"))
		return usage_error("unknown pool '%s': auto, guest or host", pool);
	snprintf(what, sizeof(what), "kvp %s on VM '%s'", verb, name);
	if (!strcmp(verb, "list") && nargs == 0) {
		cli_vm_path(path, sizeof(path), name, "kvp");
		if (pool)
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "?pool=%s",
				 pool);
		ret = client_call("GET", path, NULL, &o, what);
		if (!ret && json)
			client_print_json(o);
		else if (!ret) {
			json_object_object_foreach(o, pname, pairs)
			{
				json_object_object_foreach(pairs, k, v)
				{
					printf("%-6s ", pname);
					client_put_safe(k);
					putchar('=');
					client_put_safe(json_object_get_string(v));
					putchar('\n');
				}
			}
		}
	} else if ((!strcmp(verb, "get") || !strcmp(verb, "delete")) && nargs == 1) {
		bool get = !strcmp(verb, "get");

		if (!get && pool)
			return usage_error("delete changes the host pool only: no --pool");
		{
			char sub[1700];

			snprintf(sub, sizeof(sub), "kvp/%s",
				 client_escape(args[0], esc, sizeof(esc)));
			cli_vm_path(path, sizeof(path), name, sub);
		}
		if (pool)
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "?pool=%s",
				 pool);
		ret = client_call(get ? "GET" : "DELETE", path, NULL, &o, what);
		if (!ret && get && json)
			client_print_json(o);
		else if (!ret && get && isatty(STDOUT_FILENO)) {
			client_put_safe(client_str_field(o, "value"));
			putchar('\n');
		} else if (!ret && get) {
			printf("%s\n", client_str_field(o, "value")); /* for scripts: as it is */
		}
	} else if (!strcmp(verb, "set") && nargs == 2) {
		if (pool)
			return usage_error("set changes the host pool only: no --pool");
		body = json_object_new_object();
		json_object_object_add(body, "key", json_object_new_string(args[0]));
		json_object_object_add(body, "value", json_object_new_string(args[1]));
		cli_vm_path(path, sizeof(path), name, "kvp");
		ret = client_call("POST", path, body, &o, what);
		json_object_put(body);
	} else {
		return usage_error("kvp takes list NAME, get NAME KEY, set NAME KEY VALUE or "
				   "delete NAME KEY");
	}
	json_object_put(o);
	return ret;
}

void cli_print_heartbeat(json_object *o)
{
	const char *ver = client_str_field(o, "agent_version"),
		   *vcpus = client_str_field(o, "vcpus");
	bool lost = !strcmp(client_str_field(o, "heartbeat"), "Lost communication");
	/* "Agent gone" only where there was one; a hung guest whether it had one or not. */
	const char *why =
		!strcmp(vcpus, "running") && lost ? "agent gone: the guest's vCPUs still run"
		: !strcmp(vcpus, "stalled")	  ? "guest hung: its vCPUs made no progress for 3 s"
						  : "";

	printf("%s", client_str_field(o, "heartbeat"));
	if (ver[0] || why[0])
		printf(" (%s%s%s%s)", ver[0] ? "keel-agent " : "", ver,
		       ver[0] && why[0] ? "; " : "", why);
}

/* The guest's clock against the host's (the time service's last sample), a line of
 * `keel vm show` and `keel vm integration`; nothing before keeld has a sample. */
void cli_print_clock_offset(json_object *o, const char *label)
{
	json_object *f;

	if (!json_object_object_get_ex(o, "clock_offset_ms", &f) || !f)
		return;
	printf("%s%+.3f ms (the guest's clock minus the host's, sampled every 10 s)\n", label,
	       json_object_get_double(f));
}

/* The clock offset changes each sample, so a VM's JSON leaves it to GET .../integration:
 * copied from there into vm's "integration" for `keel vm show`, when the agent answers. */
void cli_add_clock_offset(json_object *vm, const char *name)
{
	json_object *integ, *detail = NULL, *f;
	char path[512], what[160];

	if (!json_object_object_get_ex(vm, "integration", &integ) ||
	    strcmp(client_str_field(integ, "heartbeat"), "OK"))
		return;
	cli_vm_path(path, sizeof(path), name, "integration");
	snprintf(what, sizeof(what), "integration services of VM '%s'", name);
	if (client_call("GET", path, NULL, &detail, what) == EXIT_OK && detail &&
	    json_object_object_get_ex(detail, "clock_offset_ms", &f) && f)
		json_object_object_add(integ, "clock_offset_ms", json_object_get(f));
	json_object_put(detail);
}

/* `keel vm integration NAME [enable|disable SERVICE]`. */
int cli_vm_integration(int argc, char **argv)
{
	json_object *o = NULL, *body, *svcs;
	const char *name = NULL, *verb = NULL, *svc = NULL;
	char path[512], what[160];
	bool json = false;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-')
			return usage_error("unknown option '%s'", argv[i]);
		else if (!name)
			name = argv[i];
		else if (!verb)
			verb = argv[i];
		else if (!svc)
			svc = argv[i];
		else
			return usage_error("too many arguments");
	}
	if (!name)
		return usage_error("missing the VM name");
	if (verb && (strcmp(verb, "enable") && strcmp(verb, "disable")))
		return usage_error("unknown integration command '%s': enable or disable", verb);
	if (verb && !svc)
		return usage_error("%s needs a service: heartbeat, shutdown, time, kvp, exec, copy "
				   "or freeze",
				   verb);
	if (svc && ap_service_by_name(svc) < 0)
		return usage_error("unknown service '%s': heartbeat, shutdown, time, kvp, exec, "
				   "copy or freeze",
				   svc);
	cli_vm_path(path, sizeof(path), name, "integration");
	snprintf(what, sizeof(what), "integration services of VM '%s'", name);
	if (verb) {
		body = json_object_new_object();
		json_object_object_add(body, "service", json_object_new_string(svc));
		json_object_object_add(body, "enabled",
				       json_object_new_boolean(!strcmp(verb, "enable")));
		ret = client_call("POST", path, body, &o, what);
		json_object_put(body);
	} else {
		ret = client_call("GET", path, NULL, &o, what);
	}
	if (!ret && json) {
		client_print_json(o);
	} else if (!ret) {
		printf("Heartbeat: ");
		cli_print_heartbeat(o);
		printf("\n");
		cli_print_clock_offset(o, "Clock offset: ");
		printf("%-10s %-8s %s\n", "SERVICE", "ENABLED", "RUNNING");
		if (json_object_object_get_ex(o, "services", &svcs))
			for (size_t i = 0; i < json_object_array_length(svcs); i++) {
				json_object *s = json_object_array_get_idx(svcs, i);

				printf("%-10s %-8s %s\n", client_str_field(s, "name"),
				       json_object_get_boolean(json_object_object_get(s, "enabled"))
					       ? "yes"
					       : "no",
				       json_object_get_boolean(json_object_object_get(s, "running"))
					       ? "yes"
					       : "no");
			}
	}
	json_object_put(o);
	return ret;
}

/*
 * For exec and copy-file: the VM's agent socket from keeld, after checking that the VM runs
 * and the service is enabled; then a connection to the agent. Prints why not and returns
 * non-zero.
 */
static int agent_for(const char *name, const char *service, struct agent_conn *c)
{
	json_object *vm = NULL, *integ, *svcs;
	char path[512], what[160], err[600];
	const char *sock;
	int ret;

	cli_vm_path(path, sizeof(path), name, NULL);
	snprintf(what, sizeof(what), "%s in VM '%s'", service, name);
	ret = client_call("GET", path, NULL, &vm, what);
	if (ret)
		return ret;
	if (strcmp(client_str_field(vm, "state"), "Running")) {
		fprintf(stderr, "keel: %s: VM '%s' is %s; it must be Running\n", what, name,
			client_str_field(vm, "state"));
		json_object_put(vm);
		return EXIT_BAD_STATE;
	}
	if (json_object_object_get_ex(vm, "integration", &integ) &&
	    json_object_object_get_ex(integ, "services", &svcs))
		for (size_t i = 0; i < json_object_array_length(svcs); i++) {
			json_object *s = json_object_array_get_idx(svcs, i);

			if (!strcmp(client_str_field(s, "name"), service) &&
			    !json_object_get_boolean(json_object_object_get(s, "enabled"))) {
				fprintf(stderr,
					"keel: %s: the %s service is disabled for VM '%s' (keel vm "
					"integration %s enable %s)\n",
					what, service, name, name, service);
				json_object_put(vm);
				return EXIT_BAD_STATE;
			}
		}
	sock = client_str_field(vm, "agent_socket");
	if (!sock[0]) {
		fprintf(stderr, "keel: %s: no integration services in VM '%s'\n", what, name);
		json_object_put(vm);
		return EXIT_FAIL;
	}
	ret = agent_open(c, sock, AGENT_OPEN_TIMEOUT_MS, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "keel: %s: no integration services in VM '%s': %s\n", what, name,
			err);
		json_object_put(vm);
		return EXIT_FAIL;
	}
	json_object_put(vm);
	if (!(c->services & 1u << ap_service_by_name(service))) {
		fprintf(stderr, "keel: %s: the agent in VM '%s' does not offer the %s service\n",
			what, name, service);
		agent_close(c);
		return EXIT_BAD_STATE;
	}
	return 0;
}

/* Whether the exec's options (argv[1..end)) give --env NAME=... */
static bool env_given(int argc, char **argv, int end, const char *name)
{
	size_t n = strlen(name);

	for (int k = 1; k + 1 < end && k + 1 < argc; k++)
		if (!strcmp(argv[k], "--env") && !strncmp(argv[k + 1], name, n) &&
		    argv[k + 1][n] == '=')
			return true;
	return false;
}

static volatile sig_atomic_t exec_winch;

static void exec_on_winch(int sig)
{
	(void)sig;
	exec_winch = 1;
}

/* Our terminal's size as ROWS and COLS; false (nothing added) when it has none the agent
 * takes (1 to AP_MAX_TTY each). */
static bool exec_put_size(struct ap_out *o)
{
	struct winsize ws = {0};

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col ||
	    ws.ws_row > AP_MAX_TTY || ws.ws_col > AP_MAX_TTY)
		return false;
	ap_put_u32(o, AP_A_ROWS, ws.ws_row);
	ap_put_u32(o, AP_A_COLS, ws.ws_col);
	return true;
}

/* `keel vm exec NAME [--timeout SEC] [--env K=V]... -- CMD ARGS...`. */
int cli_vm_exec(int argc, char **argv)
{
	static struct agent_conn c;
	static uint8_t buf[AP_MAX_DATA];
	const char *name = NULL, *user = NULL;
	uint64_t timeout_s = 0;
	char err[600], term[128];
	int i, ret, status = EXEC_OWN_FAILURE;
	size_t in_len = 0, in_off = 0; /* an input frame being sent: its length and progress */
	bool in_open = true, tty = false, raw_mode = false;
	struct termios saved;
	sigset_t winch_set, run_mask;
	uint32_t id;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--tty")) {
			tty = true;
		} else if (!strcmp(argv[i], "--user") && i + 1 < argc) {
			user = argv[++i];
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if (parse_uint(argv[++i], 1, 86400 * 7, &timeout_s))
				return usage_error("--timeout '%s' is not 1 to 604800 seconds",
						   argv[i]);
		} else if (!strcmp(argv[i], "--env") && i + 1 < argc) {
			i++; /* added below, once connected */
			if (!strchr(argv[i], '=') || argv[i][0] == '=')
				return usage_error("--env '%s' is not NAME=VALUE", argv[i]);
		} else if (argv[i][0] == '-') {
			return usage_error("unknown exec option '%s'", argv[i]);
		} else if (!name) {
			name = argv[i];
		} else {
			return usage_error("put the command after '--': keel vm exec %s -- %s ...",
					   name, argv[i]);
		}
	}
	if (!name)
		return usage_error("missing the VM name");
	if (i + 1 >= argc)
		return usage_error("missing the command: keel vm exec NAME -- CMD [ARG]...");
	ret = agent_for(name, "exec", &c);
	if (ret)
		return EXEC_OWN_FAILURE;
	signal(SIGPIPE, SIG_IGN);
	id = agent_begin(&c, AP_T_EXEC);
	for (int k = i + 1; k < argc; k++)
		ap_put_str(&c.out, AP_A_ARG, argv[k]);
	for (int k = 1; k < i; k++)
		if (!strcmp(argv[k], "--env"))
			ap_put_str(&c.out, AP_A_ENV, argv[++k]);
		else if (!strcmp(argv[k], "--timeout") || !strcmp(argv[k], "--user"))
			k++;
	if (timeout_s)
		ap_put_u32(&c.out, AP_A_TIMEOUT_MS, (uint32_t)(timeout_s * 1000));
	if (user)
		ap_put_str(&c.out, AP_A_USER, user);
	/* With --tty a change of our terminal's size (SIGWINCH) is passed on as EXEC_RESIZE.
	 * SIGWINCH stays blocked but in ppoll, from before the size is read, so none is lost. */
	sigemptyset(&winch_set);
	sigaddset(&winch_set, SIGWINCH);
	sigprocmask(SIG_SETMASK, NULL, &run_mask);
	if (tty) {
		struct sigaction sa = {.sa_handler = exec_on_winch};

		sigaction(SIGWINCH, &sa, NULL);
		sigprocmask(SIG_BLOCK, &winch_set, &run_mask);
		ap_put_u32(&c.out, AP_A_TTY, 1);
		(void)exec_put_size(&c.out);
		if (getenv("TERM") && !env_given(argc, argv, i, "TERM")) {
			snprintf(term, sizeof(term), "TERM=%s", getenv("TERM"));
			ap_put_str(&c.out, AP_A_ENV, term);
		}
	}
	if (c.out.err) {
		fprintf(stderr, "keel: exec in VM '%s': the command line is %s\n", name,
			c.out.err == -EINVAL ? "not UTF-8" : "too long for one request");
		goto out;
	}
	ret = agent_call(&c, AGENT_OPEN_TIMEOUT_MS, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "keel: exec in VM '%s': %s\n", name, err);
		goto out;
	}
	/* An interactive terminal goes raw: every key, Ctrl-C included, is the guest's. */
	if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios raw = saved;

		cfmakeraw(&raw);
		raw_mode = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	/* The input frame in c.out is sent as the socket takes it, while the output is read on:
	 * waiting for room in a send while the agent waits for room in its own (the program's
	 * output to us) would hold both for ever. */
	for (;;) {
		struct pollfd p[2] = {
			{.fd = c.fd, .events = (short)(POLLIN | (in_len ? POLLOUT : 0))},
			{.fd = in_open && !in_len ? STDIN_FILENO : -1, .events = POLLIN}};

		if (exec_winch && !in_len) {
			exec_winch = 0;
			ap_begin(&c.out, AP_T_EXEC_RESIZE, 0, id);
			if (exec_put_size(&c.out) && ap_end(&c.out) == 0) {
				in_len = c.out.len;
				in_off = 0;
				p[0].events |= POLLOUT;
				p[1].fd = -1;
			}
		}
		if (ppoll(p, 2, NULL, &run_mask) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			ap_begin(&c.out, AP_T_EXEC_INPUT, 0, id);
			if (n > 0) {
				ap_put_bytes(&c.out, AP_A_DATA, buf, (size_t)n);
			} else {
				ap_put_u32(&c.out, AP_A_EOF, 1);
				in_open = false;
			}
			if (ap_end(&c.out) == 0) {
				in_len = c.out.len;
				in_off = 0;
			}
		}
		if (in_len && (p[0].revents & (POLLOUT | POLLERR | POLLHUP) || p[1].revents)) {
			ssize_t w = send(c.fd, c.out.buf + in_off, in_len - in_off, MSG_NOSIGNAL);

			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "keel: exec in VM '%s': the agent went away\n",
					name);
				break;
			}
			if (w > 0 && (in_off += (size_t)w) == in_len)
				in_len = in_off = 0;
		}
		if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
			continue;
		ret = agent_recv(&c, 0, err, sizeof(err));
		if (ret == -ETIMEDOUT)
			continue;
		if (ret) {
			fprintf(stderr, "keel: exec in VM '%s': %s\n", name, err);
			break;
		}
		if (c.msg.id != id)
			continue;
		if (c.msg.type == AP_T_EXEC_OUTPUT) {
			const struct ap_attr *d = ap_get(&c.msg, AP_A_DATA);
			uint32_t stream = 0;

			(void)ap_get_u32(&c.msg, AP_A_STREAM, &stream);
			if (d &&
			    ap_write_all(stream == AP_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO,
					 d->val, d->len))
				break; /* our stdout closed: the agent kills the command with us */
		} else if (c.msg.type == AP_T_EXEC_EXIT) {
			uint32_t st = EXEC_OWN_FAILURE, timed_out = 0;

			(void)ap_get_u32(&c.msg, AP_A_EXIT_STATUS, &st);
			(void)ap_get_u32(&c.msg, AP_A_TIMED_OUT, &timed_out);
			if (timed_out)
				fprintf(stderr, "keel: exec in VM '%s': killed after %llu s\n",
					name, (unsigned long long)timeout_s);
			status = st > 255 ? EXEC_OWN_FAILURE : (int)st;
			break;
		}
	}
out:
	if (raw_mode)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (tty) {
		signal(SIGWINCH, SIG_DFL);
		sigprocmask(SIG_UNBLOCK, &winch_set, NULL);
	}
	agent_close(&c);
	return status;
}

/* `keel vm copy-file NAME SRC DEST [--create-path] [--overwrite] [--owner U[:G]]`. */
int cli_vm_copy_file(int argc, char **argv)
{
	static struct agent_conn c;
	static uint8_t buf[AP_MAX_DATA];
	const char *pos[3] = {0}, *owner = NULL;
	char user[64] = "", group[64] = "";
	uint32_t flags = 0, id;
	size_t npos = 0;
	uint64_t sent = 0;
	struct stat st;
	char err[600];
	int fd, ret, last_pct = -1;
	bool progress;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--create-path"))
			flags |= AP_COPY_CREATE_PATH;
		else if (!strcmp(argv[i], "--overwrite"))
			flags |= AP_COPY_OVERWRITE;
		else if (!strcmp(argv[i], "--owner") && i + 1 < argc)
			owner = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1])
			return usage_error("unknown copy-file option '%s'", argv[i]);
		else if (npos < 3)
			pos[npos++] = argv[i];
		else
			return usage_error("too many arguments");
	}
	if (npos != 3)
		return usage_error("copy-file takes NAME SRC DEST");
	if (pos[2][0] != '/')
		return usage_error("DEST '%s' must be an absolute path in the guest", pos[2]);
	if (owner) {
		size_t ulen = strcspn(owner, ":");
		const char *g = owner[ulen] ? owner + ulen + 1 : "";

		if (!ulen || ulen >= sizeof(user) || strlen(g) >= sizeof(group) ||
		    (owner[ulen] && !g[0]))
			return usage_error("--owner takes USER[:GROUP] (names or numbers of the "
					   "guest's, under 64 bytes each), not '%s'",
					   owner);
		snprintf(user, sizeof(user), "%.*s", (int)ulen, owner);
		snprintf(group, sizeof(group), "%s", g);
	}
	fd = open(pos[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "keel: copy-file: cannot read '%s': %s\n", pos[1],
			fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return EXIT_USAGE;
	}
	ret = agent_for(pos[0], "copy", &c);
	if (ret) {
		close(fd);
		return ret;
	}
	signal(SIGPIPE, SIG_IGN);
	id = agent_begin(&c, AP_T_COPY_BEGIN);
	ap_put_str(&c.out, AP_A_PATH, pos[2]);
	ap_put_u64(&c.out, AP_A_SIZE, (uint64_t)st.st_size);
	ap_put_u32(&c.out, AP_A_FILE_MODE, st.st_mode & 07777);
	if (!owner) {
		/* The host's numbers mean nothing in the guest: its names, where it has them. */
		const struct passwd *pw = getpwuid(st.st_uid);
		const struct group *gr = getgrgid(st.st_gid);

		if (pw && strlen(pw->pw_name) < sizeof(user))
			snprintf(user, sizeof(user), "%s", pw->pw_name);
		if (gr && strlen(gr->gr_name) < sizeof(group))
			snprintf(group, sizeof(group), "%s", gr->gr_name);
		flags |= AP_COPY_OWNER_IF_ANY;
	}
	if (user[0])
		ap_put_str(&c.out, AP_A_USER, user);
	if (group[0])
		ap_put_str(&c.out, AP_A_GROUP, group);
	ap_put_u32(&c.out, AP_A_COPY_FLAGS, flags);
	ret = agent_call(&c, AGENT_OPEN_TIMEOUT_MS, err, sizeof(err));
	if (ret)
		goto fail;
	progress = isatty(STDERR_FILENO) && st.st_size > (16 << 20);
	while (sent < (uint64_t)st.st_size) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, sizeof(err), "'%s' %s while it was copied", pos[1],
				 n < 0 ? strerror(errno) : "got shorter");
			ret = -EIO;
			goto fail;
		}
		ap_begin(&c.out, AP_T_COPY_DATA, 0, id);
		ap_put_bytes(&c.out, AP_A_DATA, buf, (size_t)n);
		if (agent_send(&c)) {
			snprintf(err, sizeof(err), "the agent went away");
			ret = -EPIPE;
			goto fail;
		}
		sent += (uint64_t)n;
		if (progress && (int)(sent * 100 / (uint64_t)st.st_size) != last_pct) {
			last_pct = (int)(sent * 100 / (uint64_t)st.st_size);
			fprintf(stderr, "\rcopying %s: %d%%", pos[1], last_pct);
		}
	}
	if (progress)
		fputc('\n', stderr);
	c.last_type = AP_T_COPY_END;
	ap_begin(&c.out, AP_T_COPY_END, 0, id);
	ret = agent_call(&c, 60000, err, sizeof(err));
	if (ret)
		goto fail;
	close(fd);
	agent_close(&c);
	return EXIT_OK;
fail:
	fprintf(stderr, "keel: copy-file to VM '%s': %s\n", pos[0], err);
	close(fd);
	agent_close(&c);
	return ret == -EINVAL || ret == -EEXIST || ret == -ENOENT || ret == -EISDIR ? EXIT_USAGE
										    : EXIT_FAIL;
}
