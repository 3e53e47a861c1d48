/* SPDX-License-Identifier: Apache-2.0 */
/* i8042 keyboard controller at 0x60/0x64: enough for probing and the reset line. */
#ifndef KEEL_VMM_DEV_I8042_H
#define KEEL_VMM_DEV_I8042_H

struct machine;

int i8042_create(struct machine *m, void **obj) __attribute__((warn_unused_result));

#endif
