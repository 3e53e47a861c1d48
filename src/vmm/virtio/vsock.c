/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (vsock.h): receiveq 0 carries packets to the guest, transmitq 1 the guest's,
 * eventq 2 TRANSPORT_RESET. Everything runs on the device's I/O thread under vd->lock: the
 * guest's packets, the host sockets (the listener, each connection, a timer for deadlines)
 * and the packets owed to the guest. The rules of one connection are vsock_conn.c's.
 *
 * Bounded work for a hostile guest or host:
 *   - the device never holds a chain: a receive chain is taken only with a packet to put
 *     in it (else put back), so a pause or save never waits for one (docs/state.md);
 *   - each connection buffers at most VSOCK_BUF_ALLOC bytes of guest data (the credit it
 *     advertised; a guest that sends beyond it is reset), and host data is read only into
 *     a receive chain the guest posted, within the credit the guest gave;
 *   - control packets a connection owes are flags, not a queue; RSTs for packets that
 *     match no connection wait in a ring of VSOCK_MAX_RSTS, and while it is full the
 *     transmit queue is not read (the guest must take its receive packets first);
 *   - a host fd is in the I/O thread's epoll set only while the device can act on it (a
 *     level-triggered hang-up it cannot act on would wake the thread for ever), and a
 *     round of the receive pump sends at most VSOCK_PUMP_BUDGET packets.
 */
#include "vmm/virtio/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/vmdef_device.h"
#include "lib/clock.h"
#include "lib/le.h"
#include "lib/log.h"
#include "lib/unix_socket.h"
#include "vmm/device.h"
#include "vmm/jail.h"
#include "vmm/jail_prep.h"
#include "vmm/machine.h"
#include "vmm/state.h"
#include "vmm/virtio/state.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/vsock_conn.h"

#define VSOCK_QUEUE_SIZE	    256
#define VSOCK_RXQ		    0
#define VSOCK_TXQ		    1
#define VSOCK_EVQ		    2
#define VSOCK_CFG_SIZE		    8 /* le64 guest_cid */
#define VSOCK_MAX_RSTS		    64
#define VSOCK_PUMP_BUDGET	    256
#define VSOCK_TICK_MS		    250
#define VSOCK_ACCEPT_BATCH	    16
#define VSOCK_EVENT_TRANSPORT_RESET 0
#define STATE_VSOCK_VERSION	    1u

static struct log_ratelimit vsock_rl = LOG_RATELIMIT_INIT(5000, 5);

/* One connection and its host socket. */
struct vsock_host {
	struct vsock_conn c;
	int fd;		/* -1: closed (a RST may still be owed to the guest) */
	uint32_t watch; /* the events the I/O thread's epoll has for fd (0: not in it) */
	bool readable;	/* the host sent data the device has not read yet */
	bool host_eof;	/* the host will send no more */
	bool shut_wr;	/* the host was told the guest sends no more */
	uint8_t *buf;	/* guest data not yet forwarded (a ring of VSOCK_BUF_ALLOC) */
	char line[VSOCK_CONNECT_LINE_MAX];
	unsigned line_len;
};

struct virtio_vsock {
	struct virtio_dev *vd;
	struct machine *m;
	uint32_t cid;
	char path[VMDEF_VSOCK_SOCKET_MAX + 1];
	int listen_fd, timer_fd;
	bool timer_armed;
	bool listen_off; /* accept had no descriptor: the listener waits for the next tick */
	bool rx_starved; /* the guest had no receive buffers: read no host socket */
	bool tx_blocked; /* the RST ring was full: the transmit queue waits */
	bool reset_owed; /* TRANSPORT_RESET to send on the event queue */
	uint32_t next_port;
	unsigned rr; /* the pump's round-robin start */
	unsigned nrst;
	struct vsock_hdr rsts[VSOCK_MAX_RSTS];
	struct vsock_host conns[VSOCK_MAX_CONNS];
	struct vq_chain chain; /* under vd->lock */
	uint8_t bounce[VSOCK_MAX_PAYLOAD];
};

/* ---- host sockets ---- */

