/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/dev/pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/layout.h"

#define PM1_STS_TMR    (1u << 0)
#define PM1_STS_PWRBTN (1u << 8)
#define PM1_STS_WAK    (1u << 15)
#define PM1_STS_MASK   0x8f31u /* the status bits the spec defines */
#define PM1_CNT_SCI_EN (1u << 0)
#define PM1_CNT_SLP_EN (1u << 13)
#define PM_TIMER_HZ    3579545ull
#define CF9_RESET      0x04
#define GPE0_STS       0x20 /* GPE0 status (8 bytes, as on an ICH9; bits 0-15 exist) */
#define GPE0_EN	       0x28 /* GPE0 enable (8 bytes) */

struct pm {
	struct machine *m;
	/* lock protects the fields below */
	pthread_mutex_t lock;
	uint16_t sts;
	uint16_t en;
	uint16_t cnt;
	uint8_t cf9;
	uint16_t gpe_sts, gpe_en; /* GPE0 bits 0-15 (machine_raise_gpe) */
	bool sci;
};

static void pm_update_sci(struct pm *pm)
{
	bool level = (pm->sts & pm->en) || (pm->gpe_sts & pm->gpe_en);

	if (level != pm->sci) {
		pm->sci = level;
		machine_set_irq(pm->m, IRQ_SCI, level);
	}
}

static uint32_t pm_timer(void)
{
	struct timespec ts;
	unsigned __int128 ns;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ns = (unsigned __int128)ts.tv_sec * 1000000000u + (unsigned)ts.tv_nsec;
	return (uint32_t)(ns * PM_TIMER_HZ / 1000000000u) & 0xffffff;
}

/* The block: status (0-1), enable (2-3), control (4-5), timer (8-11), GPE0 status (0x20-0x27)
 * and enable (0x28-0x2f). Any access width and alignment is taken apart into bytes. */
static uint8_t pm_read_byte(struct pm *pm, unsigned off)
{
	switch (off) {
	case 0:
	case 1:
		return (uint8_t)(pm->sts >> (8 * off));
	case 2:
	case 3:
		return (uint8_t)(pm->en >> (8 * (off - 2)));
	case 4:
	case 5:
		return (uint8_t)((pm->cnt | PM1_CNT_SCI_EN) >> (8 * (off - 4)));
	case 8:
	case 9:
	case 10:
	case 11:
		return (uint8_t)(pm_timer() >> (8 * (off - 8)));
	case GPE0_STS:
	case GPE0_STS + 1:
		return (uint8_t)(pm->gpe_sts >> (8 * (off - GPE0_STS)));
	case GPE0_EN:
	case GPE0_EN + 1:
		return (uint8_t)(pm->gpe_en >> (8 * (off - GPE0_EN)));
	default:
		return 0;
	}
}

static uint64_t pm_read(void *opaque, uint64_t off, unsigned size)
{
	struct pm *pm = opaque;
	uint64_t v = 0;
	unsigned i;

	if (off >= 8 && off + size <= 12 && size == 4)
		return pm_timer(); /* one consistent sample */
	pthread_mutex_lock(&pm->lock);
	for (i = 0; i < size; i++)
		v |= (uint64_t)pm_read_byte(pm, (unsigned)off + i) << (8 * i);
	pthread_mutex_unlock(&pm->lock);
	return v;
}

static void pm_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pm *pm = opaque;
	bool poweroff = false;
	unsigned i;

	pthread_mutex_lock(&pm->lock);
	for (i = 0; i < size; i++) {
		unsigned o = (unsigned)off + i;
		uint16_t b = (uint16_t)((value >> (8 * i)) & 0xff);

		if (o < 2) /* status: write one to clear */
			pm->sts &= (uint16_t) ~(b << (8 * o));
		else if (o < 4)
			pm->en = (uint16_t)((pm->en & ~(0xff << (8 * (o - 2)))) |
					    b << (8 * (o - 2)));
		else if (o < 6)
			pm->cnt = (uint16_t)((pm->cnt & ~(0xff << (8 * (o - 4)))) |
					     b << (8 * (o - 4)));
		else if (o == GPE0_STS || o == GPE0_STS + 1) /* write one to clear */
			pm->gpe_sts &= (uint16_t) ~(b << (8 * (o - GPE0_STS)));
		else if (o == GPE0_EN || o == GPE0_EN + 1)
			pm->gpe_en = (uint16_t)((pm->gpe_en & ~(0xff << (8 * (o - GPE0_EN)))) |
						b << (8 * (o - GPE0_EN)));
	}
	if (pm->cnt & PM1_CNT_SLP_EN) {
		unsigned typ = (pm->cnt >> 10) & 7;

		pm->cnt &= (uint16_t)~PM1_CNT_SLP_EN; /* SLP_EN always reads as zero */
		/* Our DSDT's \_S5 (Linux), or 0: QEMU's Q35 soft-off, which OVMF's
		 * ResetSystemLib writes for EfiResetShutdown. */
		poweroff = typ == ACPI_S5_SLP_TYP || typ == 0;
	}
	pm->sts &= PM1_STS_MASK;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	if (poweroff)
		machine_request(pm->m, VM_EVENT_POWEROFF, 0, "guest powered off (ACPI S5)");
}

