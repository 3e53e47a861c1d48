/* SPDX-License-Identifier: Apache-2.0 */
/* The minimum-IOPS watch of storage QoS (qos_mon.h). */
#include "daemon/qos_mon.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/biglock.h"
#include "daemon/ctl.h"
#include "daemon/events.h"
#include "lib/log.h"

#define QOS_MON_MAX 256 /* disks watched at once */

struct watch {
	char uuid[VMDEF_UUID_LEN + 1];
	char name[VMDEF_NAME_MAX + 1];
	char ctl[512];
	struct vm_disk_id disk;
	bool below;
	uint64_t seconds;
};

/* qos_lock protects watched and nwatched (a leaf: nothing is taken while it is held). */
static pthread_mutex_t qos_lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch watched[QOS_MON_MAX];
static size_t nwatched;

struct qos_ctx {
	struct sup *sup;
	struct store *store;
};

/* The disks to watch now, their last state carried over (keeld's lock held). */
static size_t qos_list(struct qos_ctx *c, struct watch *out)
{
	static char uuids[QOS_MON_MAX][VMDEF_UUID_LEN + 1];
	size_t n = sup_running_vms(c->sup, uuids, QOS_MON_MAX), k = 0;

	for (size_t i = 0; i < n; i++) {
		struct vm_def def;
		char dir[480];

		if (store_vm_get(c->store, uuids[i], &def))
			continue;
		if (sup_vm_dir(c->sup, uuids[i], dir, sizeof(dir))) {
			vmdef_free(&def);
			continue;
		}
		/* Its virtio-blk disks, then the disks on its SCSI controller. */
		for (unsigned d = 0; d < VMDEF_DISK_IDS && k < QOS_MON_MAX; d++) {
			struct vm_disk_id id = vmdef_disk_id_at(d);
			const struct vm_disk *disk = vmdef_disk_of(&def, id);

			if (!disk || !disk->min_iops)
				continue;
			out[k] = (struct watch){.disk = id};
			snprintf(out[k].uuid, sizeof(out[k].uuid), "%s", def.uuid);
			snprintf(out[k].name, sizeof(out[k].name), "%s", def.name);
			snprintf(out[k].ctl, sizeof(out[k].ctl), "%s/control.sock", dir);
			k++;
		}
		vmdef_free(&def);
	}
	pthread_mutex_lock(&qos_lock);
	for (size_t j = 0; j < k; j++)
		for (size_t i = 0; i < nwatched; i++)
			if (!strcmp(watched[i].uuid, out[j].uuid) &&
			    vmdef_disk_id_eq(watched[i].disk, out[j].disk)) {
				out[j].below = watched[i].below;
				out[j].seconds = watched[i].seconds;
			}
	pthread_mutex_unlock(&qos_lock);
	return k;
}

bool qos_mon_judge(bool last_second, uint64_t before, uint64_t seconds)
{
	/* Fewer seconds than before: a new worker, whose count starts again from 0. */
	return last_second || seconds > before || (seconds < before && seconds > 0);
}

/* Ask w's worker; an event when the disk crossed its minimum. No lock held. */
static void qos_ask(struct watch *w)
{
	json_object *r = NULL, *v;
	char args[32], err[256], why[160], name[16];
	bool below;

	vmdef_disk_id_name(w->disk, name, sizeof(name));
	snprintf(args, sizeof(args), "{\"%s\":%u}", w->disk.lun ? "lun" : "disk", w->disk.index);
	if (ctl_execute_args(w->ctl, "disk-qos", args, QOS_MON_TIMEOUT_MS, &r, err, sizeof(err)))
		return; /* stopping, or busy: the next round asks again */
	below = json_object_object_get_ex(r, "below_min", &v) && json_object_get_boolean(v);
	if (json_object_object_get_ex(r, "below_min_seconds", &v)) {
		uint64_t seconds = (uint64_t)json_object_get_int64(v);

		below = qos_mon_judge(below, w->seconds, seconds);
		w->seconds = seconds;
	}
	json_object_put(r);
	if (below == w->below)
		return;
	w->below = below;
	snprintf(why, sizeof(why),
		 below ? "disk %s: fewer I/Os than its minimum IOPS in a second since the last "
			 "look (%llu seconds in all)"
		       : "disk %s: its minimum IOPS met again",
		 name, (unsigned long long)w->seconds);
	log_info("VM %s: %s", w->name, why);
	keeld_lock();
	events_disk(w->uuid, w->name, w->disk, below ? "below-minimum-iops" : "minimum-iops-met",
		    why);
	keeld_unlock();
}

static void *qos_thread(void *arg)
{
	static struct watch now[QOS_MON_MAX];
	struct qos_ctx *c = arg;

	for (;;) {
		struct timespec ts = {QOS_MON_PERIOD_MS / 1000,
				      QOS_MON_PERIOD_MS % 1000 * 1000000L};
		size_t n;

		keeld_lock();
		n = qos_list(c, now);
		keeld_unlock();
		for (size_t i = 0; i < n; i++)
			qos_ask(&now[i]);
		pthread_mutex_lock(&qos_lock);
		memcpy(watched, now, n * sizeof(now[0]));
		nwatched = n;
		pthread_mutex_unlock(&qos_lock);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

int qos_mon_start(struct sup *sup, struct store *store)
{
	static struct qos_ctx c;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	c.sup = sup;
	c.store = store;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&t, &attr, qos_thread, &c);
	pthread_attr_destroy(&attr);
	return r;
}

bool qos_mon_below_min(const char *uuid, struct vm_disk_id disk, uint64_t *seconds)
{
	bool below = false;

	*seconds = 0;
	pthread_mutex_lock(&qos_lock);
	for (size_t i = 0; i < nwatched; i++) {
		if (strcmp(watched[i].uuid, uuid) || !vmdef_disk_id_eq(watched[i].disk, disk))
			continue;
		below = watched[i].below;
		*seconds = watched[i].seconds;
	}
	pthread_mutex_unlock(&qos_lock);
	return below;
}