static bool conn_may_read(const struct virtio_vsock *v, const struct vsock_host *h)
{
	return h->c.state == VSOCK_ESTABLISHED && h->fd >= 0 && !h->host_eof &&
	       !(h->c.pending & VSOCK_OWE_RST) && !(h->c.peer_shutdown & VSOCK_SHUTDOWN_RCV) &&
	       vsock_conn_credit(&h->c) > 0;
}

/* The events the device can act on for h's socket now. */
static uint32_t conn_wants(const struct virtio_vsock *v, const struct vsock_host *h)
{
	uint32_t ev = 0;

	if (h->fd < 0)
		return 0;
	if (h->c.state == VSOCK_HOST_LINE)
		return EPOLLIN;
	if (!h->readable && !v->rx_starved && conn_may_read(v, h))
		ev |= EPOLLIN;
	if (h->c.state == VSOCK_ESTABLISHED && vsock_conn_buffered(&h->c))
		ev |= EPOLLOUT;
	return ev;
}

static void host_close(struct vsock_host *h)
{
	if (h->fd >= 0)
		close(h->fd); /* leaves the epoll set with it */
	h->fd = -1;
	h->watch = 0;
	h->readable = false;
	free(h->buf);
	h->buf = NULL;
}

static void conn_free(struct vsock_host *h)
{
	host_close(h);
	*h = (struct vsock_host){.fd = -1};
}

/* Tell the guest the connection is gone (when it knows of it) and drop the host side. */
static void conn_rst(struct vsock_host *h)
{
	if (h->c.state == VSOCK_HOST_LINE ||
	    (h->c.state == VSOCK_CONNECTING && (h->c.pending & VSOCK_OWE_REQUEST))) {
		conn_free(h);
		return;
	}
	host_close(h);
	h->c.pending = VSOCK_OWE_RST;
	h->c.deadline_ms = 0;
}

static void conn_watch(struct virtio_vsock *v, struct vsock_host *h)
{
	uint32_t want = conn_wants(v, h);
	int r;

	if (h->fd < 0 || want == h->watch)
		return;
	if (!want)
		r = virtio_dev_unwatch(v->vd, h->fd);
	else if (!h->watch)
		r = virtio_dev_watch(v->vd, h->fd, want);
	else
		r = virtio_dev_watch_mod(v->vd, h->fd, want);
	if (r) {
		log_warn_ratelimited(&vsock_rl, "virtio-vsock: cannot watch a connection: %s",
				     strerror(-r));
		conn_rst(h);
		return;
	}
	h->watch = want;
}

static void watch_all(struct virtio_vsock *v)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (v->conns[i].c.state != VSOCK_FREE)
			conn_watch(v, &v->conns[i]);
}

/* Arm the deadline timer while a connection has a deadline or the listener waits to be
 * watched again, disarm it when neither. I/O thread only (drop_all). */
static void timer_update(struct virtio_vsock *v)
{
	struct itimerspec its = {{0, VSOCK_TICK_MS * 1000000L}, {0, VSOCK_TICK_MS * 1000000L}};
	bool want = v->listen_off;

	for (unsigned i = 0; i < VSOCK_MAX_CONNS && !want; i++)
		want = v->conns[i].c.state != VSOCK_FREE && v->conns[i].c.deadline_ms;
	if (want == v->timer_armed)
		return;
	if (!want)
		its = (struct itimerspec){{0, 0}, {0, 0}};
	if (timerfd_settime(v->timer_fd, 0, &its, NULL)) {
		log_warn_ratelimited(&vsock_rl, "virtio-vsock: timerfd_settime: %s",
				     strerror(errno));
		return;
	}
	v->timer_armed = want;
}

