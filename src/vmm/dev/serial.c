/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A 16550A UART. Transmission is instant (THR is always empty again by the next read of
 * LSR); received bytes wait in a FIFO larger than the real 16 bytes, with back-pressure
 * to the chardev when it is full. Everything the guest writes is masked to the register's
 * width; no guest value can make this code misbehave.
 */
#include "vmm/dev/serial.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lock.h"
#include "vmm/bus.h"
#include "vmm/chardev.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/x86/layout.h"

#define UART_RBR       0 /* read, DLAB=0 */
#define UART_THR       0 /* write, DLAB=0 */
#define UART_DLL       0 /* DLAB=1 */
#define UART_IER       1 /* DLAB=0 */
#define UART_DLM       1 /* DLAB=1 */
#define UART_IIR       2 /* read */
#define UART_FCR       2 /* write */
#define UART_LCR       3
#define UART_MCR       4
#define UART_LSR       5
#define UART_MSR       6
#define UART_SCR       7

#define IER_RDI	       0x01 /* received data available */
#define IER_THRI       0x02 /* THR empty */
#define IER_RLSI       0x04 /* receiver line status */
#define IER_MSI	       0x08 /* modem status */

#define IIR_NONE       0x01
#define IIR_MSI	       0x00
#define IIR_THRI       0x02
#define IIR_RDI	       0x04
#define IIR_FIFOS      0xc0

#define FCR_ENABLE     0x01
#define FCR_CLEAR_RX   0x02

#define LCR_DLAB       0x80

#define MCR_DTR	       0x01
#define MCR_RTS	       0x02
#define MCR_OUT1       0x04
#define MCR_OUT2       0x08
#define MCR_LOOP       0x10

#define LSR_DR	       0x01
#define LSR_THRE       0x20
#define LSR_TEMT       0x40

#define MSR_DCTS       0x01
#define MSR_DDSR       0x02
#define MSR_TERI       0x04
#define MSR_DDCD       0x08
#define MSR_CTS	       0x10
#define MSR_DSR	       0x20
#define MSR_RI	       0x40
#define MSR_DCD	       0x80

#define SERIAL_RX_SIZE 4096

struct serial {
	struct machine *m;
	struct chardev *cd;
	unsigned gsi;

	/* lock protects every field below */
	pthread_mutex_t lock;
	uint8_t ier, fcr, lcr, mcr, msr, scr, dll, dlm;
	bool thr_irq;	 /* THR-empty interrupt pending */
	bool irq_level;	 /* current level of the interrupt line */
	bool rx_starved; /* the chardev has input waiting for room */
	uint8_t rx[SERIAL_RX_SIZE];
	unsigned rx_head, rx_count;
};

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFOS : 0;

	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thr_irq)
		return IIR_THRI | fifo;
	if ((s->ier & IER_MSI) && (s->msr & (MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD)))
		return IIR_MSI | fifo;
	return IIR_NONE | fifo;
}

static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & IIR_NONE);

	if (level != s->irq_level) {
		s->irq_level = level;
		machine_set_irq(s->m, s->gsi, level);
	}
}

static bool serial_rx_push(struct serial *s, uint8_t c)
{
	if (s->rx_count == SERIAL_RX_SIZE)
		return false;
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_SIZE] = c;
	s->rx_count++;
	return true;
}

/* In loopback, the modem outputs feed the modem inputs (used by drivers to probe). */
static void serial_update_msr(struct serial *s)
{
	uint8_t old = s->msr, now;

	if (s->mcr & MCR_LOOP) {
		now = (uint8_t)(((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
				((s->mcr & MCR_RTS) ? MSR_CTS : 0) |
				((s->mcr & MCR_OUT1) ? MSR_RI : 0) |
				((s->mcr & MCR_OUT2) ? MSR_DCD : 0));
	} else {
		now = MSR_DCD | MSR_DSR | MSR_CTS; /* a connected line */
	}
	s->msr = (uint8_t)((old & 0x0f) | now);
	if ((old ^ now) & MSR_CTS)
		s->msr |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		s->msr |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		s->msr |= MSR_TERI;
	if ((old ^ now) & MSR_DCD)
		s->msr |= MSR_DDCD;
}

static uint64_t serial_read(void *opaque, uint64_t off, unsigned size)
{
	struct serial *s = opaque;
	uint8_t v = 0xff;
	bool wake = false;

	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB) {
			v = s->dll;
		} else if (s->rx_count) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
			s->rx_count--;
			if (s->rx_starved && s->rx_count < SERIAL_RX_SIZE / 2) {
				s->rx_starved = false;
				wake = true;
			}
		} else {
			v = 0;
		}
		break;
	case UART_IER:
		v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case UART_IIR:
		v = serial_iir(s);
		if ((v & 0x0f) == IIR_THRI)
			s->thr_irq = false; /* reading IIR acknowledges THR empty */
		break;
	case UART_LCR:
		v = s->lcr;
		break;
	case UART_MCR:
		v = s->mcr;
		break;
	case UART_LSR:
		v = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
		break;
	case UART_MSR:
		v = s->msr;
		s->msr &= 0xf0; /* reading clears the delta bits */
		break;
	case UART_SCR:
		v = s->scr;
		break;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	if (wake)
		chardev_input_ready(s->cd);
	return v;
}

