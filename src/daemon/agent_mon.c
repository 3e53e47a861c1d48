/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/agent_mon.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/agent_stop.h"
#include "daemon/biglock.h"
#include "daemon/sup.h"
#include "daemon/vcpu_judge.h"
#include "daemon/vcpu_progress.h"
#include "lib/agent_client.h"
#include "lib/clock.h"
#include "lib/log.h"

#define AGENT_MON_MAX_VMS 1024
/* Time sync: the guest's clock is set from the host's at each connection (a VM that runs
 * again after a pause, a restore or a keeld restart gets a new one: Hyper-V's hard sync), and
 * sampled every TIME_SAMPLE_PINGS pings; set again when it is off by more than TIME_MAX_US. */
#define TIME_SAMPLE_PINGS 10
#define TIME_MAX_US	  10000
/* The worker's answer to "vcpu-stats" (the heartbeat thread waits, never keeld's lock). */
#define STATS_CALL_MS 500
/* Counters still for this long: ask the worker again, once per stall (a reset or a restore in
 * the same worker made new vCPUs, and the old fds count no more). */
#define STATS_REFRESH_MS 1000

/* One followed VM. Its thread owns conn; the rest is read and written under mon_lock. */
struct mon_vm {
	char uuid[VMDEF_UUID_LEN + 1];
	char vsock[512];
	char ctl[512];	   /* the worker's control socket */
	bool wanted;	   /* the VM still runs: the thread goes on */
	bool done;	   /* the thread ended: the manager frees the record */
	bool ever_contact; /* hello succeeded since this worker started */
	uint32_t disabled; /* the services turned off for the VM (the store's, via the manager) */
	long long last_pong_ms;
	pid_t pid;		 /* the worker (the manager's, from sup) */
	struct vcpu_judge judge; /* the guest's progress (samples from struct mon_probe) */
	struct agent_status st;
	/* The worker's vCPU statistics fds (or none) and the worker that ended (its fds must
	 * not be kept: each holds its VM, whose kernel threads stay in the VM's cgroup until
	 * the last is closed), under stats_lock: the thread reads them, and sup closes them
	 * when the worker ends (agent_mon_worker_ended). Lock order: mon_lock, stats_lock. */
	pthread_mutex_t stats_lock;
	struct vcpu_stats stats;
	pid_t ended_pid;
};

/* What the manager reads, with keeld's lock. */
struct mon_ctx {
	struct sup *sup;
	struct store *store;
};

/* mon_lock protects mon_vms and every record's fields but conn (a leaf lock), and
 * mon_kicked: a VM began to run (agent_mon_kick), the manager follows it at once. */
static pthread_mutex_t mon_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mon_kick_cond;
static bool mon_kicked;
static struct mon_vm *mon_vms[AGENT_MON_MAX_VMS];
static size_t mon_nvms;

static void mon_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait up to ms for the connection on fd (or -1: none) to be hung up: true when it was (the
 * worker dropped it: the transport reset of a resume or a restore, or the agent went). */
static bool mon_wait_hangup(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};
	long long until = clock_mono_ms() + ms;

	if (fd < 0) {
		mon_sleep_ms(ms);
		return false;
	}
	for (;;) {
		int r = poll(&p, 1, ms), left;

		if (r > 0)
			return true; /* POLLRDHUP, POLLHUP or POLLERR */
		left = (int)(until - clock_mono_ms());
		if ((r < 0 && errno != EINTR) || left <= 0)
			return false;
		ms = left;
	}
}

/* Called with mon_lock held. */
static void mon_update(struct mon_vm *v)
{
	long long now = clock_mono_ms(), still;

	if (v->ever_contact && now - v->last_pong_ms < AGENT_MON_LOST_MS)
		v->st.heartbeat = AGENT_HEARTBEAT_OK;
	else if (v->ever_contact)
		v->st.heartbeat = AGENT_HEARTBEAT_LOST;
	else
		v->st.heartbeat = AGENT_HEARTBEAT_NONE;
	v->st.vcpus = NULL;
	if (strcmp(v->st.heartbeat, AGENT_HEARTBEAT_OK) && vcpu_judge_still(&v->judge, now, &still))
		v->st.vcpus = still < AGENT_MON_LOST_MS ? AGENT_VCPUS_RUNNING : AGENT_VCPUS_STALLED;
}