/* Hand buffered guest data to the host; then the shutdowns that were waiting for it. */
static void conn_flush(struct virtio_vsock *v, struct vsock_host *h)
{
	struct vsock_conn *c = &h->c;

	while (h->fd >= 0 && vsock_conn_buffered(c)) {
		uint32_t off = c->fwd_cnt % VSOCK_BUF_ALLOC, n = vsock_conn_buffered(c);
		ssize_t w;

		if (n > VSOCK_BUF_ALLOC - off)
			n = VSOCK_BUF_ALLOC - off;
		w = send(h->fd, h->buf + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (w <= 0) {
			conn_rst(h); /* the host went away */
			return;
		}
		vsock_conn_forwarded(c, (uint32_t)w);
	}
	if (h->fd < 0 || vsock_conn_buffered(c))
		return;
	if ((c->peer_shutdown & VSOCK_SHUTDOWN_SEND) && !h->shut_wr) {
		shutdown(h->fd, SHUT_WR);
		h->shut_wr = true;
	}
	/* The guest closed (both directions) and the host has all it sent: Linux waits for
	 * this RST to finish its close. */
	if (c->peer_shutdown == VSOCK_SHUTDOWN_BOTH)
		conn_rst(h);
}

static struct vsock_host *conn_find(struct virtio_vsock *v, uint32_t host_port, uint32_t guest_port)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_host *h = &v->conns[i];

		if (h->c.state != VSOCK_FREE && h->c.state != VSOCK_HOST_LINE &&
		    h->c.host_port == host_port && h->c.guest_port == guest_port)
			return h;
	}
	return NULL;
}

static struct vsock_host *conn_slot(struct virtio_vsock *v)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (v->conns[i].c.state == VSOCK_FREE)
			return &v->conns[i];
	return NULL;
}

/* ---- the guest's packets ---- */

static void queue_rst(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	if (v->nrst < VSOCK_MAX_RSTS)
		vsock_rst_for(h, &v->rsts[v->nrst++]);
}

/* A guest connect to the host's port h->dst_port: connect to PATH_<port> in the jail. */
static void guest_connect(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	char host[sizeof(((struct sockaddr_un *)0)->sun_path)], path[sizeof(host) + 16];
	struct vsock_host *n = conn_slot(v);
	int fd;

	if (!n || jail_path(v->path, host, sizeof(host)) ||
	    snprintf(path, sizeof(path), "%s_%u", host, h->dst_port) >= (int)sizeof(host)) {
		queue_rst(v, h);
		return;
	}
	fd = unix_connect_now(path);
	if (fd < 0) {
		log_debug("virtio-vsock: guest connect to port %u: %s: %s", h->dst_port, path,
			  strerror(-fd));
		queue_rst(v, h); /* nobody listens (or the backlog is full) */
		return;
	}
	*n = (struct vsock_host){
		.fd = fd,
		.c = {.state = VSOCK_ESTABLISHED,
		      .host_port = h->dst_port,
		      .guest_port = h->src_port,
		      .pending = VSOCK_OWE_RESPONSE,
		      .peer_buf_alloc = h->buf_alloc,
		      .peer_fwd_cnt = h->fwd_cnt},
	};
	conn_watch(v, n);
}

static void conn_data(struct virtio_vsock *v, struct vsock_host *h, const struct vsock_hdr *hdr)
{
	struct vsock_conn *c = &h->c;
	uint32_t off = c->rx_cnt % VSOCK_BUF_ALLOC, first = hdr->len;

	if (h->fd < 0)
		return; /* a RST is on its way: drop it */
	if (!h->buf) {
		h->buf = malloc(VSOCK_BUF_ALLOC);
		if (!h->buf) {
			conn_rst(h);
			return;
		}
	}
	if (first > VSOCK_BUF_ALLOC - off)
		first = VSOCK_BUF_ALLOC - off;
	vq_chain_read(&v->chain, VSOCK_HDR_SIZE, h->buf + off, first);
	vq_chain_read(&v->chain, VSOCK_HDR_SIZE + first, h->buf, hdr->len - first);
	vsock_conn_received(c, hdr->len);
	conn_flush(v, h);
}

