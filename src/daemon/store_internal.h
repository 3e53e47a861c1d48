/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's SQLite handle and transaction helpers, shared by the files that keep one
 * kind of record each (store.c: VMs and runtime; store_ckpt.c: checkpoints). Internal to
 * src/daemon/store*.c.
 */
#ifndef KEEL_DAEMON_STORE_INTERNAL_H
#define KEEL_DAEMON_STORE_INTERNAL_H

#include <stdbool.h>

#include <sqlite3.h>

struct store {
	sqlite3 *db;
	int upgraded_from;  /* the schema version store_open found and upgraded, or 0 */
	char last_err[256]; /* SQLite's message for the last statement that failed */
	/* The audit log's records of each kind (store_audit.c: [0] served, [1] refused), once
	 * counted; a failed add leaves them to be counted again. */
	bool audit_counted;
	long long audit_n[2];
};

/* BEGIN IMMEDIATE; then store_tx_finish commits when ret is 0, else rolls back. */
int store_tx_begin(struct store *st) __attribute__((warn_unused_result));
int store_tx_finish(struct store *st, int ret) __attribute__((warn_unused_result));
int store_prepare(struct store *st, const char *sql, sqlite3_stmt **stmt)
	__attribute__((warn_unused_result));

struct vm_def;
/* The VM's integration services turned off (store_integration.c), written with its devices;
 * read with store_integration_disabled. */
int store_integration_put(struct store *st, const struct vm_def *def)
	__attribute__((warn_unused_result));
/* The VM's firmware row (store_firmware.c), written and read with its devices. */
int store_firmware_put(struct store *st, const struct vm_def *def)
	__attribute__((warn_unused_result));
int store_firmware_load(struct store *st, struct vm_def *def) __attribute__((warn_unused_result));
/* The VM's devices that store.c's own columns do not hold (store_devices.c, driven by the
 * description's kind table): written with its disks and NICs (the old ones replaced), read
 * with them. 0 or -errno (-EIO: sqlite3_errmsg says why; -EPROTO: a row that does not parse,
 * logged with the VM's name). */
int store_devices_put(struct store *st, const struct vm_def *def)
	__attribute__((warn_unused_result));
/* -EPROTO: a row that does not parse, why says which and why (the rest of def is read). */
int store_devices_load(struct store *st, struct vm_def *def, char *why, size_t len)
	__attribute__((warn_unused_result));
/* The VM's virtio-scsi rows (store_scsi.c): written with its disks and NICs (the old ones
 * replaced), read with them. 0 or -errno (-EIO: sqlite3_errmsg says why). */
int store_scsi_put(struct store *st, const struct vm_def *def) __attribute__((warn_unused_result));
int store_scsi_load(struct store *st, struct vm_def *def) __attribute__((warn_unused_result));
/* A disk's storage QoS from the columns max_iops, max_bw, min_iops of row s, from col on (a
 * hand-edited value out of range reads as none), and bound into statement s from col on. */
void store_disk_qos_load(sqlite3_stmt *s, int col, struct vm_disk *disk);
void store_disk_qos_bind(sqlite3_stmt *s, int col, const struct vm_disk *disk);
/* An adapter's guards as the nics table's guards column keeps them (one bit each), and back. */
int store_nic_guards(const struct vm_nic *nic);
void store_nic_set_guards(struct vm_nic *nic, int guards);
/* An adapter's trunk and bandwidth from the columns vlan_trunk, native_vlan, bw_out, bw_in
 * of row s, from col on (bad values read as none). */
void store_nic_set_trunk(struct vm_nic *nic, sqlite3_stmt *s, int col);

/* store_vm_update's writes, inside the caller's transaction. */
int store_vm_update_rows(struct store *st, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
