/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The firmware debug console on port 0x402 (QEMU's isa-debugcon as SeaBIOS and OVMF use
 * it), present only with keel-vmm --firmware-debug: a read gives 0xe9, which is how the
 * firmware knows its log is wanted, and each byte written goes to stderr, a line at a time
 * with a prefix. Without the option the port is nobody's (reads give 0xff) and the
 * firmware writes no log at all.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/x86/layout.h"

#define DEBUGCON_READBACK 0xe9
#define DEBUGCON_LINE	  200

struct debugcon {
	pthread_mutex_t lock; /* protects line and len */
	char line[DEBUGCON_LINE + 1];
	unsigned len;
};

static uint64_t debugcon_read(void *opaque, uint64_t off, unsigned size)
{
	return DEBUGCON_READBACK;
}

static void debugcon_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct debugcon *d = opaque;
	char c = (char)value;

	pthread_mutex_lock(&d->lock);
	if (c != '\n' && c != '\r' && d->len < DEBUGCON_LINE)
		d->line[d->len++] = c >= 0x20 && c < 0x7f ? c : '?';
	if ((c == '\n' || d->len == DEBUGCON_LINE) && d->len) {
		d->line[d->len] = '\0';
		fprintf(stderr, "firmware: %s\n", d->line);
		d->len = 0;
	}
	pthread_mutex_unlock(&d->lock);
}

static const struct bus_ops debugcon_ops = {.read = debugcon_read, .write = debugcon_write};

static unsigned debugcon_count(const struct machine *m)
{
	return m->firmware_debug;
}

static void debugcon_teardown(void *opaque)
{
	free(opaque);
}

static int debugcon_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct debugcon *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -1;
	pthread_mutex_init(&d->lock, NULL);
	r = machine_add_teardown(m, debugcon_teardown, d);
	if (r) {
		free(d);
		return r;
	}
	return bus_register(m->pio, PORT_DEBUGCON, 1, &debugcon_ops, d, "debugcon");
}

const struct device_class debugcon_class = {
	.name = "debugcon", .count = debugcon_count, .create = debugcon_create};
