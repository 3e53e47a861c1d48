/*
 * rtc: the CMOS real-time clock holds the time of day. Reads seconds..year (and the century
 * byte 0x32) between updates, decodes them as register B says (BCD or binary, 12- or 24-hour),
 * validates every field and compares with utc=EPOCH from the runner: within 60 seconds.
 */
#include "lib/guest.h"

const char guest_name[] = "rtc";

static int32_t days_from_civil(int32_t y, int32_t m, int32_t d)
{
	y -= m <= 2;
	int32_t era = (y >= 0 ? y : y - 399) / 400;
	int32_t yoe = y - era * 400;
	int32_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int32_t z, int32_t *y, int32_t *m, int32_t *d)
{
	z += 719468;
	int32_t era = (z >= 0 ? z : z - 146096) / 146097;
	int32_t doe = z - era * 146097;
	int32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int32_t mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

struct rtc_raw {
	uint8_t sec, min, hour, day, mon, year, century;
};

static void read_raw(struct rtc_raw *r)
{
	for (int i = 0; i < 100000 && (cmos_read(0x0a) & 0x80); i++) /* update in progress */
		cpu_pause();
	r->sec = cmos_read(0x00);
	r->min = cmos_read(0x02);
	r->hour = cmos_read(0x04);
	r->day = cmos_read(0x07);
	r->mon = cmos_read(0x08);
	r->year = cmos_read(0x09);
	r->century = cmos_read(0x32);
}

static uint32_t decode(uint8_t v, bool bcd, const char *what)
{
	if (!bcd)
		return v;
	if ((v & 0x0f) > 9 || (v >> 4) > 9)
		guest_fail("%s byte 0x%02x is not valid BCD (register B says BCD)", what, v);
	return (uint32_t)(v >> 4) * 10 + (v & 0x0f);
}

void guest_main(void)
{
	uint32_t host = (uint32_t)mb_arg_u64("utc");

	struct rtc_raw a, b;
	int tries = 0;
	do {
		read_raw(&a);
		read_raw(&b);
	} while (memcmp(&a, &b, sizeof(a)) && ++tries < 5);
	if (tries == 5)
		guest_fail("the CMOS time kept changing between two reads");

	uint8_t regb = cmos_read(0x0b);
	bool bcd = !(regb & 0x04), h24 = regb & 0x02;
	uint32_t sec = decode(a.sec, bcd, "seconds");
	uint32_t min = decode(a.min, bcd, "minutes");
	bool pm = !h24 && (a.hour & 0x80);
	uint32_t hour = decode(a.hour & (h24 ? 0xff : 0x7f), bcd, "hours");
	uint32_t day = decode(a.day, bcd, "day of month");
	uint32_t mon = decode(a.mon, bcd, "month");
	uint32_t yy = decode(a.year, bcd, "year");
	uint32_t cent = 20;
	if ((bcd && (a.century & 0x0f) <= 9 && (a.century >> 4) <= 9) || !bcd) {
		uint32_t c = bcd ? (uint32_t)(a.century >> 4) * 10 + (a.century & 0x0f) : a.century;
		if (c >= 19 && c <= 21)
			cent = c;
	}
	if (!h24) {
		if (hour < 1 || hour > 12)
			guest_fail("12-hour mode hour %u is out of range", hour);
		hour = hour % 12 + (pm ? 12 : 0);
	}
	if (sec > 59 || min > 59 || hour > 23 || day < 1 || day > 31 || mon < 1 || mon > 12 ||
	    yy > 99)
		guest_fail("CMOS time %02u:%02u:%02u day %u month %u year %u is out of range "
		           "(register B 0x%02x)",
		           hour, min, sec, day, mon, yy, regb);
	uint32_t year = cent * 100 + yy;
	int32_t days = days_from_civil((int32_t)year, (int32_t)mon, (int32_t)day);
	uint32_t guest = (uint32_t)days * 86400u + hour * 3600 + min * 60 + sec;
	int32_t hy, hm, hd;
	civil_from_days((int32_t)(host / 86400), &hy, &hm, &hd);
	uint32_t hs = host % 86400;
	int32_t diff = (int32_t)(guest - host);
	guest_printf("rtc: CMOS time %04u-%02u-%02u %02u:%02u:%02u (%s, %s, register B 0x%02x), "
	             "host UTC %04d-%02d-%02d %02u:%02u:%02u, difference %d s\n",
	             year, mon, day, hour, min, sec, bcd ? "BCD" : "binary",
	             h24 ? "24-hour" : "12-hour", regb, hy, hm, hd, hs / 3600, hs / 60 % 60,
	             hs % 60, diff);
	if (diff > 60 || diff < -60)
		guest_fail("CMOS time is %d s away from the host's UTC time (allowed: 60 s)", diff);
}
