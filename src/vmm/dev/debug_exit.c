/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/dev/debug_exit.h"

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/x86/layout.h"

static void debug_exit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct machine *m = opaque;
	/* A process status is 8 bits; like QEMU, (V << 1) | 1 truncated by the kernel. */
	int status = (int)(((value << 1) | 1) & 0xff);

	machine_request(m, VM_EVENT_DEBUG_EXIT, status, "guest wrote 0x%llx to the debug-exit port",
			(unsigned long long)value);
}

static const struct bus_ops debug_exit_ops = {
	.write = debug_exit_write,
};

int debug_exit_create(struct machine *m)
{
	return bus_register(m->pio, PORT_DEBUG_EXIT, 4, &debug_exit_ops, m, "debug-exit");
}

static unsigned debug_exit_count(const struct machine *m)
{
	return m->def->debug_exit;
}

static int debug_exit_class_create(struct machine *m, unsigned i, void **obj, char *err,
				   size_t errlen)
{
	return debug_exit_create(m);
}

const struct device_class debug_exit_class = {
	.name = "debug-exit", .count = debug_exit_count, .create = debug_exit_class_create};