static void conn_packet(struct virtio_vsock *v, struct vsock_host *h, const struct vsock_hdr *hdr)
{
	char ok[32];
	int n;

	switch (vsock_conn_recv(&h->c, hdr)) {
	case VSOCK_V_DATA:
		conn_data(v, h, hdr);
		break;
	case VSOCK_V_ESTABLISHED:
		n = snprintf(ok, sizeof(ok), "OK %u\n", h->c.host_port);
		if (h->fd < 0 || send(h->fd, ok, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
			conn_rst(h);
		break;
	case VSOCK_V_SHUTDOWN:
		if (h->c.peer_shutdown == VSOCK_SHUTDOWN_BOTH && !h->c.deadline_ms)
			h->c.deadline_ms = clock_mono_ms() + VSOCK_CLOSE_MS;
		conn_flush(v, h);
		break;
	case VSOCK_V_CLOSE:
		conn_free(h);
		return;
	case VSOCK_V_RESET:
		log_warn_ratelimited(
			&vsock_rl, "virtio-vsock: the guest broke connection %u:%u (op %u): reset",
			h->c.guest_port, h->c.host_port, hdr->op);
		conn_rst(h);
		break;
	case VSOCK_V_NONE:
		break;
	}
	conn_watch(v, h);
}

static void tx_packet(struct virtio_vsock *v)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr hdr;
	struct vsock_host *h;
	const char *why;

	if (vq_chain_read(&v->chain, 0, raw, sizeof(raw)) != sizeof(raw)) {
		log_warn_ratelimited(&vsock_rl, "virtio-vsock: a packet shorter than its header");
		return;
	}
	vsock_hdr_decode(raw, &hdr);
	h = conn_find(v, hdr.dst_port, hdr.src_port);
	why = vsock_hdr_check(&hdr, v->cid, v->chain.in_len);
	if (why) {
		log_warn_ratelimited(&vsock_rl, "virtio-vsock: dropped %s", why);
		if (h && hdr.src_cid == v->cid)
			conn_rst(h);
		return;
	}
	if (h)
		conn_packet(v, h, &hdr);
	else if (hdr.op == VSOCK_OP_REQUEST)
		guest_connect(v, &hdr);
	else if (hdr.op != VSOCK_OP_RST)
		queue_rst(v, &hdr);
}

static void vsock_rx_pump(struct virtio_dev *vd);

static void vsock_tx(struct virtio_dev *vd)
{
	struct virtio_vsock *v = vd->priv;
	struct vq *vq = &vd->q[VSOCK_TXQ].vq;
	unsigned budget = VSOCK_PUMP_BUDGET;

	/* A guest that keeps refilling the queue (with event index it need not even notify)
	 * gets a budget per round, as the receive pump does: host clients, deadlines and host
	 * data get their turn. */
	v->tx_blocked = false;
	do {
		for (; budget; budget--) {
			if (v->nrst == VSOCK_MAX_RSTS) {
				v->tx_blocked = true; /* the receive pump kicks us again */
				break;
			}
			if (virtio_pop(vd, VSOCK_TXQ, &v->chain) <= 0)
				break;
			tx_packet(v);
			vq_push(vq, v->chain.head, 0);
		}
	} while (budget && !v->tx_blocked && virtio_queue_ready(vd, VSOCK_TXQ) && vq_rearm(vq));
	if (!budget)
		virtio_kick(vd, VSOCK_TXQ); /* more to read: after the other events */
	virtio_queue_interrupt(vd, VSOCK_TXQ);
	timer_update(v);
	vsock_rx_pump(vd);
}

/* ---- packets to the guest ---- */

/* Take a receive chain that can hold a header: 1, or 0 when the guest has none. */
static int rx_take(struct virtio_dev *vd, struct virtio_vsock *v)
{
	struct vq *vq = &vd->q[VSOCK_RXQ].vq;

	for (;;) {
		if (virtio_pop(vd, VSOCK_RXQ, &v->chain) <= 0) {
			if (virtio_queue_ready(vd, VSOCK_RXQ) && vq_rearm(vq))
				continue;
			return 0;
		}
		if (!v->chain.nin && v->chain.out_len >= VSOCK_HDR_SIZE)
			return 1;
		log_warn_ratelimited(&vsock_rl, "virtio-vsock: a receive chain with readable "
						"buffers or shorter than a header");
		vq_push(vq, v->chain.head, 0);
	}
}

static void rx_put(struct virtio_dev *vd, struct virtio_vsock *v, const struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_SIZE];

	vsock_hdr_encode(h, raw);
	vq_chain_write(&v->chain, 0, raw, sizeof(raw));
	if (h->len)
		vq_chain_write(&v->chain, VSOCK_HDR_SIZE, v->bounce, h->len);
	vq_push(&vd->q[VSOCK_RXQ].vq, v->chain.head, VSOCK_HDR_SIZE + h->len);
}

