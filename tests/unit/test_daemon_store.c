/* SPDX-License-Identifier: Apache-2.0 */
/* keeld's VM definitions (vmdef.c) and store (store.c, store_ckpt.c): validation, JSON,
 * transactions, checkpoint trees. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/store.h"
#include "daemon/store_internal.h"
#include "config/vmdef.h"
#include "config/vmdef_device.h"
#include "lib/log.h"

static char kernel_path[64];

static int setup_kernel(void **state)
{
	int fd;

	strcpy(kernel_path, "/tmp/keel-test-kernel-XXXXXX");
	fd = mkstemp(kernel_path);
	if (fd < 0)
		return -1;
	(void)!write(fd, "k", 1);
	close(fd);
	return 0;
}

static int teardown_kernel(void **state)
{
	unlink(kernel_path);
	return 0;
}

/* Apply a JSON text to def; returns vmdef_apply_json's result, err filled. */
static int apply(struct vm_def *def, const char *text, char *err)
{
	json_object *o = json_tokener_parse(text);
	int ret;

	assert_non_null(o);
	ret = vmdef_apply_json(def, o, VMDEF_JSON_REQUEST, err, 256);
	json_object_put(o);
	return ret;
}

static void make_def(struct vm_def *def, const char *name)
{
	char json[256], err[256];

	vmdef_init(def);
	snprintf(json, sizeof(json),
		 "{\"name\":\"%s\",\"kernel\":\"%s\",\"nets\":[{\"tap\":\"t0\"}]}", name,
		 kernel_path);
	assert_int_equal(apply(def, json, err), 0);
	assert_int_equal(vmdef_gen_uuid(def->uuid), 0);
	assert_int_equal(vmdef_gen_mac(def->nics[0].mac), 0);
	def->revision = 1;
	def->created = 1700000000;
}

static void test_defaults_and_fields(void **state)
{
	struct vm_def def;
	char err[256], json[512];

	vmdef_init(&def);
	assert_int_equal(def.cpus, 1);
	assert_int_equal(def.memory, 512ULL << 20);
	snprintf(json, sizeof(json),
		 "{\"name\":\"a.b_c-1\",\"kernel\":\"%s\",\"cpus\":255,\"memory\":4194304,"
		 "\"disks\":[{\"path\":\"%s\",\"readonly\":true}],\"notes\":\"n\","
		 "\"automatic_start_action\":\"start-if-running\"}",
		 kernel_path, kernel_path);
	assert_int_equal(apply(&def, json, err), 0);
	assert_int_equal(vmdef_validate(&def, err, sizeof(err)), 0);
	assert_string_equal(def.name, "a.b_c-1");
	assert_int_equal(def.cpus, 255);
	assert_int_equal(def.ndisks, 1);
	assert_true(def.disks[0].readonly);
	assert_int_equal(def.start_action, VM_START_IF_RUNNING);
	vmdef_free(&def);
}

static void test_rejects(void **state)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{"{\"cpus\":0}", "cpus"},
		{"{\"cpus\":256}", "cpus"},
		{"{\"cpus\":1.5}", "integer"},
		{"{\"memory\":1048576}", "memory"},
		{"{\"memory\":5242881}", "multiple of 1 MiB"},
		{"{\"name\":\".x\"}", "invalid VM name"},
		{"{\"name\":\"a/b\"}", "invalid VM name"},
		{"{\"kernel\":\"rel\"}", "absolute"},
		{"{\"kernel\":null}", "cannot be null"},
		{"{\"bogus\":1}", "unknown field 'bogus'"},
		{"{\"id\":\"x\"}", "read-only"},
		{"{\"nets\":[{\"tap\":\"t\",\"mac\":\"03:00:00:00:00:01\"}]}", "unicast"},
		{"{\"nets\":[{\"tap\":\"sixteen-chars-xx\"}]}", "interface name"},
		{"{\"nets\":[{}]}", "neither a 'tap' nor a 'switch'"},
		{"{\"nets\":[{\"switch\":\" x\"}]}", "is not a switch name"},
		{"{\"nets\":[{\"switch\":\"s\",\"tap\":\"t\"}]}", "leave 'tap' out"},
		{"{\"nets\":[{\"switch\":\"s\",\"vlan_trunk\":\"10,,20\"}]}", "not a VLAN list"},
		{"{\"nets\":[{\"switch\":\"s\",\"vlan_trunk\":\"4095\"}]}", "not a VLAN list"},
		{"{\"nets\":[{\"switch\":\"s\",\"vlan_trunk\":\"10\",\"vlan\":3}]}", "not both"},
		{"{\"nets\":[{\"switch\":\"s\",\"native_vlan\":3}]}", "a trunk's"},
		{"{\"nets\":[{\"switch\":\"s\",\"bandwidth_in\":10}]}", "bandwidth_in"},
		{"{\"nets\":[{\"tap\":\"t\",\"port_isolation\":true}]}", "a switch's"},
		{"{\"nets\":[{\"switch\":\"s\",\"port_mirroring\":\"both\"}]}",
		 "not none, source or destination"},
		{"{\"nets\":[{\"tap\":\"t\",\"port_mirroring\":\"source\"}]}",
		 "port mirroring too"},
		{"{\"disks\":[{\"readonly\":true}]}", "no 'path'"},
		{"{\"disks\":{}}", "array"},
		{"{\"automatic_stop_action\":\"suspend\"}", "one of"},
		{"[]", "JSON object"},
	};
	struct vm_def def;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_def(&def, "keep");
		err[0] = '\0';
		assert_int_equal(apply(&def, bad[i].json, err), -EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("%s: message '%s' lacks '%s'", bad[i].json, err, bad[i].msg);
		/* Nothing changed on error. */
		assert_string_equal(def.name, "keep");
		assert_int_equal(def.cpus, 1);
		assert_int_equal(def.nnics, 1);
		vmdef_free(&def);
	}
}

static void vlan_range(uint16_t lo, uint16_t hi, void *data)
{
	char *out = data;
	size_t len = strlen(out);

	snprintf(out + len, 64 - len, "[%u,%u]", lo, hi);
}

/* A trunk's VLAN list: ranges in order; malformed lists refused. */
static void test_vlan_list(void **state)
{
	static const char *const bad[] = {"",	"0",	 "4095", "10,", ",10", "10-",
					  "-5", "20-10", "1,,2", "a",	"1 2", "10-20-30"};
	char got[64] = "";

	(void)state;
	assert_int_equal(vmdef_vlan_list("10,20-30,4094", vlan_range, got), 0);
	assert_string_equal(got, "[10,10][20,30][4094,4094]");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vmdef_vlan_list(bad[i], NULL, NULL) != -EINVAL)
			fail_msg("'%s' was taken as a VLAN list", bad[i]);
}

/* A trunk's tagged ranges: duplicates and overlaps joined, the native VLAN left out, VLAN 1
 * kept when the native VLAN is another (issue 12's review, finding 7). */
