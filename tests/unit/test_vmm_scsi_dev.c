/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-scsi device itself (vmm/virtio/scsi.c) on the fuzz targets' fake machine
 * (tests/fuzz/fake_machine.h, fake_virtio.h): a guest driver on its three queues, a raw
 * disk at LUN 0, a DVD drive at LUN 1 and another raw disk at LUN 2, and the device's
 * I/O-thread work run on the test's thread (its queue handler called directly where a test
 * needs a request to stay in flight). Storage QoS per LUN as virtio-blk's (test_vmm_blk_qos.c):
 * the buckets are refilled by setting the limit again (control disk-qos), so that no test
 * waits for the clock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_machine.h"
#include "fake_virtio.h"
#include "lib/le.h"
#include "vmm/device.h"
#include "vmm/blkio/qos.h"
#include "vmm/mem.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/scsi.h"
#include "vmm/virtio/scsi_internal.h"
#include "vmm/virtio/virtio.h"

/* The model's class (listed in src/vmm/device_table.c): its state sections. */
extern const struct device_class virtio_scsi_class;

#define NQ	  3
#define QSIZE	  16
#define QBASE(i)  (0x400u * (i))
#define BUF(q, s) (0x1000u + 0x4000u * (q) + 0x400u * (s)) /* out at 0, in at 0x100 */
#define IN_OFF	  0x100u
#define RESP_LEN  (VSCSI_RESP_HDR + VSCSI_SENSE_DEFAULT)

static struct virtio_dev *vd;
static char disk_path[64], iso_path[64], disk2_path[64];
static uint16_t avail_idx[NQ];

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(fake_machine()->mem, gpa, len);

	FAKE_CHECK(p, "guest address 0x%llx not in RAM", (unsigned long long)gpa);
	return p;
}

static void remove_scratch(void)
{
	unlink(disk_path);
	unlink(iso_path);
	unlink(disk2_path);
}

static void setup_once(void)
{
	static const uint8_t vd_iso[6] = {1, 'C', 'D', '0', '0', '1'};
	struct vm_scsi spec = {.nluns = 3};
	char err[256] = "";
	int fd;

	if (vd)
		return;
	fake_machine();
	snprintf(disk_path, sizeof(disk_path), "/tmp/test-scsi-dev-XXXXXX");
	fd = mkstemp(disk_path);
	FAKE_CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "scratch disk");
	close(fd);
	snprintf(iso_path, sizeof(iso_path), "/tmp/test-scsi-dev-iso-XXXXXX");
	fd = mkstemp(iso_path);
	FAKE_CHECK(fd >= 0 && ftruncate(fd, 40 * 2048) == 0 &&
			   pwrite(fd, vd_iso, sizeof(vd_iso), 16 * 2048) == sizeof(vd_iso),
		   "scratch ISO image");
	close(fd);
	snprintf(disk2_path, sizeof(disk2_path), "/tmp/test-scsi-dev-2-XXXXXX");
	fd = mkstemp(disk2_path);
	FAKE_CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "second scratch disk");
	close(fd);
	atexit(remove_scratch);
	spec.luns[0] = (struct vm_lun){.type = VM_LUN_DISK,
				       .disk = {.path = disk_path, .format = VM_DISK_RAW}};
	spec.luns[1] = (struct vm_lun){.type = VM_LUN_DVD, .disk = {.path = iso_path}};
	spec.luns[2] = (struct vm_lun){.type = VM_LUN_DISK,
				       .disk = {.path = disk2_path, .format = VM_DISK_RAW}};
	FAKE_CHECK(virtio_scsi_create(fake_machine(), &spec, NULL, NULL, &vd, err, sizeof(err)) ==
			   0,
		   "virtio-scsi: %s", err);
	FAKE_CHECK(device_state_register(fake_machine(), &virtio_scsi_class, vd->pci.slot, vd) == 0,
		   "virtio-scsi state sections");
	fake_machine_pause(true);
}

/* A fresh driver; its request queue req_q when given (else at QBASE(2) as the others). */
static void start_with(const struct fake_vq *req_q)
{
	struct fake_vq q[NQ];

	setup_once();
	fake_machine_reset();
	fake_virtio_serve(vd);
	for (unsigned i = 0; i < NQ; i++) {
		q[i] = (struct fake_vq){.size = QSIZE,
					.vector = (uint16_t)(i + 1),
					.desc = QBASE(i),
					.avail = QBASE(i) + 0x100,
					.used = QBASE(i) + 0x200};
		avail_idx[i] = 0;
	}
	if (req_q)
		q[2] = *req_q;
	FAKE_CHECK(fake_virtio_start(vd, 0, q, NQ), "virtio-scsi bring-up");
}

static void start(void)
{
	start_with(NULL);
}

/* A chain on queue qi: out_len bytes the device reads, then in_len bytes it writes. Returns
 * the slot (the chain's head is descriptor 2 * slot). */