/* How a heartbeat thread sees the guest's progress (vcpu_progress.h); the thread's own. */
struct mon_probe {
	struct vcpu_stats fresh; /* a new set being asked for (the set in use: mon_vm's) */
	pid_t pid;		 /* the worker they belong to */
	bool fallback;		 /* the worker has none: schedstat for good */
	bool logged;		 /* the source was logged for this worker */
	bool refreshed;		 /* asked again during the current stall */
	bool new_set;		 /* a new set of fds came: the judge forgets the old one */
	bool stats_base, inj_base, sched_base; /* the last values below were read */
	uint64_t last_stats, last_inj, last_sched;
	bool answered; /* the agent answered in the last round (before this sample) */
};

/* The change of a signal read (or not) now against the last reading. */
static enum vcpu_delta mon_delta(bool have, uint64_t value, bool *base, uint64_t *last)
{
	enum vcpu_delta d = !have	     ? VCPU_UNKNOWN
			    : !*base	     ? VCPU_BASE
			    : value != *last ? VCPU_GREW
					     : VCPU_FLAT;

	*base = have;
	*last = value;
	return d;
}

/* One progress sample of worker pid into *r (both signals), taken without mon_lock (the
 * worker may be asked for its stats fds). stats_still_ms: how long the counters have not
 * moved. */
static void mon_sample(struct mon_vm *v, struct mon_probe *p, pid_t pid, const char *ctl,
		       long long stats_still_ms, struct vcpu_round *r)
{
	char err[256] = "";
	uint64_t value = 0, injected = 0;
	bool refresh, have, ended;
	unsigned n;

	pthread_mutex_lock(&v->stats_lock);
	if (pid != p->pid) {
		vcpu_stats_close(&v->stats);
		p->pid = pid;
		p->fallback = p->logged = p->stats_base = p->inj_base = p->sched_base = false;
		p->answered = false;
	}
	ended = pid > 0 && pid == v->ended_pid; /* its fds are closed: ask it for none */
	n = v->stats.n;
	pthread_mutex_unlock(&v->stats_lock);
	/* Counters still for a while: ask once per stall whether the worker has new vCPUs (a
	 * reset or a restore rebuilt them); a worker that does not answer keeps the old fds. */
	if (stats_still_ms < STATS_REFRESH_MS)
		p->refreshed = false;
	refresh = n && stats_still_ms >= STATS_REFRESH_MS && !p->refreshed;
	if (pid > 0 && !ended && !p->fallback && (!n || refresh)) {
		int rc = vcpu_stats_get(ctl, &p->fresh, STATS_CALL_MS, err, sizeof(err));

		p->refreshed = p->refreshed || refresh;
		pthread_mutex_lock(&v->stats_lock);
		if (!rc && v->ended_pid == pid) {
			vcpu_stats_close(&p->fresh); /* it ended while it answered */
		} else if (!rc && vcpu_stats_same(&v->stats, &p->fresh)) {
			vcpu_stats_close(&p->fresh); /* the same vCPUs: what was learnt holds */
		} else if (!rc) {
			vcpu_stats_close(&v->stats);
			v->stats = p->fresh; /* the fds move over */
			p->fresh.n = 0;
			p->new_set = true;
			p->stats_base = p->inj_base = false;
		}
		p->fallback = rc == -ENOTSUP && !v->stats.n;
		pthread_mutex_unlock(&v->stats_lock);
	}
	pthread_mutex_lock(&v->stats_lock);
	if (v->stats.n && vcpu_stats_sum(&v->stats, &value, &injected)) {
		snprintf(err, sizeof(err), "reading the vCPU statistics failed");
		vcpu_stats_close(&v->stats);
	}
	have = v->stats.n > 0;
	pthread_mutex_unlock(&v->stats_lock);
	r->stats = mon_delta(have, value, &p->stats_base, &p->last_stats);
	r->injected = mon_delta(have, injected, &p->inj_base, &p->last_inj);
	if (!p->logged && (have || p->fallback)) {
		p->logged = true;
		if (have)
			log_info("VM %s: a hung guest is told by its vCPUs' interrupts (KVM "
				 "statistics: %s) once they are seen to count while the agent "
				 "answers, else by its vCPU threads' CPU time",
				 v->uuid, KVM_STATS_COUNTERS);
		else
			log_info(
				"VM %s: a hung guest is told by its vCPU threads' CPU time "
				"(schedstat; a guest spinning with interrupts off looks alive): %s",
				v->uuid, err);
	}
	have = !vcpu_run_ns("/proc", pid, &value);
	r->sched = mon_delta(have, value, &p->sched_base, &p->last_sched);
	r->answered = p->answered;
}