static void test_vlan_ranges(void **state)
{
	static const struct {
		const char *list;
		uint16_t native;
		const char *want;
	} cases[] = {
		{"10,10,10", 1, "[10,10]"},
		{"20-30,25-40,5", 1, "[5,5][20,40]"},
		{"10,11,12", 1, "[10,12]"},
		{"1,10", 5, "[1,1][10,10]"},
		{"1-3", 1, "[2,3]"},
		{"10,20-30", 25, "[10,10][20,24][26,30]"},
		{"5", 5, ""},
		{"4094,1-4094", 4094, "[1,4093]"},
	};
	uint16_t lo[8], hi[8];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[64] = "";
		int n = vmdef_vlan_ranges(cases[i].list, cases[i].native, lo, hi, 8);

		assert_true(n >= 0);
		for (int r = 0; r < n; r++)
			vlan_range(lo[r], hi[r], got);
		if (strcmp(got, cases[i].want))
			fail_msg("'%s' native %u: %s, want %s", cases[i].list, cases[i].native, got,
				 cases[i].want);
	}
	assert_int_equal(vmdef_vlan_ranges("10,", 1, lo, hi, 8), -EINVAL);
	assert_int_equal(vmdef_vlan_ranges("1,3,5", 1, lo, hi, 1), -ENOSPC);
}

