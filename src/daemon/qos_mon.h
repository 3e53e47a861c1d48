/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage QoS's minimum IOPS (docs/virtio.md): as Hyper-V, keel reserves nothing and reports
 * a disk that falls below its minimum. A thread asks the worker of each running VM with a
 * disk (virtio-blk, or on the SCSI controller) that has a min_iops, every QOS_MON_PERIOD_MS, for
 * that disk's counters (control "disk-qos", with keeld's lock let go); when a disk fell below its
 * minimum in a whole second since the last look (qos_mon_judge), or met it in every one since, an
 * event "disk" (state "below-minimum-iops" or "minimum-iops-met") goes into keeld's stream, and
 * `keel vm show` says so while it lasts.
 */
#ifndef KEEL_DAEMON_QOS_MON_H
#define KEEL_DAEMON_QOS_MON_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/store.h"
#include "daemon/sup.h"

#define QOS_MON_PERIOD_MS  2000
#define QOS_MON_TIMEOUT_MS 1000 /* for each worker's answer */

int qos_mon_start(struct sup *sup, struct store *store) __attribute__((warn_unused_result));
/* Was the disk below its minimum since the last look? last_second: the worker's below_min
 * (its last whole second); before, seconds: its below_min_seconds at the last look and now
 * (fewer now: a new worker). A shortfall between two looks counts, not only one that lasts
 * until the next look. */
bool qos_mon_judge(bool last_second, uint64_t before, uint64_t seconds);
/* Is disk disk of VM uuid (a virtio-blk disk or a SCSI one) below its minimum IOPS (the last
 * answer of its worker)? *seconds: the seconds it was, in all, since its worker started. */
bool qos_mon_below_min(const char *uuid, struct vm_disk_id disk, uint64_t *seconds);

#endif
