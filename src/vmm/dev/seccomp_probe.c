/* SPDX-License-Identifier: Apache-2.0 */
/* Test builds only: the seccomp probe (seccomp_probe.h). */
#include "vmm/dev/seccomp_probe.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/seccomp_filter.h"

/* Forbidden calls that returned, for the guest to read. */
static atomic_uint returned;

int seccomp_probe_request(uint32_t code)
{
	const char *cls = NULL;
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
	default:
		return 0; /* the guest's value: anything else is no request */
	}
	atomic_fetch_add(&returned, 1);
	return 1;
}

static uint64_t probe_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque;
	return off == 0 && size == 4 ? atomic_load(&returned) : UINT64_MAX;
}

static void probe_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	(void)opaque;
	if (off == 0 && size == 4)
		(void)seccomp_probe_request((uint32_t)value);
}

static const struct bus_ops probe_ops = {.read = probe_read, .write = probe_write};

static int probe_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	(void)i, (void)obj, (void)err, (void)errlen;
	return bus_register(m->pio, PORT_SECCOMP_PROBE, 4, &probe_ops, NULL, "seccomp-probe");
}

const struct device_class seccomp_probe_class = {.name = "seccomp-probe", .create = probe_create};