static void test_validate_files(void **state)
{
	struct vm_def def;
	char err[256];

	make_def(&def, "v");
	assert_int_equal(vmdef_validate(&def, err, sizeof(err)), 0);
	assert_int_equal(apply(&def, "{\"initrd\":\"/nonexistent/initrd\"}", err), 0);
	assert_int_equal(vmdef_validate(&def, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(apply(&def, "{\"initrd\":null,\"disks\":[{\"path\":\"/tmp\"}]}", err), 0);
	assert_int_equal(vmdef_validate(&def, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	vmdef_free(&def);
}

static void test_mac_kept_on_same_tap(void **state)
{
	struct vm_def def;
	char err[256], mac[VMDEF_MAC_LEN + 1];

	make_def(&def, "m");
	strcpy(mac, def.nics[0].mac);
	assert_true(vmdef_mac_ok(mac));
	assert_int_equal(mac[0], '0');
	assert_int_equal(mac[1], '2');
	assert_int_equal(apply(&def, "{\"nets\":[{\"tap\":\"t1\"},{\"tap\":\"t0\"}]}", err), 0);
	assert_string_equal(def.nics[1].mac, mac);
	assert_string_equal(def.nics[0].mac, "");
	assert_string_equal(vmdef_hw_change(&def, &def) ? "x" : "", "");
	vmdef_free(&def);
}

/* PCI slots through API requests (docs/vm-config.md): kept by path and tap, an explicit
 * slot wins over a kept one (of any kind of device), a clash of two explicit slots or of an
 * explicit slot with a device that stays is refused. */
static void test_slots_kept_and_requested(void **state)
{
	struct vm_def def;
	char err[256];

	make_def(&def, "slots"); /* nets[0] t0 at 1, rng at 2 */
	assert_int_equal(def.nics[0].pci_slot, 1);
	assert_int_equal(def.rng.pci_slot, 2);
	assert_int_equal(apply(&def, "{\"disks\":[{\"path\":\"/a\"},{\"path\":\"/b\"}]}", err), 0);
	assert_int_equal(def.disks[0].pci_slot, 3);
	assert_int_equal(def.disks[1].pci_slot, 4);
	/* Reordered and one added in front: every kept device stays where it was. */
	assert_int_equal(apply(&def,
			       "{\"disks\":[{\"path\":\"/c\"},{\"path\":\"/b\"},"
			       "{\"path\":\"/a\"}]}",
			       err),
			 0);
	assert_int_equal(def.disks[0].pci_slot, 5);
	assert_int_equal(def.disks[1].pci_slot, 4);
	assert_int_equal(def.disks[2].pci_slot, 3);
	assert_int_equal(def.nics[0].pci_slot, 1);
	/* The adapter asks for the slot of disk /a, which is listed without one: /a moves. */
	assert_int_equal(apply(&def,
			       "{\"nets\":[{\"tap\":\"t0\",\"pci_slot\":3}],"
			       "\"disks\":[{\"path\":\"/a\"}]}",
			       err),
			 0);
	assert_int_equal(def.nics[0].pci_slot, 3);
	assert_int_equal(def.disks[0].pci_slot, 1);
	assert_int_equal(def.rng.pci_slot, 2);
	/* rng listed without a slot keeps its own. */
	assert_int_equal(apply(&def, "{\"rng\":{}}", err), 0);
	assert_int_equal(def.rng.pci_slot, 2);
	/* A device that is not listed keeps its slot: asking for it is a clash. */
	assert_int_equal(apply(&def, "{\"virtio_console\":{\"pci_slot\":2}}", err), 0);
	assert_int_equal(vmdef_check(&def, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "both ask for PCI slot 2"));
	/* Listed again without a slot, it cannot keep one that another device holds. */
	assert_int_equal(apply(&def, "{\"virtio_console\":{}}", err), 0);
	assert_int_equal(vmdef_check(&def, err, sizeof(err)), 0);
	assert_int_equal(def.console.pci_slot, 4);
	vmdef_free(&def);
}

static void test_store_roundtrip(void **state)
{
	struct store *st;
	struct vm_def a, b, got, *list;
	struct store_rt rt = {.pid = 42, .starttime = 7, .was_running = true};
	char err[256];
	size_t n;
	bool used;

	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	make_def(&a, "alpha");
	make_def(&b, "beta");
	/* An adapter's switch features survive the store. */
	strcpy(a.nics[0].sw, "s");
	strcpy(a.nics[0].vlan_trunk, "10,20-30");
	a.nics[0].native_vlan = 5;
	a.nics[0].bw_out = 10000000;
	a.nics[0].bw_in = 20000000;
	a.nics[0].port_isolation = true;
	a.nics[0].port_mirroring = VM_MIRROR_DESTINATION;
	a.nics[0].queues = 1; /* its queue pairs (the default, 0, is b's) */
	assert_int_equal(store_vm_insert(st, &a, err, sizeof(err)), 0);
	assert_int_equal(store_vm_insert(st, &b, err, sizeof(err)), 0);

	/* Duplicate name: refused, nothing added. */
	strcpy(b.uuid, "00000000-0000-4000-8000-000000000000");
	strcpy(b.nics[0].mac, "02:00:00:00:00:99");
	strcpy(b.name, "alpha");
	assert_int_equal(store_vm_insert(st, &b, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "already exists"));
	/* Duplicate MAC, new name: refused as a whole (the vms row is rolled back too). */
	strcpy(b.name, "gamma");
	strcpy(b.nics[0].mac, a.nics[0].mac);
	assert_int_equal(store_vm_insert(st, &b, err, sizeof(err)), -EEXIST);
	assert_int_equal(store_vm_get(st, "gamma", &got), -ENOENT);
	assert_int_equal(store_vm_list(st, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "alpha");
	assert_string_equal(list[1].name, "beta");
	store_vm_list_free(list, n);

	/* Lookup by name and by UUID; fields survive. */
	assert_int_equal(store_vm_get(st, a.uuid, &got), 0);
	assert_string_equal(got.name, "alpha");
	assert_string_equal(got.kernel, kernel_path);
	assert_string_equal(got.nics[0].mac, a.nics[0].mac);
	assert_int_equal(got.nics[0].queues, 1);
	assert_int_equal(got.created, 1700000000);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "beta", &got), 0);
	assert_int_equal(got.nics[0].queues, 0);
	vmdef_free(&got);
	assert_int_equal(store_mac_used(st, a.nics[0].mac, NULL, &used), 0);
	assert_true(used);
	assert_int_equal(store_mac_used(st, a.nics[0].mac, a.uuid, &used), 0);
	assert_false(used);

	/* Update needs the previous revision. */
	a.cpus = 4;
	a.revision = 2;
	assert_int_equal(store_vm_update(st, &a, err, sizeof(err)), 0);
	assert_int_equal(store_vm_update(st, &a, err, sizeof(err)), -ESTALE);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_int_equal(got.cpus, 4);
	assert_int_equal(got.revision, 2);
	assert_string_equal(got.nics[0].vlan_trunk, "10,20-30");
	assert_int_equal(got.nics[0].native_vlan, 5);
	assert_true(got.nics[0].bw_out == 10000000 && got.nics[0].bw_in == 20000000);
	assert_true(got.nics[0].port_isolation);
	assert_int_equal(got.nics[0].port_mirroring, VM_MIRROR_DESTINATION);
	vmdef_free(&got);

	/* Runtime records, and their removal with the VM. */
	strcpy(rt.state, "Running");
	assert_int_equal(store_rt_set(st, a.uuid, &rt), 0);
	memset(&rt, 0, sizeof(rt));
	assert_int_equal(store_rt_get(st, a.uuid, &rt), 0);
	assert_string_equal(rt.state, "Running");
	assert_int_equal(rt.pid, 42);
	assert_true(rt.was_running);
	assert_int_equal(store_vm_delete(st, a.uuid), 0);
	assert_int_equal(store_vm_delete(st, a.uuid), -ENOENT);
	assert_int_equal(store_rt_get(st, a.uuid, &rt), 0);
	assert_string_equal(rt.state, "Off");
	assert_int_equal(rt.pid, 0);

	vmdef_free(&a);
	vmdef_free(&b);
	store_close(st);
}

/* Devices without columns of their own (store_devices.c) are kept as their field's JSON and
 * read back through their kind's parser: vsock, present and then removed; a row that does
 * not parse, or names a field this keeld does not know, fails the read (-EPROTO), never
 * a device dropped. */
static void test_store_devices(void **state)
{
	struct store *st;
	struct vm_def a, b, got, *list;
	char err[256];
	sqlite3_stmt *s;
	size_t n;

	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	make_def(&a, "alpha");
	assert_int_equal(apply(&a, "{\"vsock\":{\"cid\":77,\"pci_slot\":9}}", err), 0);
	assert_int_equal(store_vm_insert(st, &a, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_prepare_v2(st->db,
					    "SELECT field, doc FROM devices WHERE field <> 'rng'",
					    -1, &s, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "vsock");
	assert_string_equal((const char *)sqlite3_column_text(s, 1), "{\"cid\":77,\"pci_slot\":9}");
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_true(got.vsock.present);
	assert_int_equal(got.vsock.cid, 77);
	assert_int_equal(got.vsock.pci_slot, 9);
	vmdef_free(&got);
	/* Removed: no row, and the VM reads back without the device. */
	assert_int_equal(apply(&a, "{\"vsock\":null}", err), 0);
	a.revision = 2;
	assert_int_equal(store_vm_update(st, &a, err, sizeof(err)), 0);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_false(got.vsock.present);
	vmdef_free(&got);
	/* Damaged rows: the VM reads back marked damaged with why, without the device; the
	 * other VMs are listed as ever; the damaged one is never written back. */
	make_def(&b, "beta");
	assert_int_equal(apply(&b, "{\"vsock\":{\"cid\":78}}", err), 0);
	assert_int_equal(store_vm_insert(st, &b, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_exec(st->db,
				      "INSERT INTO devices(vm, field, doc) SELECT uuid, 'vsock',"
				      " '{\"cid\":1}' FROM vms WHERE name = 'alpha'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_non_null(strstr(got.damaged, "vsock.cid"));
	assert_false(got.vsock.present);
	got.revision = 2;
	assert_int_equal(store_vm_update(st, &got, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "damaged"));
	vmdef_free(&got);
	assert_int_equal(store_vm_list(st, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "alpha");
	assert_true(list[0].damaged[0] != '\0');
	assert_string_equal(list[1].name, "beta");
	assert_string_equal(list[1].damaged, "");
	assert_int_equal(list[1].vsock.cid, 78);
	store_vm_list_free(list, n);
	assert_int_equal(sqlite3_exec(st->db,
				      "UPDATE devices SET field = 'balloon', doc = '{}' WHERE vm ="
				      " (SELECT uuid FROM vms WHERE name = 'alpha') AND field ="
				      " 'vsock'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_non_null(strstr(got.damaged, "'balloon' is unknown"));
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "beta", &got), 0);
	assert_string_equal(got.damaged, "");
	vmdef_free(&got);
	vmdef_free(&a);
	vmdef_free(&b);
	store_close(st);
}

/* The firmware row: generation 1 or 2; anything else damages that VM (its reason in damaged),
 * never read as UEFI. */
static void test_store_firmware_row(void **state)
{
	struct store *st;
	struct vm_def a, got;
	char err[256];

	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	make_def(&a, "alpha");
	assert_int_equal(store_vm_insert(st, &a, err, sizeof(err)), 0);
	assert_int_equal(
		sqlite3_exec(st->db,
			     "INSERT INTO firmware(vm, generation, boot_order) SELECT uuid, 1, ''"
			     " FROM vms",
			     NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_int_equal(got.firmware, VM_FIRMWARE_BIOS);
	vmdef_free(&got);
	assert_int_equal(
		sqlite3_exec(st->db, "UPDATE firmware SET generation = 3", NULL, NULL, NULL),
		SQLITE_OK);
	/* Damaged, that VM alone: read with the reason, never as UEFI. */
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_non_null(strstr(got.damaged, "generation is not 1 or 2"));
	assert_int_not_equal(got.firmware, VM_FIRMWARE_UEFI);
	vmdef_free(&got);
	assert_int_equal(
		sqlite3_exec(st->db, "UPDATE firmware SET generation = 'two'", NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_non_null(strstr(got.damaged, "generation is not 1 or 2"));
	vmdef_free(&got);
	vmdef_free(&a);
	store_close(st);
}

/* SCSI LUN disks: a pinned format is kept as it is; a row keeld wrote before LUN formats
 * were pinned ("auto") is read as attach would pin it, by its name (never raw for a .vhdx:
 * that would show the guest the VHDX container); a DVD medium is raw. */
static void test_store_scsi_formats(void **state)
{
	static const char luns[] =
		"{\"scsi\":{\"luns\":[{\"type\":\"disk\",\"path\":\"/p/a.vhdx\"},"
		"{\"type\":\"disk\",\"path\":\"/p/b.img\"},"
		"{\"type\":\"disk\",\"path\":\"/p/c.img\",\"format\":\"vhdx\"},"
		"{\"type\":\"disk\",\"path\":\"/p/d.vhdx\",\"format\":\"raw\"},"
		"{\"type\":\"dvd\",\"path\":\"/p/e.iso\"}]}}";
	static const enum vm_disk_format want[] = {VM_DISK_VHDX, VM_DISK_RAW, VM_DISK_VHDX,
						   VM_DISK_RAW, VM_DISK_RAW};
	struct store *st;
	struct vm_def a, got;
	char err[256];

	(void)state;
	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	make_def(&a, "alpha");
	assert_int_equal(apply(&a, luns, err), 0);
	assert_int_equal(a.scsi.luns[0].disk.format, VM_DISK_AUTO); /* as a request gives it */
	assert_int_equal(store_vm_insert(st, &a, err, sizeof(err)), 0);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_int_equal(got.scsi.nluns, 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(got.scsi.luns[i].disk.format, want[i]);
	vmdef_free(&got);
	/* Edited into nonsense: raw. */
	assert_int_equal(sqlite3_exec(st->db, "UPDATE scsi_luns SET format = 'qcow2' WHERE idx = 0",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_int_equal(got.scsi.luns[0].disk.format, VM_DISK_RAW);
	vmdef_free(&got);
	vmdef_free(&a);
	store_close(st);
}

static int count_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int n = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* A store file and its WAL and shared-memory files. */
static void remove_store(const char *path)
{
	char side[64];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

/* A new store in a fresh file named from path's template (a mkstemp XXXXXX). */
static struct store *open_temp_store(char *path)
{
	char err[256];
	struct store *st;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	return st;
}

/* What store.c's migrate_9_to_10 did, undone: no storage QoS columns in disks. */
#define UNDO_SCHEMA_10                                                                             \
	"ALTER TABLE disks DROP COLUMN max_iops; ALTER TABLE disks DROP COLUMN max_bw;"            \
	"ALTER TABLE disks DROP COLUMN min_iops;"

/* What store.c's migrate_8_to_9 did, undone: the console's and rng's slots back in their
 * columns of vms (-1: none; 0: not assigned yet), their devices rows gone. */
#define UNDO_SCHEMA_9                                                                              \
	"ALTER TABLE vms ADD COLUMN console_slot INTEGER NOT NULL DEFAULT -1;"                     \
	"ALTER TABLE vms ADD COLUMN rng_slot INTEGER NOT NULL DEFAULT 0;"                          \
	"UPDATE vms SET console_slot = coalesce((SELECT coalesce(json_extract(doc, "               \
	"'$.pci_slot'), 0) FROM devices WHERE vm = uuid AND field = 'virtio_console'), -1),"       \
	" rng_slot = coalesce((SELECT CASE WHEN doc = 'null' THEN -1 ELSE"                         \
	" coalesce(json_extract(doc, '$.pci_slot'), 0) END FROM devices WHERE vm = uuid AND"       \
	" field = 'rng'), 0);"                                                                     \
	"DELETE FROM devices WHERE field IN ('virtio_console', 'rng');"

/* What store.c's migrate_10_to_11 did, undone: adapters without their queue pairs. */
#define UNDO_SCHEMA_11 "ALTER TABLE nics DROP COLUMN queues;"

/* What store.c's migrate_11_to_12 did, undone: SCSI disks without their storage QoS. */
#define UNDO_SCHEMA_12                                                                             \
	"ALTER TABLE scsi_luns DROP COLUMN max_iops; ALTER TABLE scsi_luns DROP COLUMN max_bw;"    \
	"ALTER TABLE scsi_luns DROP COLUMN min_iops;"
/* What store.c's migrate_12_to_13 did, undone: firmware rows without their boot menu. */
#define UNDO_SCHEMA_13 "ALTER TABLE firmware DROP COLUMN boot_menu;"

/* A store as schema 6 left it: vsock's own table (when vsock is true) with the rows given,
 * no devices table, no schema 8 columns, user_version 6. */
static void make_schema6(const char *path, bool vsock, const char *rows)
{
	struct store *st;
	struct vm_def d;
	char err[256], sql[2048];
	const char *names[] = {"v0", "v1", "v2", "v3"};

	unlink(path);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		make_def(&d, names[i]);
		assert_int_equal(store_vm_insert(st, &d, err, sizeof(err)), 0);
		vmdef_free(&d);
	}
	snprintf(sql, sizeof(sql),
		 UNDO_SCHEMA_13 UNDO_SCHEMA_12 UNDO_SCHEMA_11 UNDO_SCHEMA_10 UNDO_SCHEMA_9
		 "DROP TABLE devices; ALTER TABLE nics DROP COLUMN vlan_trunk;"
		 " ALTER TABLE nics DROP COLUMN native_vlan; ALTER TABLE nics DROP COLUMN bw_out;"
		 " ALTER TABLE nics DROP COLUMN bw_in;%s%s PRAGMA user_version=6;",
		 vsock ? "CREATE TABLE vsock(vm TEXT PRIMARY KEY REFERENCES vms(uuid) ON DELETE "
			 "CASCADE, cid INTEGER NOT NULL, pci_slot INTEGER NOT NULL DEFAULT 0);"
		       : "",
		 rows ? rows : "");
	assert_int_equal(sqlite3_exec(st->db, sql, NULL, NULL, NULL), SQLITE_OK);
	store_close(st);
}

/* Schema 6 to 7 (store.c migrate_6_to_7): vsock's rows move into devices, a slot of 0
 * (not assigned) and values out of range left out as the old reader clamped them; a store
 * without the table; and a migration that fails leaves the store at 6, its table intact,
 * with the reason (not SQLite's "not an error" after the rollback). */
static void test_store_migrate_6_to_7(void **state)
{
	char path[] = "/tmp/keel-test-store-XXXXXX", err[256];
	struct store *st;
	struct vm_def got;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	make_schema6(path, true,
		     "INSERT INTO vsock SELECT uuid, 40, 0 FROM vms WHERE name = 'v0';"
		     "INSERT INTO vsock SELECT uuid, 41, 12 FROM vms WHERE name = 'v1';"
		     "INSERT INTO vsock SELECT uuid, 1, 99 FROM vms WHERE name = 'v2';");
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_upgraded_from(st), 6);
	assert_int_equal(count_rows(st->db, "PRAGMA user_version"), 13);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM sqlite_master WHERE name ="
					    " 'vsock'"),
			 0);
	assert_int_equal(store_vm_get(st, "v0", &got), 0);
	assert_string_equal(got.damaged, "");
	assert_true(got.vsock.present);
	assert_int_equal(got.vsock.cid, 40);
	assert_true(got.vsock.pci_slot > 0); /* given one now, as the old reader did */
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "v1", &got), 0);
	assert_string_equal(got.damaged, "");
	assert_int_equal(got.vsock.cid, 41);
	assert_int_equal(got.vsock.pci_slot, 12);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "v2", &got), 0); /* out of range: left out */
	assert_string_equal(got.damaged, "");
	assert_true(got.vsock.present);
	assert_int_equal(got.vsock.cid, VMDEF_VSOCK_CID_DEFAULT);
	assert_true(got.vsock.pci_slot >= VMDEF_PCI_SLOT_MIN &&
		    got.vsock.pci_slot <= VMDEF_PCI_SLOT_MAX);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "v3", &got), 0);
	assert_false(got.vsock.present);
	vmdef_free(&got);
	store_close(st);

	/* No vsock table at all. */
	make_schema6(path, false, NULL);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(count_rows(st->db, "PRAGMA user_version"), 13);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM devices WHERE field = 'vsock'"),
			 0);
	store_close(st);

	/* A devices row already there for a VM with a vsock row: the migration fails and
	 * rolls back. */
	make_schema6(path, true,
		     "INSERT INTO vsock SELECT uuid, 40, 3 FROM vms WHERE name = 'v0';"
		     "CREATE TABLE devices(vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE "
		     "CASCADE, field TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY(vm, field));"
		     "INSERT INTO devices SELECT uuid, 'vsock', '{\"cid\":9}' FROM vms WHERE name ="
		     " 'v0';");
	err[0] = '\0';
	assert_int_not_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "UNIQUE constraint failed"));
	assert_null(strstr(err, "not an error"));
	{
		sqlite3 *db;

		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(count_rows(db, "PRAGMA user_version"), 6);
		assert_int_equal(count_rows(db, "SELECT count(*) FROM vsock WHERE cid = 40 AND"
						" pci_slot = 3"),
				 1);
		assert_int_equal(count_rows(db, "SELECT count(*) FROM devices"), 1);
		assert_int_equal(count_rows(db, "SELECT count(*) FROM pragma_table_info('vms')"
						" WHERE name IN ('console_slot', 'rng_slot')"),
				 2);
		sqlite3_close(db);
	}
	remove_store(path);
}

/* Schema 2 to 3 (store.c migrate_2_to_3): each disk's format pinned by its name (.vhdx and
 * .avhdx, in any case: vhdx; anything else raw), never by its contents: a raw disk whose
 * guest wrote a VHDX header into it before the upgrade stays raw. */
static void test_store_migrate_2_to_3(void **state)
{
	char path[] = "/tmp/keel-test-store-XXXXXX", img[] = "/tmp/keel-test-disk-XXXXXX.img";
	char rows[1024], err[256], logf[64], logged[4096], want[512];
	struct store *st;
	sqlite3 *db;
	int fd = mkstemps(img, 4), lfd, saved, opened;
	ssize_t n;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "vhdxfile", 8), 8); /* what the guest wrote at sector 0 */
	close(fd);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	snprintf(rows, sizeof(rows),
		 "INSERT INTO disks(vm, idx, path, readonly, format) SELECT uuid, 0, '%s', 0, "
		 "'raw' FROM vms WHERE name = 'v0';"
		 "INSERT INTO disks(vm, idx, path, readonly, format) SELECT uuid, 1, "
		 "'/gone/y.VHDX', 0, 'raw' FROM vms WHERE name = 'v0';"
		 "INSERT INTO disks(vm, idx, path, readonly, format) SELECT uuid, 2, "
		 "'/gone/z.avhdx', 0, 'raw' FROM vms WHERE name = 'v0';"
		 /* schema 5, 4, 3 and 2, undone */
		 "ALTER TABLE checkpoints DROP COLUMN type; ALTER TABLE nics DROP COLUMN switch;"
		 "ALTER TABLE nics DROP COLUMN vlan; ALTER TABLE nics DROP COLUMN guards;"
		 "ALTER TABLE disks DROP COLUMN cache; ALTER TABLE disks DROP COLUMN format;",
		 img);
	make_schema6(path, false, rows);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* What store_open logs, from stderr through a file. */
	snprintf(logf, sizeof(logf), "%s.log", path);
	lfd = open(logf, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(lfd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(lfd, STDERR_FILENO), STDERR_FILENO);
	log_init("keeld", LOG_INFO);
	opened = store_open(path, &st, err, sizeof(err));
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(lfd, logged, sizeof(logged) - 1, 0);
	close(lfd);
	unlink(logf);
	assert_int_equal(opened, 0);
	assert_true(n > 0);
	logged[n] = '\0';
	/* The raw disk that starts as a VHDX is named, with the command that changes it; it
	 * stays raw (the guest may have written that signature); the gone ones are not. */
	snprintf(want, sizeof(want),
		 "VM v0: disk %s is pinned raw by its name but starts with VHDX's signature; if "
		 "it is a VHDX: keel vm set v0 --disk %s,format=vhdx",
		 img, img);
	assert_non_null(strstr(logged, want));
	assert_null(strstr(logged, "/gone/"));
	assert_int_equal(store_upgraded_from(st), 2);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM disks WHERE idx = 0 AND "
					    "format = 'raw'"),
			 1);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM disks WHERE idx > 0 AND "
					    "format = 'vhdx'"),
			 2);
	store_close(st);
	remove_store(path);
	unlink(img);
}