/* Record a sample (the heartbeat's "agent gone" or "guest hung"). Under mon_lock. */
static void mon_vcpus(struct mon_vm *v, struct mon_probe *p, const struct vcpu_round *r)
{
	bool blind = v->judge.blind;

	if (p->new_set)
		vcpu_judge_new_stats(&v->judge);
	p->new_set = false;
	vcpu_judge_round(&v->judge, r, clock_mono_ms());
	if (v->judge.blind && !blind)
		log_info("VM %s: its vCPUs' interrupt counters stood still while the agent "
			 "answered (interrupts the CPU posts itself: APICv, AVIC); a hung guest is "
			 "told by its vCPU threads' CPU time",
			 v->uuid);
}

static int64_t realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Set the guest's clock to the host's (half the last round trip ahead). */
static int mon_time_set(struct agent_conn *c, int64_t ahead_us, char *err, size_t errlen)
{
	agent_begin(c, AP_T_TIME_SET);
	ap_put_u64(&c->out, AP_A_TIME_NS, (uint64_t)(realtime_us() + ahead_us) * 1000);
	return agent_call(c, AGENT_MON_TIMEOUT_MS, err, errlen);
}

/* Sample the guest's clock: *offset_us is guest minus host at the middle of the round trip. */
static int mon_time_sample(struct agent_conn *c, int64_t *offset_us, int64_t *rtt_us, char *err,
			   size_t errlen)
{
	int64_t t0 = realtime_us(), t1;
	uint64_t guest_ns;
	int r;

	agent_begin(c, AP_T_TIME_GET);
	r = agent_call(c, AGENT_MON_TIMEOUT_MS, err, errlen);
	t1 = realtime_us();
	if (r)
		return r;
	if (ap_get_u64(&c->msg, AP_A_TIME_NS, &guest_ns)) {
		snprintf(err, errlen, "the agent's time-get has no time");
		return -EPROTO;
	}
	*rtt_us = t1 - t0;
	*offset_us = (int64_t)(guest_ns / 1000) - (t0 + t1) / 2;
	return 0;
}

/* Whether the VM has service on and its agent offers it. */
static bool mon_service(struct mon_vm *v, const struct agent_conn *c, unsigned service)
{
	uint32_t disabled;

	pthread_mutex_lock(&mon_lock);
	disabled = v->disabled;
	pthread_mutex_unlock(&mon_lock);
	return (c->services & 1u << service) && !(disabled & 1u << service);
}

/* The guest's addresses, from its KVP facts (NetworkAddressIPv4 and IPv6), for `keel vm
 * show`: 0, or -errno of a connection that broke. */
static int mon_addresses(struct mon_vm *v, struct agent_conn *c, char *err, size_t errlen)
{
	static const char *const keys[] = {"NetworkAddressIPv4", "NetworkAddressIPv6"};
	char addrs[sizeof(v->st.addresses)] = "";

	if (!mon_service(v, c, AP_S_KVP))
		return 0;
	for (size_t i = 0; i < 2; i++) {
		const char *val;
		size_t len = strlen(addrs);
		int r;

		agent_begin(c, AP_T_KVP_GET);
		ap_put_u32(&c->out, AP_A_POOL, AP_POOL_AUTO);
		ap_put_str(&c->out, AP_A_KEY, keys[i]);
		r = agent_call(c, AGENT_MON_TIMEOUT_MS, err, errlen);
		if (r == -ENOENT)
			continue;
		if (r)
			return r;
		val = ap_get_str(&c->msg, AP_A_VALUE);
		if (val && val[0])
			snprintf(addrs + len, sizeof(addrs) - len, "%s%s", len ? "," : "", val);
	}
	log_text_safe(addrs, strlen(addrs), false); /* the guest's text: shown by keel vm show */
	pthread_mutex_lock(&mon_lock);
	memcpy(v->st.addresses, addrs, sizeof(addrs));
	pthread_mutex_unlock(&mon_lock);
	return 0;
}

