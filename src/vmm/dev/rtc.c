/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MC146818 RTC: the time of day is the host's UTC clock plus an offset the guest sets by
 * writing the clock registers; formats follow status register B (BCD or binary, 12 or 24
 * hours). The 128 bytes of CMOS RAM survive a VM reset, as on real hardware. Interrupts
 * (periodic, alarm, update) are not generated; register C always reads 0.
 */
#include "vmm/dev/rtc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/x86/layout.h"

#define REG_SEC	    0x00
#define REG_MIN	    0x02
#define REG_HOUR    0x04
#define REG_WDAY    0x06
#define REG_MDAY    0x07
#define REG_MON	    0x08
#define REG_YEAR    0x09
#define REG_A	    0x0a
#define REG_B	    0x0b
#define REG_C	    0x0c
#define REG_D	    0x0d
#define REG_CENTURY 0x32

#define B_SET	    0x80
#define B_BINARY    0x04
#define B_24H	    0x02
#define D_VRT	    0x80

struct rtc {
	struct machine *m;
	/* lock protects the fields below */
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
	int64_t offset; /* guest time minus host time, seconds */
};

static bool rtc_is_clock(uint8_t reg)
{
	return reg == REG_SEC || reg == REG_MIN || reg == REG_HOUR || reg == REG_WDAY ||
	       reg == REG_MDAY || reg == REG_MON || reg == REG_YEAR || reg == REG_CENTURY;
}

/* A clock field (0-99 after reduction: the guest can set any year) in the register format. */
static uint8_t rtc_to_reg(const struct rtc *r, int v)
{
	unsigned u = (unsigned)((v % 100 + 100) % 100);

	return (r->cmos[REG_B] & B_BINARY) ? (uint8_t)u : (uint8_t)((u / 10) << 4 | u % 10);
}

static int rtc_from_reg(const struct rtc *r, uint8_t v)
{
	return (r->cmos[REG_B] & B_BINARY) ? v : (v >> 4) * 10 + (v & 0x0f);
}

/* Fill the clock registers from host time + offset. */
static void rtc_refresh(struct rtc *r)
{
	time_t t = time(NULL) + (time_t)r->offset;
	struct tm tm;
	int hour;

	if (!gmtime_r(&t, &tm))
		return; /* a time the C library cannot express: keep the registers as they are */
	hour = tm.tm_hour;
	r->cmos[REG_SEC] = rtc_to_reg(r, tm.tm_sec);
	r->cmos[REG_MIN] = rtc_to_reg(r, tm.tm_min);
	if (r->cmos[REG_B] & B_24H) {
		r->cmos[REG_HOUR] = rtc_to_reg(r, hour);
	} else {
		int h12 = hour % 12 ? hour % 12 : 12;

		r->cmos[REG_HOUR] = (uint8_t)(rtc_to_reg(r, h12) | (hour >= 12 ? 0x80 : 0));
	}
	r->cmos[REG_WDAY] = rtc_to_reg(r, tm.tm_wday + 1);
	r->cmos[REG_MDAY] = rtc_to_reg(r, tm.tm_mday);
	r->cmos[REG_MON] = rtc_to_reg(r, tm.tm_mon + 1);
	r->cmos[REG_YEAR] = rtc_to_reg(r, tm.tm_year % 100);
	r->cmos[REG_CENTURY] = rtc_to_reg(r, (tm.tm_year + 1900) / 100);
}

/* The guest set the clock: derive the offset from the registers (any values; garbage in
 * gives some time, never a fault). */
static void rtc_adopt(struct rtc *r)
{
	struct tm tm = {0};
	uint8_t h = r->cmos[REG_HOUR];
	int hour;

	if (r->cmos[REG_B] & B_24H) {
		hour = rtc_from_reg(r, h);
	} else {
		hour = rtc_from_reg(r, h & 0x7f) % 12 + ((h & 0x80) ? 12 : 0);
	}
	tm.tm_sec = rtc_from_reg(r, r->cmos[REG_SEC]) % 60;
	tm.tm_min = rtc_from_reg(r, r->cmos[REG_MIN]) % 60;
	tm.tm_hour = hour % 24;
	tm.tm_mday = rtc_from_reg(r, r->cmos[REG_MDAY]) % 32;
	tm.tm_mon = (rtc_from_reg(r, r->cmos[REG_MON]) + 11) % 12;
	tm.tm_year = rtc_from_reg(r, r->cmos[REG_CENTURY]) % 100 * 100 +
		     rtc_from_reg(r, r->cmos[REG_YEAR]) % 100 - 1900;
	if (tm.tm_mday == 0)
		tm.tm_mday = 1;
	r->offset = (int64_t)timegm(&tm) - (int64_t)time(NULL);
}

