/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/jail_prep.h"
#include "vmm/loop.h"

#define CHARDEV_HISTORY	    (64 * 1024)
#define CHARDEV_MAX_CLIENTS 16
#define CHARDEV_INBUF	    1024
#define CTRL_A		    0x01

struct chardev;

struct chardev_client_watch {
	struct chardev *cd;
	int fd;
};

struct chardev {
	enum chardev_kind kind;
	struct loop *loop;
	const struct chardev_client_ops *ops;
	void *opaque;
	int in_fd;     /* stdio: 0; else -1 */
	int out_fd;    /* stdio: 1; file: the file; else -1 */
	int listen_fd; /* unix */
	int ready_fd;  /* eventfd: the device has room for input again */
	char *path;    /* unix: socket path, removed on close */

	/* Input read but not yet taken by the device: loop thread only. */
	uint8_t inbuf[CHARDEV_INBUF];
	size_t inlen;
	int in_src;  /* fd the pending input came from, paused while inbuf is non-empty */
	bool escape; /* last stdio byte was Ctrl-A */
	bool tty_raw;
	struct termios tty_saved;

	/* lock protects clients[] and history (written by vCPU threads, changed by the
	 * loop thread). */
	pthread_mutex_t lock;
	int clients[CHARDEV_MAX_CLIENTS];
	struct chardev_client_watch watches[CHARDEV_MAX_CLIENTS]; /* loop callbacks' opaque */
	uint8_t *history;
	size_t hist_head; /* next write position */
	size_t hist_len;
};

static struct termios *restore_tty; /* for the exit handler */
static struct termios restore_tty_state;

static void chardev_restore_tty(void)
{
	if (restore_tty)
		tcsetattr(0, TCSANOW, restore_tty);
}

static void chardev_pause_input(struct chardev *cd, int fd)
{
	if (loop_mod(cd->loop, fd, 0))
		log_warn("console: cannot pause input");
	cd->in_src = fd;
}

/* Hand pending input to the device; resume reading once it took everything. */
static void chardev_flush_input(struct chardev *cd)
{
	size_t took;

	if (!cd->inlen)
		return;
	took = cd->ops ? cd->ops->input(cd->opaque, cd->inbuf, cd->inlen) : cd->inlen;
	memmove(cd->inbuf, cd->inbuf + took, cd->inlen - took);
	cd->inlen -= took;
	if (!cd->inlen && cd->in_src >= 0) {
		if (loop_mod(cd->loop, cd->in_src, EPOLLIN))
			log_debug("console: input source went away");
		cd->in_src = -1;
	}
}

/* Filter terminal input for the Ctrl-A escape; appends the rest to inbuf. */
static void chardev_take_stdin(struct chardev *cd, const uint8_t *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t c = buf[i];

		if (cd->tty_raw && cd->escape) {
			cd->escape = false;
			if (c == 'x' || c == 'X') {
				if (cd->ops && cd->ops->quit)
					cd->ops->quit(cd->opaque);
				return;
			}
			if (c != CTRL_A)
				cd->inbuf[cd->inlen++] = CTRL_A;
		} else if (cd->tty_raw && c == CTRL_A) {
			cd->escape = true;
			continue;
		}
		cd->inbuf[cd->inlen++] = c;
	}
}

static void chardev_on_input(struct chardev *cd, int fd)
{
	uint8_t buf[CHARDEV_INBUF / 2];
	ssize_t n;

	if (cd->inlen) { /* still waiting for the device */
		chardev_pause_input(cd, fd);
		return;
	}
	n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* End of input: stop reading, keep running (a VM outlives its stdin). */
		loop_del(cd->loop, fd);
		if (fd != cd->in_fd) {
			pthread_mutex_lock(&cd->lock);
			for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++)
				if (cd->clients[i] == fd)
					cd->clients[i] = -1;
			pthread_mutex_unlock(&cd->lock);
			close(fd);
		}
		return;
	}
	if (fd == cd->in_fd) {
		chardev_take_stdin(cd, buf, (size_t)n);
	} else {
		memcpy(cd->inbuf, buf, (size_t)n);
		cd->inlen = (size_t)n;
	}
	chardev_flush_input(cd);
	if (cd->inlen)
		chardev_pause_input(cd, fd);
}