static unsigned post(unsigned qi, const void *out, uint32_t out_len, uint32_t in_len)
{
	unsigned slot = avail_idx[qi] % (QSIZE / 2);
	uint8_t *d = ram(QBASE(qi) + 16u * 2 * slot, 32),
		*avail = ram(QBASE(qi) + 0x100, 4 + 2 * QSIZE);

	memcpy(ram(BUF(qi, slot), out_len), out, out_len);
	memset(ram(BUF(qi, slot) + IN_OFF, in_len), 0xee, in_len);
	le64_store(d, BUF(qi, slot));
	le32_store(d + 8, out_len);
	le16_store(d + 12, VRING_DESC_F_NEXT);
	le16_store(d + 14, (uint16_t)(2 * slot + 1));
	le64_store(d + 16, BUF(qi, slot) + IN_OFF);
	le32_store(d + 24, in_len);
	le16_store(d + 28, VRING_DESC_F_WRITE);
	le16_store(d + 30, 0);
	le16_store(avail + 4 + 2 * (avail_idx[qi] % QSIZE), (uint16_t)(2 * slot));
	avail_idx[qi]++;
	le16_store(avail + 2, avail_idx[qi]);
	return slot;
}

static uint16_t used_idx(unsigned qi)
{
	return le16_load(ram(QBASE(qi) + 0x200 + 2, 2));
}

/* The I/O thread's handler of queue qi, without serving anything else (completions stay
 * unreaped: the request stays in flight). */
static void notify_only(unsigned qi)
{
	pthread_mutex_lock(&vd->lock);
	vd->ops->queue_notify(vd, qi);
	pthread_mutex_unlock(&vd->lock);
}

/* READ(10) of one block at LBA 0 on LUN lun, tagged tag. */
static unsigned post_read_tagged(uint8_t lun, uint64_t tag)
{
	uint8_t req[VSCSI_CMD_HDR + VSCSI_CDB_DEFAULT] = {1, 0, 0x40, lun};

	le64_store(req + 8, tag);
	req[VSCSI_CMD_HDR] = 0x28;
	req[VSCSI_CMD_HDR + 8] = 1;
	return post(2, req, sizeof(req), RESP_LEN + 512);
}

static unsigned post_read_lun(uint8_t lun)
{
	return post_read_tagged(lun, 0);
}

static unsigned post_read(void)
{
	return post_read_lun(0);
}

/* Serve until queue qi's used index reaches want (completions come from the pool). */
static void serve_until(unsigned qi, uint16_t want)
{
	struct timespec ms = {0, 1000000};

	for (unsigned i = 0; i < 5000 && used_idx(qi) != want; i++) {
		fake_virtio_serve(vd);
		if (used_idx(qi) != want)
			nanosleep(&ms, NULL);
	}
	assert_int_equal(used_idx(qi), want);
}

/* Task management function fn for target target, the LUN field's bytes 2-3 lun_hi and
 * lun_lo, and tag, on the control queue; its slot. */
static unsigned post_tmf(uint32_t fn, uint8_t target, uint8_t lun_hi, uint8_t lun_lo, uint64_t tag)
{
	uint8_t tmf[VSCSI_TMF_LEN] = {0};

	le32_store(tmf, VIRTIO_SCSI_T_TMF);
	le32_store(tmf + 4, fn);
	tmf[8] = 1;
	tmf[9] = target;
	tmf[10] = lun_hi;
	tmf[11] = lun_lo;
	le64_store(tmf + 16, tag);
	return post(0, tmf, sizeof(tmf), 1);
}

/* ABORT TASK of a command on LUN 0 tagged 0, on the control queue; its slot. */
static unsigned post_abort_task(void)
{
	return post_tmf(VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 0x40, 0, 0);
}

/* LOGICAL UNIT RESET of LUN lun, on the control queue; its slot. */
static unsigned post_lun_reset(uint8_t lun)
{
	return post_tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0x40, lun, 0);
}

/* The control queue's answer in slot ctl: the function's service response. */
static uint8_t tmf_response(unsigned ctl)
{
	return ram(BUF(0, ctl) + IN_OFF, 1)[0];
}

/* Post one function and run the control queue's handler: its response, answered at once. */
static uint8_t tmf_at_once(uint32_t fn, uint8_t target, uint8_t lun_hi, uint8_t lun_lo,
			   uint64_t tag)
{
	uint16_t before = used_idx(0);
	unsigned ctl = post_tmf(fn, target, lun_hi, lun_lo, tag);

	notify_only(0);
	assert_int_equal(used_idx(0), (uint16_t)(before + 1));
	return tmf_response(ctl);
}

/* ABORT TASK while the request it aborts is in flight: the driver frees the command when
 * the function completes, so the request must be answered first; one that comes while the
 * function waits runs as usual (an ABORTED answer would be an I/O error in Linux). */