/* Fill checkpoint c of t: id from n, parent id or "", one disk. */
static struct ckpt *put_ckpt(struct ckpt_tree *t, int n, const char *name, const char *parent,
			     bool hidden)
{
	struct ckpt *c = ckpt_tree_add(t);

	assert_non_null(c);
	snprintf(c->id, sizeof(c->id), "00000000-0000-4000-8000-%012d", n);
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->parent, sizeof(c->parent), "%s", parent);
	c->seq = n;
	c->created = 1700000000 + n;
	c->hidden = hidden;
	c->saved = n == 2;
	c->disks[0] = strdup(name);
	c->ndisks = 1;
	return c;
}

/* The disks a checkpoint takes (ckpt_vm_disks): the virtio-blk disks, then the SCSI LUNs of
 * type disk in LUN order, never a DVD drive (with a medium or empty); and a checkpoint with
 * one file for each of the most disks a VM may have comes back from the store whole. */
static void test_checkpoint_disks(void **state)
{
	static const enum vm_lun_type lun[] = {VM_LUN_DVD, VM_LUN_DISK, VM_LUN_DVD, VM_LUN_DISK};
	static char paths[VMDEF_MAX_DISKS + 4][32];
	struct vm_disk *out[CKPT_DISKS_MAX];
	struct ckpt_tree t = {0}, back;
	struct store *st;
	struct vm_def a;
	char err[256];
	struct ckpt *c;

	(void)state;
	vmdef_init(&a);
	a.ndisks = VMDEF_MAX_DISKS;
	for (unsigned i = 0; i < a.ndisks + 4; i++)
		snprintf(paths[i], sizeof(paths[i]), "/d/%u.vhdx", i);
	for (unsigned i = 0; i < a.ndisks; i++)
		a.disks[i].path = paths[i];
	a.scsi.nluns = 4;
	for (unsigned l = 0; l < 4; l++) {
		a.scsi.luns[l].type = lun[l];
		a.scsi.luns[l].disk.path = l == 2 ? NULL : paths[VMDEF_MAX_DISKS + l];
	}
	assert_int_equal(ckpt_vm_disks(&a, out), VMDEF_MAX_DISKS + 2);
	for (unsigned i = 0; i < VMDEF_MAX_DISKS; i++)
		assert_ptr_equal(out[i], &a.disks[i]);
	assert_ptr_equal(out[VMDEF_MAX_DISKS], &a.scsi.luns[1].disk);
	assert_ptr_equal(out[VMDEF_MAX_DISKS + 1], &a.scsi.luns[3].disk);
	a.ndisks = 0;
	a.scsi.nluns = 1;
	assert_int_equal(ckpt_vm_disks(&a, out), 0); /* a DVD drive only */

	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	make_def(&a, "alpha");
	assert_int_equal(store_vm_insert(st, &a, err, sizeof(err)), 0);
	c = put_ckpt(&t, 1, "one", "", false);
	for (unsigned i = 1; i < CKPT_DISKS_MAX; i++)
		assert_non_null(c->disks[c->ndisks++] = strdup(paths[i % VMDEF_MAX_DISKS]));
	assert_int_equal(store_ckpt_save(st, a.uuid, &t, NULL, err, sizeof(err)), 0);
	assert_int_equal(store_ckpt_load(st, a.uuid, &back), 0);
	assert_int_equal(back.v[0].ndisks, CKPT_DISKS_MAX);
	assert_string_equal(back.v[0].disks[CKPT_DISKS_MAX - 1],
			    paths[(CKPT_DISKS_MAX - 1) % VMDEF_MAX_DISKS]);
	ckpt_tree_free(&back);
	ckpt_tree_free(&t);
	vmdef_free(&a);
	store_close(st);
}

