/* SPDX-License-Identifier: Apache-2.0 */
/* The bus (dispatch, overlap, straddling) and the guest-memory accessor's bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/control.h"
#include "vmm/mem.h"

struct dev {
	uint64_t last_off, last_val;
	unsigned last_size, writes;
};

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
	return 0x1000 + off;
}

static void dev_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct dev *d = opaque;

	d->last_off = off;
	d->last_size = size;
	d->last_val = v;
	d->writes++;
}

static const struct bus_ops dev_ops = {.read = dev_read, .write = dev_write};

static void test_bus_dispatch(void **state)
{
	struct bus bus;
	struct dev a = {0}, b = {0};
	uint64_t v;

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x3f8, 8, &dev_ops, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x60, 1, &dev_ops, &b, "b"), 0);
	assert_int_equal(bus_register(&bus, 0x3fc, 8, &dev_ops, &b, "overlap"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3f0, 9, &dev_ops, &b, "overlap"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3f0, 8, &dev_ops, &b, "adjacent"), 0);
	assert_int_equal(bus_register(&bus, ~0ull, 2, &dev_ops, &b, "wraps"), -EINVAL);

	assert_true(bus_read(&bus, 0x3fd, 1, &v));
	assert_int_equal(v, 0x1005);
	assert_true(bus_write(&bus, 0x3f9, 2, 0xbeef));
	assert_int_equal(a.last_off, 1);
	assert_int_equal(a.last_size, 2);
	assert_int_equal(a.last_val, 0xbeef);
	/* An access that straddles the end of a range, or hits nothing, is unclaimed. */
	assert_false(bus_read(&bus, 0x3fe, 4, &v));
	assert_int_equal(v, 0xffffffff);
	assert_false(bus_read(&bus, 0x80, 1, &v));
	assert_int_equal(v, 0xff);
	assert_false(bus_write(&bus, 0x80, 1, 0));
	assert_int_equal(b.writes, 0);
}

/* Odd sizes (KVM splits page-crossing accesses into 3+5, 6+2 ...) reach devices as bytes. */
static void test_bus_odd_sizes(void **state)
{
	struct bus bus;
	struct dev a = {0};
	uint64_t v;

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x2000, 4, &dev_ops, &a, "a"), 0);
	assert_true(bus_read(&bus, 0x2001, 3, &v));
	/* bytes from offsets 1, 2, 3: dev_read returns 0x1000 + off, of which the low byte */
	assert_int_equal(v, 0x030201);
	assert_true(bus_write(&bus, 0x1ffd, 7, 0x77665544332211));
	assert_int_equal(a.writes, 4); /* only the 4 bytes at 0x2000-0x2003 are the device's */
	assert_int_equal(a.last_size, 1);
	assert_int_equal(a.last_off, 3);
	assert_int_equal(a.last_val, 0x77);
	assert_true(bus_read(&bus, 0x1ffe, 5, &v));
	assert_int_equal(v, 0x020100ffffull); /* bytes outside the device read 0xff */
	assert_false(bus_read(&bus, 0x3000, 6, &v));
	assert_int_equal(v, 0xffffffffffffull);
}

static void test_mem_bounds(void **state)
{
	struct guest_mem mem;
	uint8_t x = 1;

	assert_int_equal(mem_init(&mem, (3ull << 30) + (1 << 20), false), 0);
	assert_non_null(mem_ptr(&mem, 0, 4096));
	assert_non_null(mem_ptr(&mem, (3ull << 30) - 1, 1));
	assert_null(mem_ptr(&mem, (3ull << 30) - 1, 2)); /* runs into the hole */
	assert_null(mem_ptr(&mem, 3ull << 30, 1));	 /* in the hole */
	assert_non_null(mem_ptr(&mem, 4ull << 30, 1 << 20));
	assert_null(mem_ptr(&mem, 4ull << 30, (1 << 20) + 1));
	assert_null(mem_ptr(&mem, ~0ull, 2)); /* wraps around */
	assert_null(mem_ptr(&mem, 16, ~0ull));
	assert_int_equal(mem_write(&mem, (4ull << 30) + (1 << 20), &x, 1), -EFAULT);
	assert_int_equal(mem_read(&mem, 100, &x, 1), 0);
	assert_int_equal(x, 0);
	mem_free(&mem);
}

