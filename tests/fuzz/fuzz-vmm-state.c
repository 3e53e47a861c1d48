/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The state loader (docs/state.md): any state file must be refused with a reason or pass
 * the whole check (structure, checksum, every section of a 2-vCPU VM with all platform
 * devices, the PCI host bridge, virtio-rng and a virtio-net card with two queue pairs, so
 * that the saved count of pairs the driver enabled is fuzzed too) without touching the
 * VM. Input: one mode byte, then the file. With bit 0 of the mode byte set, the header's
 * file size and the trailer's CRC are fixed up first, so that mutations reach the sections
 * instead of stopping at the checksum. The seeds valid-2cpu-mq* are a save of this VM made
 * by keel-vmm (--cpus 2 --memory 64M --debug-exit --net
 * tap=kmq0,mac=52:54:00:12:34:56,slot=2,queues=2,vhost=off on two socket pairs), written by
 * tests/fuzz/state-seeds.py: run it again when this VM or its sections change.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "lib/crc32c.h"
#include "lib/log.h"
#include "vmm/bus.h"
#include "vmm/chardev.h"
#include "vmm/device.h"
#include "vmm/loop.h"
#include "vmm/pci.h"
#include "vmm/snapshot.h"
#include "vmm/state.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *fuzz_vm(void)
{
	static struct vm vm;
	static struct vm_config cfg = {.def = {.kernel = "fuzz",
					       .cpus = 2,
					       .memory = 64 << 20,
					       .rng = {true, 1},
					       .debug_exit = true},
				       .host.console = {CHARDEV_OFF, NULL}};
	static int ready;
	static const struct vm_nic nic = {.tap = "kmq0",
					  .queues = 2,
					  .vhost = VM_VHOST_OFF,
					  .mac = "52:54:00:12:34:56",
					  .pci_slot = 2};
	struct chardev_spec off = {CHARDEV_OFF, NULL};
	char err[256];
	int sv[2];

	if (ready)
		return &vm;
	cfg.def.nics[0] = nic;
	cfg.def.nnics = 1;
	for (unsigned k = 0; k < 2; k++) { /* the tap's two queues: socket pairs */
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
			abort();
		cfg.net_fds[0][k] = sv[0];
	}
	log_init("fuzz", LOG_ERROR);
	vm.cfg = &cfg;
	vm.kvm.fd = -1; /* no KVM: the check pass never needs it */
	atomic_store(&vm.vm_fd, -1);
	vm.event_fd = eventfd(0, EFD_NONBLOCK);
	pthread_mutex_init(&vm.run_lock, NULL);
	pthread_cond_init(&vm.run_cond, NULL);
	bus_init(&vm.pio, "pio");
	vm.machine = (struct machine){.def = &cfg.def,
				      .mem = &vm.mem,
				      .pio = &vm.pio,
				      .mmio = &vm.mmio,
				      .console = &cfg.host.console,
				      .net_fds = cfg.net_fds};
	/* The RAM layout without RAM: the memory section only compares it. */
	vm.mem.ram_size = cfg.def.memory;
	vm.mem.nregions =
		mem_layout(cfg.def.memory, cfg.def.firmware != VM_FIRMWARE_NONE, vm.mem.regions);
	if (loop_create(&vm.loop) ||
	    chardev_open(&off, vm.loop, &vm.serial_out, err, sizeof(err)) ||
	    snapshot_register_config(&vm) ||
	    (vm.machine.loop = vm.loop, vm.machine.serial_out = vm.serial_out, 0) ||
	    devices_create(&vm.machine, DEVICE_BUS_PLATFORM, err, sizeof(err)) ||
	    snapshot_register_machine(&vm) || pci_host_create(&vm.machine, &vm.pci) ||
	    (vm.machine.pci = vm.pci, 0) ||
	    devices_create(&vm.machine, DEVICE_BUS_PCI, err, sizeof(err)))
		abort();
	ready = 1;
	return &vm;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm *vm = fuzz_vm();
	uint8_t *copy;
	char err[512];
	size_t n;

	if (size < 1 || size > STATE_MAX_FILE)
		return 0;
	n = size - 1;
	copy = malloc(n ? n : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, n);
	if ((data[0] & 1) && n >= STATE_HEADER_SIZE + STATE_TRAILER_SIZE) {
		uint32_t crc;

		for (unsigned i = 0; i < 8; i++)
			copy[16 + i] = (uint8_t)((uint64_t)n >> (8 * i));
		crc = crc32c(0, copy, n - STATE_TRAILER_SIZE);
		for (unsigned i = 0; i < 4; i++)
			copy[n - STATE_TRAILER_SIZE + i] = (uint8_t)(crc >> (8 * i));
	}
	err[0] = 0;
	if (snapshot_check(vm, copy, n, err, sizeof(err)) && !err[0])
		abort(); /* every refusal says why */
	free(copy);
	return 0;
}