/* Checkpoint trees (store_ckpt.c, ckpt_tree.c): round trip with the VM's new disk paths in
 * one transaction, names unique among visible checkpoints only, and the tree helpers. */
static void test_checkpoint_store(void **state)
{
	struct store *st;
	struct vm_def a, got;
	struct ckpt_tree t = {0}, back;
	char id1[40], err[256];

	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	make_def(&a, "alpha");
	assert_int_equal(store_vm_insert(st, &a, err, sizeof(err)), 0);
	assert_int_equal(store_ckpt_load(st, a.uuid, &back), 0);
	assert_int_equal(back.n, 0);
	assert_string_equal(back.now, "");
	ckpt_tree_free(&back);

	snprintf(id1, sizeof(id1), "%s", put_ckpt(&t, 1, "one", "", false)->id);
	put_ckpt(&t, 2, "two", id1, false);
	put_ckpt(&t, 3, "gone", id1, true);
	snprintf(t.now, sizeof(t.now), "%s", t.v[1].id);
	assert_int_equal(ckpt_tree_children(&t, id1, true), 2);
	assert_int_equal(ckpt_tree_children(&t, t.v[1].id, true), 1); /* Now */
	assert_int_equal(ckpt_tree_children(&t, t.v[1].id, false), 0);
	assert_true(ckpt_tree_descends(&t, NULL, id1));
	assert_false(ckpt_tree_descends(&t, NULL, t.v[2].id));
	assert_int_equal(ckpt_tree_visible(&t), 2);
	assert_null(ckpt_tree_lookup(&t, "gone")); /* hidden */
	assert_ptr_equal(ckpt_tree_lookup(&t, "two"), &t.v[1]);
	assert_ptr_equal(ckpt_tree_lookup(&t, id1), &t.v[0]);

	/* The tree and the VM's disks land together; a stale revision takes neither. */
	a.revision = 2;
	free(a.disks[0].path);
	a.disks[0].path = strdup("/new/child.avhdx");
	a.ndisks = 1;
	/* A disk's format is pinned before it is stored (disk_policy.c): never stored open. */
	a.disks[0].format = VM_DISK_AUTO;
	assert_int_equal(store_ckpt_save(st, a.uuid, &t, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has no format"));
	a.disks[0].format = VM_DISK_VHDX;
	assert_int_equal(store_ckpt_save(st, a.uuid, &t, &a, err, sizeof(err)), 0);
	assert_int_equal(store_ckpt_save(st, a.uuid, &t, &a, err, sizeof(err)), -ESTALE);
	assert_int_equal(store_vm_get(st, "alpha", &got), 0);
	assert_string_equal(got.disks[0].path, "/new/child.avhdx");
	assert_int_equal(got.disks[0].format, VM_DISK_VHDX);
	vmdef_free(&got);
	assert_int_equal(store_ckpt_load(st, a.uuid, &back), 0);
	assert_int_equal(back.n, 3);
	assert_string_equal(back.now, t.v[1].id);
	assert_string_equal(back.v[1].name, "two");
	assert_string_equal(back.v[1].parent, id1);
	assert_true(back.v[1].saved);
	assert_true(back.v[2].hidden);
	assert_string_equal(back.v[0].parent, "");
	assert_string_equal(back.v[2].disks[0], "gone");
	assert_int_equal(back.v[0].created, 1700000001);
	ckpt_tree_free(&back);

	/* A hidden checkpoint may share a name; two visible ones may not (nothing changes). */
	snprintf(t.v[2].name, sizeof(t.v[2].name), "two");
	assert_int_equal(store_ckpt_save(st, a.uuid, &t, NULL, err, sizeof(err)), 0);
	t.v[2].hidden = false;
	assert_int_equal(store_ckpt_save(st, a.uuid, &t, NULL, err, sizeof(err)), -EEXIST);
	assert_int_equal(store_ckpt_load(st, a.uuid, &back), 0);
	assert_true(back.v[2].hidden);
	ckpt_tree_free(&back);

	/* Removal, and everything going with the VM. */
	ckpt_tree_remove(&t, id1);
	assert_int_equal(t.n, 2);
	assert_null(ckpt_tree_by_id(&t, id1));
	assert_int_equal(store_vm_delete(st, a.uuid), 0);
	assert_int_equal(store_ckpt_load(st, a.uuid, &back), 0);
	assert_int_equal(back.n, 0);
	ckpt_tree_free(&back);
	ckpt_tree_free(&t);
	vmdef_free(&a);
	store_close(st);
}

/* The description as JSON text, to compare two reads of a VM. */
static char *def_text(const struct vm_def *def)
{
	json_object *o = vmdef_to_json(def);
	char *t;

	assert_non_null(o);
	t = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	assert_non_null(t);
	return t;
}

/* Schema 8 to 9 (store.c migrate_8_to_9): the console's and rng's columns of vms move into
 * devices. VMs with and without each, written by this keeld and taken back to schema 8,
 * read back the same descriptions after the upgrade; columns written by hand (a slot not
 * assigned yet, one out of range) read as the columns' reader read them. */
static void test_store_migrate_8_to_9(void **state)
{
	static const char *const docs[] = {
		"{\"rng\":null}",					     /* neither */
		"{\"virtio_console\":{},\"rng\":{\"pci_slot\":7}}",	     /* both, slots */
		"{\"virtio_console\":{\"pci_slot\":12},\"rng\":null}", "{}", /* rng by default */
	};
	char path[] = "/tmp/keel-test-store-XXXXXX", err[256], name[8], *before[4];
	struct store *st = open_temp_store(path);
	struct vm_def d, got;

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		make_def(&d, name);
		assert_int_equal(apply(&d, docs[i], err), 0);
		assert_int_equal(store_vm_insert(st, &d, err, sizeof(err)), 0);
		vmdef_free(&d);
		assert_int_equal(store_vm_get(st, name, &got), 0);
		before[i] = def_text(&got);
		vmdef_free(&got);
	}
	/* No column of their own any more; the rng a VM lacks is a null row. */
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM pragma_table_info('vms')"
					    " WHERE name IN ('console_slot', 'rng_slot')"),
			 0);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM devices d JOIN vms v ON"
					    " v.uuid = d.vm WHERE v.name = 'c0' AND"
					    " d.field = 'rng' AND d.doc = 'null'"),
			 1);
	assert_int_equal(sqlite3_exec(st->db,
				      UNDO_SCHEMA_13 UNDO_SCHEMA_12 UNDO_SCHEMA_11 UNDO_SCHEMA_10 UNDO_SCHEMA_9
				      "PRAGMA user_version=8;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(count_rows(st->db, "SELECT rng_slot FROM vms WHERE name = 'c0'"), -1);
	assert_int_equal(count_rows(st->db, "SELECT rng_slot FROM vms WHERE name = 'c1'"), 7);
	assert_int_equal(count_rows(st->db, "SELECT console_slot FROM vms WHERE name = 'c2'"), 12);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM devices"), 0);
	/* By hand: c3's console not assigned yet (0), its rng's slot out of range. */
	assert_int_equal(sqlite3_exec(st->db,
				      "UPDATE vms SET console_slot = 0, rng_slot = 99 WHERE name ="
				      " 'c3'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	store_close(st);

	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_upgraded_from(st), 8);
	assert_int_equal(count_rows(st->db, "PRAGMA user_version"), 13);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM pragma_table_info('vms')"
					    " WHERE name IN ('console_slot', 'rng_slot')"),
			 0);
	for (int i = 0; i < 3; i++) {
		char *after;

		snprintf(name, sizeof(name), "c%d", i);
		assert_int_equal(store_vm_get(st, name, &got), 0);
		assert_string_equal(got.damaged, "");
		after = def_text(&got);
		assert_string_equal(after, before[i]);
		free(after);
		vmdef_free(&got);
	}
	assert_int_equal(store_vm_get(st, "c0", &got), 0);
	assert_false(got.rng.present);
	assert_false(got.console.present);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "c1", &got), 0);
	assert_true(got.console.present);
	assert_int_equal(got.rng.pci_slot, 7);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "c2", &got), 0);
	assert_int_equal(got.console.pci_slot, 12);
	assert_false(got.rng.present);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "c3", &got), 0);
	assert_string_equal(got.damaged, "");
	assert_true(got.console.present);
	assert_true(got.rng.present);
	assert_true(got.console.pci_slot >= VMDEF_PCI_SLOT_MIN &&
		    got.console.pci_slot <= VMDEF_PCI_SLOT_MAX);
	assert_true(got.rng.pci_slot >= VMDEF_PCI_SLOT_MIN &&
		    got.rng.pci_slot <= VMDEF_PCI_SLOT_MAX && got.rng.pci_slot != 99);
	vmdef_free(&got);
	store_close(st);
	for (int i = 0; i < 4; i++)
		free(before[i]);
	remove_store(path);
}