static void test_tmf_waits_for_requests(void **state)
{
	unsigned rd, ctl, late;

	(void)state;
	start();
	rd = post_read();
	notify_only(2);
	assert_int_equal(used_idx(2), 0);
	ctl = post_abort_task();
	notify_only(0);
	assert_int_equal(used_idx(0), 0); /* the read is still in flight */
	late = post_read();
	notify_only(2);
	assert_int_equal(used_idx(0), 0);
	serve_until(0, 1);
	/* the read was answered before the function */
	assert_int_equal(ram(BUF(2, rd) + IN_OFF, RESP_LEN)[11], VIRTIO_SCSI_S_OK);
	assert_int_equal(ram(BUF(2, rd) + IN_OFF, RESP_LEN)[10], 0); /* GOOD */
	assert_int_equal(ram(BUF(0, ctl) + IN_OFF, 1)[0], VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	serve_until(2, 2);
	assert_int_equal(ram(BUF(2, late) + IN_OFF, RESP_LEN)[11], VIRTIO_SCSI_S_OK);
	assert_int_equal(ram(BUF(2, late) + IN_OFF, RESP_LEN)[10], 0);
	/* Then control requests are taken again. */
	ctl = post_abort_task();
	fake_virtio_notify(vd, 0);
	serve_until(0, 2);
	assert_int_equal(ram(BUF(0, ctl) + IN_OFF, 1)[0], VIRTIO_SCSI_S_FUNCTION_COMPLETE);
}

/* With nothing in flight, a function is answered at once. */
static void test_tmf_idle(void **state)
{
	unsigned ctl;

	(void)state;
	start();
	ctl = post_lun_reset(0);
	notify_only(0);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(ram(BUF(0, ctl) + IN_OFF, 1)[0], VIRTIO_SCSI_S_FUNCTION_COMPLETE);
}

/* The service responses of virtio 1.2, 5.6.6.2 (SAM's): a function for another target is
 * BAD TARGET; one naming a LUN the controller lacks (it has 0, 1, 2) is INCORRECT LUN, but
 * I_T NEXUS RESET ignores the single-level LUN; CLEAR ACA is FUNCTION REJECTED. */
static void test_tmf_service_responses(void **state)
{
	(void)state;
	start();
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0x40, 5, 0),
			 VIRTIO_SCSI_S_INCORRECT_LUN);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_ABORT_TASK_SET, 0, 0x40, 7, 0),
			 VIRTIO_SCSI_S_INCORRECT_LUN);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 0x41, 0, 0),
			 VIRTIO_SCSI_S_INCORRECT_LUN); /* LUN 256 */
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 1, 0x40, 0, 0),
			 VIRTIO_SCSI_S_BAD_TARGET);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET, 1, 0, 0, 0),
			 VIRTIO_SCSI_S_BAD_TARGET);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET, 0, 0x80, 9, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_CLEAR_ACA, 0, 0x40, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_REJECTED);
	assert_int_equal(tmf_at_once(8, 0, 0x40, 0, 0), VIRTIO_SCSI_S_FUNCTION_REJECTED);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0x40, 2, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
}

/* Read one block of LUN lun and serve it: the response's status, and the sense key, ASC and
 * ASCQ in *sense (fixed format, VSCSI_RESP_HDR bytes in). */
static uint8_t read_status(uint8_t lun, uint8_t sense[3])
{
	unsigned rd = post_read_lun(lun);
	const uint8_t *resp;

	fake_virtio_notify(vd, 2);
	serve_until(2, (uint16_t)(used_idx(2) + 1));
	resp = ram(BUF(2, rd) + IN_OFF, RESP_LEN);
	assert_int_equal(resp[11], VIRTIO_SCSI_S_OK);
	sense[0] = resp[VSCSI_RESP_HDR + 2] & 0x0f;
	sense[1] = resp[VSCSI_RESP_HDR + 12];
	sense[2] = resp[VSCSI_RESP_HDR + 13];
	return resp[10];
}

/* After a LOGICAL UNIT RESET the LUN's next command gets the unit attention POWER ON, RESET,
 * OR BUS DEVICE RESET OCCURRED (29h/00h), once; other LUNs none. After an I_T NEXUS RESET
 * every LUN's next command gets I_T NEXUS LOSS OCCURRED (29h/07h). */
static void test_tmf_reset_unit_attention(void **state)
{
	uint8_t sense[3];

	(void)state;
	start();
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0x40, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(read_status(2, sense), 0); /* another LUN: GOOD */
	assert_int_equal(read_status(0, sense), 2); /* CHECK CONDITION */
	assert_int_equal(sense[0], 0x6);
	assert_int_equal(sense[1], 0x29);
	assert_int_equal(sense[2], 0x00);
	assert_int_equal(read_status(0, sense), 0); /* reported once */
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET, 0, 0x40, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	for (uint8_t lun = 0; lun <= 2; lun += 2) {
		assert_int_equal(read_status(lun, sense), 2);
		assert_int_equal(sense[0], 0x6);
		assert_int_equal(sense[1], 0x29);
		assert_int_equal(sense[2], 0x07);
		assert_int_equal(read_status(lun, sense), 0);
	}
}

/* A restore where the DVD drive's image is at the same path but has grown since the save
 * (a restored worker opens the description's file anew): the guest's capacity is stale, so
 * it is told of a new medium rather than left with the saved "nothing changed". */