static void chardev_stdin_cb(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;

	chardev_on_input(cd, cd->in_fd);
}

static void chardev_client_cb(void *opaque, uint32_t events)
{
	struct chardev_client_watch *w = opaque;

	chardev_on_input(w->cd, w->fd);
}

static void chardev_ready_cb(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;
	uint64_t v;

	if (read(cd->ready_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("console: eventfd read: %s", strerror(errno));
	chardev_flush_input(cd);
}

/* Send all of buf to a socket without blocking; false if the client is gone. */
static bool chardev_send(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* A client too slow to keep up loses output rather than stall the guest. */
			return errno == EAGAIN;
		}
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

static void chardev_accept_cb(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;
	int fd = accept4(cd->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), i;

	if (fd < 0)
		return;
	pthread_mutex_lock(&cd->lock);
	for (i = 0; i < CHARDEV_MAX_CLIENTS && cd->clients[i] >= 0; i++)
		;
	if (i == CHARDEV_MAX_CLIENTS) {
		pthread_mutex_unlock(&cd->lock);
		log_warn("console: too many clients (%d), refusing one", CHARDEV_MAX_CLIENTS);
		close(fd);
		return;
	}
	/* Replay recent output, oldest first, so a new viewer sees the boot so far. */
	if (cd->hist_len) {
		size_t start = (cd->hist_head + CHARDEV_HISTORY - cd->hist_len) % CHARDEV_HISTORY;
		size_t first = cd->hist_len < CHARDEV_HISTORY - start ? cd->hist_len
								      : CHARDEV_HISTORY - start;

		chardev_send(fd, cd->history + start, first);
		chardev_send(fd, cd->history, cd->hist_len - first);
	}
	cd->watches[i] = (struct chardev_client_watch){cd, fd};
	if (loop_add(cd->loop, fd, EPOLLIN, chardev_client_cb, &cd->watches[i])) {
		pthread_mutex_unlock(&cd->lock);
		close(fd);
		return;
	}
	cd->clients[i] = fd;
	pthread_mutex_unlock(&cd->lock);
}

/* Keep the last CHARDEV_HISTORY bytes of output: at most two copies, whatever len is. */
static void chardev_remember(struct chardev *cd, const uint8_t *buf, size_t len)
{
	size_t first;

	if (len >= CHARDEV_HISTORY) {
		memcpy(cd->history, buf + len - CHARDEV_HISTORY, CHARDEV_HISTORY);
		cd->hist_head = 0;
		cd->hist_len = CHARDEV_HISTORY;
		return;
	}
	first = CHARDEV_HISTORY - cd->hist_head < len ? CHARDEV_HISTORY - cd->hist_head : len;
	memcpy(cd->history + cd->hist_head, buf, first);
	memcpy(cd->history, buf + first, len - first);
	cd->hist_head = (cd->hist_head + len) % CHARDEV_HISTORY;
	cd->hist_len = cd->hist_len + len > CHARDEV_HISTORY ? CHARDEV_HISTORY : cd->hist_len + len;
}

void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
	size_t i, off;

	switch (cd->kind) {
	case CHARDEV_OFF:
		return;
	case CHARDEV_STDIO:
	case CHARDEV_FILE:
		for (off = 0; off < len;) {
			ssize_t n = write(cd->out_fd, buf + off, len - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return; /* output closed: the guest keeps running */
			off += (size_t)n;
		}
		return;
	case CHARDEV_UNIX:
		pthread_mutex_lock(&cd->lock);
		chardev_remember(cd, buf, len);
		for (i = 0; i < CHARDEV_MAX_CLIENTS; i++)
			if (cd->clients[i] >= 0)
				chardev_send(cd->clients[i], buf, len);
		pthread_mutex_unlock(&cd->lock);
		return;
	}
}

void chardev_input_ready(struct chardev *cd)
{
	uint64_t one = 1;

	if (cd->ready_fd >= 0 && write(cd->ready_fd, &one, sizeof(one)) < 0)
		log_debug("console: eventfd write: %s", strerror(errno));
}

void chardev_attach(struct chardev *cd, const struct chardev_client_ops *ops, void *opaque)
{
	cd->ops = ops;
	cd->opaque = opaque;
}

static int chardev_open_stdio(struct chardev *cd, char *err, size_t errlen)
{
	int r;

	cd->in_fd = 0;
	cd->out_fd = 1;
	if (isatty(0) && tcgetattr(0, &cd->tty_saved) == 0) {
		struct termios raw = cd->tty_saved;

		cfmakeraw(&raw);
		restore_tty_state = cd->tty_saved;
		restore_tty = &restore_tty_state;
		atexit(chardev_restore_tty);
		if (tcsetattr(0, TCSANOW, &raw) == 0)
			cd->tty_raw = true;
	}
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	r = loop_add(cd->loop, 0, EPOLLIN, chardev_stdin_cb, cd);
	if (r == -EPERM) /* stdin is a regular file or /dev/null: nothing to read */
		r = 0;
	if (r)
		snprintf(err, errlen, "console: cannot watch stdin: %s", strerror(-r));
	return r;
}

static int chardev_open_unix(struct chardev *cd, const char *path, char *err, size_t errlen)
{
	int fd = jail_listen(path, CHARDEV_BACKLOG), r;

	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on serial socket %s: %s", path,
			 fd == -EEXIST	     ? "a file that is not a socket is in the way"
			 : fd == -EADDRINUSE ? "another process is serving it"
					     : strerror(-fd));
		return fd;
	}
	cd->listen_fd = fd;
	cd->path = strdup(path);
	cd->history = malloc(CHARDEV_HISTORY);
	if (!cd->path || !cd->history)
		return -ENOMEM;
	r = loop_add(cd->loop, fd, EPOLLIN, chardev_accept_cb, cd);
	if (r)
		snprintf(err, errlen, "cannot watch %s: %s", path, strerror(-r));
	return r;
}