/* Schema 10 to 11: adapters get their queue pairs, 0 (one per vCPU, as before: keel-vmm had
 * one pair then, docs/virtio.md); a VM's description otherwise unchanged. */
static void test_store_migrate_10_to_11(void **state)
{
	char path[] = "/tmp/keel-test-store-XXXXXX", err[256];
	struct store *st = open_temp_store(path);
	struct vm_def d, got;

	(void)state;
	make_def(&d, "q0");
	assert_int_equal(store_vm_insert(st, &d, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_exec(st->db,
				      UNDO_SCHEMA_13 UNDO_SCHEMA_12 UNDO_SCHEMA_11 "PRAGMA user_version=10;", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	store_close(st);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_upgraded_from(st), 10);
	assert_int_equal(count_rows(st->db, "PRAGMA user_version"), 13);
	assert_int_equal(store_vm_get(st, "q0", &got), 0);
	assert_string_equal(got.damaged, "");
	assert_string_equal(got.nics[0].mac, d.nics[0].mac);
	assert_int_equal(got.nics[0].queues, 0);
	/* A hand-edited count out of range reads as the default. */
	assert_int_equal(sqlite3_exec(st->db, "UPDATE nics SET queues = 99", NULL, NULL, NULL),
			 SQLITE_OK);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "q0", &got), 0);
	assert_int_equal(got.nics[0].queues, 0);
	vmdef_free(&got);
	vmdef_free(&d);
	store_close(st);
	remove_store(path);
}