static void test_restore_resized_iso(void **state)
{
	struct virtio_scsi *s;
	struct scsi_lun *l;
	uint8_t *saved;
	size_t len;
	char err[256];

	(void)state;
	start();
	s = vd->priv;
	l = &s->t.lun[1];
	l->ua = (struct scsi_sense){0};
	l->media_event = MMC_EVENT_NONE;
	fake_machine_save(&saved, &len);
	assert_int_equal(truncate(iso_path, 80 * 2048), 0);
	/* What a worker started afresh has: the file's size now, nothing to tell the guest. */
	assert_int_equal(scsi_lun_change_medium(l, iso_path, -1, err, sizeof(err)), 0);
	l->ua = (struct scsi_sense){0};
	l->media_event = MMC_EVENT_NONE;
	assert_int_equal(l->blocks, 80);
	assert_int_equal(fake_machine_load(saved, len, err, sizeof(err)), 0);
	assert_int_equal(l->ua.key, SENSE_UNIT_ATTENTION);
	assert_int_equal(l->ua.asc, 0x28);
	assert_int_equal(l->media_event, MMC_EVENT_NEW_MEDIA);
	/* The same file at the same size: nothing new. */
	l->ua = (struct scsi_sense){0};
	l->media_event = MMC_EVENT_NONE;
	free(saved);
	fake_machine_save(&saved, &len);
	assert_int_equal(fake_machine_load(saved, len, err, sizeof(err)), 0);
	assert_int_equal(l->ua.key, 0);
	assert_int_equal(l->media_event, MMC_EVENT_NONE);
	free(saved);
	assert_int_equal(truncate(iso_path, 40 * 2048), 0);
}

/* A section that says the disk's tray is open (no guest can get there: a disk has no tray,
 * and it would be NOT READY until a reset) is refused. */
static void test_restore_disk_tray(void **state)
{
	struct virtio_scsi *s;
	uint8_t *saved;
	size_t len;
	char err[256];

	(void)state;
	start();
	s = vd->priv;
	s->t.lun[0].tray_open = true;
	fake_machine_save(&saved, &len);
	s->t.lun[0].tray_open = false;
	assert_int_not_equal(fake_machine_load(saved, len, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "tray"));
	assert_false(s->t.lun[0].tray_open);
	free(saved);
}

/* LUN lun's QoS: set (NULL: unchanged), then the requests waiting; its counters in *st. */
static unsigned lun_qos(unsigned lun, const struct blk_qos_limits *set, struct blk_qos_stats *st)
{
	struct blk_qos_limits lim;
	unsigned waiting;

	assert_int_equal(virtio_scsi_qos(vd, lun, set, &lim, st, &waiting), 0);
	return waiting;
}

/* The answer of the request in slot s of the request queue: response and SCSI status. */
static void assert_good(unsigned s)
{
	assert_int_equal(ram(BUF(2, s) + IN_OFF, RESP_LEN)[11], VIRTIO_SCSI_S_OK);
	assert_int_equal(ram(BUF(2, s) + IN_OFF, RESP_LEN)[10], 0); /* GOOD */
}

/* A bucket per LUN: LUN 0 at one I/O per second takes one read at once and keeps three
 * waiting (none lost), while LUN 2, with a limit of its own, is not held up by them: its
 * first read goes at once, its second waits for its own bucket. Each refill (setting the
 * limit again) releases that LUN's oldest; lifting the limits releases every one, GOOD. */
static void test_qos_per_lun(void **state)
{
	struct blk_qos_limits one = {.max_iops = 1}, none = {0};
	struct blk_qos_stats st, before[3];
	unsigned s[6];

	(void)state;
	start();
	assert_int_equal(lun_qos(0, &one, &before[0]), 0); /* the counters of the tests before */
	assert_int_equal(lun_qos(2, &one, &before[2]), 0);
	for (unsigned i = 0; i < 4; i++)
		s[i] = post_read_lun(0);
	s[4] = post_read_lun(2);
	s[5] = post_read_lun(2);
	fake_virtio_notify(vd, 2);
	serve_until(2, 2);
	assert_good(s[0]);
	assert_good(s[4]);
	assert_int_equal(lun_qos(0, NULL, &st), 3);
	assert_int_equal(st.throttled - before[0].throttled, 3);
	assert_int_equal(lun_qos(2, NULL, &st), 1);
	assert_int_equal(st.throttled - before[2].throttled, 1);
	/* LUN 0's refill: its oldest waiting read, not LUN 2's. */
	assert_int_equal(lun_qos(0, &one, &st), 3);
	serve_until(2, 3);
	assert_good(s[1]);
	assert_int_equal(lun_qos(0, NULL, &st), 2);
	assert_int_equal(lun_qos(2, NULL, &st), 1);
	/* No limits: the rest at once. */
	assert_int_equal(lun_qos(0, &none, &st), 2);
	assert_int_equal(lun_qos(2, &none, &st), 1);
	serve_until(2, 6);
	for (unsigned i = 0; i < 6; i++)
		assert_good(s[i]);
	assert_int_equal(lun_qos(0, NULL, &st), 0);
	assert_int_equal(st.requests - before[0].requests, 4);
	assert_int_equal(st.ios - before[0].ios, 4); /* 512 bytes: one 8 KiB I/O each */
	assert_int_equal(st.bytes - before[0].bytes, 4 * 512);
	assert_int_equal(lun_qos(2, NULL, &st), 0);
	assert_int_equal(st.requests - before[2].requests, 2);
}

