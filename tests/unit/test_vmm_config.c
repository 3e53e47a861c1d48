/* SPDX-License-Identifier: Apache-2.0 */
/* keel-vmm option parsing: defaults, every option, and every kind of bad value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/config.h"

static int parse(char **argv, int argc, struct vm_config *cfg, char *err)
{
	return config_parse(argc, argv, cfg, err, 256);
}

static void test_defaults(void **state)
{
	char *argv[] = {"keel-vmm", "--kernel", "vmlinuz", NULL};
	struct vm_config cfg;
	char err[256];

	assert_int_equal(parse(argv, 3, &cfg, err), 0);
	assert_string_equal(cfg.kernel, "vmlinuz");
	assert_null(cfg.initrd);
	assert_string_equal(cfg.cmdline, "");
	assert_int_equal(cfg.cpus, 1);
	assert_int_equal(cfg.memory, 512ull << 20);
	assert_int_equal(cfg.serial.kind, CHARDEV_STDIO);
	assert_false(cfg.no_reboot);
	assert_false(cfg.debug_exit);
}

static void test_all_options(void **state)
{
	char *argv[] = {"keel-vmm",
			"--kernel",
			"k",
			"--initrd",
			"i",
			"--cmdline",
			"console=ttyS0 quiet",
			"--cpus",
			"4",
			"--memory",
			"2G",
			"--serial",
			"unix:/run/s.sock",
			"--no-reboot",
			"--debug-exit",
			"--control",
			"/run/c",
			"--status-file",
			"/run/st",
			"--name",
			"vm1",
			NULL};
	struct vm_config cfg;
	char err[256];

	assert_int_equal(parse(argv, 21, &cfg, err), 0);
	assert_string_equal(cfg.initrd, "i");
	assert_string_equal(cfg.cmdline, "console=ttyS0 quiet");
	assert_int_equal(cfg.cpus, 4);
	assert_int_equal(cfg.memory, 2ull << 30);
	assert_int_equal(cfg.serial.kind, CHARDEV_UNIX);
	assert_string_equal(cfg.serial.path, "/run/s.sock");
	assert_true(cfg.no_reboot);
	assert_true(cfg.debug_exit);
	assert_string_equal(cfg.control_path, "/run/c");
	assert_string_equal(cfg.status_path, "/run/st");
	assert_string_equal(cfg.name, "vm1");
}

static void test_memory_units(void **state)
{
	char *a[] = {"keel-vmm", "--kernel", "k", "--memory", "256", NULL};
	char *b[] = {"keel-vmm", "--kernel", "k", "--memory=1536M", NULL};
	struct vm_config cfg;
	char err[256];

	assert_int_equal(parse(a, 5, &cfg, err), 0);
	assert_int_equal(cfg.memory, 256ull << 20); /* plain numbers are MiB */
	assert_int_equal(parse(b, 4, &cfg, err), 0);
	assert_int_equal(cfg.memory, 1536ull << 20);
}

static void test_serial_specs(void **state)
{
	struct chardev_spec s;

	assert_int_equal(config_parse_chardev("stdio", &s), 0);
	assert_int_equal(s.kind, CHARDEV_STDIO);
	assert_int_equal(config_parse_chardev("off", &s), 0);
	assert_int_equal(s.kind, CHARDEV_OFF);
	assert_int_equal(config_parse_chardev("file:/tmp/x", &s), 0);
	assert_int_equal(s.kind, CHARDEV_FILE);
	assert_string_equal(s.path, "/tmp/x");
	assert_int_equal(config_parse_chardev("file:", &s), -EINVAL);
	assert_int_equal(config_parse_chardev("unix:", &s), -EINVAL);
	assert_int_equal(config_parse_chardev("tcp:1234", &s), -EINVAL);
	assert_int_equal(config_parse_chardev("", &s), -EINVAL);
}

/* Each bad command line is refused with a message that names the problem. */
static void expect_error(char **argv, int argc, const char *needle)
{
	struct vm_config cfg;
	char err[256] = "";

	assert_int_equal(parse(argv, argc, &cfg, err), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_errors(void **state)
{
	char *nokernel[] = {"keel-vmm", "--cpus", "2", NULL};
	char *cpus0[] = {"keel-vmm", "--kernel", "k", "--cpus", "0", NULL};
	char *cpus256[] = {"keel-vmm", "--kernel", "k", "--cpus", "256", NULL};
	char *cpusx[] = {"keel-vmm", "--kernel", "k", "--cpus", "two", NULL};
	char *memx[] = {"keel-vmm", "--kernel", "k", "--memory", "lots", NULL};
	char *memsmall[] = {"keel-vmm", "--kernel", "k", "--memory", "1M", NULL};
	char *mempage[] = {"keel-vmm", "--kernel", "k", "--memory", "4097K", NULL};
	char *memhuge[] = {"keel-vmm", "--kernel", "k", "--memory", "99999999999T", NULL};
	char *serial[] = {"keel-vmm", "--kernel", "k", "--serial", "pty", NULL};
	char *unknown[] = {"keel-vmm", "--kernel", "k", "--frobnicate", NULL};
	char *novalue[] = {"keel-vmm", "--kernel", NULL};
	char *extra[] = {"keel-vmm", "--kernel", "k", "stray", NULL};

	expect_error(nokernel, 3, "--kernel FILE is required");
	expect_error(cpus0, 5, "--cpus 0");
	expect_error(cpus256, 5, "1 to 255");
	expect_error(cpusx, 5, "--cpus two");
	expect_error(memx, 5, "--memory lots");
	expect_error(memsmall, 5, "too small");
	expect_error(mempage, 5, "4 KiB pages");
	expect_error(memhuge, 5, "overflows");
	expect_error(serial, 5, "--serial pty");
	expect_error(unknown, 4, "unknown option --frobnicate");
	expect_error(novalue, 2, "--kernel needs a value");
	expect_error(extra, 4, "unexpected argument 'stray'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),     cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_memory_units), cmocka_unit_test(test_serial_specs),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