/* Schema 11 to 12: disks on the SCSI controller get their storage QoS, none after the
 * upgrade; then stored and read back as given (a hand-edited value out of range reads as
 * none, a minimum above the maximum as the maximum). */
static void test_store_migrate_11_to_12(void **state)
{
	static const char luns[] = "{\"scsi\":{\"luns\":[{\"type\":\"disk\",\"path\":\"/p/a.img\"},"
				   "{\"type\":\"dvd\",\"path\":null}]}}";
	char path[] = "/tmp/keel-test-store-XXXXXX", err[256];
	struct store *st = open_temp_store(path);
	struct vm_def d, got;

	(void)state;
	make_def(&d, "s0");
	assert_int_equal(apply(&d, luns, err), 0);
	assert_int_equal(store_vm_insert(st, &d, err, sizeof(err)), 0);
	assert_int_equal(
		sqlite3_exec(st->db, UNDO_SCHEMA_13 UNDO_SCHEMA_12 "PRAGMA user_version=11;", NULL, NULL, NULL),
		SQLITE_OK);
	store_close(st);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_upgraded_from(st), 11);
	assert_int_equal(count_rows(st->db, "PRAGMA user_version"), 13);
	assert_int_equal(store_vm_get(st, "s0", &got), 0);
	assert_string_equal(got.damaged, "");
	assert_int_equal(got.scsi.nluns, 2);
	assert_true(!got.scsi.luns[0].disk.max_iops && !got.scsi.luns[0].disk.max_bw &&
		    !got.scsi.luns[0].disk.min_iops);
	got.scsi.luns[0].disk.max_iops = 300;
	got.scsi.luns[0].disk.max_bw = 20 << 20;
	got.scsi.luns[0].disk.min_iops = 50;
	got.revision++;
	assert_int_equal(store_vm_update(st, &got, err, sizeof(err)), 0);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "s0", &got), 0);
	assert_true(got.scsi.luns[0].disk.max_iops == 300 &&
		    got.scsi.luns[0].disk.max_bw == 20 << 20 &&
		    got.scsi.luns[0].disk.min_iops == 50);
	vmdef_free(&got);
	assert_int_equal(
		sqlite3_exec(st->db,
			     "UPDATE scsi_luns SET max_iops = -5, min_iops = 70 WHERE idx = 0;"
			     "UPDATE scsi_luns SET max_iops = 9 WHERE idx = 1",
			     NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(store_vm_get(st, "s0", &got), 0);
	assert_true(got.scsi.luns[0].disk.max_iops == 0 && got.scsi.luns[0].disk.min_iops == 70);
	assert_int_equal(got.scsi.luns[1].disk.max_iops, 0); /* a DVD drive has none */
	vmdef_free(&got);
	vmdef_free(&d);
	store_close(st);
	remove_store(path);
}

/* A Generation 1 VM with the boot menu on (the firmware row's boot_menu), stored and read. */
static void make_gen1(struct store *st, const char *name, bool menu)
{
	struct vm_def d, got;
	char err[256];

	vmdef_init(&d);
	snprintf(d.name, sizeof(d.name), "%s", name);
	assert_int_equal(vmdef_gen_uuid(d.uuid), 0);
	d.firmware = VM_FIRMWARE_BIOS;
	d.boot_menu = menu;
	d.revision = 1;
	d.created = 1700000000;
	assert_int_equal(store_vm_insert(st, &d, err, sizeof(err)), 0);
	assert_int_equal(store_vm_get(st, name, &got), 0);
	assert_string_equal(got.damaged, "");
	assert_int_equal(got.firmware, VM_FIRMWARE_BIOS);
	assert_int_equal(got.boot_menu, menu);
	vmdef_free(&got);
	vmdef_free(&d);
}

/* Schema 12 to 13: firmware rows get their boot menu, off (keel never showed one before); a
 * VM's description otherwise unchanged. */
static void test_store_migrate_12_to_13(void **state)
{
	char path[] = "/tmp/keel-test-store-XXXXXX", err[256];
	struct store *st = open_temp_store(path);
	struct vm_def got;

	(void)state;
	make_gen1(st, "m0", true);
	make_gen1(st, "m1", false);
	assert_int_equal(
		sqlite3_exec(st->db, UNDO_SCHEMA_13 "PRAGMA user_version=12;", NULL, NULL, NULL),
		SQLITE_OK);
	store_close(st);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_upgraded_from(st), 12);
	assert_int_equal(count_rows(st->db, "PRAGMA user_version"), 13);
	assert_int_equal(store_vm_get(st, "m0", &got), 0);
	assert_string_equal(got.damaged, "");
	assert_int_equal(got.firmware, VM_FIRMWARE_BIOS);
	assert_false(got.boot_menu);
	vmdef_free(&got);
	store_close(st);
	remove_store(path);
}

/* A store without the SCSI tables (those of schema 4 and older have none: they came without a
 * version of their own; here a schema 6 store with them dropped): every migration runs, and
 * the tables are made with every column. */