/* Does h have a packet for the guest (a control packet, or host data it may send)? */
static bool conn_has_packet(const struct virtio_vsock *v, const struct vsock_host *h)
{
	return h->c.state != VSOCK_FREE && h->c.state != VSOCK_HOST_LINE &&
	       (h->c.pending || (h->readable && conn_may_read(v, h)));
}

/* Fill the receive chain just taken with h's next packet. Returns false when there was
 * none after all (the chain is to be put back). */
static bool conn_rx(struct virtio_dev *vd, struct virtio_vsock *v, struct vsock_host *h)
{
	struct vsock_conn *c = &h->c;
	struct vsock_hdr hdr;
	uint64_t room = v->chain.out_len - VSOCK_HDR_SIZE;
	uint32_t credit = vsock_conn_credit(c), want;
	ssize_t n;

	if (c->pending & VSOCK_OWE_RST) {
		vsock_conn_packet(c, v->cid, VSOCK_OP_RST, 0, 0, &hdr);
		rx_put(vd, v, &hdr);
		conn_free(h);
		return true;
	}
	if (c->pending) {
		static const struct {
			unsigned owe;
			enum vsock_op op;
		} order[] = {
			{VSOCK_OWE_REQUEST, VSOCK_OP_REQUEST},
			{VSOCK_OWE_RESPONSE, VSOCK_OP_RESPONSE},
			{VSOCK_OWE_CREDIT, VSOCK_OP_CREDIT_UPDATE},
		};

		for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
			if (!(c->pending & order[i].owe))
				continue;
			c->pending &= ~order[i].owe;
			vsock_conn_packet(c, v->cid, order[i].op, 0, 0, &hdr);
			rx_put(vd, v, &hdr);
			return true;
		}
	}
	want = room < VSOCK_MAX_PAYLOAD ? (uint32_t)room : VSOCK_MAX_PAYLOAD;
	if (want > credit)
		want = credit;
	if (!want || !h->readable || !conn_may_read(v, h))
		return false;
	n = recv(h->fd, v->bounce, want, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		h->readable = false;
		conn_watch(v, h);
		return false;
	}
	if (n <= 0) {
		/* End of file (or an error): the guest gets no more; it may still send. */
		h->readable = false;
		h->host_eof = true;
		c->shutdown |= VSOCK_SHUTDOWN_SEND;
		vsock_conn_packet(c, v->cid, VSOCK_OP_SHUTDOWN, c->shutdown, 0, &hdr);
		rx_put(vd, v, &hdr);
		conn_watch(v, h);
		return true;
	}
	vsock_conn_packet(c, v->cid, VSOCK_OP_RW, 0, (uint32_t)n, &hdr);
	rx_put(vd, v, &hdr);
	conn_watch(v, h);
	return true;
}

/* Send what is owed and what the host sent, while the guest has receive buffers. */
static void vsock_rx_pump(struct virtio_dev *vd)
{
	struct virtio_vsock *v = vd->priv;
	unsigned budget = VSOCK_PUMP_BUDGET, sent = 0;
	bool progress = true;

	if (!virtio_queue_ready(vd, VSOCK_RXQ))
		return;
	while (budget && progress) {
		progress = false;
		while (v->nrst && budget) {
			if (!rx_take(vd, v))
				goto starved;
			rx_put(vd, v, &v->rsts[0]);
			memmove(&v->rsts[0], &v->rsts[1], --v->nrst * sizeof(v->rsts[0]));
			budget--, sent++, progress = true;
		}
		for (unsigned k = 0; k < VSOCK_MAX_CONNS && budget; k++) {
			struct vsock_host *h = &v->conns[(v->rr + k) % VSOCK_MAX_CONNS];

			if (!conn_has_packet(v, h))
				continue;
			if (!rx_take(vd, v))
				goto starved;
			if (!conn_rx(vd, v, h)) {
				vq_unpop(&vd->q[VSOCK_RXQ].vq);
				continue;
			}
			budget--, sent++, progress = true;
		}
		v->rr = (v->rr + 1) % VSOCK_MAX_CONNS;
	}
	if (!budget)
		virtio_kick(vd, VSOCK_RXQ); /* more to send: after the other events */
	goto out;
starved:
	if (!v->rx_starved) {
		v->rx_starved = true;
		watch_all(v);
	}
out:
	if (sent)
		virtio_queue_interrupt(vd, VSOCK_RXQ);
	if (v->tx_blocked && v->nrst < VSOCK_MAX_RSTS) {
		v->tx_blocked = false;
		virtio_kick(vd, VSOCK_TXQ);
	}
	timer_update(v);
}

