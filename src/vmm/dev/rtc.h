/* SPDX-License-Identifier: Apache-2.0 */
/* MC146818 CMOS real-time clock and NVRAM at ports 0x70/0x71. */
#ifndef KEEL_VMM_DEV_RTC_H
#define KEEL_VMM_DEV_RTC_H

#include <stdint.h>

struct vm;
struct rtc;

int rtc_create(struct vm *vm, struct rtc **out) __attribute__((warn_unused_result));

#endif
