/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layout of a backup as keel vm import reads it (src/daemon/backup_layout.c,
 * docs/backup.md): a disk path names a file of the backup's disks/ directory or is refused;
 * a description's disks, virtio-blk and on SCSI LUNs (not DVD drives), map in the order of
 * the backup's copies, and the first one out of disks/ is named in the refusal by its LUN.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "daemon/backup_layout.h"

static void test_disk_file(void **state)
{
	const char *file = NULL;

	(void)state;
	assert_int_equal(backup_disk_file("/srv/b/vm/disks/disk1.vhdx", &file), 0);
	assert_string_equal(file, "disk1.vhdx");
	assert_int_equal(backup_disk_file("/srv/b/vm/disks/../../x.vhdx", &file), -EINVAL);
	assert_int_equal(backup_disk_file("/srv/b/vm/disks/./x.vhdx", &file), -EINVAL);
	assert_int_equal(backup_disk_file("/srv/b/vm//disks/x.vhdx", &file), -EINVAL);
	assert_int_equal(backup_disk_file("/srv/b/vm/x.vhdx", &file), -EINVAL);
	assert_int_equal(backup_disk_file("disks/x.vhdx", &file), -EINVAL);
	assert_int_equal(backup_disk_file("/srv/b/vm/disks/", &file), -EINVAL);
}

/* A description document as import reads it (config.json), into def. */
static void load(struct vm_def *def, const char *text)
{
	json_object *o = json_tokener_parse(text);
	char err[512];

	assert_non_null(o);
	vmdef_init(def);
	assert_int_equal(vmdef_apply_json(def, o, VMDEF_JSON_DOCUMENT, err, sizeof(err)), 0);
	assert_int_equal(vmdef_check(def, err, sizeof(err)), 0);
	json_object_put(o);
}

static void test_description_scsi(void **state)
{
	struct vm_disk *disks[BACKUP_DISKS_MAX];
	const char *files[BACKUP_DISKS_MAX];
	char err[512] = "", name[48];
	struct vm_def def;
	unsigned n = 0;

	(void)state;
	load(&def,
	     "{\"name\": \"g2\", \"kernel\": \"/k\", \"disks\": [{\"path\": "
	     "\"/b/g2/disks/disk0.vhdx\"}], \"scsi\": {\"luns\": ["
	     "{\"type\": \"dvd\", \"path\": \"/srv/d.iso\"},"
	     "{\"type\": \"disk\", \"path\": \"/b/g2/disks/disk1.vhdx\"},"
	     "{\"type\": \"dvd\", \"path\": null},"
	     "{\"type\": \"disk\", \"path\": \"/b/g2/disks/disk2.vhdx\", \"readonly\": true}]}}");
	assert_int_equal(backup_disk_files(&def, disks, files, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_ptr_equal(disks[0], &def.disks[0]);
	assert_ptr_equal(disks[1], &def.scsi.luns[1].disk);
	assert_ptr_equal(disks[2], &def.scsi.luns[3].disk);
	assert_string_equal(files[0], "disk0.vhdx");
	assert_string_equal(files[1], "disk1.vhdx");
	assert_string_equal(files[2], "disk2.vhdx");
	backup_disk_name(&def, disks[0], name, sizeof(name));
	assert_string_equal(name, "disk 0");
	backup_disk_name(&def, disks[2], name, sizeof(name));
	assert_string_equal(name, "the disk on SCSI LUN 3");
	vmdef_free(&def);
}

static void test_description_escape(void **state)
{
	struct vm_disk *disks[BACKUP_DISKS_MAX];
	const char *files[BACKUP_DISKS_MAX];
	char err[512] = "";
	struct vm_def def;
	unsigned n = 0;

	(void)state;
	load(&def, "{\"name\": \"g2\", \"kernel\": \"/k\", \"disks\": [{\"path\": "
		   "\"/b/g2/disks/disk0.vhdx\"}], \"scsi\": {\"luns\": ["
		   "{\"type\": \"dvd\", \"path\": \"/srv/d.iso\"},"
		   "{\"type\": \"disk\", \"path\": \"/b/g2/disks/../../../etc/shadow\"}]}}");
	assert_int_equal(backup_disk_files(&def, disks, files, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the disk on SCSI LUN 1 of its description "
				    "(/b/g2/disks/../../../etc/shadow) is not a file of the "
				    "backup's disks/ directory"));
	vmdef_free(&def);
	/* A DVD's medium is no disk of the backup: any path (import drops it). */
	load(&def, "{\"name\": \"g2\", \"kernel\": \"/k\", \"scsi\": {\"luns\": ["
		   "{\"type\": \"dvd\", \"path\": \"/srv/d.iso\"}]}}");
	assert_int_equal(backup_disk_files(&def, disks, files, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	vmdef_free(&def);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disk_file),
		cmocka_unit_test(test_description_scsi),
		cmocka_unit_test(test_description_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