static void vsock_event(struct virtio_dev *vd)
{
	struct virtio_vsock *v = vd->priv;
	struct vq *vq = &vd->q[VSOCK_EVQ].vq;

	/* With event index, a buffer the driver posted before the rearm may have come without
	 * a notification: look again when the rearm says one came. */
	do {
		while (v->reset_owed && virtio_pop(vd, VSOCK_EVQ, &v->chain) > 0) {
			uint8_t ev[4];

			if (v->chain.nin || v->chain.out_len < sizeof(ev)) {
				vq_push(vq, v->chain.head, 0);
				continue;
			}
			le32_store(ev, VSOCK_EVENT_TRANSPORT_RESET);
			vq_chain_write(&v->chain, 0, ev, sizeof(ev));
			vq_push(vq, v->chain.head, sizeof(ev));
			v->reset_owed = false;
		}
	} while (v->reset_owed && virtio_queue_ready(vd, VSOCK_EVQ) && vq_rearm(vq));
	virtio_queue_interrupt(vd, VSOCK_EVQ);
}

static void vsock_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_vsock *v = vd->priv;

	if (q == VSOCK_TXQ) {
		vsock_tx(vd);
	} else if (q == VSOCK_RXQ) {
		if (v->rx_starved) {
			v->rx_starved = false; /* new receive buffers */
			watch_all(v);
		}
		vsock_rx_pump(vd);
	} else if (q == VSOCK_EVQ) {
		vsock_event(vd);
	}
}

/* ---- host events ---- */

static void host_accept(struct virtio_vsock *v)
{
	for (unsigned i = 0; i < VSOCK_ACCEPT_BATCH; i++) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_host *h;

		/* Out of descriptors (the jail's RLIMIT_NOFILE) or memory, the client stays in
		 * the backlog and the level-triggered listener would wake the thread for ever:
		 * it leaves the epoll set until the next tick of the timer. */
		if (fd < 0 &&
		    (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
			log_warn_ratelimited(&vsock_rl,
					     "virtio-vsock: cannot accept a host client: %s",
					     strerror(errno));
			if (!virtio_dev_unwatch(v->vd, v->listen_fd))
				v->listen_off = true;
			return;
		}
		if (fd < 0)
			return;
		h = conn_slot(v);
		/* Nobody to connect to yet, or too many connections: the client sees a close. */
		if (!h || !virtio_queue_ready(v->vd, VSOCK_RXQ)) {
			close(fd);
			continue;
		}
		*h = (struct vsock_host){
			.fd = fd,
			.c = {.state = VSOCK_HOST_LINE,
			      .deadline_ms = clock_mono_ms() + VSOCK_HANDSHAKE_MS},
		};
		conn_watch(v, h);
	}
}

/* The host client's CONNECT line, a byte at a time so that nothing after it is taken. */
static void host_line(struct virtio_vsock *v, struct vsock_host *h)
{
	uint32_t port;

	for (;;) {
		char ch;
		ssize_t n = recv(h->fd, &ch, 1, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0 || h->line_len == sizeof(h->line)) {
			conn_free(h);
			return;
		}
		h->line[h->line_len++] = ch;
		if (ch == '\n')
			break;
	}
	if (vsock_parse_connect(h->line, h->line_len, &port)) {
		log_warn_ratelimited(&vsock_rl, "virtio-vsock: a host client's first line is not "
						"CONNECT <port>: closed");
		conn_free(h);
		return;
	}
	/* A host port no live connection to that guest port has. */
	do
		h->c.host_port = vsock_next_host_port(&v->next_port);
	while (conn_find(v, h->c.host_port, port));
	h->c.guest_port = port;
	h->c.state = VSOCK_CONNECTING;
	h->c.pending = VSOCK_OWE_REQUEST;
	h->c.deadline_ms = clock_mono_ms() + VSOCK_HANDSHAKE_MS;
	conn_watch(v, h);
}

