/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: any sequence of port reads and writes, of any width, to the
 * platform devices (16550, i8042, RTC, ACPI PM with GPE0 and reset, fw_cfg, debug-exit) and
 * the PCI hot plug controller, with power button presses and GPEs raised in between, must
 * leave keel-vmm standing. Input: records of 6 bytes: port selector, access (size and
 * direction), and a 32-bit value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "lib/log.h"
#include "vmm/bus.h"
#include "vmm/chardev.h"
#include "vmm/device.h"
#include "vmm/hotplug.h"
#include "vmm/loop.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t ports[] = {
	PORT_COM1,  PORT_RTC,	 PORT_I8042_DATA, PORT_I8042_CMD,      PORT_PM_BASE,
	PORT_RESET, PORT_FW_CFG, PORT_DEBUG_EXIT, PORT_PM_BASE + 0x20, /* GPE0 */
	PORT_PCIHP,
};

static struct vm *fuzz_vm(void)
{
	static struct vm vm;
	static struct vm_config cfg = {.def = {.cpus = 2, .memory = 64 << 20, .debug_exit = true}};
	static int ready;
	struct chardev_spec off = {CHARDEV_OFF, NULL};
	char err[256];

	if (ready)
		return &vm;
	log_init("fuzz", LOG_ERROR);
	vm.cfg = &cfg;
	atomic_store(&vm.vm_fd, -1); /* interrupts go nowhere: KVM_IRQ_LINE fails harmlessly */
	vm.event_fd = eventfd(0, EFD_NONBLOCK);
	pthread_mutex_init(&vm.run_lock, NULL);
	pthread_cond_init(&vm.run_cond, NULL);
	bus_init(&vm.pio, "pio");
	vm.machine = (struct machine){.def = &cfg.def,
				      .mem = &vm.mem,
				      .pio = &vm.pio,
				      .mmio = &vm.mmio,
				      .console = &cfg.host.console};
	if (loop_create(&vm.loop) ||
	    chardev_open(&off, vm.loop, &vm.serial_out, err, sizeof(err)) ||
	    (vm.machine.loop = vm.loop, vm.machine.serial_out = vm.serial_out, 0) ||
	    devices_create(&vm.machine, DEVICE_BUS_PLATFORM, err, sizeof(err)) ||
	    hotplug_create(&vm, err, sizeof(err)))
		abort();
	ready = 1;
	return &vm;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm *vm = fuzz_vm();
	unsigned i;

	for (i = 0; i < vm->nreset; i++)
		vm->reset_fns[i](vm->reset_opaque[i]);
	for (; size >= 6; data += 6, size -= 6) {
		uint16_t port = (uint16_t)(ports[data[0] % (sizeof(ports) / sizeof(ports[0]))] +
					   (data[0] >> 3 & 0xf));
		unsigned len = 1u << (data[1] & 3);
		uint32_t v;
		uint64_t out;

		memcpy(&v, data + 2, 4);
		if (len == 8)
			len = 4; /* port I/O is at most 4 bytes wide */
		if (data[1] & 0x80)
			bus_read(&vm->pio, port, len, &out);
		else
			bus_write(&vm->pio, port, len, v);
		if (data[1] & 0x40)
			vm_power_button(vm);
		if (data[1] & 0x20)
			machine_raise_gpe(&vm->machine, data[0] & 0x1f);
		atomic_store(&vm->event, VM_EVENT_NONE);
	}
	return 0;
}
