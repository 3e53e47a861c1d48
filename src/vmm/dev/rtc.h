/* SPDX-License-Identifier: Apache-2.0 */
/* MC146818 CMOS real-time clock and NVRAM at ports 0x70/0x71. */
#ifndef KEEL_VMM_DEV_RTC_H
#define KEEL_VMM_DEV_RTC_H

#include <stdint.h>

struct machine;

int rtc_create(struct machine *m, void **obj) __attribute__((warn_unused_result));

#endif
