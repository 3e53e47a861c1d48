/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld works on the files it checked, never on what a path names later (src/daemon/
 * disk_policy.c, docs/security.md): a disk's format is pinned on the descriptor its pool
 * opened; a checkpoint delete's merge writes into the parent its chain check found and kept
 * open, and its relink follows the new parent's chain through the pools only. Each case swaps
 * a file at the path after the check (or points a chain outside the pools): code that opened
 * the path again would read, write or follow the other file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/disk_policy.h"
#include "daemon/pools.h"
#include "disk/disk.h"

static char top[64];

/* TOP/name, in one of a few rotating buffers. */
static const char *at(const char *name)
{
	static char path[8][PATH_MAX];
	static int i;

	i = (i + 1) % 8;
	snprintf(path[i], sizeof(path[i]), "%s/%s", top, name);
	return path[i];
}

static int setup(void **state)
{
	snprintf(top, sizeof(top), "/tmp/keel-dpol-XXXXXX");
	return mkdtemp(top) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void vhdx(const char *path, const char *parent)
{
	struct disk_create_opts o = {
		.format = DISK_FORMAT_VHDX,
		.type = parent ? DISK_TYPE_DIFFERENCING : DISK_TYPE_DYNAMIC,
		.size = 8 << 20,
		.parent = parent,
	};
	struct disk_err why;

	assert_int_equal(disk_create(path, &o, &why), 0);
}

static void raw(const char *path, uint8_t fill)
{
	uint8_t buf[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	memset(buf, fill, sizeof(buf));
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	close(fd);
}

/* The first byte of the disk at path (opened as VHDX with its chain). */
static uint8_t first_byte(const char *path)
{
	uint8_t buf[512];
	struct disk *d = NULL;
	struct disk_err why;

	assert_int_equal(disk_open_as(path, DISK_FORMAT_VHDX, DISK_OPEN_RDONLY, &d, &why), 0);
	assert_int_equal(disk_read(d, buf, 0, sizeof(buf)), 0);
	disk_close(d);
	return buf[0];
}

static void fill_first(const char *path, uint8_t v)
{
	uint8_t buf[4096];
	struct disk *d = NULL;
	struct disk_err why;

	memset(buf, v, sizeof(buf));
	assert_int_equal(disk_open_as(path, DISK_FORMAT_VHDX, 0, &d, &why), 0);
	assert_int_equal(disk_write(d, buf, 0, sizeof(buf)), 0);
	assert_int_equal(disk_flush(d), 0);
	disk_close(d);
}

/* A store whose default pool is TOP/state/pools/default; its path into pool. */
static struct store *pool_store(char *pool, size_t size)
{
	struct store *st = NULL;
	char err[512];

	assert_int_equal(mkdir(at("state"), 0700), 0);
	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	assert_int_equal(pools_init(st, at("state"), err, sizeof(err)), 0);
	assert_non_null(realpath(at("state/pools/default"), pool));
	(void)size;
	return st;
}

static const char *in(const char *pool, const char *name)
{
	static char path[8][PATH_MAX];
	static int i;

	i = (i + 1) % 8;
	assert_true((size_t)snprintf(path[i], sizeof(path[i]), "%s/%s", pool, name) <
		    sizeof(path[i]));
	return path[i];
}

/* A raw file swapped for a VHDX after its descriptor was opened: the descriptor's bytes
 * decide (raw), not what the path names now (which would be refused as a VHDX header in a
 * file named raw). */
static void test_pin_raw_swapped(void **state)
{
	struct vm_disk d = {.format = VM_DISK_AUTO};
	char err[512] = "";
	int fd;

	raw(at("a.img"), 0);
	fd = open(at("a.img"), O_RDONLY);
	assert_true(fd >= 0);
	vhdx(at("v.vhdx"), NULL);
	assert_int_equal(rename(at("v.vhdx"), at("a.img")), 0);
	d.path = (char *)at("a.img");
	assert_int_equal(disk_policy_pin_fd(&d, fd, NULL, err, sizeof(err)), 0);
	assert_int_equal(d.format, VM_DISK_RAW);
	close(fd);
	/* And the descriptor of a file that does begin with a VHDX header is refused. */
	fd = open(at("a.img"), O_RDONLY);
	d.format = VM_DISK_AUTO;
	assert_int_equal(disk_policy_pin_fd(&d, fd, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "begins with a VHDX header"));
	close(fd);
}

/* A VHDX swapped for raw bytes after its descriptor was opened: it is still the VHDX. */
static void test_pin_vhdx_swapped(void **state)
{
	struct vm_disk d = {.format = VM_DISK_AUTO};
	char err[512] = "";
	int fd;

	vhdx(at("b.vhdx"), NULL);
	fd = open(at("b.vhdx"), O_RDONLY);
	assert_true(fd >= 0);
	raw(at("junk"), 0x5a);
	assert_int_equal(rename(at("junk"), at("b.vhdx")), 0);
	d.path = (char *)at("b.vhdx");
	assert_int_equal(disk_policy_pin_fd(&d, fd, NULL, err, sizeof(err)), 0);
	assert_int_equal(d.format, VM_DISK_VHDX);
	close(fd);
	fd = open(at("b.vhdx"), O_RDONLY);
	d.format = VM_DISK_AUTO;
	assert_int_equal(disk_policy_pin_fd(&d, fd, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "does not open as one"));
	close(fd);
}

/* The merge writes into the parent its check opened, though another VHDX took its path
 * before the merge ran; that other file is left untouched. */
static void test_merge_swapped_parent(void **state)
{
	char pool[PATH_MAX], err[1024] = "";
	struct store *st = pool_store(pool, sizeof(pool));
	struct disk_policy_merge m;

	vhdx(in(pool, "base.vhdx"), NULL);
	vhdx(in(pool, "base_1.avhdx"), in(pool, "base.vhdx"));
	fill_first(in(pool, "base_1.avhdx"), 0xab);
	assert_int_equal(disk_policy_merge_open(st, in(pool, "base_1.avhdx"), in(pool, "base.vhdx"),
						&m, err, sizeof(err)),
			 0);
	/* A second name, made once the parent is open (a written file with two is refused). */
	assert_int_equal(link(in(pool, "base.vhdx"), at("base.kept")), 0);
	vhdx(in(pool, "other.vhdx"), NULL);
	assert_int_equal(rename(in(pool, "other.vhdx"), in(pool, "base.vhdx")), 0);
	assert_int_equal(disk_policy_merge_run(&m, err, sizeof(err)), 0);
	disk_policy_merge_close(&m);
	assert_int_equal(first_byte(at("base.kept")), 0xab);
	assert_int_equal(first_byte(in(pool, "base.vhdx")), 0);
	assert_int_equal(access(in(pool, "base_1.avhdx"), F_OK), -1);
	store_close(st);
}

/* A parent named that is not the file the child's chain leads to: refused, nothing
 * changed. */
static void test_merge_other_parent(void **state)
{
	char pool[PATH_MAX], err[1024] = "";
	struct store *st = pool_store(pool, sizeof(pool));
	struct disk_policy_merge m;

	vhdx(in(pool, "base.vhdx"), NULL);
	vhdx(in(pool, "base_1.avhdx"), in(pool, "base.vhdx"));
	vhdx(in(pool, "other.vhdx"), NULL);
	fill_first(in(pool, "base_1.avhdx"), 0xcd);
	assert_int_equal(disk_policy_merge_open(st, in(pool, "base_1.avhdx"),
						in(pool, "other.vhdx"), &m, err, sizeof(err)),
			 -EIO);
	assert_non_null(strstr(err, "is not a differencing child of"));
	assert_null(m.child);
	assert_null(m.parent);
	assert_int_equal(first_byte(in(pool, "base_1.avhdx")), 0xcd);
	assert_int_equal(first_byte(in(pool, "other.vhdx")), 0);
	assert_int_equal(first_byte(in(pool, "base.vhdx")), 0);
	store_close(st);
}

/* A relink onto a parent whose own chain leads out of the pools is refused with that path,
 * the child unchanged; onto one whose chain stays in them, done. */
static void test_relink_through_pools(void **state)
{
	char pool[PATH_MAX], err[1024] = "", before[4096], after[4096];
	struct store *st = pool_store(pool, sizeof(pool));
	int fd;

	vhdx(in(pool, "base.vhdx"), NULL);
	vhdx(in(pool, "c.avhdx"), in(pool, "base.vhdx"));
	vhdx(at("secret.vhdx"), NULL);
	vhdx(in(pool, "evil.avhdx"), at("secret.vhdx"));
	fd = open(in(pool, "c.avhdx"), O_RDONLY);
	assert_int_equal(pread(fd, before, sizeof(before), 3 << 20), sizeof(before));
	assert_int_equal(disk_policy_relink(st, in(pool, "c.avhdx"), in(pool, "evil.avhdx"), err,
					    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, at("secret.vhdx")));
	assert_non_null(strstr(err, "is in no storage pool"));
	assert_int_equal(pread(fd, after, sizeof(after), 3 << 20), sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	close(fd);
	/* Relinked to base_2, a copy of base (it reads as base does). */
	vhdx(in(pool, "base_2.vhdx"), NULL);
	assert_int_equal(disk_policy_relink(st, in(pool, "c.avhdx"), in(pool, "base_2.vhdx"), err,
					    sizeof(err)),
			 0);
	assert_int_equal(
		disk_policy_check_chain(st, "disk", in(pool, "c.avhdx"), NULL, 0, err, sizeof(err)),
		1);
	store_close(st);
}

/* A parent whose locator leads through a symlink inside the pool (its directory renamed
 * and a symlink put in its place): refused as the pools refuse such a path, not followed;
 * through "." and ".." with no symlink, it is fine. */
static void test_parent_through_symlink(void **state)
{
	char pool[PATH_MAX], err[1024] = "";
	struct store *st = pool_store(pool, sizeof(pool));

	assert_int_equal(mkdir(in(pool, "real"), 0700), 0);
	vhdx(in(pool, "real/base.vhdx"), NULL);
	vhdx(in(pool, "c.avhdx"), in(pool, "real/base.vhdx"));
	assert_int_equal(
		disk_policy_check_chain(st, "disk", in(pool, "c.avhdx"), NULL, 0, err, sizeof(err)),
		1);
	assert_int_equal(rename(in(pool, "real"), in(pool, "moved")), 0);
	assert_int_equal(symlink("moved", in(pool, "real")), 0);
	assert_int_equal(
		disk_policy_check_chain(st, "disk", in(pool, "c.avhdx"), NULL, 0, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "is a symlink or reached through one inside its pool"));
	assert_non_null(strstr(err, in(pool, "real/base.vhdx")));
	/* A locator with "." and ".." and no symlink on its path resolves as it reads. */
	assert_int_equal(mkdir(in(pool, "sub"), 0700), 0);
	vhdx(in(pool, "c2.avhdx"), in(pool, "sub/.././moved/base.vhdx"));
	assert_int_equal(disk_policy_check_chain(st, "disk", in(pool, "c2.avhdx"), NULL, 0, err,
						 sizeof(err)),
			 1);
	store_close(st);
}

/* A VM whose disk is in the default pool, with a checkpoint whose file is in pool del, then
 * one whose file's parent is: del is kept, the refusal naming the VM, the file and the
 * checkpoint; without the checkpoint it goes. */
static void test_pool_delete_checkpoint_file(void **state)
{
	char pool[PATH_MAX], err[1024] = "", json[2 * PATH_MAX + 128];
	struct store *st = pool_store(pool, sizeof(pool));
	struct ckpt_tree t = {0}, none = {0};
	struct ckpt *c;
	struct vm_def def;
	json_object *o;

	assert_int_equal(mkdir(at("del"), 0755), 0);
	snprintf(json, sizeof(json), "{\"name\": \"del\", \"path\": \"%s\"}", at("del"));
	o = json_tokener_parse(json);
	assert_int_equal(pools_create(st, o, err, sizeof(err)), 0);
	json_object_put(o);
	raw(in(pool, "kernel"), 0);
	vhdx(in(pool, "cur.vhdx"), NULL);
	vhdx(at("del/old.vhdx"), NULL);
	vmdef_init(&def);
	snprintf(json, sizeof(json),
		 "{\"name\": \"v\", \"kernel\": \"%s\", \"disks\": [{\"path\": \"%s\", "
		 "\"format\": \"vhdx\"}]}",
		 in(pool, "kernel"), in(pool, "cur.vhdx"));
	o = json_tokener_parse(json);
	assert_int_equal(vmdef_apply_json(&def, o, VMDEF_JSON_REQUEST, err, sizeof(err)), 0);
	json_object_put(o);
	assert_int_equal(vmdef_gen_uuid(def.uuid), 0);
	def.revision = 1;
	def.created = 1700000000;
	assert_int_equal(store_vm_insert(st, &def, err, sizeof(err)), 0);
	c = ckpt_tree_add(&t);
	assert_non_null(c);
	assert_int_equal(vmdef_gen_uuid(c->id), 0);
	snprintf(c->name, sizeof(c->name), "c1");
	c->disks[0] = strdup(at("del/old.vhdx"));
	c->ndisks = 1;
	assert_int_equal(store_ckpt_save(st, def.uuid, &t, NULL, err, sizeof(err)), 0);
	assert_int_equal(pools_delete(st, "del", err, sizeof(err)), -EBUSY);
	snprintf(json, sizeof(json), "holds files of VM 'v': %s (its checkpoint 'c1' disk)",
		 at("del/old.vhdx"));
	assert_non_null(strstr(err, json));
	/* The checkpoint's file in the default pool, its parent in del: kept for the parent. */
	vhdx(at("del/base.vhdx"), NULL);
	vhdx(in(pool, "old.avhdx"), at("del/base.vhdx"));
	free(c->disks[0]);
	c->disks[0] = strdup(in(pool, "old.avhdx"));
	assert_int_equal(store_ckpt_save(st, def.uuid, &t, NULL, err, sizeof(err)), 0);
	assert_int_equal(pools_delete(st, "del", err, sizeof(err)), -EBUSY);
	snprintf(json, sizeof(json),
		 "%s (its parent in the differencing chain of checkpoint 'c1' disk %s)",
		 at("del/base.vhdx"), in(pool, "old.avhdx"));
	assert_non_null(strstr(err, json));
	assert_int_equal(store_ckpt_save(st, def.uuid, &none, NULL, err, sizeof(err)), 0);
	assert_int_equal(pools_delete(st, "del", err, sizeof(err)), 0);
	ckpt_tree_free(&t);
	vmdef_free(&def);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pin_raw_swapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_vhdx_swapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_swapped_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_other_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relink_through_pools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_through_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_delete_checkpoint_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
