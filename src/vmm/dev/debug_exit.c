/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/dev/debug_exit.h"

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

static void debug_exit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct vm *vm = opaque;
	/* A process status is 8 bits; like QEMU, (V << 1) | 1 truncated by the kernel. */
	int status = (int)(((value << 1) | 1) & 0xff);

	vm_request(vm, VM_EVENT_DEBUG_EXIT, status, "guest wrote 0x%llx to the debug-exit port",
		   (unsigned long long)value);
}

static const struct bus_ops debug_exit_ops = {
	.write = debug_exit_write,
};

int debug_exit_create(struct vm *vm)
{
	return bus_register(&vm->pio, PORT_DEBUG_EXIT, 4, &debug_exit_ops, vm, "debug-exit");
}

static unsigned debug_exit_count(const struct vm *vm)
{
	return vm->cfg->def.debug_exit;
}

static int debug_exit_class_create(struct vm *vm, unsigned i, char *err, size_t errlen)
{
	return debug_exit_create(vm);
}

const struct device_class debug_exit_class = {
	.name = "debug-exit", .count = debug_exit_count, .create = debug_exit_class_create};
