/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld: keel's management service. Owns the VM definitions (SQLite in the state dir),
 * serves the REST/JSON API on a Unix socket and supervises one keel-vmm per running VM.
 * Runs in the foreground; stopping it leaves VMs running, and starting it again takes them
 * back. See docs/keeld.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/agent_freeze.h"
#include "daemon/access.h"
#include "daemon/agent_mon.h"
#include "daemon/qos_mon.h"
#include "daemon/api.h"
#include "daemon/biglock.h"
#include "daemon/ckpt.h"
#include "daemon/events.h"
#include "daemon/jobs.h"
#include "daemon/host.h"
#include "daemon/http.h"
#include "daemon/pools.h"
#include "daemon/switch.h"
#include "daemon/vm_netmove.h"
#include "daemon/switch_dhcp.h"
#include "daemon/store.h"
#include "daemon/sup.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/unix_socket.h"
#include "lib/parse.h"

#define DEFAULT_STATE_DIR     "/var/lib/keel"
#define DEFAULT_SOCKET	      "/run/keel/keeld.sock"
#define MAX_POLL	      1024
#define KEELD_EXIT_JOB_WAIT_S 60

struct options {
	const char *state_dir;
	const char *socket;
	const char *vmm;
	unsigned stop_timeout_s;
	unsigned start_timeout_s;
	uint64_t host_reserve;
	const char *admin_group;
	const char *viewer_group;
	uint64_t worker_uid_first, worker_uid_last;
	bool debug;
};

/* The workers' uids (and gids): high, outside what Debian and systemd hand out (system and
 * login users below 60000, systemd's dynamic users 61184-65519, containers' and subuid
 * ranges up to 1879048191), one per running VM (docs/security.md). */
#define DEFAULT_WORKER_UID_FIRST 3221225472u /* 0xc0000000 */
#define DEFAULT_WORKER_UID_LAST	 3221291007u /* 65536 of them */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keeld [--state-dir DIR] [--socket PATH] [--vmm PATH] [--stop-timeout SEC]\n"
		"             [--start-timeout SEC] [--host-reserve SIZE] [--admin-group NAME]\n"
		"             [--viewer-group NAME] [--worker-uids FIRST-LAST] [--freeze-timeout "
		"SEC]\n"
		"             [--debug]\n"
		"\n"
		"keel's management service: VM definitions, workers and the REST API.\n"
		"  --state-dir DIR      store and per-VM files (default %s, or $KEEL_STATE_DIR)\n"
		"  --socket PATH        API socket (default %s, or $KEEL_SOCKET)\n"
		"  --vmm PATH           the keel-vmm binary (default: next to keeld, or "
		"$KEEL_VMM)\n"
		"  --stop-timeout SEC   graceful stop timeout when a request gives none (60)\n"
		"  --start-timeout SEC  keel-vmm start to control socket ready (60)\n"
		"  --host-reserve SIZE  memory kept for the host: a VM start that would leave "
		"less\n"
		"                       is refused (512M; K, M, G suffixes)\n"
		"  --admin-group NAME   members may use the whole API and the consoles (keel)\n"
		"  --viewer-group NAME  members may read: list, show, events, logs "
		"(keel-viewers)\n"
		"  --worker-uids FIRST-LAST  the jailed workers' own uids and gids, one per "
		"running\n"
		"                       VM (%u-%u)\n"
		"  --freeze-timeout SEC how long a guest's file systems stay frozen for a "
		"production\n"
		"                       checkpoint or backup before it thaws them itself (1-600; "
		"10)\n"
		"  --debug              log every request\n",
		DEFAULT_STATE_DIR, DEFAULT_SOCKET, DEFAULT_WORKER_UID_FIRST,
		DEFAULT_WORKER_UID_LAST);
}

