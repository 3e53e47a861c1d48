/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The i8042 keyboard controller, as much as operating systems use without a keyboard:
 * status, the command byte, self tests, and the reset line (command 0xFE, or output-port
 * writes and pulses that clear bit 0), which resets the VM. Bytes sent to the keyboard are
 * acknowledged (0xFA); a keyboard reset (0xFF) is answered as a keyboard answers it, the
 * acknowledgement and then the self-test result (0xAA), because OVMF's PS/2 driver waits for
 * that result for seconds (its timeout) before it goes on.
 */
#include "vmm/dev/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/x86/layout.h"

#define STS_OBF		0x01 /* output buffer full */
#define STS_SYS		0x04 /* system flag: self test passed */
#define STS_CMD		0x08 /* last write was to the command port */

#define CMD_READ_CTR	0x20
#define CMD_WRITE_CTR	0x60
#define CMD_SELF_TEST	0xaa
#define CMD_KBD_TEST	0xab
#define CMD_AUX_TEST	0xa9
#define CMD_READ_OUTP	0xd0
#define CMD_WRITE_OUTP	0xd1
#define CMD_RESET_PULSE 0xfe

#define KBD_RESET	0xff /* keyboard command: reset and self test */
#define KBD_ACK		0xfa
#define KBD_BAT_OK	0xaa /* self test ("basic assurance test") passed */
/* pending: not a controller command but the keyboard's reset, whose result follows the
 * acknowledgement once the guest has read it */
#define PENDING_BAT 0xff

struct i8042 {
	struct machine *m;
	/* lock protects the fields below */
	pthread_mutex_t lock;
	uint8_t status;
	uint8_t ctr;	 /* controller configuration ("command") byte */
	uint8_t outp;	 /* output port; bit 0 low holds the CPU in reset */
	uint8_t pending; /* command waiting for its data byte, or 0 */
	uint8_t out;	 /* output buffer */
};

static void i8042_reply(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->status |= STS_OBF;
}

static uint8_t i8042_read(struct i8042 *k, bool cmd_port)
{
	uint8_t v;

	pthread_mutex_lock(&k->lock);
	if (cmd_port) {
		v = k->status;
	} else {
		v = k->out;
		k->status &= (uint8_t)~STS_OBF;
		if (k->pending == PENDING_BAT) {
			k->pending = 0;
			i8042_reply(k, KBD_BAT_OK);
		}
	}
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void i8042_write(struct i8042 *k, bool cmd_port, uint8_t v)
{
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	if (cmd_port) {
		k->status |= STS_CMD;
		k->pending = 0;
		switch (v) {
		case CMD_READ_CTR:
			i8042_reply(k, k->ctr);
			break;
		case CMD_WRITE_CTR:
		case CMD_WRITE_OUTP:
			k->pending = v;
			break;
		case CMD_SELF_TEST:
			i8042_reply(k, 0x55);
			break;
		case CMD_KBD_TEST:
		case CMD_AUX_TEST:
			i8042_reply(k, 0x00);
			break;
		case CMD_READ_OUTP:
			i8042_reply(k, k->outp);
			break;
		default:
			/* 0xF0-0xFF pulse output lines low for 6 us; bit 0 is the reset line. */
			if (v >= 0xf0 && !(v & 1))
				reset = true;
			break;
		}
	} else {
		uint8_t pending = k->pending;

		k->status &= (uint8_t)~STS_CMD;
		k->pending = 0;
		if (pending == CMD_WRITE_CTR) {
			k->ctr = v;
		} else if (pending == CMD_WRITE_OUTP) {
			k->outp = v;
			reset = !(v & 1);
		} else {
			i8042_reply(k, KBD_ACK); /* no keyboard, but acknowledge its commands */
			if (v == KBD_RESET)
				k->pending = PENDING_BAT;
		}
	}
	pthread_mutex_unlock(&k->lock);
	if (reset)
		machine_request(k->m, VM_EVENT_RESET, 0, "reset through the i8042");
}

static uint64_t i8042_data_read(void *opaque, uint64_t off, unsigned size)
{
	return i8042_read(opaque, false);
}

static void i8042_data_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	i8042_write(opaque, false, (uint8_t)value);
}

static uint64_t i8042_cmd_read(void *opaque, uint64_t off, unsigned size)
{
	return i8042_read(opaque, true);
}

static void i8042_cmd_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	i8042_write(opaque, true, (uint8_t)value);
}

static const struct bus_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

static const struct bus_ops i8042_cmd_ops = {
	.read = i8042_cmd_read,
	.write = i8042_cmd_write,
};

static int i8042_state(struct state_io *io, void *opaque)
{
	struct i8042 *k = opaque;
	uint8_t pending;

	pthread_mutex_lock(&k->lock);
	state_u8(io, &k->status, 0xff);
	state_u8(io, &k->ctr, 0xff);
	state_u8(io, &k->outp, 0xff);
	pending = k->pending;
	pending = state_u8(io, &pending, 0xff);
	if (pending && pending != CMD_WRITE_CTR && pending != CMD_WRITE_OUTP &&
	    pending != PENDING_BAT)
		state_fail(io, "pending command 0x%02x takes no data byte", pending);
	if (state_applying(io))
		k->pending = pending;
	state_u8(io, &k->out, 0xff);
	pthread_mutex_unlock(&k->lock);
	return state_error(io);
}

static void i8042_reset(void *opaque)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	k->status = STS_SYS;
	k->ctr = 0x45;	/* keyboard interrupt, system flag, translation */
	k->outp = 0x03; /* reset line high, A20 on */
	k->pending = 0;
	k->out = 0;
	pthread_mutex_unlock(&k->lock);
}

int i8042_create(struct machine *m, void **obj)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	k->m = m;
	pthread_mutex_init(&k->lock, NULL);
	i8042_reset(k);
	/* Data at 0x60, command/status at 0x64; 0x61 (speaker) belongs to KVM's PIT. */
	r = bus_register(m->pio, PORT_I8042_DATA, 1, &i8042_data_ops, k, "i8042");
	r = r ?: bus_register(m->pio, PORT_I8042_CMD, 1, &i8042_cmd_ops, k, "i8042");
	r = r ?: machine_add_reset_hook(m, i8042_reset, k);
	*obj = k;
	return r; /* the device lives as long as the process */
}

static int i8042_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	return i8042_create(m, obj);
}

const struct device_class i8042_class = {
	.name = "i8042", .state = {{"i8042", 1, i8042_state}}, .create = i8042_class_create};