/* The time service, when the agent offers it and the VM has it on: 0, or -errno of a
 * connection that broke. A refusal (a guest without CAP_SYS_TIME...) is only recorded. */
static int mon_time(struct mon_vm *v, struct agent_conn *c, bool connected_now, bool sample,
		    char *err, size_t errlen)
{
	int64_t offset = 0, rtt = 0;
	int r = 0;

	if (!mon_service(v, c, AP_S_TIME))
		return 0;
	if (connected_now) {
		r = mon_time_set(c, 0, err, errlen);
	} else if (sample) {
		r = mon_time_sample(c, &offset, &rtt, err, errlen);
		pthread_mutex_lock(&mon_lock);
		v->st.clock_offset_us = offset;
		v->st.clock_sampled = !r; /* what the sample saw, before any set it leads to */
		pthread_mutex_unlock(&mon_lock);
		if (!r && (offset > TIME_MAX_US || offset < -TIME_MAX_US))
			r = mon_time_set(c, rtt / 2, err, errlen);
	}
	if (r == -ETIMEDOUT || r == -EPIPE || r == -EPROTO || r == -ECONNRESET)
		return r;
	if (r)
		log_warn("VM %s: time sync: %s", v->uuid, err);
	return 0;
}

static void *mon_vm_thread(void *arg)
{
	struct agent_conn *conn = malloc(sizeof(*conn)); /* 140 KiB: not on the stack */
	struct mon_probe *probe = calloc(1, sizeof(*probe));
	struct mon_vm *v = arg;
	unsigned rounds = 0;
	char err[256];

	if (!conn || !probe) {
		free(conn);
		free(probe);
		pthread_mutex_lock(&mon_lock);
		v->done = true;
		pthread_mutex_unlock(&mon_lock);
		return NULL;
	}
	conn->fd = -1;
	for (;;) {
		long long started = clock_mono_ms(), stats_still;
		bool wanted, connected_now = false, answered = false;
		char ctl[sizeof(v->ctl)];
		struct vcpu_round round;
		pid_t pid;
		int r;

		pthread_mutex_lock(&mon_lock);
		wanted = v->wanted;
		pid = v->pid;
		memcpy(ctl, v->ctl, sizeof(ctl));
		stats_still = v->judge.stats_known ? started - v->judge.stats_moved_ms : 0;
		pthread_mutex_unlock(&mon_lock);
		if (!wanted)
			break;
		mon_sample(v, probe, pid, ctl, stats_still, &round);
		err[0] = '\0';
		if (conn->fd < 0) {
			r = agent_open(conn, v->vsock, AGENT_MON_TIMEOUT_MS, err, sizeof(err));
			pthread_mutex_lock(&mon_lock);
			if (!r) {
				if (!v->ever_contact)
					log_info("VM %s: keel-agent %s answers", v->uuid,
						 conn->agent_version);
				v->ever_contact = true;
				connected_now = answered = true;
				v->last_pong_ms = clock_mono_ms();
				v->st.connected = true;
				v->st.clock_sampled = false; /* a new agent: no sample of it yet */
				v->st.services = conn->services;
				snprintf(v->st.agent_version, sizeof(v->st.agent_version), "%s",
					 conn->agent_version);
			}
		} else {
			bool refused;

			agent_begin(conn, AP_T_PING);
			r = agent_call(conn, AGENT_MON_TIMEOUT_MS, err, sizeof(err));
			/* A ping the agent refuses (heartbeat disabled in the guest) is no pong,
			 * but the connection is sound: connecting again each round set the guest's
			 * clock each time (a step every two seconds). */
			refused = r && (conn->msg.flags & AP_F_ERROR) &&
				  conn->msg.id == conn->last_id && conn->msg.type == AP_T_PING;
			if (r && !refused)
				agent_close(conn);
			pthread_mutex_lock(&mon_lock);
			if (!r)
				v->last_pong_ms = clock_mono_ms();
			answered = !r || refused; /* the guest took the ping either way */
			if (r && !refused)
				v->st.connected = false;
		}
		snprintf(v->st.last_error, sizeof(v->st.last_error), "%s", err);
		if (pid == v->pid)
			mon_vcpus(v, probe, &round);
		probe->answered = answered;
		mon_update(v);
		pthread_mutex_unlock(&mon_lock);
		if (conn->fd >= 0) {
			bool sample = connected_now || ++rounds % TIME_SAMPLE_PINGS == 0;

			if (mon_time(v, conn, connected_now, sample, err, sizeof(err)) ||
			    (sample && mon_addresses(v, conn, err, sizeof(err))))
				agent_close(conn); /* the next round connects again */
		}
		r = (int)(AGENT_MON_PERIOD_MS - (clock_mono_ms() - started));
		if (r > 0 && mon_wait_hangup(conn->fd, r)) {
			/* Connect again at once (the agent still listens after a transport
			 * reset), yet not more than AGENT_MON_REDIAL_MS after the last round. */
			agent_close(conn);
			pthread_mutex_lock(&mon_lock);
			v->st.connected = false;
			pthread_mutex_unlock(&mon_lock);
			r = (int)(AGENT_MON_REDIAL_MS - (clock_mono_ms() - started));
			if (r > 0)
				mon_sleep_ms(r);
		}
	}
	agent_close(conn);
	free(conn);
	pthread_mutex_lock(&v->stats_lock);
	vcpu_stats_close(&v->stats);
	pthread_mutex_unlock(&v->stats_lock);
	free(probe);
	pthread_mutex_lock(&mon_lock);
	v->done = true;
	pthread_mutex_unlock(&mon_lock);
	return NULL;
}

