/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's per-VM cgroups (src/daemon/vm_cgroup.c) against a cgroupfs made of plain files in
 * a temporary directory: which hierarchies count as usable and the words when one does not,
 * the paths, and the limits written; under a unit cgroup systemd delegated to keeld, the VMs
 * under it and nothing written above it. Placing a worker needs a real cgroup v2 with
 * controllers: e2e `jail` (on such a host) and the lab's 50-keeld check that.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "tmp_top.h"

#include "config/vmdef.h"
#include "daemon/vm_cgroup.h"

#define UUID "0f6ad3a4-9c1e-4a55-8a7b-3d2f1e0c9b8a"

static void put(const char *file, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, file);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void get(const char *file, char *buf, size_t size)
{
	char path[PATH_MAX];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", top, file);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void sub(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", top, dir);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* A cgroup v2 mount whose controllers are bound to cgroup v1 (this kind of host): none, with
 * the reason in words. */
static void test_no_controllers(void **state)
{
	struct vmcg cg;
	char err[256];

	put("cgroup.controllers", "hugetlb\n");
	vmcg_init(&cg, top, "/");
	assert_false(cg.available);
	assert_non_null(strstr(cg.why, "has no memory or pids controllers"));
	assert_non_null(strstr(cg.why, top));
	/* A start asks for one anyway: refused, with the reason. */
	assert_int_equal(vmcg_create(&cg, UUID, 1 << 30, 264, err, sizeof(err)), -EOPNOTSUPP);
	assert_non_null(strstr(err, "per-VM cgroups are unavailable: the cgroup v2 hierarchy"));

	/* "memoryless" is not "memory". */
	put("cgroup.controllers", "cpu memoryless pids\n");
	vmcg_init(&cg, top, "/");
	assert_false(cg.available);
	assert_non_null(strstr(cg.why, "has no memory controller (a cgroup v1 hierarchy holds it"));
	put("cgroup.controllers", "memory\n");
	vmcg_init(&cg, top, "/");
	assert_false(cg.available);
	assert_non_null(strstr(cg.why, "has no pids controller"));
}

static void test_no_hierarchy(void **state)
{
	struct vmcg cg;

	vmcg_init(&cg, top, "/"); /* no cgroup.controllers: not a cgroup2 mount */
	assert_false(cg.available);
	assert_non_null(strstr(cg.why, "cannot read"));
	assert_non_null(strstr(cg.why, "cgroup.controllers"));
}

