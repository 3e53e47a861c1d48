/* SPDX-License-Identifier: Apache-2.0 */
/* devmem.h: keel-vmm's large buffers are zeroed, page-aligned, and marked never to get
 * transparent huge pages (the kernel's "nh" flag on their mapping in /proc/self/smaps). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/devmem.h"

/* The VmFlags line of the mapping that holds p, or "" when there is none. */
static void vm_flags(const void *p, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0;

	out[0] = '\0';
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			size_t n = strnlen(line + 8, len - 1);

			memcpy(out, line + 8, n);
			out[n] = '\0';
			break;
		}
	}
	fclose(f);
}

static void test_alloc(void **state)
{
	size_t size = 1590528 + 123, page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *p = devmem_alloc(size);
	char flags[256];

	(void)state;
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % page, 0);
	for (size_t i = 0; i < size; i += 4096)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[size - 1], 0);
	memset(p, 0xa5, size); /* every byte is the caller's, the rounded tail too */
	p[(size + page - 1) / page * page - 1] = 1;
	vm_flags(p, flags, sizeof(flags));
	assert_true(flags[0]);
	/* Without transparent huge pages in the kernel there is nothing to refuse. */
	if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0)
		assert_non_null(strstr(flags, " nh"));
	assert_null(strstr(flags, " hg"));
	devmem_free(p, size);
	devmem_free(NULL, size);
}

static void test_refused(void **state)
{
	(void)state;
	errno = 0;
	assert_null(devmem_alloc(0));
	assert_int_equal(errno, EINVAL);
	assert_null(devmem_alloc(SIZE_MAX));
	assert_int_equal(errno, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