/* A DVD drive has no QoS, nor has a LUN the controller lacks. */
static void test_qos_disks_only(void **state)
{
	struct blk_qos_limits lim, one = {.max_iops = 1};
	struct blk_qos_stats st;
	unsigned waiting;

	(void)state;
	start();
	assert_int_equal(virtio_scsi_qos(vd, 1, &one, &lim, &st, &waiting), -ENOENT);
	assert_int_equal(virtio_scsi_qos(vd, 3, NULL, &lim, &st, &waiting), -ENOENT);
	assert_int_equal(virtio_scsi_qos(vd, 200, NULL, &lim, &st, &waiting), -ENOENT);
}

/* A fresh driver, LUN 0 at one I/O per second, three reads: one answered, two waiting. */
static void three_reads_at_one_iops(void)
{
	struct blk_qos_limits one = {.max_iops = 1};
	struct blk_qos_stats st;

	start();
	assert_int_equal(lun_qos(0, &one, &st), 0);
	for (unsigned i = 0; i < 3; i++)
		post_read();
	fake_virtio_notify(vd, 2);
	serve_until(2, 1);
	assert_int_equal(lun_qos(0, NULL, &st), 2);
}

/* A driver reset while reads wait: dropped unanswered (their buffers are the old driver's),
 * and the device serves the new one. A pause starts every read still waiting: the save
 * finds none held. */
static void test_qos_reset_and_pause(void **state)
{
	struct blk_qos_limits none = {0};
	struct blk_qos_stats st;

	(void)state;
	three_reads_at_one_iops();
	fake_virtio_write(vd, offsetof(struct virtio_pci_common_cfg, device_status), 1, 0);
	assert_int_equal(lun_qos(0, NULL, &st), 0);
	assert_int_equal(used_idx(2), 1);
	three_reads_at_one_iops();
	fake_machine_pause(true); /* the pause hook again (its threads are parked): quiesce */
	assert_int_equal(lun_qos(0, NULL, &st), 0);
	assert_int_equal(used_idx(2), 3);
	assert_int_equal(lun_qos(0, &none, &st), 0);
}

/* ABORT TASK while the read it aborts waits for its LUN's QoS (taken, not yet submitted):
 * the read is taken out of the gate and answered ABORTED (it never ran), then the function
 * completes at once, without waiting for the bucket. */
static void test_qos_tmf_cancels_waiting(void **state)
{
	struct blk_qos_limits one = {.max_iops = 1}, none = {0};
	struct blk_qos_stats st;
	unsigned ctl, rd;

	(void)state;
	start();
	assert_int_equal(lun_qos(0, &one, &st), 0);
	post_read();
	rd = post_read();
	fake_virtio_notify(vd, 2);
	serve_until(2, 1);
	assert_int_equal(lun_qos(0, NULL, &st), 1);
	ctl = post_abort_task(); /* tag 0: the reads' */
	notify_only(0);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(ram(BUF(0, ctl) + IN_OFF, 1)[0], VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(used_idx(2), 2);
	assert_int_equal(ram(BUF(2, rd) + IN_OFF, RESP_LEN)[11], VIRTIO_SCSI_S_ABORTED);
	assert_int_equal(lun_qos(0, &none, &st), 0);
}

/* QUERY TASK and QUERY TASK SET are answered as they are taken, waiting for nothing:
 * FUNCTION SUCCEEDED while a request they name is outstanding (in flight on the backend, or
 * waiting for its LUN's QoS), FUNCTION COMPLETE otherwise; nothing is cancelled. */
static void test_tmf_query(void **state)
{
	struct blk_qos_limits one = {.max_iops = 1}, none = {0};
	struct blk_qos_stats st;
	unsigned rd;

	(void)state;
	start();
	rd = post_read_tagged(0, 7);
	notify_only(2); /* in flight: its completion is not reaped */
	assert_int_equal(used_idx(2), 0);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0x40, 0, 7),
			 VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0x40, 0, 8),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0x40, 2, 7),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE); /* the tag, but on another LUN */
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0x40, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0x40, 2, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(used_idx(2), 0);
	serve_until(2, 1);
	assert_good(rd);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0x40, 0, 7),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	/* A read waiting for its LUN's bucket is outstanding too, and stays. */
	assert_int_equal(lun_qos(0, &one, &st), 0);
	post_read_tagged(0, 1);
	rd = post_read_tagged(0, 2);
	fake_virtio_notify(vd, 2);
	serve_until(2, 2);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0x40, 0, 2),
			 VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	assert_int_equal(lun_qos(0, &none, &st), 1);
	serve_until(2, 3);
	assert_good(rd);
}