/* Follow exactly the VMs in uuids (with their vsock paths): start threads for new ones, let
 * the others' threads end, free the records of those that ended. Under mon_lock. */
static void mon_sync(char (*uuids)[VMDEF_UUID_LEN + 1], char (*paths)[512], char (*ctls)[512],
		     const uint32_t *disabled, const pid_t *pids, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < mon_nvms; i++) {
		bool keep = false;

		for (size_t j = 0; j < n && !keep; j++) {
			keep = !strcmp(mon_vms[i]->uuid, uuids[j]);
			if (keep) {
				mon_vms[i]->disabled = disabled[j];
				if (mon_vms[i]->pid != pids[j]) /* a new worker */
					vcpu_judge_reset(&mon_vms[i]->judge);
				mon_vms[i]->pid = pids[j];
				memcpy(mon_vms[i]->ctl, ctls[j], sizeof(mon_vms[i]->ctl));
			}
		}
		if (!keep)
			mon_vms[i]->wanted = false;
		if (mon_vms[i]->done) {
			pthread_mutex_destroy(&mon_vms[i]->stats_lock);
			free(mon_vms[i]);
		} else
			mon_vms[k++] = mon_vms[i];
	}
	mon_nvms = k;
	for (size_t j = 0; j < n; j++) {
		struct mon_vm *v = NULL;
		pthread_attr_t attr;
		pthread_t t;

		for (size_t i = 0; i < mon_nvms && !v; i++)
			if (!strcmp(mon_vms[i]->uuid, uuids[j]) && mon_vms[i]->wanted)
				v = mon_vms[i];
		if (v || mon_nvms == AGENT_MON_MAX_VMS)
			continue;
		v = calloc(1, sizeof(*v));
		if (!v)
			continue;
		/* Both NUL-terminated within the same sizes (the manager made them). */
		memcpy(v->uuid, uuids[j], sizeof(v->uuid));
		memcpy(v->vsock, paths[j], sizeof(v->vsock));
		memcpy(v->ctl, ctls[j], sizeof(v->ctl));
		v->wanted = true;
		v->disabled = disabled[j];
		v->pid = pids[j];
		pthread_mutex_init(&v->stats_lock, NULL);
		mon_update(v);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, mon_vm_thread, v)) {
			pthread_mutex_destroy(&v->stats_lock);
			free(v);
		} else {
			mon_vms[mon_nvms++] = v;
		}
		pthread_attr_destroy(&attr);
	}
}

