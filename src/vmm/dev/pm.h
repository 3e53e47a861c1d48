/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI fixed hardware: PM1a event and control blocks, the PM timer, the fixed power
 * button (raising the SCI), the GPE0 block (machine_raise_gpe), S5 power-off, and the
 * reset register at 0xCF9. The PM block is a movable port range (bus.h) named PM_BUS_NAME:
 * at PORT_PM_BASE from power-on, then wherever the LPC bridge's PMBASE puts it (x86/q35.c),
 * as on an ICH9.
 */
#ifndef KEEL_VMM_DEV_PM_H
#define KEEL_VMM_DEV_PM_H

#define PM_BUS_NAME   "acpi-pm"
#define PM_BLOCK_SIZE 0x30 /* PM1 status, enable, control, the timer, GPE0 at 0x20 */
#define PM_GPE0_OFF   0x20 /* GPE0 status (8 bytes), then enable (8 bytes) */
#define PM_GPE0_LEN   16

struct machine;

/* The ACPI PM registers, the reset register at 0xcf9 and the machine's power button (the
 * guest's ACPI driver sees a power button event). */
int pm_create(struct machine *m, void **obj) __attribute__((warn_unused_result));

#endif