static void serial_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct serial *s = opaque;
	uint8_t v = (uint8_t)value;

	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			break;
		}
		if (s->mcr & MCR_LOOP)
			serial_rx_push(s, v);
		else
			chardev_write(s->cd, &v, 1);
		s->thr_irq = true;
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		/* Enabling the THR-empty interrupt while THR is empty raises it at once. */
		if (!(s->ier & IER_THRI) && (v & IER_THRI))
			s->thr_irq = true;
		s->ier = v & 0x0f;
		break;
	case UART_FCR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			s->rx_count = 0;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		serial_update_msr(s);
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static const struct bus_ops serial_ops = {
	.read = serial_read,
	.write = serial_write,
};

static size_t serial_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct serial *s = opaque;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < len && serial_rx_push(s, buf[i]); i++)
		;
	if (i < len)
		s->rx_starved = true;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return i;
}

static void serial_quit(void *opaque)
{
	struct serial *s = opaque;

	machine_request(s->m, VM_EVENT_QUIT, 0, "quit from the console (Ctrl-A x)");
}

static const struct chardev_client_ops serial_chardev_ops = {
	.input = serial_input,
	.quit = serial_quit,
};

/* Saved state: the registers and the received bytes not yet read (docs/state.md). */
static int serial_state(struct state_io *io, void *opaque)
{
	struct serial *s = opaque;
	uint8_t rx[SERIAL_RX_SIZE];
	uint32_t count, i;

	pthread_mutex_lock(&s->lock);
	state_u8(io, &s->ier, 0x0f);
	state_u8(io, &s->fcr, 0xc9);
	state_u8(io, &s->lcr, 0xff);
	state_u8(io, &s->mcr, 0x1f);
	state_u8(io, &s->msr, 0xff);
	state_u8(io, &s->scr, 0xff);
	state_u8(io, &s->dll, 0xff);
	state_u8(io, &s->dlm, 0xff);
	state_bool(io, &s->thr_irq);
	state_bool(io, &s->irq_level);
	count = s->rx_count;
	for (i = 0; i < count; i++)
		rx[i] = s->rx[(s->rx_head + i) % SERIAL_RX_SIZE];
	count = state_u32(io, &count, SERIAL_RX_SIZE);
	state_bytes(io, rx, count);
	if (state_applying(io)) {
		memcpy(s->rx, rx, count);
		s->rx_head = 0;
		s->rx_count = count;
	}
	pthread_mutex_unlock(&s->lock);
	return state_error(io);
}

/* The report's line (the control command "devices", the crash report): the registers, how
 * many received bytes wait, the interrupt line and whether the console waits for room. A
 * console that stops answering shows here whether the guest stopped reading (bytes waiting,
 * RDI enabled, line high) or never got them. */
static void serial_report(void *opaque, struct machine_report *r)
{
	struct serial *s = opaque;

	if (!lock_within_ms(&s->lock, 100)) {
		machine_report_line(r, "serial: busy for 100 ms, no state");
		return;
	}
	machine_report_line(
		r,
		"serial: ier 0x%02x iir 0x%02x lcr 0x%02x mcr 0x%02x msr 0x%02x fcr 0x%02x; "
		"rx %u waiting%s; thr irq %d; line %s",
		s->ier, serial_iir(s), s->lcr, s->mcr, s->msr, s->fcr, s->rx_count,
		s->rx_starved ? " (console input held back)" : "", s->thr_irq,
		s->irq_level ? "high" : "low");
	pthread_mutex_unlock(&s->lock);
}

static void serial_reset(void *opaque)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	s->ier = s->fcr = s->mcr = s->scr = s->dlm = 0;
	s->lcr = 0x03; /* 8N1 */
	s->dll = 0x0c; /* 9600 baud */
	s->msr = 0;
	serial_update_msr(s);
	s->msr &= 0xf0;
	s->thr_irq = false;
	s->irq_level = false;
	/* Input typed before the reset stays queued for the next boot. */
	pthread_mutex_unlock(&s->lock);
}

int serial_create(struct machine *m, uint16_t base, unsigned gsi, struct chardev *cd,
		  struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->cd = cd;
	s->gsi = gsi;
	pthread_mutex_init(&s->lock, NULL);
	serial_reset(s);
	r = bus_register(m->pio, base, 8, &serial_ops, s, "serial");
	r = r ?: machine_add_reset_hook(m, serial_reset, s);
	r = r ?: machine_add_report(m, serial_report, s);
	if (r) {
		serial_destroy(s);
		return r;
	}
	chardev_attach(cd, &serial_chardev_ops, s);
	*out = s;
	return 0;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void serial_teardown(void *opaque)
{
	serial_destroy(opaque);
}

static int serial_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct serial *s;
	int r = serial_create(m, PORT_COM1, IRQ_COM1, m->serial_out, &s);

	if (r)
		return r;
	*obj = s;
	/* On failure s stays: its port and hooks point at it, and the VM is not built. */
	return machine_add_teardown(m, serial_teardown, s);
}

/* COM1: ports 0x3f8-0x3ff, IRQ 4, on the back end of --serial; its section is named by its
 * base port. */
const struct device_class serial_class = {.name = "serial",
					  .state = {{"serial.3f8", 1, serial_state}},
					  .create = serial_class_create};