static uint64_t rtc_read(void *opaque, uint64_t off, unsigned size)
{
	struct rtc *r = opaque;
	uint8_t v;

	if (off == 0)
		return 0xff; /* the index register is write-only */
	pthread_mutex_lock(&r->lock);
	if (rtc_is_clock(r->index) && !(r->cmos[REG_B] & B_SET))
		rtc_refresh(r);
	v = r->cmos[r->index];
	if (r->index == REG_C)
		r->cmos[REG_C] = 0;
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void rtc_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct rtc *r = opaque;
	uint8_t v = (uint8_t)value;

	pthread_mutex_lock(&r->lock);
	if (off == 0) {
		r->index = v & 0x7f; /* bit 7 masks NMIs, which we do not model */
	} else if (r->index == REG_B) {
		bool was_set = r->cmos[REG_B] & B_SET;

		if (!was_set)
			rtc_refresh(r); /* freeze the current time in the old format */
		r->cmos[REG_B] = v;
		if (was_set && !(v & B_SET))
			rtc_adopt(r);
		else if (!(v & B_SET))
			rtc_refresh(r); /* the format may have changed */
	} else if (r->index == REG_A) {
		r->cmos[REG_A] = v & 0x7f; /* UIP is read-only */
	} else if (r->index == REG_C || r->index == REG_D) {
		/* read-only */
	} else if (rtc_is_clock(r->index)) {
		bool set = r->cmos[REG_B] & B_SET;

		if (!set)
			rtc_refresh(r);
		r->cmos[r->index] = v;
		if (!set)
			rtc_adopt(r);
	} else {
		r->cmos[r->index] = v;
	}
	pthread_mutex_unlock(&r->lock);
}

static const struct bus_ops rtc_ops = {
	.read = rtc_read,
	.write = rtc_write,
};

/* Saved state: CMOS RAM, the index, and the guest's offset from host time (so the clock
 * reads the real time after a restore, as on a machine that was off). */
static int rtc_state(struct state_io *io, void *opaque)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	state_u8(io, &r->index, 0x7f);
	state_bytes(io, r->cmos, sizeof(r->cmos));
	state_i64(io, &r->offset);
	pthread_mutex_unlock(&r->lock);
	return state_error(io);
}

static void rtc_reset(void *opaque)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	r->index = 0;
	r->cmos[REG_C] = 0;
	r->cmos[REG_B] &= (uint8_t)~B_SET;
	pthread_mutex_unlock(&r->lock);
}

/*
 * The memory and CPU bytes a PC BIOS leaves in CMOS, as QEMU's pc_cmos_init writes them for
 * SeaBIOS and OVMF (which fall back to them without fw_cfg's etc/e820): base memory (KiB),
 * memory from 1 MiB to 64 MiB (KiB), from 16 MiB to the hole and above 4 GiB (64 KiB
 * units), and the CPU count less one.
 */
static void rtc_memory_bytes(struct rtc *r, uint64_t ram, bool firmware, unsigned cpus)
{
	uint64_t lim = mem_low_limit(ram, firmware);
	uint64_t low = ram < lim ? ram : lim, high = ram - low;
	uint64_t ext = low > MiB ? (low - MiB) / KiB : 0, above16 = 0;

	if (ext > 0xfc00)
		ext = 0xfc00; /* 63 MiB: the rest is in 0x34/0x35 */
	if (low > 16 * MiB)
		above16 = (low - 16 * MiB) >> 16;
	if (above16 > 0xffff)
		above16 = 0xffff;
	high >>= 16;
	if (high > 0xffffff)
		high = 0xffffff;
	r->cmos[0x15] = 0x80; /* 640 KiB of base memory */
	r->cmos[0x16] = 0x02;
	r->cmos[0x17] = r->cmos[0x30] = (uint8_t)ext;
	r->cmos[0x18] = r->cmos[0x31] = (uint8_t)(ext >> 8);
	r->cmos[0x34] = (uint8_t)above16;
	r->cmos[0x35] = (uint8_t)(above16 >> 8);
	r->cmos[0x5b] = (uint8_t)high;
	r->cmos[0x5c] = (uint8_t)(high >> 8);
	r->cmos[0x5d] = (uint8_t)(high >> 16);
	r->cmos[0x5f] = (uint8_t)(cpus - 1);
}

int rtc_create(struct machine *m, void **obj)
{
	struct rtc *r = calloc(1, sizeof(*r));
	int e;

	if (!r)
		return -ENOMEM;
	r->m = m;
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	r->cmos[REG_B] = B_24H;
	r->cmos[REG_D] = D_VRT;
	rtc_memory_bytes(r, m->def->memory, m->def->firmware != VM_FIRMWARE_NONE,
			 m->def->cpus ? m->def->cpus : 1);
	e = bus_register(m->pio, PORT_RTC, 2, &rtc_ops, r, "rtc");
	e = e ?: machine_add_reset_hook(m, rtc_reset, r);
	*obj = r;
	return e; /* registered ranges keep r alive: freed at exit with the process */
}

static int rtc_class_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	return rtc_create(m, obj);
}

const struct device_class rtc_class = {
	.name = "rtc", .state = {{"rtc", 1, rtc_state}}, .create = rtc_class_create};