static void *mon_manager(void *arg)
{
	static char uuids[AGENT_MON_MAX_VMS][VMDEF_UUID_LEN + 1];
	static char paths[AGENT_MON_MAX_VMS][512];
	static char ctls[AGENT_MON_MAX_VMS][512];
	static uint32_t disabled[AGENT_MON_MAX_VMS];
	static pid_t pids[AGENT_MON_MAX_VMS];
	struct mon_ctx *m = arg;

	for (;;) {
		struct sup_status st;
		size_t n;

		keeld_lock();
		n = sup_running_vms(m->sup, uuids, AGENT_MON_MAX_VMS);
		for (size_t i = 0; i < n; i++) {
			if (store_integration_disabled(m->store, uuids[i], &disabled[i]))
				disabled[i] = 0;
			if (agent_vsock_path(m->sup, uuids[i], paths[i], sizeof(paths[i])))
				paths[i][0] = '\0';
			if (sup_vm_dir(m->sup, uuids[i], ctls[i], sizeof(ctls[i])) ||
			    strlen(ctls[i]) + sizeof("/control.sock") > sizeof(ctls[i]))
				ctls[i][0] = '\0';
			else
				strcat(ctls[i], "/control.sock");
			sup_status(m->sup, uuids[i], &st);
			pids[i] = st.pid;
		}
		keeld_unlock();
		pthread_mutex_lock(&mon_lock);
		mon_sync(uuids, paths, ctls, disabled, pids, n);
		if (!mon_kicked) {
			struct timespec until;

			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += (long)AGENT_MON_PERIOD_MS / 4 * 1000000;
			until.tv_sec += until.tv_nsec / 1000000000;
			until.tv_nsec %= 1000000000;
			while (!mon_kicked && pthread_cond_timedwait(&mon_kick_cond, &mon_lock,
								     &until) != ETIMEDOUT)
				;
		}
		mon_kicked = false;
		pthread_mutex_unlock(&mon_lock);
	}
	return NULL;
}

int agent_mon_start(struct sup *sup, struct store *store)
{
	static struct mon_ctx m;
	pthread_condattr_t cattr;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	m.sup = sup;
	m.store = store;
	r = -pthread_condattr_init(&cattr);
	r = r ?: -pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	r = r ?: -pthread_cond_init(&mon_kick_cond, &cattr);
	pthread_condattr_destroy(&cattr);
	if (r)
		return r;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&t, &attr, mon_manager, &m);
	pthread_attr_destroy(&attr);
	return r;
}

void agent_mon_kick(void)
{
	pthread_mutex_lock(&mon_lock);
	mon_kicked = true;
	pthread_cond_signal(&mon_kick_cond);
	pthread_mutex_unlock(&mon_lock);
}

void agent_mon_status(const char *uuid, struct agent_status *out)
{
	memset(out, 0, sizeof(*out));
	out->heartbeat = AGENT_HEARTBEAT_NONE;
	pthread_mutex_lock(&mon_lock);
	for (size_t i = 0; i < mon_nvms; i++) {
		if (strcmp(mon_vms[i]->uuid, uuid) || !mon_vms[i]->wanted)
			continue;
		mon_update(mon_vms[i]);
		*out = mon_vms[i]->st;
		break;
	}
	pthread_mutex_unlock(&mon_lock);
}

void agent_mon_worker_ended(const char *uuid, pid_t pid)
{
	pthread_mutex_lock(&mon_lock);
	for (size_t i = 0; i < mon_nvms; i++) {
		struct mon_vm *v = mon_vms[i];

		if (strcmp(v->uuid, uuid))
			continue;
		pthread_mutex_lock(&v->stats_lock);
		v->ended_pid = pid;
		vcpu_stats_close(&v->stats);
		pthread_mutex_unlock(&v->stats_lock);
	}
	pthread_mutex_unlock(&mon_lock);
}
