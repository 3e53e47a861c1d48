/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm_pause with devices that quiesce and one that does not: a device still busy fails the
 * pause with -EBUSY, every device that was paused carries on again, and the VM's target is
 * back to running, so a save, checkpoint or restore never runs beside I/O in flight.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/vm.h"

struct fake_dev {
	bool busy;   /* pausing fails with -EBUSY */
	bool paused; /* what the device was last told */
	unsigned calls;
};

static int fake_pause(void *opaque, bool pause)
{
	struct fake_dev *d = opaque;

	d->calls++;
	d->paused = pause;
	return pause && d->busy ? -EBUSY : 0;
}

static void init_vm(struct vm *vm, struct fake_dev *devs, unsigned n)
{
	memset(vm, 0, sizeof(*vm));
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	vm->target = VM_RUN;
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(machine_add_pause_hook(&vm->machine, fake_pause, &devs[i]), 0);
}

static void test_pause_and_resume(void **state)
{
	static struct vm vm;
	struct fake_dev devs[3] = {0};

	init_vm(&vm, devs, 3);
	assert_int_equal(vm_pause(&vm), 0);
	assert_true(vm_is_paused(&vm));
	for (int i = 0; i < 3; i++)
		assert_true(devs[i].paused);
	assert_int_equal(vm_resume(&vm), 0);
	assert_false(vm_is_paused(&vm));
	for (int i = 0; i < 3; i++) {
		assert_false(devs[i].paused);
		assert_int_equal(devs[i].calls, 2);
	}
}

static void test_busy_device_fails_the_pause(void **state)
{
	static struct vm vm;
	struct fake_dev devs[3] = {{.busy = false}, {.busy = true}, {.busy = false}};

	init_vm(&vm, devs, 3);
	assert_int_equal(vm_pause(&vm), -EBUSY);
	assert_false(vm_is_paused(&vm));
	/* The first was paused and resumed, the busy one resumed, the last never touched. */
	assert_false(devs[0].paused);
	assert_int_equal(devs[0].calls, 2);
	assert_false(devs[1].paused);
	assert_int_equal(devs[1].calls, 2);
	assert_int_equal(devs[2].calls, 0);
	assert_non_null(strstr(vm_pause_error(-EBUSY), "requests in flight"));
	/* Once the device is idle, the same VM pauses. */
	devs[1].busy = false;
	assert_int_equal(vm_pause(&vm), 0);
	assert_true(vm_is_paused(&vm));
	assert_true(devs[2].paused);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_and_resume),
		cmocka_unit_test(test_busy_device_fails_the_pause),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