static void test_store_migrate_no_scsi(void **state)
{
	char path[] = "/tmp/keel-test-store-XXXXXX", err[256];
	struct store *st;
	int fd = mkstemp(path);
	sqlite3 *db;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	make_schema6(path, false, NULL);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db, "DROP TABLE scsi_luns; DROP TABLE scsi; PRAGMA user_version=6;",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_upgraded_from(st), 6);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM pragma_table_info('scsi_luns') "
					    "WHERE name IN ('max_iops', 'max_bw', 'min_iops')"),
			 3);
	store_close(st);
	remove_store(path);
}

/* Schema 8 to 9 with slots that are not integers (a column holds whatever was written into
 * it by hand): each reads as the columns' reader read it, sqlite3_column_int's integer part
 * (-0.5: 0, an rng not assigned yet; 20.7: slot 20), never a VM damaged by the upgrade. */
static void test_store_migrate_8_to_9_odd_values(void **state)
{
	char path[] = "/tmp/keel-test-store-XXXXXX", err[256];
	struct store *st = open_temp_store(path);
	struct vm_def d, got;

	for (const char *const *n = (const char *const[]){"o0", "o1", NULL}; *n; n++) {
		make_def(&d, *n);
		assert_int_equal(store_vm_insert(st, &d, err, sizeof(err)), 0);
		vmdef_free(&d);
	}
	assert_int_equal(sqlite3_exec(st->db,
				      UNDO_SCHEMA_13 UNDO_SCHEMA_12 UNDO_SCHEMA_11 UNDO_SCHEMA_10 UNDO_SCHEMA_9
				      "PRAGMA user_version=8;"
				      "UPDATE vms SET console_slot = 20.7, rng_slot = -0.5"
				      " WHERE name = 'o0';"
				      "UPDATE vms SET console_slot = -0.9, rng_slot = 21.2"
				      " WHERE name = 'o1';",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(count_rows(st->db, "SELECT count(*) FROM vms WHERE typeof(console_slot)"
					    " = 'real' AND typeof(rng_slot) = 'real'"),
			 2);
	store_close(st);

	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_upgraded_from(st), 8);
	assert_int_equal(store_vm_get(st, "o0", &got), 0);
	assert_string_equal(got.damaged, "");
	assert_true(got.console.present);
	assert_int_equal(got.console.pci_slot, 20);
	assert_true(got.rng.present);
	assert_true(got.rng.pci_slot >= VMDEF_PCI_SLOT_MIN &&
		    got.rng.pci_slot <= VMDEF_PCI_SLOT_MAX);
	vmdef_free(&got);
	assert_int_equal(store_vm_get(st, "o1", &got), 0);
	assert_string_equal(got.damaged, "");
	assert_true(got.console.present); /* -0.9 reads as 0: a console not assigned yet */
	assert_true(got.rng.present);
	assert_int_equal(got.rng.pci_slot, 21);
	vmdef_free(&got);
	store_close(st);
	remove_store(path);
}

/* The kinds a VM has unless told otherwise (vmdef_init): a stored VM without one has a null
 * row of it, or it would read back with the device. Every stored VM has had its rng row
 * since schema 9 (migrate_8_to_9); a new kind on by default finds existing VMs without a row,
 * which would gain the device (and no longer restore their saved states) unless a migration
 * gives them their null rows (docs/devices.md, step 4). */
static void test_store_default_kinds(void **state)
{
	static const char *const stored[] = {"rng"};
	struct vm_def blank;

	vmdef_init(&blank);
	for (size_t k = 0; k < vmdef_ndevices; k++) {
		bool known = false;

		if (!vmdef_devices[k]->count(&blank))
			continue;
		for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++)
			known = known || !strcmp(stored[i], vmdef_devices[k]->field);
		if (!known)
			fail_msg("kind '%s' is on by default: give existing VMs its null row in a "
				 "store migration (docs/devices.md, step 4), then list it here",
				 vmdef_devices[k]->field);
	}
	vmdef_free(&blank);
}

/* A disk's storage QoS is stored and read back; schema 9 to 10 (migrate_9_to_10) gives
 * existing disks none; a hand-edited row out of range reads as no limit, a minimum above
 * the maximum as the maximum. */
static void test_store_disk_qos(void **state)
{
	char path[] = "/tmp/keel-test-store-XXXXXX", err[256];
	struct store *st = open_temp_store(path);
	struct vm_def d, got;

	(void)state;
	make_def(&d, "q0");
	assert_int_equal(apply(&d,
			       "{\"disks\":[{\"path\":\"/srv/q0.raw\",\"format\":\"raw\","
			       "\"max_iops\":500,\"max_bandwidth\":52428800,\"min_iops\":100}]}",
			       err),
			 0);
	assert_int_equal(store_vm_insert(st, &d, err, sizeof(err)), 0);
	vmdef_free(&d);
	assert_int_equal(store_vm_get(st, "q0", &got), 0);
	assert_true(got.disks[0].max_iops == 500 && got.disks[0].max_bw == 50ull << 20 &&
		    got.disks[0].min_iops == 100);
	vmdef_free(&got);
	assert_int_equal(sqlite3_exec(st->db,
				      "UPDATE disks SET max_iops = -3, max_bw = 2e18, min_iops = 7",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_vm_get(st, "q0", &got), 0);
	assert_true(got.disks[0].max_iops == 0 && got.disks[0].max_bw == 0 &&
		    got.disks[0].min_iops == 7);
	vmdef_free(&got);
	assert_int_equal(sqlite3_exec(st->db, "UPDATE disks SET max_iops = 5, min_iops = 9", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_vm_get(st, "q0", &got), 0);
	assert_true(got.disks[0].max_iops == 5 && got.disks[0].min_iops == 5);
	vmdef_free(&got);
	assert_int_equal(sqlite3_exec(st->db,
				      UNDO_SCHEMA_13 UNDO_SCHEMA_12 UNDO_SCHEMA_11 UNDO_SCHEMA_10
				      "PRAGMA user_version=9;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	store_close(st);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(count_rows(st->db, "PRAGMA user_version"), 13);
	assert_int_equal(store_vm_get(st, "q0", &got), 0);
	assert_true(got.disks[0].max_iops == 0 && got.disks[0].max_bw == 0 &&
		    got.disks[0].min_iops == 0);
	vmdef_free(&got);
	store_close(st);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_fields),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_vlan_list),
		cmocka_unit_test(test_vlan_ranges),
		cmocka_unit_test(test_validate_files),
		cmocka_unit_test(test_mac_kept_on_same_tap),
		cmocka_unit_test(test_slots_kept_and_requested),
		cmocka_unit_test(test_store_roundtrip),
		cmocka_unit_test(test_store_devices),
		cmocka_unit_test(test_store_firmware_row),
		cmocka_unit_test(test_store_migrate_2_to_3),
		cmocka_unit_test(test_store_migrate_6_to_7),
		cmocka_unit_test(test_store_migrate_8_to_9),
		cmocka_unit_test(test_store_migrate_8_to_9_odd_values),
		cmocka_unit_test(test_store_migrate_10_to_11),
		cmocka_unit_test(test_store_migrate_11_to_12),
		cmocka_unit_test(test_store_migrate_12_to_13),
		cmocka_unit_test(test_store_migrate_no_scsi),
		cmocka_unit_test(test_store_disk_qos),
		cmocka_unit_test(test_store_default_kinds),
		cmocka_unit_test(test_checkpoint_store),
		cmocka_unit_test(test_checkpoint_disks),
		cmocka_unit_test(test_store_scsi_formats),
	};
	return cmocka_run_group_tests(tests, setup_kernel, teardown_kernel);
}
