/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon/store_internal.h"
#include "lib/error.h"
#include "lib/log.h"

#define STORE_SCHEMA_VERSION 13

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS vms("
	" uuid TEXT PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" version INTEGER NOT NULL,"
	" revision INTEGER NOT NULL,"
	" created INTEGER NOT NULL,"
	" cpus INTEGER NOT NULL,"
	" memory INTEGER NOT NULL,"
	" kernel TEXT NOT NULL,"
	" initrd TEXT,"
	" cmdline TEXT,"
	" notes TEXT,"
	" start_action TEXT NOT NULL,"
	" stop_action TEXT NOT NULL,"
	" debug_exit INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS disks("
	" vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" path TEXT NOT NULL,"
	" readonly INTEGER NOT NULL,"
	" format TEXT NOT NULL DEFAULT 'raw'," /* pinned at attach: raw or vhdx */
	" serial TEXT NOT NULL DEFAULT '',"
	" pci_slot INTEGER NOT NULL DEFAULT 0,"
	" cache TEXT NOT NULL DEFAULT 'none',"	/* none, writeback or unsafe */
	" max_iops INTEGER NOT NULL DEFAULT 0," /* storage QoS; 0: none */
	" max_bw INTEGER NOT NULL DEFAULT 0,"	/* bytes per second */
	" min_iops INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(vm, idx));"
	"CREATE TABLE IF NOT EXISTS nics("
	" vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" tap TEXT NOT NULL,"
	" mac TEXT NOT NULL UNIQUE,"
	" pci_slot INTEGER NOT NULL DEFAULT 0,"
	" switch TEXT NOT NULL DEFAULT '',"	/* the virtual switch, or '': a tap given by name */
	" vlan INTEGER NOT NULL DEFAULT 0,"	/* on a switch: the access VLAN, 0: untagged */
	" guards INTEGER NOT NULL DEFAULT 0,"	/* 1 MAC spoofing allowed, 2 DHCP, 4 router guard, 8
						   port isolation, 16 mirroring source, 32
						   mirroring destination, 64 vhost off, 128
						   vhost on (nets[].vhost) */
	" vlan_trunk TEXT NOT NULL DEFAULT ''," /* a trunk's VLANs, "10,20-30" */
	" native_vlan INTEGER NOT NULL DEFAULT 0," /* a trunk's untagged VLAN, 0: 1 */
	" bw_out INTEGER NOT NULL DEFAULT 0,"	   /* bits/s from the VM, 0: no limit */
	" bw_in INTEGER NOT NULL DEFAULT 0,"	   /* bits/s to the VM */
	" queues INTEGER NOT NULL DEFAULT 0,"	   /* virtio-net queue pairs, 0: one per vCPU */
	" PRIMARY KEY(vm, idx));"
	/* Firmware boot (store_firmware.c): a row per VM that boots through firmware. */
	"CREATE TABLE IF NOT EXISTS firmware("
	" vm TEXT PRIMARY KEY REFERENCES vms(uuid) ON DELETE CASCADE,"
	" generation INTEGER NOT NULL," /* 1: SeaBIOS, 2: OVMF */
	" firmware_file TEXT,"		/* NULL: Debian's */
	" nvram TEXT,"			/* Generation 2: the variable store in the VM's directory */
	" boot_order TEXT NOT NULL,"	/* '' : the default */
	" boot_menu INTEGER NOT NULL DEFAULT 0);" /* 1: the firmware offers its boot menu */
	/* Every device kind without columns of its own (store_devices.c): its field of the
	 * description as JSON, a row per kind the VM has. */
	"CREATE TABLE IF NOT EXISTS devices("
	" vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,"
	" field TEXT NOT NULL," /* the description's field: "vsock", "rng" */
	" doc TEXT NOT NULL,"	/* its value, as the kind writes it */
	" PRIMARY KEY(vm, field));"
	/* virtio-scsi (store_scsi.c): the controller's slot, and its LUNs in order. */
	"CREATE TABLE IF NOT EXISTS scsi("
	" vm TEXT PRIMARY KEY REFERENCES vms(uuid) ON DELETE CASCADE,"
	" pci_slot INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS scsi_luns("
	" vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" type TEXT NOT NULL," /* disk or dvd */
	" path TEXT,"	       /* NULL: an empty DVD drive */
	" format TEXT NOT NULL DEFAULT 'raw',"
	" cache TEXT NOT NULL DEFAULT 'none',"
	" readonly INTEGER NOT NULL DEFAULT 0,"
	" serial TEXT NOT NULL DEFAULT '',"
	" max_iops INTEGER NOT NULL DEFAULT 0," /* a disk's storage QoS; 0: none */
	" max_bw INTEGER NOT NULL DEFAULT 0,"
	" min_iops INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(vm, idx));"
	"CREATE TABLE IF NOT EXISTS runtime("
	" vm TEXT PRIMARY KEY REFERENCES vms(uuid) ON DELETE CASCADE,"
	" state TEXT NOT NULL,"
	" reason TEXT NOT NULL,"
	" pid INTEGER NOT NULL,"
	" starttime INTEGER NOT NULL,"
	" was_running INTEGER NOT NULL);"
	/* Integration services turned off for a VM (store_integration.c); a new table, so an
	 * older store gets it empty (every service on) without a schema change. */
	"CREATE TABLE IF NOT EXISTS integration_disabled("
	" vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,"
	" service TEXT NOT NULL,"
	" PRIMARY KEY(vm, service));"
	/* Checkpoints (ckpt.c): a tree per VM; hidden ones were deleted but still hold disk
	 * data that two or more children need (docs/checkpoints.md). */
	"CREATE TABLE IF NOT EXISTS checkpoints("
	" id TEXT PRIMARY KEY,"
	" vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" created INTEGER NOT NULL,"
	" seq INTEGER NOT NULL,"
	" parent TEXT,"
	" hidden INTEGER NOT NULL,"
	" saved INTEGER NOT NULL,"
	" type TEXT NOT NULL DEFAULT 'standard');"
	"CREATE UNIQUE INDEX IF NOT EXISTS checkpoint_names ON checkpoints(vm, name)"
	" WHERE hidden = 0;"
	"CREATE TABLE IF NOT EXISTS checkpoint_disks("
	" ckpt TEXT NOT NULL REFERENCES checkpoints(id) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" path TEXT NOT NULL,"
	" PRIMARY KEY(ckpt, idx));"
	/* The audit log (store_audit.c, docs/security.md). */
	"CREATE TABLE IF NOT EXISTS audit("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" time INTEGER NOT NULL,"
	" uid INTEGER NOT NULL,"
	" user TEXT NOT NULL,"
	" method TEXT NOT NULL,"
	" path TEXT NOT NULL,"
	" vm TEXT NOT NULL,"
	" status INTEGER NOT NULL,"
	" message TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS audit_vm ON audit(vm, seq);"
	/* Each kind's retention (store_audit.c) walks its own records only. */
	"CREATE INDEX IF NOT EXISTS audit_refused ON audit(seq) WHERE status IN (403, 413, 414);"
	"CREATE INDEX IF NOT EXISTS audit_changes ON audit(seq) WHERE NOT status IN (403, 413, "
	"414);"
	/* Storage pools (pools.c, docs/security.md): where a VM's files may come from. */
	"CREATE TABLE IF NOT EXISTS pools("
	" name TEXT PRIMARY KEY,"
	" type TEXT NOT NULL," /* dir or block */
	" path TEXT NOT NULL," /* dir: the directory, canonical; block: "" */
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS pool_devices("
	" pool TEXT NOT NULL REFERENCES pools(name) ON DELETE CASCADE,"
	" path TEXT NOT NULL UNIQUE);"
	"CREATE TABLE IF NOT EXISTS checkpoint_now("
	" vm TEXT PRIMARY KEY REFERENCES vms(uuid) ON DELETE CASCADE,"
	" parent TEXT NOT NULL);"
	/* Virtual switches (switch.c, docs/networking.md). */
	"CREATE TABLE IF NOT EXISTS switches("
	" name TEXT PRIMARY KEY,"
	" type TEXT NOT NULL,"			   /* external, internal or private */
	" bridge TEXT NOT NULL UNIQUE,"		   /* the Linux bridge: kbrN */
	" subnet TEXT NOT NULL,"		   /* internal: the IPv4 network, "a.b.c.0/N" */
	" adapter TEXT NOT NULL,"		   /* external: the host adapter bridged */
	" allow_mgmt INTEGER NOT NULL,"		   /* external: the host keeps an address */
	" nat INTEGER NOT NULL,"		   /* internal: NAT, DHCP and DNS */
	" is_default INTEGER NOT NULL,"		   /* the Default Switch (at most one) */
	" adapter_addrs TEXT NOT NULL DEFAULT ''," /* the addresses record (store.h) */
	" created INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS switch_default ON switches(is_default)"
	" WHERE is_default = 1;"
	/* A NAT switch's port forwards (Add-NetNatStaticMapping): a host port to a VM's. */
	"CREATE TABLE IF NOT EXISTS switch_forwards("
	" switch TEXT NOT NULL REFERENCES switches(name) ON DELETE CASCADE,"
	" proto TEXT NOT NULL," /* tcp or udp */
	" host_port INTEGER NOT NULL,"
	" vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,"
	" mac TEXT NOT NULL,"	  /* the VM's adapter on the switch */
	" address TEXT NOT NULL," /* reserved for that MAC in the switch's DHCP */
	" port INTEGER NOT NULL,"
	" PRIMARY KEY(proto, host_port));";

/* From schema 1: the description's device fields (docs/vm-config.md). Slots left 0 are
 * assigned when a VM is read, in the order keel-vmm always used, so guests see no change. */
static const char migrate_1_to_2[] =
	"ALTER TABLE vms ADD COLUMN console_slot INTEGER NOT NULL DEFAULT -1;"
	"ALTER TABLE vms ADD COLUMN rng_slot INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE vms ADD COLUMN debug_exit INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE disks ADD COLUMN serial TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE disks ADD COLUMN pci_slot INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE nics ADD COLUMN pci_slot INTEGER NOT NULL DEFAULT 0;";

/* From schema 2: each disk's format, pinned (docs/vm-config.md), by its name as a LUN's is
 * (.vhdx and .avhdx: vhdx, anything else raw), never by its contents: keeld would read them
 * as root, and a raw disk's guest can write a VHDX header into its own first bytes. */
static const char migrate_2_to_3[] =
	"ALTER TABLE disks ADD COLUMN format TEXT NOT NULL DEFAULT 'raw';"
	"UPDATE disks SET format = 'vhdx' WHERE lower(path) LIKE '%.vhdx'"
	" OR lower(path) LIKE '%.avhdx';";

/* From schema 3: each disk's cache mode (docs/vm-config.md); none, the default. */
static const char migrate_3_to_4[] =
	"ALTER TABLE disks ADD COLUMN cache TEXT NOT NULL DEFAULT 'none';";

/* From schema 4: virtual switches (the table is in schema) and the adapters on them. */
static const char migrate_4_to_5[] =
	"ALTER TABLE nics ADD COLUMN switch TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE nics ADD COLUMN vlan INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE nics ADD COLUMN guards INTEGER NOT NULL DEFAULT 0;";

/* From schema 5: each checkpoint's type, standard or production (docs/checkpoints.md); the
 * checkpoints made before had memory or were of a VM that was off: standard. */
static const char migrate_5_to_6[] =
	"ALTER TABLE checkpoints ADD COLUMN type TEXT NOT NULL DEFAULT 'standard';";

/* From schema 6: virtio-vsock's rows move from their own table into devices, as the
 * description's "vsock" field (store_devices.c); a store that never had the table gets none.
 * A cid or slot out of range (VMDEF_VSOCK_CID_MIN..MAX, VMDEF_PCI_SLOT_MIN..MAX) is left out,
 * as the old table's reader clamped it: the parser then gives the default cid, a new slot. */
static const char migrate_6_to_7[] =
	"CREATE TABLE IF NOT EXISTS vsock(vm TEXT PRIMARY KEY, cid INTEGER NOT NULL,"
	" pci_slot INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS devices("
	" vm TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,"
	" field TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY(vm, field));"
	"INSERT INTO devices(vm, field, doc) SELECT vm, 'vsock', json_patch(json_patch('{}',"
	" CASE WHEN cid BETWEEN 3 AND 4294967294 THEN json_object('cid', cid) ELSE '{}' END),"
	" CASE WHEN pci_slot BETWEEN 1 AND 30 THEN json_object('pci_slot', pci_slot)"
	" ELSE '{}' END) FROM vsock;"
	"DROP TABLE vsock;";

/* From schema 7: adapters' trunk VLANs and bandwidth limits. */
static const char migrate_7_to_8[] =
	"ALTER TABLE nics ADD COLUMN vlan_trunk TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE nics ADD COLUMN native_vlan INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE nics ADD COLUMN bw_out INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE nics ADD COLUMN bw_in INTEGER NOT NULL DEFAULT 0;";

/* From schema 8: the virtio-console's and virtio-rng's slots move from their columns of vms
 * into devices, as the description's "virtio_console" and "rng" fields (store_devices.c),
 * read as the columns were: a console where console_slot >= 0, an rng unless rng_slot < 0
 * (kept as null: a VM has one by default), a slot out of range left out (the parser then
 * gives it a new one, as the columns' reader did). Each value is taken as an integer first,
 * as sqlite3_column_int took it (a column holds whatever was written into it: 20.7 is slot
 * 20, -0.5 is 0, never a non-integer pci_slot that would damage the VM). */
static const char migrate_8_to_9[] =
	"INSERT INTO devices(vm, field, doc) SELECT uuid, 'virtio_console',"
	" CASE WHEN c BETWEEN 1 AND 30 THEN json_object('pci_slot', c) ELSE '{}' END"
	" FROM (SELECT uuid, CAST(console_slot AS INTEGER) AS c FROM vms) WHERE c >= 0;"
	"INSERT INTO devices(vm, field, doc) SELECT uuid, 'rng',"
	" CASE WHEN r < 0 THEN 'null' WHEN r BETWEEN 1 AND 30 THEN json_object('pci_slot', r)"
	" ELSE '{}' END FROM (SELECT uuid, CAST(rng_slot AS INTEGER) AS r FROM vms);"
	"ALTER TABLE vms DROP COLUMN console_slot;"
	"ALTER TABLE vms DROP COLUMN rng_slot;";

/* From schema 9: each disk's storage QoS (docs/vm-config.md); none, the default. */
static const char migrate_9_to_10[] =
	"ALTER TABLE disks ADD COLUMN max_iops INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE disks ADD COLUMN max_bw INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE disks ADD COLUMN min_iops INTEGER NOT NULL DEFAULT 0;";

/* From schema 10: each adapter's virtio-net queue pairs (docs/vm-config.md); 0, the default
 * (one per vCPU). */
static const char migrate_10_to_11[] = "ALTER TABLE nics ADD COLUMN queues INTEGER NOT NULL "
				       "DEFAULT 0;";

/* From schema 11: the storage QoS of each disk on the SCSI controller (docs/vm-config.md);
 * none, the default. */
static const char migrate_11_to_12[] =
	"ALTER TABLE scsi_luns ADD COLUMN max_iops INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE scsi_luns ADD COLUMN max_bw INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE scsi_luns ADD COLUMN min_iops INTEGER NOT NULL DEFAULT 0;";

/* From schema 12: whether the firmware offers its boot menu (docs/vm-config.md); 0, the
 * default (none, as before: keel never showed one). */
static const char migrate_12_to_13[] = "ALTER TABLE firmware ADD COLUMN boot_menu INTEGER NOT "
				       "NULL DEFAULT 0;";

int store_upgraded_from(const struct store *st)
{
	return st->upgraded_from;
}

static int begin(struct store *st);
static int finish(struct store *st, int ret);
static int prepare(struct store *st, const char *sql, sqlite3_stmt **stmt);

int store_tx_begin(struct store *st)
{
	return begin(st);
}

int store_tx_finish(struct store *st, int ret)
{
	return finish(st, ret);
}

int store_prepare(struct store *st, const char *sql, sqlite3_stmt **stmt)
{
	return prepare(st, sql, stmt);
}

static int exec_sql(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(st->last_err, sizeof(st->last_err), "%s",
			 msg ? msg : sqlite3_errmsg(st->db));
		log_err("store: %s: %s", sql, st->last_err);
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

/* Whether the store has table name (a store from an old schema may lack one). */
static bool has_table(struct store *st, const char *name)
{
	sqlite3_stmt *s = NULL;
	bool found = false;

	if (store_prepare(st, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", &s))
		return false;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return found;
}

static int begin(struct store *st)
{
	return exec_sql(st, "BEGIN IMMEDIATE");
}

static int finish(struct store *st, int ret)
{
	if (ret == 0)
		ret = exec_sql(st, "COMMIT");
	if (ret)
		(void)!exec_sql(st, "ROLLBACK");
	return ret;
}

static int prepare(struct store *st, const char *sql, sqlite3_stmt **stmt)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK) {
		snprintf(st->last_err, sizeof(st->last_err), "%s", sqlite3_errmsg(st->db));
		log_err("store: cannot prepare '%s': %s", sql, st->last_err);
		return -EIO;
	}
	return 0;
}

/* Whether path's first 8 bytes are VHDX's signature ("vhdxfile"): a regular file only,
 * opened without following a link nor blocking. */
static bool vhdx_signature(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	char sig[8];
	struct stat st;
	bool is = false;

	if (fd < 0)
		return false;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
		is = pread(fd, sig, sizeof(sig), 0) == (ssize_t)sizeof(sig) &&
		     !memcmp(sig, "vhdxfile", sizeof(sig));
	close(fd);
	return is;
}

/* After migrate_2_to_3, which pins by name only: a warning for each disk pinned raw whose
 * file starts as a VHDX does (a VHDX named disk.img), with the command that changes it. Its
 * contents decide nothing: the guest of a raw disk can write that signature itself. */
static void warn_vhdx_pinned_raw(struct store *st)
{
	sqlite3_stmt *s;

	if (prepare(st,
		    "SELECT v.name, d.path FROM disks d JOIN vms v ON v.uuid = d.vm"
		    " WHERE d.format = 'raw' ORDER BY v.name, d.idx",
		    &s))
		return;
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *vm = (const char *)sqlite3_column_text(s, 0),
			   *path = (const char *)sqlite3_column_text(s, 1);

		if (vm && path && vhdx_signature(path))
			log_warn("store: VM %s: disk %s is pinned raw by its name but starts with "
				 "VHDX's signature; if it is a VHDX: keel vm set %s --disk "
				 "%s,format=vhdx (with the VM's other disks: --disk replaces "
				 "the list)",
				 vm, path, vm, path);
	}
	sqlite3_finalize(s);
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));
	sqlite3_stmt *stmt = NULL;
	char why[sizeof(st->last_err)] = "";
	int version = 0;
	int ret = 0;

	if (!st)
		return -ENOMEM;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		error_set(err, errlen, "cannot open store %s: %s", path,
			  st->db ? sqlite3_errmsg(st->db) : "out of memory");
		ret = -EIO;
		goto out;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (exec_sql(st, "PRAGMA foreign_keys=ON") || exec_sql(st, "PRAGMA journal_mode=WAL") ||
	    exec_sql(st, "PRAGMA synchronous=FULL")) {
		error_set(err, errlen, "cannot configure store %s: %s", path,
			  sqlite3_errmsg(st->db));
		ret = -EIO;
		goto out;
	}
	ret = prepare(st, "PRAGMA user_version", &stmt);
	if (ret)
		goto out;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		version = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (version > STORE_SCHEMA_VERSION) {
		error_set(err, errlen,
			  "store %s has schema version %d, newer than this keeld's %d: use a newer "
			  "keeld",
			  path, version, STORE_SCHEMA_VERSION);
		ret = -EPROTO;
		goto out;
	}
	ret = begin(st);
	if (!ret && version == 1)
		ret = exec_sql(st, migrate_1_to_2);
	if (!ret && version >= 1 && version <= 2)
		ret = exec_sql(st, migrate_2_to_3);
	if (!ret && version >= 1 && version <= 2)
		warn_vhdx_pinned_raw(st);
	if (!ret && version >= 1 && version <= 3)
		ret = exec_sql(st, migrate_3_to_4);
	if (!ret && version >= 1 && version <= 4)
		ret = exec_sql(st, migrate_4_to_5);
	if (!ret && version >= 1 && version <= 5)
		ret = exec_sql(st, migrate_5_to_6);
	if (!ret && version >= 1 && version <= 6)
		ret = exec_sql(st, migrate_6_to_7);
	if (!ret && version >= 1 && version <= 7)
		ret = exec_sql(st, migrate_7_to_8);
	if (!ret && version >= 1 && version <= 8)
		ret = exec_sql(st, migrate_8_to_9);
	if (!ret && version >= 1 && version <= 9)
		ret = exec_sql(st, migrate_9_to_10);
	if (!ret && version >= 1 && version <= 10)
		ret = exec_sql(st, migrate_10_to_11);
	/* scsi_luns came at schema 4 without a version of its own: a store from before has none,
	 * and the schema below makes it with every column. */
	if (!ret && version >= 1 && version <= 11 && has_table(st, "scsi_luns"))
		ret = exec_sql(st, migrate_11_to_12);
	if (!ret && version >= 1 && version <= 12 && has_table(st, "firmware"))
		ret = exec_sql(st, migrate_12_to_13);
	if (version >= 1 && version < STORE_SCHEMA_VERSION)
		st->upgraded_from = version;
	if (!ret)
		ret = exec_sql(st, schema);
	if (!ret)
		ret = exec_sql(st, "PRAGMA user_version=13");
	/* The message of what failed, taken before finish's ROLLBACK replaces SQLite's
	 * ("not an error"); a failed COMMIT leaves its own. */
	if (ret) {
		if (!st->last_err[0])
			snprintf(st->last_err, sizeof(st->last_err), "%s", sqlite3_errmsg(st->db));
		snprintf(why, sizeof(why), "%s", st->last_err);
	}
	ret = finish(st, ret);
	if (ret)
		error_set(err, errlen, "cannot create the tables of store %s: %s", path,
			  why[0] ? why : st->last_err);
out:
	if (ret) {
		sqlite3_close(st->db);
		free(st);
		return ret;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	sqlite3_close(st->db);
	free(st);
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

/* Which unique key a constraint failure hit, in the user's words. */
static int constraint_error(struct store *st, const struct vm_def *def, char *err, size_t errlen)
{
	const char *msg = sqlite3_errmsg(st->db);

	if (strstr(msg, "vms.name"))
		error_set(err, errlen, "a VM named '%s' already exists", def->name);
	else if (strstr(msg, "nics.mac"))
		error_set(err, errlen, "a MAC address of VM '%s' is already used by another VM",
			  def->name);
	else if (strstr(msg, "vms.uuid"))
		error_set(err, errlen, "a VM with id %s already exists", def->uuid);
	else
		error_set(err, errlen, "store refused VM '%s': %s", def->name, msg);
	return -EEXIST;
}

/* A one-of device as its column: -1 absent, else its slot (0: not assigned yet). */
static uint8_t slot_from_col(sqlite3_stmt *s, int col)
{
	int v = sqlite3_column_int(s, col);

	return v >= VMDEF_PCI_SLOT_MIN && v <= VMDEF_PCI_SLOT_MAX ? (uint8_t)v : 0;
}

/* Write the disks and NICs rows of def (the old ones are already gone). */
static int put_devices(struct store *st, const struct vm_def *def, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int ret;

	ret = prepare(st,
		      "INSERT INTO disks(vm, idx, path, readonly, serial, pci_slot, format, cache, "
		      "max_iops, max_bw, min_iops) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
		      &s);
	if (ret)
		return ret;
	for (unsigned i = 0; i < def->ndisks; i++) {
		if (def->disks[i].format == VM_DISK_AUTO) {
			/* keeld pins every format at attach (disk_policy.c) */
			error_set(err, errlen, "disk %s has no format", def->disks[i].path);
			ret = -EINVAL;
			goto out;
		}
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, (int)i);
		sqlite3_bind_text(s, 3, def->disks[i].path, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, def->disks[i].readonly);
		sqlite3_bind_text(s, 5, def->disks[i].serial, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 6, def->disks[i].pci_slot);
		sqlite3_bind_text(s, 7, vmdef_disk_format_name(def->disks[i].format), -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(s, 8, vmdef_disk_cache_name(def->disks[i].cache), -1,
				  SQLITE_STATIC);
		store_disk_qos_bind(s, 9, &def->disks[i]);
		if (sqlite3_step(s) != SQLITE_DONE) {
			ret = -EIO;
			goto out;
		}
	}
	sqlite3_finalize(s);
	s = NULL;
	ret = prepare(st,
		      "INSERT INTO nics(vm, idx, tap, mac, pci_slot, switch, vlan, guards, "
		      "vlan_trunk, native_vlan, bw_out, bw_in, queues) "
		      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
		      &s);
	if (ret)
		return ret;
	for (unsigned i = 0; i < def->nnics; i++) {
		int rc;

		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, (int)i);
		sqlite3_bind_text(s, 3, def->nics[i].tap, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, def->nics[i].mac, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 5, def->nics[i].pci_slot);
		sqlite3_bind_text(s, 6, def->nics[i].sw, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 7, def->nics[i].vlan);
		sqlite3_bind_int(s, 8, store_nic_guards(&def->nics[i]));
		sqlite3_bind_text(s, 9, def->nics[i].vlan_trunk, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 10, def->nics[i].native_vlan);
		sqlite3_bind_int64(s, 11, (sqlite3_int64)def->nics[i].bw_out);
		sqlite3_bind_int64(s, 12, (sqlite3_int64)def->nics[i].bw_in);
		sqlite3_bind_int(s, 13, def->nics[i].queues);
		rc = sqlite3_step(s);
		if (rc == SQLITE_CONSTRAINT) {
			ret = constraint_error(st, def, err, errlen);
			goto out;
		}
		if (rc != SQLITE_DONE) {
			ret = -EIO;
			goto out;
		}
	}
	ret = store_devices_put(st, def);
	if (!ret)
		ret = store_firmware_put(st, def);
	if (!ret)
		ret = store_integration_put(st, def);
out:
	if (ret == -EIO)
		error_set(err, errlen, "store write failed: %s", sqlite3_errmsg(st->db));
	sqlite3_finalize(s);
	return ret;
}

int store_vm_insert(struct store *st, const struct vm_def *def, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int ret, rc;

	ret = begin(st);
	if (ret) {
		error_set(err, errlen, "store busy: %s", sqlite3_errmsg(st->db));
		return ret;
	}
	ret = prepare(st,
		      "INSERT INTO vms(uuid, name, version, revision, created, cpus, memory, "
		      "kernel, initrd, cmdline, notes, start_action, stop_action, debug_exit) "
		      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
		      &s);
	if (ret)
		goto out;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, def->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, def->version);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)def->revision);
	sqlite3_bind_int64(s, 5, def->created);
	sqlite3_bind_int64(s, 6, def->cpus);
	sqlite3_bind_int64(s, 7, (sqlite3_int64)def->memory);
	sqlite3_bind_text(s, 8, def->kernel ? def->kernel : "", -1, SQLITE_STATIC);
	bind_text_or_null(s, 9, def->initrd);
	bind_text_or_null(s, 10, def->cmdline);
	bind_text_or_null(s, 11, def->notes);
	sqlite3_bind_text(s, 12, vmdef_start_action_name(def->start_action), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 13, vmdef_stop_action_name(def->stop_action), -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 14, def->debug_exit);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT) {
		ret = constraint_error(st, def, err, errlen);
		goto out;
	}
	if (rc != SQLITE_DONE) {
		error_set(err, errlen, "store write failed: %s", sqlite3_errmsg(st->db));
		ret = -EIO;
		goto out;
	}
	ret = put_devices(st, def, err, errlen);