/* ABORT TASK cancels only the request with its tag (5.6.6.2: the id is matched against the
 * request queue's): of two reads waiting for LUN 0's bucket, the one tagged 3 is answered
 * ABORTED (nothing transferred: the residual is its whole buffer) and the function completes
 * at once; the one tagged 2 still waits and runs GOOD once the limit is lifted. */
static void test_qos_abort_task_one_tag(void **state)
{
	struct blk_qos_limits one = {.max_iops = 1}, none = {0};
	struct blk_qos_stats st;
	unsigned rd[3];

	(void)state;
	start();
	assert_int_equal(lun_qos(0, &one, &st), 0);
	for (unsigned i = 0; i < 3; i++)
		rd[i] = post_read_tagged(0, i + 1);
	fake_virtio_notify(vd, 2);
	serve_until(2, 1);
	assert_good(rd[0]);
	assert_int_equal(lun_qos(0, NULL, &st), 2);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 0x40, 0, 3),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(used_idx(2), 2);
	assert_int_equal(ram(BUF(2, rd[2]) + IN_OFF, RESP_LEN)[11], VIRTIO_SCSI_S_ABORTED);
	assert_int_equal(le32_load(ram(BUF(2, rd[2]) + IN_OFF + 4, 4)), 512);
	assert_int_equal(lun_qos(0, &none, &st), 1);
	serve_until(2, 3);
	assert_good(rd[1]);
}

/* LOGICAL UNIT RESET of LUN 0 while two of its reads and one of LUN 2's wait for their
 * buckets: LUN 0's are answered RESET (virtio 1.2, 5.6.6.1: cancelled by a reset) and the
 * function completes at once; LUN 2's read still waits, and runs GOOD once its limit is
 * lifted. */