int chardev_open(const struct chardev_spec *spec, struct loop *loop, struct chardev **out,
		 char *err, size_t errlen)
{
	struct chardev *cd = calloc(1, sizeof(*cd));
	int r = 0, i;

	if (!cd)
		return -ENOMEM;
	cd->kind = spec->kind;
	cd->loop = loop;
	cd->in_fd = cd->out_fd = cd->listen_fd = -1;
	cd->in_src = -1;
	pthread_mutex_init(&cd->lock, NULL);
	for (i = 0; i < CHARDEV_MAX_CLIENTS; i++)
		cd->clients[i] = -1;
	cd->ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cd->ready_fd < 0 || loop_add(loop, cd->ready_fd, EPOLLIN, chardev_ready_cb, cd)) {
		snprintf(err, errlen, "console: cannot create eventfd: %s", strerror(errno));
		chardev_close(cd);
		return -EIO;
	}
	switch (spec->kind) {
	case CHARDEV_STDIO:
		r = chardev_open_stdio(cd, err, errlen);
		break;
	case CHARDEV_FILE:
		cd->out_fd = jail_open(spec->path, CHARDEV_FILE_FLAGS, 0644);
		if (cd->out_fd < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot open serial output file %s: %s", spec->path,
				 strerror(errno));
		}
		break;
	case CHARDEV_UNIX:
		r = chardev_open_unix(cd, spec->path, err, errlen);
		break;
	case CHARDEV_OFF:
		break;
	}
	if (r) {
		chardev_close(cd);
		return r;
	}
	*out = cd;
	return 0;
}

void chardev_close(struct chardev *cd)
{
	int i;

	if (!cd)
		return;
	for (i = 0; i < CHARDEV_MAX_CLIENTS; i++)
		if (cd->clients[i] >= 0)
			close(cd->clients[i]);
	if (cd->listen_fd >= 0) {
		close(cd->listen_fd);
		if (cd->path)
			unlink(cd->path);
	}
	if (cd->kind == CHARDEV_FILE && cd->out_fd >= 0)
		close(cd->out_fd);
	if (cd->ready_fd >= 0)
		close(cd->ready_fd);
	if (cd->tty_raw) {
		tcsetattr(0, TCSANOW, &cd->tty_saved);
		restore_tty = NULL;
	}
	free(cd->history);
	free(cd->path);
	pthread_mutex_destroy(&cd->lock);
	free(cd);
}