out:
	sqlite3_finalize(s);
	return finish(st, ret);
}

int store_vm_update_rows(struct store *st, const struct vm_def *def, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int ret, rc;

	if (def->damaged[0]) {
		/* Written back, it would lose the rows that could not be read. */
		error_set(err, errlen, "VM '%s' is damaged in the store: %s", def->name,
			  def->damaged);
		return -EPROTO;
	}
	ret = prepare(st,
		      "UPDATE vms SET name=?, version=?, revision=?, cpus=?, memory=?, kernel=?, "
		      "initrd=?, cmdline=?, notes=?, start_action=?, stop_action=?, "
		      "debug_exit=? WHERE uuid=? AND revision=?",
		      &s);
	if (ret)
		goto out;
	sqlite3_bind_text(s, 1, def->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, def->version);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)def->revision);
	sqlite3_bind_int64(s, 4, def->cpus);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)def->memory);
	sqlite3_bind_text(s, 6, def->kernel ? def->kernel : "", -1, SQLITE_STATIC);
	bind_text_or_null(s, 7, def->initrd);
	bind_text_or_null(s, 8, def->cmdline);
	bind_text_or_null(s, 9, def->notes);
	sqlite3_bind_text(s, 10, vmdef_start_action_name(def->start_action), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 11, vmdef_stop_action_name(def->stop_action), -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 12, def->debug_exit);
	sqlite3_bind_text(s, 13, def->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 14, (sqlite3_int64)def->revision - 1);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT) {
		ret = constraint_error(st, def, err, errlen);
		goto out;
	}
	if (rc != SQLITE_DONE) {
		error_set(err, errlen, "store write failed: %s", sqlite3_errmsg(st->db));
		ret = -EIO;
		goto out;
	}
	if (sqlite3_changes(st->db) != 1) {
		error_set(err, errlen, "VM '%s' was changed or deleted by another request; retry",
			  def->name);
		ret = -ESTALE;
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	ret = prepare(st, "DELETE FROM disks WHERE vm=?1", &s);
	if (ret)
		goto out;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		ret = -EIO;
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	ret = prepare(st, "DELETE FROM nics WHERE vm=?1", &s);
	if (ret)
		goto out;
	sqlite3_bind_text(s, 1, def->uuid, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		ret = -EIO;
		goto out;
	}
	ret = put_devices(st, def, err, errlen);
out:
	if (ret == -EIO)
		error_set(err, errlen, "store write failed: %s", sqlite3_errmsg(st->db));
	sqlite3_finalize(s);
	return ret;
}