static void test_qos_lun_reset_cancels_its_lun(void **state)
{
	struct blk_qos_limits one = {.max_iops = 1}, none = {0};
	struct blk_qos_stats st;
	unsigned rd[5], ctl;

	(void)state;
	start();
	assert_int_equal(lun_qos(0, &one, &st), 0);
	assert_int_equal(lun_qos(2, &one, &st), 0);
	for (unsigned i = 0; i < 3; i++)
		rd[i] = post_read_lun(0);
	rd[3] = post_read_lun(2);
	rd[4] = post_read_lun(2);
	fake_virtio_notify(vd, 2);
	serve_until(2, 2);
	assert_int_equal(lun_qos(0, NULL, &st), 2);
	assert_int_equal(lun_qos(2, NULL, &st), 1);
	ctl = post_lun_reset(0);
	notify_only(0);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(ram(BUF(0, ctl) + IN_OFF, 1)[0], VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(used_idx(2), 4);
	assert_good(rd[0]);
	assert_int_equal(ram(BUF(2, rd[1]) + IN_OFF, RESP_LEN)[11], VIRTIO_SCSI_S_RESET);
	assert_int_equal(ram(BUF(2, rd[2]) + IN_OFF, RESP_LEN)[11], VIRTIO_SCSI_S_RESET);
	assert_int_equal(lun_qos(0, &none, &st), 0);
	assert_int_equal(lun_qos(2, &none, &st), 1);
	serve_until(2, 5);
	assert_good(rd[4]);
}

/* ---- QoS isolation between LUNs ----
 * The request queue at 128 entries (rings from 0xd000) so that more chains than the
 * device's 32 slots can be given at once; every read of a LUN shares its out and in
 * buffers (0xe000 + 0x100 * lun, 0xe400 + 0x400 * lun). */
#define BIGQ	  128u
#define BIG_DESC  0xd000u
#define BIG_AVAIL 0xd800u
#define BIG_USED  0xda00u
static uint16_t big_avail;

static void start_big(void)
{
	const struct fake_vq big = {
		.size = BIGQ, .vector = 3, .desc = BIG_DESC, .avail = BIG_AVAIL, .used = BIG_USED};

	big_avail = 0;
	start_with(&big);
}

static uint8_t *big_resp(uint8_t lun)
{
	return ram(0xe400u + 0x400u * lun, RESP_LEN);
}

/* READ(10) of one block at LBA 0 on LUN lun (0 or 2), tagged tag, its request at out (a
 * LUN's shared one, or one of its own), on the big request queue. */
static void big_read_at(uint8_t lun, uint64_t out, uint64_t tag)
{
	uint8_t req[VSCSI_CMD_HDR + VSCSI_CDB_DEFAULT] = {1, 0, 0x40, lun};
	unsigned i = big_avail % (BIGQ / 2);
	uint64_t in = 0xe400u + 0x400u * lun;
	uint8_t *d = ram(BIG_DESC + 32u * i, 32), *avail = ram(BIG_AVAIL, 4 + 2 * BIGQ);

	le64_store(req + 8, tag);
	req[VSCSI_CMD_HDR] = 0x28;
	req[VSCSI_CMD_HDR + 8] = 1;
	memcpy(ram(out, sizeof(req)), req, sizeof(req));
	memset(ram(in, RESP_LEN + 512), 0xee, RESP_LEN + 512);
	le64_store(d, out);
	le32_store(d + 8, sizeof(req));
	le16_store(d + 12, VRING_DESC_F_NEXT);
	le16_store(d + 14, (uint16_t)(2 * i + 1));
	le64_store(d + 16, in);
	le32_store(d + 24, RESP_LEN + 512);
	le16_store(d + 28, VRING_DESC_F_WRITE);
	le16_store(d + 30, 0);
	le16_store(avail + 4 + 2 * (big_avail % BIGQ), (uint16_t)(2 * i));
	big_avail++;
	le16_store(avail + 2, big_avail);
}

static void big_read(uint8_t lun)
{
	big_read_at(lun, 0xe000u + 0x100u * lun, 0);
}

/* Serve (the pool completes reads) for up to about a second or until the response byte of
 * LUN lun's read is written. */
static bool big_answered(uint8_t lun)
{
	struct timespec ms = {0, 1000000};

	for (unsigned i = 0; i < 1000 && big_resp(lun)[11] == 0xee; i++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	return big_resp(lun)[11] != 0xee;
}

static void big_lift(unsigned want_used)
{
	struct blk_qos_limits none = {0};
	struct blk_qos_stats st;
	struct timespec ms = {0, 1000000};

	(void)lun_qos(0, &none, &st);
	for (unsigned i = 0; i < 5000 && le16_load(ram(BIG_USED + 2, 2)) != want_used; i++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	assert_int_equal(le16_load(ram(BIG_USED + 2, 2)), want_used);
}

/* LUN 0 at 1 byte/s (its first read leaves its bucket in debt for minutes) and a guest
 * that keeps 34 reads queued on it (Linux's cmd_per_lun is 128): LUN 0 holds at most its
 * share of the controller's 32 slots waiting (32 / 3 LUNs), the rest of its reads are
 * parked without a slot, and a read of LUN 2, which has no limit, behind them in the ring
 * is served (its own bucket). Lifting LUN 0's limit then answers all 35. */
static void test_qos_lun_share_of_slots(void **state)
{
	struct blk_qos_limits slow = {.max_bw = 1};
	struct blk_qos_stats st;
	bool lun2;

	(void)state;
	start_big();
	(void)lun_qos(0, &slow, &st);
	for (unsigned i = 0; i < 34; i++)
		big_read(0);
	big_read(2);
	fake_virtio_notify(vd, 2);
	lun2 = big_answered(2);
	printf("LUN 0 waiting %u, LUN 2's read answered: %s\n", lun_qos(0, NULL, &st),
	       lun2 ? "yes" : "no");
	big_lift(35);
	assert_true(lun2);
}

/* LUN 0 throttled with one read waiting for its bucket; a LOGICAL UNIT RESET of LUN 2 (no
 * request of LUN 2 anywhere) waits only for LUN 2's submitted requests: answered at once,
 * not after LUN 0's read. */
static void test_qos_tmf_other_lun_answered(void **state)
{
	struct blk_qos_limits slow = {.max_bw = 1};
	struct blk_qos_stats st;
	struct timespec ms = {0, 1000000};
	bool answered;

	(void)state;
	start_big();
	(void)lun_qos(0, &slow, &st);
	big_read(0);
	big_read(0);
	fake_virtio_notify(vd, 2);
	for (unsigned i = 0; i < 1000 && le16_load(ram(BIG_USED + 2, 2)) != 1; i++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	assert_int_equal(lun_qos(0, NULL, &st), 1);
	post_lun_reset(2);
	fake_virtio_notify(vd, 0);
	for (unsigned i = 0; i < 500 && used_idx(0) != 1; i++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	answered = used_idx(0) == 1;
	printf("LUN 2's reset answered while LUN 0's read waits: %s\n", answered ? "yes" : "no");
	big_lift(2);
	serve_until(0, 1);
	assert_true(answered);
}

/* The same flood on LUN 0 (its share waiting, the rest parked), then a LOGICAL UNIT RESET
 * of LUN 0: every read not started, waiting or parked, is answered RESET at once and the
 * function completes; the device serves LUN 2 afterwards. */
static void test_qos_lun_reset_cancels_parked(void **state)
{
	struct blk_qos_limits slow = {.max_bw = 1}, none = {0};
	struct blk_qos_stats st;
	struct timespec ms = {0, 1000000};

	(void)state;
	start_big();
	(void)lun_qos(0, &slow, &st);
	for (unsigned i = 0; i < 34; i++)
		big_read(0);
	fake_virtio_notify(vd, 2);
	for (unsigned i = 0; i < 1000 && le16_load(ram(BIG_USED + 2, 2)) != 1; i++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	assert_int_equal(le16_load(ram(BIG_USED + 2, 2)), 1);
	assert_int_equal(lun_qos(0, NULL, &st), VSCSI_SLOTS / 3);
	post_lun_reset(0);
	notify_only(0);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(le16_load(ram(BIG_USED + 2, 2)), 34);
	assert_int_equal(big_resp(0)[11], VIRTIO_SCSI_S_RESET); /* the last answer written */
	assert_int_equal(le32_load(big_resp(0) + 4), 512);	/* a parked one's: nothing moved */
	assert_int_equal(lun_qos(0, &none, &st), 0);
	big_read(2);
	fake_virtio_notify(vd, 2);
	assert_true(big_answered(2));
	assert_int_equal(big_resp(2)[11], VIRTIO_SCSI_S_OK);
}

/* QUERY TASK while every slot is in flight (LUN 2's reads, completions not reaped) and two
 * chains wait in the ring for want of one, the second LUN 0's read tagged 77: the query
 * concerns what was given before it, so the device takes those chains (parked, no slot) and
 * answers at once, FUNCTION SUCCEEDED for tag 77; once all are answered, COMPLETE. */
static void test_tmf_query_ring_left(void **state)
{
	unsigned ctl;

	(void)state;
	start_big();
	for (unsigned i = 0; i < VSCSI_SLOTS + 1; i++)
		big_read(2);
	big_read_at(0, 0xf000u, 77); /* its own request buffer: its own tag */
	notify_only(2);
	assert_int_equal(le16_load(ram(BIG_USED + 2, 2)), 0);
	ctl = post_tmf(VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0x40, 0, 77);
	notify_only(0);
	assert_int_equal(used_idx(0), 1); /* the two chains before it taken, parked */
	assert_int_equal(tmf_response(ctl), VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	assert_int_equal(le16_load(ram(BIG_USED + 2, 2)), 0);
	big_lift(VSCSI_SLOTS + 2);
	assert_int_equal(tmf_at_once(VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0x40, 0, 77),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
}

/* Every slot taken (LUN 0's share of them waiting for its bucket, the rest LUN 2's reads in
 * flight, their completions not reaped) and three more reads of LUN 0 left in the ring: a
 * LOGICAL UNIT RESET of LUN 0 cancels the ten waiting, and the slots they free let the device
 * take the three from the ring at once, answered RESET, and complete the function, without
 * waiting for an event that has nothing to do with it (a completion of LUN 2's; were there
 * none, as when every slot waits in the gate and the function cancels them all, none would
 * come: the driver, in error recovery, gives no new request to kick the ring either). */
static void test_tmf_takes_ring_after_cancel(void **state)
{
	struct blk_qos_limits slow = {.max_bw = 1};
	struct blk_qos_stats st;
	struct timespec ms = {0, 1000000};
	unsigned ctl, cap = VSCSI_SLOTS / 3;

	(void)state;
	start_big();
	(void)lun_qos(0, &slow, &st);
	big_read(0); /* runs, and leaves LUN 0's bucket in debt */
	fake_virtio_notify(vd, 2);
	for (unsigned i = 0; i < 1000 && le16_load(ram(BIG_USED + 2, 2)) != 1; i++) {
		fake_virtio_serve(vd);
		nanosleep(&ms, NULL);
	}
	assert_int_equal(le16_load(ram(BIG_USED + 2, 2)), 1);
	for (unsigned i = 0; i < cap; i++)
		big_read(0);
	for (unsigned i = 0; i < VSCSI_SLOTS - cap; i++)
		big_read(2);
	for (unsigned i = 0; i < 3; i++)
		big_read(0);
	notify_only(2);
	assert_int_equal(lun_qos(0, NULL, &st), cap);
	assert_int_equal(le16_load(ram(BIG_USED + 2, 2)), 1);
	ctl = post_lun_reset(0);
	notify_only(0);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(tmf_response(ctl), VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(le16_load(ram(BIG_USED + 2, 2)), 1 + cap + 3);
	assert_int_equal(big_resp(0)[11], VIRTIO_SCSI_S_RESET);
	assert_int_equal(le32_load(big_resp(0) + 4), 512); /* a ring chain's: nothing moved */
	big_lift(1 + VSCSI_SLOTS + 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tmf_waits_for_requests),
		cmocka_unit_test(test_tmf_idle),
		cmocka_unit_test(test_tmf_service_responses),
		cmocka_unit_test(test_tmf_reset_unit_attention),
		cmocka_unit_test(test_tmf_query),
		cmocka_unit_test(test_tmf_query_ring_left),
		cmocka_unit_test(test_tmf_takes_ring_after_cancel),
		cmocka_unit_test(test_restore_resized_iso),
		cmocka_unit_test(test_restore_disk_tray),
		cmocka_unit_test(test_qos_per_lun),
		cmocka_unit_test(test_qos_disks_only),
		cmocka_unit_test(test_qos_reset_and_pause),
		cmocka_unit_test(test_qos_tmf_cancels_waiting),
		cmocka_unit_test(test_qos_abort_task_one_tag),
		cmocka_unit_test(test_qos_lun_reset_cancels_its_lun),
		cmocka_unit_test(test_qos_lun_share_of_slots),
		cmocka_unit_test(test_qos_tmf_other_lun_answered),
		cmocka_unit_test(test_qos_lun_reset_cancels_parked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
