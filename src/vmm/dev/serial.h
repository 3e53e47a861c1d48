/* SPDX-License-Identifier: Apache-2.0 */
/* 16550A UART (COM1 at 0x3f8, IRQ 4) connected to a chardev. */
#ifndef KEEL_VMM_DEV_SERIAL_H
#define KEEL_VMM_DEV_SERIAL_H

#include <stdint.h>

struct machine;
struct chardev;
struct serial;

int serial_create(struct machine *m, uint16_t base, unsigned gsi, struct chardev *cd,
		  struct serial **out) __attribute__((warn_unused_result));
void serial_destroy(struct serial *s);

#endif