/* A usable hierarchy: keel.slice made, memory and pids turned on for the VMs. */
static void test_available(void **state)
{
	struct vmcg cg;
	char want[PATH_MAX], path[PATH_MAX], buf[64], err[512];
	int fd;

	put("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	put("cgroup.subtree_control", "");
	/* keel.slice's own files appear with it in cgroupfs; here the test makes them. */
	sub(VMCG_SLICE);
	put(VMCG_SLICE "/cgroup.subtree_control", "");
	vmcg_init(&cg, top, "/");
	assert_true(cg.available);
	assert_false(cg.cpu); /* not turned on while keel sets no cpu limit */
	snprintf(want, sizeof(want), "%s/keel.slice", top);
	assert_string_equal(cg.slice, want);
	get(VMCG_SLICE "/cgroup.subtree_control", buf, sizeof(buf));
	assert_string_equal(buf, "+memory +pids");
	get("cgroup.subtree_control", buf, sizeof(buf));
	assert_string_equal(buf, "+memory +pids");

	assert_int_equal(vmcg_path(&cg, UUID, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/keel.slice/vm-" UUID, top);
	assert_string_equal(path, want);
	assert_int_equal(vmcg_path(&cg, UUID, path, 20), -ENAMETOOLONG);

	/* A VM's cgroup without its files (not cgroupfs): refused, naming the file. */
	sub(VMCG_SLICE "/vm-" UUID);
	fd = vmcg_create(&cg, UUID, 256ull << 20, 264, err, sizeof(err));
	assert_int_equal(fd, -ENOENT);
	assert_non_null(strstr(err, "/keel.slice/vm-" UUID "/memory.max"));
	assert_int_equal(access(want, F_OK), -1); /* and removed again */
	/* With them: the limits written, the directory's descriptor returned. */
	sub(VMCG_SLICE "/vm-" UUID);
	put(VMCG_SLICE "/vm-" UUID "/memory.max", "max");
	put(VMCG_SLICE "/vm-" UUID "/pids.max", "max");
	put(VMCG_SLICE "/vm-" UUID "/memory.oom.group", "0");
	fd = vmcg_create(&cg, UUID, (256ull << 20) + (64ull << 20), VMDEF_WORKER_TASKS(4), err,
			 sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	get(VMCG_SLICE "/vm-" UUID "/memory.max", buf, sizeof(buf));
	assert_string_equal(buf, "335544320");
	get(VMCG_SLICE "/vm-" UUID "/pids.max", buf, sizeof(buf));
	assert_string_equal(buf, "264");
	get(VMCG_SLICE "/vm-" UUID "/memory.oom.group", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	/* Removed when its worker ends (cgroupfs removes the files with the directory). */
	unlink(strcat(strcpy(path, want), "/memory.max"));
	unlink(strcat(strcpy(path, want), "/pids.max"));
	unlink(strcat(strcpy(path, want), "/memory.oom.group"));
	vmcg_remove(&cg, UUID);
	assert_int_equal(access(want, F_OK), -1);
	vmcg_remove(&cg, UUID); /* again: nothing there, nothing done */

	/* One with tasks still in it (an earlier worker's) is not shared with a new one. */
	sub(VMCG_SLICE "/vm-" UUID);
	put(VMCG_SLICE "/vm-" UUID "/cgroup.events", "populated 1\nfrozen 0\n");
	fd = vmcg_create(&cg, UUID, 256ull << 20, 264, err, sizeof(err));
	assert_int_equal(fd, -EBUSY);
	assert_non_null(strstr(err, "still has tasks"));
	/* keeld's start: an empty stale one is swept, a populated one (a running worker's)
	 * stays. */
	sub(VMCG_SLICE "/vm-00000000-0000-0000-0000-000000000001");
	sub(VMCG_SLICE "/other");
	assert_int_equal(vmcg_sweep(&cg), 1);
	snprintf(path, sizeof(path), "%s/keel.slice/vm-00000000-0000-0000-0000-000000000001", top);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(want, F_OK), 0);
	snprintf(path, sizeof(path), "%s/keel.slice/other", top);
	assert_int_equal(access(path, F_OK), 0);
	unlink(strcat(strcpy(path, want), "/cgroup.events"));
	vmcg_remove(&cg, UUID);
	assert_int_equal(access(want, F_OK), -1);
}

/* A hierarchy without the cpu controller still works (cpu limits come later). */
static void test_without_cpu(void **state)
{
	struct vmcg cg;

	put("cgroup.controllers", "memory pids\n");
	put("cgroup.subtree_control", "");
	sub(VMCG_SLICE);
	put(VMCG_SLICE "/cgroup.subtree_control", "");
	vmcg_init(&cg, top, "/");
	assert_true(cg.available);
	assert_false(cg.cpu);
}

#define UNIT "system.slice/keeld.service"

/* systemd's mark on a delegated cgroup, trusted.delegate = value on UNIT (NULL: none). Only
 * root may set a trusted.* attribute: systemd, or this test (run as root). */
static void mark(const char *value)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/" UNIT, top);
	if (value)
		assert_int_equal(setxattr(path, "trusted.delegate", value, strlen(value), 0), 0);
	else
		assert_int_equal(removexattr(path, "trusted.delegate"), 0);
}

/* A unit cgroup systemd delegated (Delegate=yes, DelegateSubgroup=keeld: trusted.delegate on
 * the unit's cgroup, keeld in its leaf "keeld"): the VMs under UNIT/vms, memory and pids
 * turned on in UNIT and UNIT/vms, and nothing written in the cgroups systemd owns (the root's
 * cgroup.subtree_control, keel.slice). */
static void test_delegated(void **state)
{
	struct vmcg cg;
	char want[PATH_MAX], path[PATH_MAX], buf[64];

	put("cgroup.controllers", "cpu io memory pids\n");
	put("cgroup.subtree_control", "cpu io memory pids");
	sub("system.slice");
	sub(UNIT);
	sub(UNIT "/keeld");
	sub(UNIT "/vms"); /* its files appear with it in cgroupfs; here the test makes them */
	put(UNIT "/cgroup.controllers", "memory pids\n");
	put(UNIT "/cgroup.subtree_control", "");
	put(UNIT "/keeld/cgroup.procs", "");
	put(UNIT "/vms/cgroup.subtree_control", "");
	mark("1");

	vmcg_init(&cg, top, "/" UNIT "/keeld");
	assert_true(cg.available);
	assert_true(cg.delegated);
	snprintf(want, sizeof(want), "%s/" UNIT "/vms", top);
	assert_string_equal(cg.slice, want);
	get(UNIT "/cgroup.subtree_control", buf, sizeof(buf));
	assert_string_equal(buf, "+memory +pids");
	get(UNIT "/vms/cgroup.subtree_control", buf, sizeof(buf));
	assert_string_equal(buf, "+memory +pids");
	get("cgroup.subtree_control", buf, sizeof(buf));
	assert_string_equal(buf, "cpu io memory pids"); /* systemd's, untouched */
	snprintf(path, sizeof(path), "%s/" VMCG_SLICE, top);
	assert_int_equal(access(path, F_OK), -1);
	get(UNIT "/keeld/cgroup.procs", buf, sizeof(buf));
	assert_string_equal(buf, ""); /* already in its leaf: not moved */
	assert_int_equal(vmcg_path(&cg, UUID, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/" UNIT "/vms/vm-" UUID, top);
	assert_string_equal(path, want);

	/* Delegated without the memory controller (Delegate=pids): none, saying why. */
	put(UNIT "/cgroup.controllers", "pids\n");
	vmcg_init(&cg, top, "/" UNIT "/keeld");
	assert_false(cg.available);
	assert_non_null(strstr(cg.why, "/" UNIT " has no memory controller"));
	put(UNIT "/cgroup.controllers", "memory pids\n");

	/* Started in the unit's cgroup itself (a systemd without DelegateSubgroup=, as Debian
	 * 12's 252): keeld leaves the unit's cgroup alone, for with controllers on in UNIT
	 * systemd could not start the next keeld there (the kernel refuses a process in a
	 * cgroup with controllers on for its children) while VMs run: keel.slice, as without
	 * systemd, nothing written in UNIT, keeld not moved. */
	sub(VMCG_SLICE);
	put(VMCG_SLICE "/cgroup.subtree_control", "");
	put(UNIT "/cgroup.subtree_control", "");
	put(UNIT "/vms/cgroup.subtree_control", "");
	vmcg_init(&cg, top, "/" UNIT);
	assert_true(cg.available);
	assert_false(cg.delegated);
	snprintf(want, sizeof(want), "%s/" VMCG_SLICE, top);
	assert_string_equal(cg.slice, want);
	get(UNIT "/cgroup.subtree_control", buf, sizeof(buf));
	assert_string_equal(buf, "");
	get(UNIT "/vms/cgroup.subtree_control", buf, sizeof(buf));
	assert_string_equal(buf, "");
	get(UNIT "/keeld/cgroup.procs", buf, sizeof(buf));
	assert_string_equal(buf, "");

	/* A leaf named keeld under a cgroup systemd did not delegate, or a mark that is not
	 * "1", is no delegation: keel.slice, as without systemd. */
	mark("0");
	vmcg_init(&cg, top, "/" UNIT "/keeld");
	assert_true(cg.available);
	assert_false(cg.delegated);
	snprintf(want, sizeof(want), "%s/" VMCG_SLICE, top);
	assert_string_equal(cg.slice, want);
	mark(NULL);
	vmcg_init(&cg, top, "/" UNIT "/keeld");
	assert_false(cg.delegated);
	assert_string_equal(cg.slice, want);
}

/* This host, whatever it has: either usable or a reason, never both or neither. */
static void test_this_host(void **state)
{
	struct vmcg cg;

	vmcg_init(&cg, NULL, NULL);
	assert_true(cg.available == (cg.why[0] == '\0'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_controllers, tmp_top_setup,
						tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_no_hierarchy, tmp_top_setup, tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_available, tmp_top_setup, tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_without_cpu, tmp_top_setup, tmp_top_teardown),
		cmocka_unit_test_setup_teardown(test_delegated, tmp_top_setup, tmp_top_teardown),
		cmocka_unit_test(test_this_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
