/* SPDX-License-Identifier: Apache-2.0 */
/* Test builds only: the seccomp probe (seccomp_probe.h). */
#include "vmm/dev/seccomp_probe.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/loop.h"
#include "vmm/machine.h"
#include "vmm/seccomp_filter.h"

/* Forbidden calls that returned, for the guest to read. */
static atomic_uint returned;

int seccomp_probe_request(uint32_t code)
{
	const char *cls = NULL;
	void *p;
	int r;

	switch (code) {
	case SECCOMP_PROBE_VCPU:
		/* A bad descriptor: unconfined, the call fails and touches nothing. */
		(void)syscall(SYS_unlinkat, -1, "keel-seccomp-probe", 0);
		log_err("seccomp probe: unlinkat returned on this thread: it has no vCPU filter");
		break;
	case SECCOMP_PROBE_DEVICE:
		r = seccomp_test_forbidden_thread(&cls);
		if (r) {
			log_err("seccomp probe: no device thread has its own seccomp filter");
			return r;
		}
		log_err("seccomp probe: mkdirat returned on a %s thread", cls);
		break;
	case SECCOMP_PROBE_MAIN:
		/* Executable memory, which no list allows (an argument the filter checks). */
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			munmap(p, 4096);
		log_err("seccomp probe: mmap with PROT_EXEC returned on this thread: it has no "
			"seccomp filter");
		break;
	default:
		return 0; /* the guest's value: anything else is no request */
	}
	atomic_fetch_add(&returned, 1);
	return 1;
}

/* The main loop's request travels through an eventfd, which the loop reads. */
struct probe {
	struct machine *m;
	int fd;
};

static void probe_main_event(void *opaque, uint32_t events)
{
	struct probe *p = opaque;
	uint64_t n;

	(void)events;
	if (read(p->fd, &n, sizeof(n)) == sizeof(n))
		(void)seccomp_probe_request(SECCOMP_PROBE_MAIN);
}

static uint64_t probe_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque;
	return off == 0 && size == 4 ? atomic_load(&returned) : UINT64_MAX;
}

static void probe_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct probe *p = opaque;
	uint64_t one = 1;

	if (off != 0 || size != 4)
		return;
	if ((uint32_t)value == SECCOMP_PROBE_MAIN) /* several before the loop reads are one */
		(void)!write(p->fd, &one, sizeof(one));
	else
		(void)seccomp_probe_request((uint32_t)value);
}

static const struct bus_ops probe_ops = {.read = probe_read, .write = probe_write};

static void probe_teardown(void *opaque)
{
	struct probe *p = opaque;

	loop_del(p->m->loop, p->fd);
	close(p->fd);
	free(p);
}

static int probe_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct probe *p = calloc(1, sizeof(*p));
	int r;

	(void)i, (void)obj, (void)err, (void)errlen;
	if (!p)
		return -ENOMEM;
	p->m = m;
	p->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->fd < 0) {
		r = -errno;
		free(p);
		return r;
	}
	r = loop_add(m->loop, p->fd, EPOLLIN, probe_main_event, p);
	if (r) {
		close(p->fd);
		free(p);
		return r;
	}
	r = machine_add_teardown(m, probe_teardown, p);
	if (r) {
		probe_teardown(p);
		return r;
	}
	return bus_register(m->pio, PORT_SECCOMP_PROBE, 4, &probe_ops, p, "seccomp-probe");
}

const struct device_class seccomp_probe_class = {.name = "seccomp-probe", .create = probe_create};
