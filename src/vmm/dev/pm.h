/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI fixed hardware: PM1a event and control blocks, the PM timer, the fixed power
 * button (raising the SCI), S5 power-off, and the reset register at 0xCF9.
 */
#ifndef KEEL_VMM_DEV_PM_H
#define KEEL_VMM_DEV_PM_H

struct vm;
struct pm;

int pm_create(struct vm *vm, struct pm **out) __attribute__((warn_unused_result));
/* Press the power button: the guest's ACPI driver sees a power button event. */
void pm_power_button(struct pm *pm);

#endif
