/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI fixed hardware: PM1a event and control blocks, the PM timer, the fixed power
 * button (raising the SCI), S5 power-off, and the reset register at 0xCF9.
 */
#ifndef KEEL_VMM_DEV_PM_H
#define KEEL_VMM_DEV_PM_H

struct machine;

/* The ACPI PM registers, the reset register at 0xcf9 and the machine's power button (the
 * guest's ACPI driver sees a power button event). */
int pm_create(struct machine *m) __attribute__((warn_unused_result));

#endif