static const struct bus_ops pm_ops = {
	.read = pm_read,
	.write = pm_write,
};

static uint64_t cf9_read(void *opaque, uint64_t off, unsigned size)
{
	struct pm *pm = opaque;
	uint8_t v;

	pthread_mutex_lock(&pm->lock);
	v = pm->cf9;
	pthread_mutex_unlock(&pm->lock);
	return v;
}

static void cf9_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	pm->cf9 = (uint8_t)value & ~CF9_RESET;
	pthread_mutex_unlock(&pm->lock);
	if (value & CF9_RESET)
		machine_request(pm->m, VM_EVENT_RESET, 0, "reset through port 0xcf9");
}

static const struct bus_ops cf9_ops = {
	.read = cf9_read,
	.write = cf9_write,
};

/* The power button (machine_set_power_button): `keel vm stop`'s ACPI shutdown request. */
static void pm_power_button(void *opaque)
{
	struct pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	pm->sts |= PM1_STS_PWRBTN;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

/* A general-purpose event (machine_raise_gpe): the PCI hot plug controller's. */
static void pm_gpe(void *opaque, unsigned bit)
{
	struct pm *pm = opaque;

	if (bit >= 16)
		return;
	pthread_mutex_lock(&pm->lock);
	pm->gpe_sts |= (uint16_t)(1u << bit);
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

/* Saved state: the PM1 registers, the reset register, the SCI level and (version 2) the
 * GPE0 registers. The PM timer follows the host's monotonic clock and is not saved. */
static int pm_state(struct state_io *io, void *opaque)
{
	struct pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	state_u16(io, &pm->sts, PM1_STS_MASK);
	state_u16(io, &pm->en, 0xffff);
	state_u16(io, &pm->cnt, 0xffff);
	state_u8(io, &pm->cf9, 0xff);
	state_bool(io, &pm->sci);
	if (io->version >= 2) {
		state_u16(io, &pm->gpe_sts, 0xffff);
		state_u16(io, &pm->gpe_en, 0xffff);
	}
	pthread_mutex_unlock(&pm->lock);
	return state_error(io);
}

static void pm_reset(void *opaque)
{
	struct pm *pm = opaque;

	/* Where keel's chipset puts the block at power-on (the LPC bridge's PMBASE moves it). */
	if (bus_move(pm->m->pio, PM_BUS_NAME, PORT_PM_BASE))
		abort(); /* registered by pm_create */
	pthread_mutex_lock(&pm->lock);
	pm->sts = pm->en = pm->cnt = 0;
	pm->cf9 = 0;
	pm->gpe_sts = pm->gpe_en = 0;
	pm->sci = false;
	pthread_mutex_unlock(&pm->lock);
}

int pm_create(struct machine *m, void **obj)
{
	struct pm *pm = calloc(1, sizeof(*pm));
	int r;

	if (!pm)
		return -ENOMEM;
	pm->m = m;
	pthread_mutex_init(&pm->lock, NULL);
	r = bus_register_movable(m->pio, PM_BLOCK_SIZE, &pm_ops, pm, PM_BUS_NAME);
	r = r ?: bus_move(m->pio, PM_BUS_NAME, PORT_PM_BASE);
	r = r ?: bus_register(m->pio, PORT_RESET, 1, &cf9_ops, pm, "reset");
	r = r ?: machine_add_reset_hook(m, pm_reset, pm);
	r = r ?: machine_set_power_button(m, pm_power_button, pm);
	r = r ?: machine_set_gpe(m, pm_gpe, pm);
	*obj = pm;
	return r; /* registered ranges keep pm alive: freed at exit with the process */
}

static int pm_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	return pm_create(m, obj);
}

const struct device_class pm_class = {
	.name = "acpi-pm", .state = {{"pm", 2, pm_state}}, .create = pm_class_create};