static void timer_tick(struct virtio_vsock *v)
{
	long long now = clock_mono_ms();
	uint64_t ticks;

	if (read(v->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_debug("virtio-vsock: timerfd read: %s", strerror(errno));
	if (v->listen_off && !virtio_dev_watch(v->vd, v->listen_fd, EPOLLIN))
		v->listen_off = false;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_host *h = &v->conns[i];

		if (h->c.state == VSOCK_FREE || !h->c.deadline_ms || h->c.deadline_ms > now)
			continue;
		h->c.deadline_ms = 0;
		conn_rst(h); /* no CONNECT line, no answer from the guest, or no close */
	}
}

static void vsock_fd_event(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct virtio_vsock *v = vd->priv;

	if (fd == v->listen_fd) {
		host_accept(v);
	} else if (fd == v->timer_fd) {
		timer_tick(v);
	} else {
		for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
			struct vsock_host *h = &v->conns[i];

			if (h->fd != fd)
				continue;
			if (h->c.state == VSOCK_HOST_LINE) {
				host_line(v, h);
			} else {
				if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					h->readable = true;
				if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
					conn_flush(v, h);
			}
			conn_watch(v, h);
			break;
		}
	}
	timer_update(v);
	vsock_rx_pump(vd);
}

/* ---- lifecycle ---- */

/* Every connection gone without a word to the guest (it is reset, or told by
 * TRANSPORT_RESET). Also runs on a vCPU thread (the driver's reset), whose seccomp filter has
 * no timer calls (one there ends the worker): the deadline timer is left as it is, and its
 * next tick on the I/O thread disarms it. */
static void drop_all(struct virtio_vsock *v)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (v->conns[i].c.state != VSOCK_FREE)
			conn_free(&v->conns[i]);
	v->nrst = 0;
	v->tx_blocked = false;
	v->rx_starved = false;
}

static void vsock_reset(struct virtio_dev *vd)
{
	struct virtio_vsock *v = vd->priv;

	drop_all(v);
	v->reset_owed = false;
}

/* The connections the guest had before a pause or a save are gone on the host's side:
 * drop ours and tell the guest (TRANSPORT_RESET), so both sides connect again. Host ports
 * go on counting from where they were, so none is reused while the guest may still hold a
 * half-closed socket on it. */
static void transport_reset(struct virtio_vsock *v)
{
	drop_all(v);
	v->reset_owed = v->vd->status & VIRTIO_STATUS_DRIVER_OK;
}

static int vsock_pause(void *opaque, bool pause)
{
	struct virtio_vsock *v = opaque;

	if (pause)
		return 0;
	pthread_mutex_lock(&v->vd->lock);
	transport_reset(v);
	pthread_mutex_unlock(&v->vd->lock);
	virtio_kick(v->vd, VSOCK_EVQ);
	return 0;
}

/* Saved state (docs/state.md): the guest CID (checked) and the next host port. */
/* The host side's section (opaque: the struct virtio_dev; v is its private part). */
static int vsock_state_fn(struct state_io *io, void *opaque)
{
	struct virtio_vsock *v = ((struct virtio_dev *)opaque)->priv;
	uint32_t cid = v->cid, next_port;

	pthread_mutex_lock(&v->vd->lock);
	next_port = v->next_port;
	pthread_mutex_unlock(&v->vd->lock);
	cid = state_u32(io, &cid, UINT32_MAX);
	next_port = state_u32(io, &next_port, UINT32_MAX);
	if (state_error(io) || state_saving(io))
		return state_error(io);
	if (cid != v->cid)
		state_fail(io, "saved with guest CID %u, the device has %u", cid, v->cid);
	if (state_error(io) || !state_applying(io))
		return state_error(io);
	pthread_mutex_lock(&v->vd->lock);
	v->next_port = next_port;
	transport_reset(v);
	pthread_mutex_unlock(&v->vd->lock);
	virtio_kick(v->vd, VSOCK_EVQ);
	return 0;
}

