/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The machine the device fuzz targets plug devices into (vmm/machine.h), with no struct vm
 * and no KVM: fake_machine.c defines every machine_* call itself, so the linker never pulls
 * vm.o from the static library (as tests/unit/test_vmm_devices.c does). It has guest RAM in
 * two heap blocks (so AddressSanitizer sees any access past a region), the port and MMIO
 * buses, the PCI host bridge, KVM's ioeventfd matching on MMIO writes, a record of the MSI
 * routes with their checks, the hooks and state sections devices register, and a character
 * back end (chardev.h) the target feeds and reads directly.
 *
 * One machine per process, built on first use; fake_machine_reset() puts it back to
 * power-on state before each input. Checks that fail print why and abort (a crash for
 * libFuzzer).
 */
#ifndef KEEL_TESTS_FUZZ_FAKE_MACHINE_H
#define KEEL_TESTS_FUZZ_FAKE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/machine.h"

struct chardev;

/* Guest RAM: LOW bytes at 0 and HIGH bytes at 4 GiB. */
#define FAKE_RAM_LOW  (64u * 1024)
#define FAKE_RAM_HIGH (16u * 1024)

/* A failed check: message on stderr, then abort. */
#define FAKE_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fake_fail(__FILE__, __LINE__, __VA_ARGS__);                                \
	} while (0)
void fake_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

/* The machine (built with its PCI host bridge on first call; logging at LOG_ERROR). */
struct machine *fake_machine(void);
/* Power-on: guest RAM zeroed, KVM's ioeventfds and routes gone (a new KVM VM), every reset
 * hook run, requests cleared. */
void fake_machine_reset(void);
/* What machine_built says (false unless set): true, devices are made as in a VM that runs
 * (a hot add), powered on as they go on the bus. */
void fake_machine_running(bool running);
/* Run every pause hook: the virtio I/O threads park (pause) or carry on. */
void fake_machine_pause(bool pause);
/* Does the machine hold [addr, addr + len) of guest RAM? */
bool fake_ram_holds(const void *p, size_t len);
/* Guest RAM at gpa for len bytes (a failed check when it is not all RAM). */
uint8_t *fake_ram(uint64_t gpa, uint64_t len);

/* Guest MMIO and port accesses as a vCPU makes them. A write of exactly the length of a
 * registered ioeventfd at its address signals that eventfd instead (as KVM does). */
uint64_t fake_mmio_read(uint64_t addr, unsigned size);
void fake_mmio_write(uint64_t addr, unsigned size, uint64_t value);
uint64_t fake_pio_read(uint16_t port, unsigned size);
void fake_pio_write(uint16_t port, unsigned size, uint64_t value);

/* Is an ioeventfd registered at addr (any length), and with which fd? -1 if none. */
int fake_ioeventfd_at(uint64_t addr);
/* How many ioeventfds are registered. */
unsigned fake_ioeventfds(void);
/* Let machine_ioeventfd succeed (true) or fail with -ENODEV (false, the default). */
void fake_ioeventfd_enable(bool on);

/* The MSI route the machine holds for gsi: true with its address and data, else false. */
bool fake_msi_route(unsigned gsi, uint64_t *addr, uint32_t *data);

/* Save every state section, check and load the result, and save again: both saves must be
 * accepted and equal (a state a guest can reach is a state that restores). */
void fake_machine_save_restore(void);
/* The two halves, for a test that changes the host's side in between: a saved state (the
 * caller frees it), and a restore of one (check, then load): 0 or -errno with err set. */
void fake_machine_save(uint8_t **out, size_t *len);
int fake_machine_load(const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Run every device's report hook (the control command "devices", the crash report): each
 * must say something, one line at a time, whatever the guest did. */
void fake_machine_report(void);

/* The character back ends opened (in order), e.g. the virtio-console's. */
struct chardev *fake_chardev(unsigned i);
/* Console input: offered to the device now, and what it does not take is held (up to
 * 1 KiB, as chardev.c does) and offered again when the device says it has room. */
void fake_chardev_input(struct chardev *cd, const uint8_t *buf, size_t len);
/* Offer held input again if the device asked (chardev_input_ready). */
void fake_chardev_flush(struct chardev *cd);
/* Bytes the device wrote (output) since the last reset. */
uint64_t fake_chardev_output(struct chardev *cd);

#endif