static int parse_secs(const char *opt, const char *s, unsigned *out)
{
	uint64_t v;

	if (parse_uint(s, 0, 86400, &v)) {
		fprintf(stderr, "keeld: %s: '%s' is not a number of seconds from 0 to 86400\n", opt,
			s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/*
 * One turn of the main loop, with keeld's lock held (let go while it sleeps in poll):
 * signals, workers' ends, deadlines. Sleeps at most max_ms (-1: as long as the supervisor
 * allows). A SIGTERM, SIGINT or SIGHUP clears *running (when given). Returns 0, or -errno
 * when poll fails.
 */
static int serve_once(struct sup *sup, int sfd, int max_ms, bool *running)
{
	struct pollfd fds[MAX_POLL];
	size_t n = 0, nsup, ndhcp, nsw;
	int r, timeout;

	fds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
	nsup = sup_pollfds(sup, fds + n, MAX_POLL - n);
	ndhcp = switch_dhcp_pollfds(fds + n + nsup, MAX_POLL - n - nsup);
	nsw = switches_pollfds(fds + n + nsup + ndhcp, MAX_POLL - n - nsup - ndhcp);
	timeout = sup_timeout_ms(sup);
	if (switch_dhcp_timeout_ms() >= 0 && (timeout < 0 || switch_dhcp_timeout_ms() < timeout))
		timeout = switch_dhcp_timeout_ms();
	if (switches_timeout_ms() >= 0 && (timeout < 0 || switches_timeout_ms() < timeout))
		timeout = switches_timeout_ms();
	if (jobs_timeout_ms() >= 0 && (timeout < 0 || jobs_timeout_ms() < timeout))
		timeout = jobs_timeout_ms();
	if (max_ms >= 0 && (timeout < 0 || timeout > max_ms))
		timeout = max_ms;
	keeld_unlock();
	r = poll(fds, n + nsup + ndhcp + nsw, timeout);
	keeld_lock();
	if (r < 0 && errno != EINTR) {
		log_err("poll: %s", strerror(errno));
		return -errno;
	}
	if (fds[0].revents & POLLIN) {
		struct signalfd_siginfo si;

		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			log_info("signal %u: exiting; running VMs keep running", si.ssi_signo);
			if (running)
				*running = false;
		}
	}
	sup_events(sup, fds + n, nsup);
	sup_tick(sup);
	switch_dhcp_events(fds + n + nsup, ndhcp);
	switch_dhcp_tick();
	switches_events(fds + n + nsup + ndhcp, nsw);
	switches_tick();
	jobs_tick();
	return 0;
}

/* --worker-uids FIRST-LAST: 1 <= FIRST <= LAST < 4294967295, at most 2^20 of them. */
static int parse_uid_range(const char *s, struct options *o)
{
	const char *dash = strchr(s, '-');
	char first[16] = {0};

	if (!dash || dash - s >= (long)sizeof(first) ||
	    (memcpy(first, s, (size_t)(dash - s)),
	     parse_uint(first, 1, 0xfffffffe, &o->worker_uid_first)) ||
	    parse_uint(dash + 1, o->worker_uid_first, 0xfffffffe, &o->worker_uid_last) ||
	    o->worker_uid_last - o->worker_uid_first >= 1u << 20) {
		fprintf(stderr,
			"keeld: --worker-uids %s: expected FIRST-LAST, uids from 1 to 4294967294 "
			"with FIRST <= LAST, at most 1048576 of them\n",
			s);
		return -EINVAL;
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"state-dir", required_argument, NULL, 'd'},
		{"socket", required_argument, NULL, 's'},
		{"vmm", required_argument, NULL, 'm'},
		{"stop-timeout", required_argument, NULL, 't'},
		{"start-timeout", required_argument, NULL, 'T'},
		{"host-reserve", required_argument, NULL, 'R'},
		{"admin-group", required_argument, NULL, 'A'},
		{"viewer-group", required_argument, NULL, 'W'},
		{"worker-uids", required_argument, NULL, 'U'},
		{"freeze-timeout", required_argument, NULL, 'F'},
		{"debug", no_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	o->state_dir = getenv("KEEL_STATE_DIR") ? getenv("KEEL_STATE_DIR") : DEFAULT_STATE_DIR;
	o->socket = getenv("KEEL_SOCKET") ? getenv("KEEL_SOCKET") : DEFAULT_SOCKET;
	o->vmm = getenv("KEEL_VMM");
	o->stop_timeout_s = 60;
	o->start_timeout_s = 60;
	o->host_reserve = 512ull << 20;
	o->admin_group = "keel";
	o->viewer_group = "keel-viewers";
	o->worker_uid_first = DEFAULT_WORKER_UID_FIRST;
	o->worker_uid_last = DEFAULT_WORKER_UID_LAST;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->state_dir = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'm':
			o->vmm = optarg;
			break;
		case 't':
			if (parse_secs("--stop-timeout", optarg, &o->stop_timeout_s))
				return -EINVAL;
			break;
		case 'T':
			if (parse_secs("--start-timeout", optarg, &o->start_timeout_s))
				return -EINVAL;
			break;
		case 'F': {
			unsigned secs;

			if (parse_secs("--freeze-timeout", optarg, &secs))
				return -EINVAL;
			if (secs < 1 || secs > 600) {
				fprintf(stderr,
					"keeld: --freeze-timeout: %u s is not from 1 to 600 "
					"seconds\n",
					secs);
				return -EINVAL;
			}
			agent_freeze_timeout_ms = secs * 1000;
			break;
		}
		case 'R':
			if (parse_size(optarg, 1ull << 20, &o->host_reserve)) {
				log_err("--host-reserve %s: expected a size such as 512M or 2G",
					optarg);
				return -EINVAL;
			}
			break;
		case 'A':
			o->admin_group = optarg;
			break;
		case 'W':
			o->viewer_group = optarg;
			break;
		case 'U':
			if (parse_uid_range(optarg, o))
				return -EINVAL;
			break;
		case 'D':
			o->debug = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("keeld %s\n", KEEL_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "keeld: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	if (!o->state_dir[0] || !o->socket[0]) {
		fprintf(stderr, "keeld: the state directory and the socket path cannot be empty\n");
		return -EINVAL;
	}
	return 0;
}

/* keel-vmm: next to keeld when installed, in the build tree's src/vmm when run from it. */
static char *find_vmm(const char *given)
{
	static const char *const rel[] = {"keel-vmm", "../vmm/keel-vmm", "../../keel-vmm"};
	char self[PATH_MAX], cand[PATH_MAX + 32];
	ssize_t n;

	if (given) {
		char *r = realpath(given, NULL);
		return r ? r : strdup(given);
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *dir = dirname(self);
		for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
			snprintf(cand, sizeof(cand), "%s/%s", dir, rel[i]);
			if (access(cand, X_OK) == 0)
				return realpath(cand, NULL);
		}
	}
	if (access("/usr/libexec/keel/keel-vmm", X_OK) == 0)
		return strdup("/usr/libexec/keel/keel-vmm");
	return strdup("/usr/local/libexec/keel/keel-vmm");
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Bind the API socket: only administrators and viewers may connect (access_socket_perms),
 * and each request is judged again by who the kernel says the caller is (access.h). */
static int open_api_socket(const char *path)
{
	char dir[PATH_MAX];
	int fd, ret;

	snprintf(dir, sizeof(dir), "%s", path);
	ret = mkdir_p(dirname(dir), 0755);
	if (ret) {
		log_err("cannot create the directory of %s: %s", path, strerror(-ret));
		return ret;
	}
	fd = unix_listen(path, 64);
	if (fd == -EADDRINUSE)
		log_err("another keeld is already serving %s", path);
	else if (fd == -ENAMETOOLONG)
		log_err("API socket path %s is too long for a Unix socket", path);
	else if (fd == -EEXIST)
		log_err("cannot listen on %s: a file that is not a socket is in the way", path);
	else if (fd < 0)
		log_err("cannot listen on %s: %s", path, strerror(-fd));
	if (fd < 0)
		return fd;
	ret = access_socket_perms(path);
	if (ret) {
		log_err("cannot set the owner and mode of %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

static int lock_state_dir(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/keeld.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		log_err("state directory %s is in use by another keeld", dir);
		close(fd);
		return -EBUSY;
	}
	return fd;
}

/* Saved state left in checkpoint directories by a keeld that ended mid-checkpoint. */
static void sweep_checkpoints(struct store *store, struct sup *sup)
{
	struct ckpt_ctx cc = {.store = store, .sup = sup};
	struct vm_def *list = NULL;
	size_t n = 0;

	if (store_vm_list(store, &list, &n))
		return;
	for (size_t i = 0; i < n; i++)
		if (ckpt_sweep(&cc, &list[i]) < 0)
			log_warn("VM %s: cannot look for leftover checkpoint state", list[i].name);
	store_vm_list_free(list, n);
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct store *store = NULL;
	struct sup *sup = NULL;
	struct http *http = NULL;
	struct api_ctx api;
	struct sup_config sc;
	struct group *grp;
	char err[512], dbpath[PATH_MAX], *vmm = NULL, *state_dir = NULL;
	sigset_t mask;
	int sfd = -1, lsock = -1, lockfd = -1, ret = 1, rc;
	bool running = true, locked = false;

	if (parse_options(argc, argv, &o))
		return 2;
	log_init("keeld", o.debug ? LOG_DEBUG : LOG_INFO);
	umask(0027);
	signal(SIGPIPE, SIG_IGN);

	rc = mkdir_p(o.state_dir, 0750);
	if (rc) {
		log_err("cannot create state directory %s: %s", o.state_dir, strerror(-rc));
		goto out;
	}
	state_dir = realpath(o.state_dir, NULL);
	if (!state_dir) {
		log_err("state directory %s: %s", o.state_dir, strerror(errno));
		goto out;
	}
	access_init(o.admin_group, o.viewer_group);
	grp = getgrnam(o.admin_group);
	sc = (struct sup_config){
		.state_dir = state_dir,
		.have_group = grp != NULL,
		.group = grp ? grp->gr_gid : 0,
		.start_timeout_s = o.start_timeout_s ? o.start_timeout_s : 1,
		.host_reserve = o.host_reserve,
		.worker_uid_first = (uid_t)o.worker_uid_first,
		.worker_uids = (unsigned)(o.worker_uid_last - o.worker_uid_first + 1),
	};
	if (sc.have_group && chown(state_dir, (uid_t)-1, sc.group) < 0)
		log_warn("cannot give %s to group %s: %s", state_dir, o.admin_group,
			 strerror(errno));
	lockfd = lock_state_dir(state_dir);
	if (lockfd < 0)
		goto out;
	snprintf(dbpath, sizeof(dbpath), "%s/keel.db", state_dir);
	if (store_open(dbpath, &store, err, sizeof(err)) ||
	    pools_init(store, state_dir, err, sizeof(err)) ||
	    switches_init(store, state_dir, err, sizeof(err))) {
		log_err("%s", err);
		goto out;
	}
	vmm = find_vmm(o.vmm);
	if (!vmm)
		goto out;
	if (access(vmm, X_OK) < 0)
		log_warn("keel-vmm %s: %s; VMs cannot start until it is there (use --vmm)", vmm,
			 strerror(errno));
	sc.vmm_path = vmm;
	sc.store = store;
	if (sup_create(&sc, &sup))
		goto out;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		goto out;
	}

	/* keeld's lock (biglock.h) is held from here on but while the loop sleeps in poll. */
	keeld_lock();
	locked = true;
	sup_reattach_all(sup);
	vm_net_recover(store, sup);
	sweep_checkpoints(store, sup);
	lsock = open_api_socket(o.socket);
	if (lsock < 0)
		goto out;
	api = (struct api_ctx){.store = store, .sup = sup, .stop_timeout_s = o.stop_timeout_s};
	jobs_on_end(api_audit_job_end, &api);
	if (http_start(lsock, &api, &http))
		goto out;
	lsock = -1; /* MHD owns it now */
	log_info("keeld %s: state in %s, API on %s, keel-vmm %s", KEEL_VERSION, state_dir, o.socket,
		 vmm);
	sup_autostart(sup);
	if (agent_mon_start(sup, store))
		log_warn("cannot start the integration services' heartbeat thread");
	if (qos_mon_start(sup, store))
		log_warn("cannot start the storage QoS minimum-IOPS watch");

	ret = 0;
	while (running && serve_once(sup, sfd, host_exit_wait_ms(), &running) == 0) {
		/* After the host's shutdown (keel host shutdown) keeld's work is done. */
		if (host_exit_due(&ret)) {
			log_info("the host shutdown is done (%s): exiting",
				 ret ? "some VMs still ran" : "no VM runs");
			break;
		}
	}
out:
	if (locked) {
		events_shutdown(); /* long-polls return at once */
		/* Running jobs (a save, a host shutdown) finish first, for a while, with the
		 * workers still supervised (a job may wait for one to end); no new one starts.
		 * One still running after that stays blocked on keeld's lock, which this
		 * thread takes back below and never lets go, until the process ends. */
		long long until = clock_mono_ms() + KEELD_EXIT_JOB_WAIT_S * 1000LL;

		long long said = 0;

		jobs_refuse();
		/* Jobs that must finish (checkpoints, backups) are waited for however long
		 * they take: keeld gone in the middle would leave their VM stopped, its
		 * memory saved for nothing. */
		while ((jobs_running(true) || (jobs_running(false) && clock_mono_ms() < until)) &&
		       serve_once(sup, sfd, 100, NULL) == 0) {
			if (jobs_running(true) && clock_mono_ms() - said > 30000) {
				char names[512];

				jobs_running_names(true, names, sizeof(names));
				log_info("exiting: waiting for %zu job(s) that must finish: %s",
					 jobs_running(true), names);
				said = clock_mono_ms();
			}
		}
		if (jobs_running(false))
			log_warn("exiting with jobs still running (see the VMs' states when keeld "
				 "starts again)");
		keeld_unlock(); /* requests in progress finish before http_stop returns */
	}
	http_stop(http);
	if (locked)
		keeld_lock();
	if (lsock >= 0)
		close(lsock);
	if (http || ret == 0)
		unlink(o.socket);
	if (sfd >= 0)
		close(sfd);
	switches_shutdown();
	sup_destroy(sup);
	store_close(store);
	if (lockfd >= 0)
		close(lockfd);
	free(vmm);
	free(state_dir);
	return ret;
}