static void vsock_config_read(struct virtio_dev *vd, unsigned off, void *buf, unsigned len)
{
	struct virtio_vsock *v = vd->priv;
	uint8_t cfg[VSOCK_CFG_SIZE];

	le64_store(cfg, v->cid);
	if (off <= VSOCK_CFG_SIZE && len <= VSOCK_CFG_SIZE - off)
		memcpy(buf, cfg + off, len);
}

static void vsock_release(struct virtio_dev *vd)
{
	struct virtio_vsock *v = vd->priv;

	drop_all(v);
	close(v->listen_fd);
	close(v->timer_fd);
	free(v);
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_type = VIRTIO_ID_VSOCK,
	.class_code = 0x078000, /* communication controller, other */
	.seccomp = SECCOMP_VSOCK,
	.queue_notify = vsock_queue_notify,
	.config_read = vsock_config_read,
	.reset = vsock_reset,
	.fd_event = vsock_fd_event,
	.release = vsock_release,
};

int virtio_vsock_create(struct machine *m, unsigned slot, uint32_t cid, const char *path,
			struct virtio_dev **out, char *err, size_t errlen)
{
	struct virtio_vsock *v;
	int r;

	if (strlen(path) > VMDEF_VSOCK_SOCKET_MAX) {
		snprintf(err, errlen, "--vsock socket=%s: at most %d bytes", path,
			 VMDEF_VSOCK_SOCKET_MAX);
		return -ENAMETOOLONG;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->m = m;
	v->cid = cid;
	v->next_port = VSOCK_HOST_PORT_FIRST;
	snprintf(v->path, sizeof(v->path), "%s", path);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		v->conns[i].fd = -1;
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	v->listen_fd = jail_listen(path, VSOCK_BACKLOG);
	if (v->timer_fd < 0 || v->listen_fd < 0) {
		r = v->timer_fd < 0 ? -errno : v->listen_fd;
		snprintf(err, errlen, "virtio-vsock: cannot listen on %s: %s", path,
			 r == -EEXIST	    ? "a file that is not a socket is in the way"
			 : r == -EADDRINUSE ? "another process is serving it"
					    : strerror(-r));
		if (v->timer_fd >= 0)
			close(v->timer_fd);
		if (v->listen_fd >= 0)
			close(v->listen_fd);
		free(v);
		return r;
	}
	r = virtio_dev_create(m, slot, &vsock_ops, v, 0, 3, VSOCK_QUEUE_SIZE, VSOCK_CFG_SIZE,
			      &v->vd);
	if (r) {
		close(v->listen_fd);
		close(v->timer_fd);
		free(v);
		snprintf(err, errlen, "virtio-vsock set-up: %s", strerror(-r));
		return r;
	}
	r = virtio_dev_watch(v->vd, v->listen_fd, EPOLLIN);
	r = r ?: virtio_dev_watch(v->vd, v->timer_fd, EPOLLIN);
	r = r ?: machine_add_pause_hook(m, vsock_pause, v);
	if (r) {
		virtio_dev_destroy(v->vd); /* frees v */
		snprintf(err, errlen, "virtio-vsock set-up: %s", strerror(-r));
		return r;
	}
	*out = v->vd;
	return 0;
}

static int vsock_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int r = virtio_vsock_create(m, m->def->vsock.pci_slot, m->def->vsock.cid, m->vsock_socket,
				    &vd, err, errlen);

	r = r ?: virtio_dev_keep(m, vd);
	if (!r)
		*obj = vd;
	return r;
}

const struct device_class virtio_vsock_class = {
	.name = "virtio-vsock",
	.config = &vmdef_vsock_kind,
	.state = {{"virtio-vsock", STATE_VIRTIO_VERSION, virtio_state},
		  {"vsock-host", STATE_VSOCK_VERSION, vsock_state_fn}},
	.create = vsock_class_create};