static void test_control_parse(void **state)
{
	enum control_cmd cmd;
	const char *cls;
	char why[160];
	static const char *const ok[] = {
		"{\"execute\":\"status\"}", "{\"execute\":\"pause\"}",
		"{\"execute\":\"resume\"}", "{\"execute\":\"powerdown\"}",
		"{\"execute\":\"reset\"}",  " {\"execute\":\"quit\"}\r",
	};
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"42",
		"{\"execute\":1}",
		"{\"cmd\":\"status\"}",
		"{\"execute\":\"status\"} x",
		"{\"execute\":\"status\"}{}",
	};
	unsigned i;

	for (i = 0; i < 6; i++) {
		assert_int_equal(control_parse(ok[i], strlen(ok[i]), &cmd, &cls, why, sizeof(why)),
				 0);
		assert_int_equal(cmd, (enum control_cmd)i);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (control_parse(bad[i], strlen(bad[i]), &cmd, &cls, why, sizeof(why)) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_string_equal(cls, "GenericError");
	}
	assert_int_equal(control_parse("{\"execute\":\"fly\"}", 17, &cmd, &cls, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(cls, "CommandNotFound");
	assert_non_null(strstr(why, "unknown command 'fly'"));
	/* save and restore take a directory; restore an optional "paused" and "fd" (its files
	 * passed with the request). */
	{
		static struct control_request req;
		static const char *const args_bad[] = {
			"{\"execute\":\"restore\"}",
			"{\"execute\":\"restore\",\"arguments\":{\"dir\":\"\"}}",
			"{\"execute\":\"restore\",\"arguments\":{\"dir\":\"d\",\"paused\":1}}",
			"{\"execute\":\"save\",\"arguments\":{\"dir\":\"d\",\"paused\":true}}",
			"{\"execute\":\"restore\",\"arguments\":{\"dir\":\"d\",\"fd\":1}}",
			"{\"execute\":\"save\",\"arguments\":{\"dir\":\"d\",\"fd\":true}}",
		};
		const char *ok_restore =
			"{\"execute\":\"restore\",\"arguments\":{\"dir\":\"/s\",\"paused\":true}}";

		assert_int_equal(control_parse_request(ok_restore, strlen(ok_restore), &req, &cls,
						       why, sizeof(why)),
				 0);
		assert_int_equal(req.cmd, CONTROL_RESTORE);
		assert_string_equal(req.dir, "/s");
		assert_true(req.paused);
		assert_false(req.passed);
		ok_restore = "{\"execute\":\"restore\",\"arguments\":{\"dir\":\"s\",\"fd\":true}}";
		assert_int_equal(control_parse_request(ok_restore, strlen(ok_restore), &req, &cls,
						       why, sizeof(why)),
				 0);
		assert_true(req.passed);
		assert_false(req.paused);
		for (i = 0; i < sizeof(args_bad) / sizeof(args_bad[0]); i++)
			if (control_parse_request(args_bad[i], strlen(args_bad[i]), &req, &cls, why,
						  sizeof(why)) != -EINVAL)
				fail_msg("accepted '%s'", args_bad[i]);
	}
	/* link takes an adapter's index and up, both, nothing else. */
	{
		static struct control_request req;
		static const char *const link_bad[] = {
			"{\"execute\":\"link\"}",
			"{\"execute\":\"link\",\"arguments\":{\"nic\":0}}",
			"{\"execute\":\"link\",\"arguments\":{\"up\":true}}",
			"{\"execute\":\"link\",\"arguments\":{\"nic\":-1,\"up\":true}}",
			"{\"execute\":\"link\",\"arguments\":{\"nic\":8,\"up\":true}}",
			"{\"execute\":\"link\",\"arguments\":{\"nic\":\"0\",\"up\":true}}",
			"{\"execute\":\"link\",\"arguments\":{\"nic\":0,\"up\":1}}",
			"{\"execute\":\"link\",\"arguments\":{\"nic\":0,\"up\":true,\"x\":1}}",
		};
		const char *ok_link =
			"{\"execute\":\"link\",\"arguments\":{\"nic\":7,\"up\":false}}";

		req.up = true;
		assert_int_equal(control_parse_request(ok_link, strlen(ok_link), &req, &cls, why,
						       sizeof(why)),
				 0);
		assert_int_equal(req.cmd, CONTROL_LINK);
		assert_int_equal(req.nic, 7);
		assert_false(req.up);
		for (i = 0; i < sizeof(link_bad) / sizeof(link_bad[0]); i++)
			if (control_parse_request(link_bad[i], strlen(link_bad[i]), &req, &cls, why,
						  sizeof(why)) != -EINVAL)
				fail_msg("accepted '%s'", link_bad[i]);
	}
	/* nic-add's queue pairs: 1 when left out, else a number from 1 to VMDEF_NET_QUEUES_MAX;
	 * for nic-add only. */
	{
		static struct control_request req;
		static const char *const queues_bad[] = {
			"{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\",\"queues\":0}}",
			"{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\",\"queues\":9}}",
			"{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\",\"queues\":-1}}",
			"{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\",\"queues\":\"2\"}}",
			"{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\",\"queues\":2.0}}",
			"{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\",\"queues\":null}}",
			"{\"execute\":\"nic-remove\",\"arguments\":{\"slot\":3,\"queues\":2}}",
		};
		const char *one = "{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\"}}";
		const char *eight = "{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\","
				    "\"fd\":true,\"vhost_fd\":true,\"queues\":8}}";

		assert_int_equal(
			control_parse_request(one, strlen(one), &req, &cls, why, sizeof(why)), 0);
		assert_int_equal(req.queues, 1);
		assert_int_equal(
			control_parse_request(eight, strlen(eight), &req, &cls, why, sizeof(why)),
			0);
		assert_int_equal(req.queues, VMDEF_NET_QUEUES_MAX);
		assert_true(req.passed && req.vhost_fd);
		for (i = 0; i < sizeof(queues_bad) / sizeof(queues_bad[0]); i++)
			if (control_parse_request(queues_bad[i], strlen(queues_bad[i]), &req, &cls,
						  why, sizeof(why)) != -EINVAL)
				fail_msg("accepted '%s'", queues_bad[i]);
		assert_non_null(strstr(why, "nic-remove needs"));
		assert_int_equal(control_parse_request(queues_bad[1], strlen(queues_bad[1]), &req,
						       &cls, why, sizeof(why)),
				 -EINVAL);
		assert_non_null(strstr(why, "\"queues\" is the card's queue pairs, a number from 1 "
					    "to 8"));
		/* The usage line whole in the worker's 256 bytes, and not the one keeld takes for
		 * a worker from before "queues" (sup.c's SUP_NIC_ADD_OLD_USAGE_Q). */
		{
			const char *unknown =
				"{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"t\",\"x\":1}}";
			char line[256];

			assert_int_equal(control_parse_request(unknown, strlen(unknown), &req, &cls,
							       line, sizeof(line)),
					 -EINVAL);
			assert_true(strlen(line) < sizeof(line) - 1);
			assert_non_null(strstr(line, "\"vhost_fd\":BOOL and \"queues\":N"));
			assert_null(strstr(line, "\"on\" and \"vhost_fd\""));
		}
	}
	/* An embedded NUL after the object is not whitespace. */
	assert_int_equal(
		control_parse("{\"execute\":\"quit\"}\0", 19, &cmd, &cls, why, sizeof(why)),
		-EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bus_dispatch),
		cmocka_unit_test(test_bus_odd_sizes),
		cmocka_unit_test(test_mem_bounds),
		cmocka_unit_test(test_control_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