int store_vm_update(struct store *st, const struct vm_def *def, char *err, size_t errlen)
{
	int ret = begin(st);

	if (ret) {
		error_set(err, errlen, "store busy: %s", sqlite3_errmsg(st->db));
		return ret;
	}
	return finish(st, store_vm_update_rows(st, def, err, errlen));
}

int store_vm_delete(struct store *st, const char *uuid)
{
	sqlite3_stmt *s = NULL;
	int ret;

	ret = begin(st);
	if (ret)
		return ret;
	ret = prepare(st, "DELETE FROM vms WHERE uuid=?1", &s);
	if (ret)
		goto out;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		ret = -EIO;
	else if (sqlite3_changes(st->db) != 1)
		ret = -ENOENT;
out:
	sqlite3_finalize(s);
	return finish(st, ret);
}

static int dup_col(sqlite3_stmt *s, int col, char **out)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	*out = NULL;
	if (!t)
		return 0;
	*out = strdup((const char *)t);
	return *out ? 0 : -ENOMEM;
}

static void copy_col(sqlite3_stmt *s, int col, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

static unsigned action_from_name(const char *s, const char *(*name)(unsigned), unsigned dflt)
{
	for (unsigned i = 0; i < 3; i++)
		if (!strcmp(s, name(i)))
			return i;
	return dflt;
}

static const char *start_name(unsigned a)
{
	return vmdef_start_action_name((enum vm_start_action)a);
}

static const char *stop_name(unsigned a)
{
	return vmdef_stop_action_name((enum vm_stop_action)a);
}

#define VM_COLUMNS                                                                                 \
	"uuid, name, version, revision, created, cpus, memory, kernel, initrd, cmdline, notes, "   \
	"start_action, stop_action, debug_exit"

/* A QoS limit of a disks row: out of 0..max (a hand-edited row) is no limit. */
static uint64_t qos_from_col(sqlite3_stmt *s, int col, uint64_t max)
{
	sqlite3_int64 v = sqlite3_column_int64(s, col);

	return v > 0 && (uint64_t)v <= max ? (uint64_t)v : 0;
}

void store_disk_qos_load(sqlite3_stmt *s, int col, struct vm_disk *disk)
{
	disk->max_iops = qos_from_col(s, col, VMDEF_QOS_MAX_IOPS);
	disk->max_bw = qos_from_col(s, col + 1, VMDEF_QOS_MAX_BW);
	disk->min_iops = qos_from_col(s, col + 2, VMDEF_QOS_MAX_IOPS);
	if (disk->max_iops && disk->min_iops > disk->max_iops)
		disk->min_iops = disk->max_iops; /* a hand-edited row: what can be met */
}

void store_disk_qos_bind(sqlite3_stmt *s, int col, const struct vm_disk *disk)
{
	sqlite3_bind_int64(s, col, (sqlite3_int64)disk->max_iops);
	sqlite3_bind_int64(s, col + 1, (sqlite3_int64)disk->max_bw);
	sqlite3_bind_int64(s, col + 2, (sqlite3_int64)disk->min_iops);
}

/* Fill def from a row of VM_COLUMNS, then read its disks and NICs. */
static int load_row(struct store *st, sqlite3_stmt *s, struct vm_def *def)
{
	sqlite3_stmt *d = NULL;
	char action[32];
	int ret;

	vmdef_init(def);
	copy_col(s, 0, def->uuid, sizeof(def->uuid));
	copy_col(s, 1, def->name, sizeof(def->name));
	def->version = (uint32_t)sqlite3_column_int64(s, 2);
	def->revision = (uint64_t)sqlite3_column_int64(s, 3);
	def->created = sqlite3_column_int64(s, 4);
	def->cpus = (uint32_t)sqlite3_column_int64(s, 5);
	def->memory = (uint64_t)sqlite3_column_int64(s, 6);
	if (dup_col(s, 7, &def->kernel) || dup_col(s, 8, &def->initrd) ||
	    dup_col(s, 9, &def->cmdline) || dup_col(s, 10, &def->notes)) {
		ret = -ENOMEM;
		goto out;
	}
	copy_col(s, 11, action, sizeof(action));
	def->start_action = (enum vm_start_action)action_from_name(action, start_name, 0);
	copy_col(s, 12, action, sizeof(action));
	def->stop_action = (enum vm_stop_action)action_from_name(action, stop_name, 1);
	def->debug_exit = sqlite3_column_int(s, 13) != 0;

	ret = prepare(st,
		      "SELECT path, readonly, serial, pci_slot, format, cache, max_iops, max_bw, "
		      "min_iops FROM disks WHERE vm=?1 ORDER BY idx",
		      &d);
	if (ret)
		goto out;
	sqlite3_bind_text(d, 1, def->uuid, -1, SQLITE_STATIC);
	while (sqlite3_step(d) == SQLITE_ROW && def->ndisks < VMDEF_MAX_DISKS) {
		struct vm_disk *disk = &def->disks[def->ndisks];
		if (dup_col(d, 0, &disk->path) || !disk->path) {
			ret = -ENOMEM;
			goto out;
		}
		disk->readonly = sqlite3_column_int(d, 1) != 0;
		copy_col(d, 2, disk->serial, sizeof(disk->serial));
		disk->pci_slot = slot_from_col(d, 3);
		disk->format =
			sqlite3_column_text(d, 4) &&
					!strcmp((const char *)sqlite3_column_text(d, 4), "vhdx")
				? VM_DISK_VHDX
				: VM_DISK_RAW;
		if (!sqlite3_column_text(d, 5) ||
		    vmdef_disk_cache_parse((const char *)sqlite3_column_text(d, 5), &disk->cache))
			disk->cache = VM_DISK_CACHE_NONE; /* a hand-edited row: the default */
		store_disk_qos_load(d, 6, disk);
		def->ndisks++;
	}
	sqlite3_finalize(d);
	d = NULL;
	ret = prepare(st,
		      "SELECT tap, mac, pci_slot, switch, vlan, guards, vlan_trunk, native_vlan, "
		      "bw_out, bw_in, queues FROM nics WHERE vm=?1 "
		      "ORDER BY idx",
		      &d);
	if (ret)
		goto out;
	sqlite3_bind_text(d, 1, def->uuid, -1, SQLITE_STATIC);
	while (sqlite3_step(d) == SQLITE_ROW && def->nnics < VMDEF_MAX_NICS) {
		struct vm_nic *nic = &def->nics[def->nnics++];
		copy_col(d, 0, nic->tap, sizeof(nic->tap));
		copy_col(d, 1, nic->mac, sizeof(nic->mac));
		nic->pci_slot = slot_from_col(d, 2);
		copy_col(d, 3, nic->sw, sizeof(nic->sw));
		{
			int vlan = sqlite3_column_int(d, 4), guards = sqlite3_column_int(d, 5);

			nic->vlan = vlan >= 1 && vlan <= VMDEF_VLAN_MAX ? (uint16_t)vlan : 0;
			store_nic_set_guards(nic, guards);
			store_nic_set_trunk(nic, d, 6);
		}
		{
			int q = sqlite3_column_int(d, 10);

			/* a hand-edited row out of range: the default */
			nic->queues = q >= 1 && q <= VMDEF_NET_QUEUES_MAX ? (uint8_t)q : 0;
		}
	}
	/* One VM's device row that does not parse damages that VM alone: it is kept (listed,
	 * its worker re-attached and supervised) with why in def->damaged, and never started
	 * from this description (sup_start) nor changed through the API (api.c). */
	ret = store_devices_load(st, def, def->damaged, sizeof(def->damaged));
	if (ret == -EPROTO)
		ret = 0;
	if (!ret)
		ret = store_firmware_load(st, def);
	if (ret == -EPROTO) { /* logged by store_firmware_load; the same rule as a device row */
		if (!def->damaged[0])
			snprintf(def->damaged, sizeof(def->damaged),
				 "its firmware row's generation is not 1 or 2");
		ret = 0;
	}
	if (!ret)
		ret = store_integration_disabled(st, def->uuid, &def->integration_off);
	if (ret)
		goto out;
	/* A VM stored before slots were recorded gets the layout it always had. A row that
	 * does not make a valid description (edited by hand, damaged) is said so in the log;
	 * starting it is refused by keel-vmm with the same reason. */
	{
		char why[256];

		if (vmdef_assign_slots(def, why, sizeof(why))) {
			log_err("store: VM %s: %s", def->name, why);
			if (!def->damaged[0])
				snprintf(def->damaged, sizeof(def->damaged), "%s", why);
		} else if (vmdef_check(def, why, sizeof(why))) {
			log_warn("store: VM %s: %s", def->name, why);
		}
	}
out:
	sqlite3_finalize(d);
	if (ret)
		vmdef_free(def);
	return ret;
}

int store_vm_get(struct store *st, const char *key, struct vm_def *def)
{
	sqlite3_stmt *s = NULL;
	int ret, rc;

	ret = prepare(st,
		      "SELECT " VM_COLUMNS " FROM vms WHERE name=?1 UNION ALL "
		      "SELECT " VM_COLUMNS " FROM vms WHERE uuid=?1 AND name<>?1",
		      &s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		ret = load_row(st, s, def);
	else if (rc == SQLITE_DONE)
		ret = -ENOENT;
	else
		ret = -EIO;
	sqlite3_finalize(s);
	return ret;
}

void store_vm_list_free(struct vm_def *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vmdef_free(&list[i]);
	free(list);
}

int store_vm_list(struct store *st, struct vm_def **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct vm_def *list = NULL;
	size_t count = 0, cap = 0;
	int ret, rc;

	ret = prepare(st, "SELECT " VM_COLUMNS " FROM vms ORDER BY name", &s);
	if (ret)
		return ret;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (count == cap) {
			struct vm_def *bigger;
			cap = cap ? cap * 2 : 16;
			bigger = realloc(list, cap * sizeof(*list));
			if (!bigger) {
				ret = -ENOMEM;
				goto out;
			}
			list = bigger;
		}
		ret = load_row(st, s, &list[count]);
		if (ret)
			goto out;
		count++;
	}
	if (rc != SQLITE_DONE)
		ret = -EIO;
out:
	sqlite3_finalize(s);
	if (ret) {
		store_vm_list_free(list, count);
		return ret;
	}
	*out = list;
	*n = count;
	return 0;
}

int store_mac_used(struct store *st, const char *mac, const char *except_uuid, bool *used)
{
	sqlite3_stmt *s = NULL;
	int ret, rc;

	ret = prepare(st, "SELECT 1 FROM nics WHERE mac=?1 AND vm<>?2", &s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, except_uuid ? except_uuid : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		*used = rc == SQLITE_ROW;
	else
		ret = -EIO;
	sqlite3_finalize(s);
	return ret;
}

int store_rt_get(struct store *st, const char *uuid, struct store_rt *rt)
{
	sqlite3_stmt *s = NULL;
	int ret, rc;

	memset(rt, 0, sizeof(*rt));
	snprintf(rt->state, sizeof(rt->state), "Off");
	ret = prepare(st,
		      "SELECT state, reason, pid, starttime, was_running FROM runtime WHERE vm=?1",
		      &s);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_col(s, 0, rt->state, sizeof(rt->state));
		copy_col(s, 1, rt->reason, sizeof(rt->reason));
		rt->pid = (pid_t)sqlite3_column_int64(s, 2);
		rt->starttime = (uint64_t)sqlite3_column_int64(s, 3);
		rt->was_running = sqlite3_column_int(s, 4) != 0;
	} else if (rc != SQLITE_DONE) {
		ret = -EIO;
	}
	sqlite3_finalize(s);
	return ret;
}

int store_rt_set(struct store *st, const char *uuid, const struct store_rt *rt)
{
	sqlite3_stmt *s = NULL;
	int ret;

	ret = begin(st);
	if (ret)
		return ret;
	ret = prepare(st,
		      "INSERT OR REPLACE INTO runtime(vm, state, reason, pid, starttime, "
		      "was_running) SELECT ?1,?2,?3,?4,?5,?6 WHERE EXISTS "
		      "(SELECT 1 FROM vms WHERE uuid=?1)",
		      &s);
	if (ret)
		goto out;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, rt->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, rt->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, rt->pid);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)rt->starttime);
	sqlite3_bind_int(s, 6, rt->was_running);
	if (sqlite3_step(s) != SQLITE_DONE) {
		log_err("store: cannot record the state of VM %s: %s", uuid,
			sqlite3_errmsg(st->db));
		ret = -EIO;
	}
out:
	sqlite3_finalize(s);
	return finish(st, ret);
}
