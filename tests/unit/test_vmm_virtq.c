/* SPDX-License-Identifier: Apache-2.0 */
/* The virtqueue chain walker (vmm/virtio/queue.c): valid chains and every rule it enforces. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/virtio/queue.h"

#define RAM   (1u << 20)
#define QS    8
#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000
#define ITAB  0x4000
#define BUF   0x10000

static uint8_t *ram;
static struct guest_mem gm;
static struct vq vq;
static struct vq_chain chain;
static uint16_t avail_idx;

static int setup(void **state)
{
	ram = calloc(1, RAM);
	gm = (struct guest_mem){.ram_size = RAM, .base = ram, .nregions = 1};
	gm.regions[0] = (struct mem_region){0, RAM, ram};
	avail_idx = 0;
	assert_int_equal(vq_enable(&vq, &gm, QS, DESC, AVAIL, USED, true, false), VQ_OK);
	return 0;
}

static int teardown(void **state)
{
	free(ram);
	return 0;
}

static void desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	struct vring_desc d = {addr, len, flags, next};

	memcpy(ram + table + 16 * i, &d, 16);
}

static void post(uint16_t head)
{
	memcpy(ram + AVAIL + 4 + 2 * (avail_idx % QS), &head, 2);
	avail_idx++;
	memcpy(ram + AVAIL + 2, &avail_idx, 2);
}

static int pop(const char **why)
{
	*why = NULL;
	return vq_pop(&vq, &chain, why);
}

static void test_enable_checks(void **state)
{
	struct vq q;

	assert_int_equal(vq_enable(&q, &gm, 0, DESC, AVAIL, USED, false, false), VQ_BAD_SIZE);
	assert_int_equal(vq_enable(&q, &gm, 100, DESC, AVAIL, USED, false, false), VQ_BAD_SIZE);
	assert_int_equal(vq_enable(&q, &gm, 2048, DESC, AVAIL, USED, false, false), VQ_BAD_SIZE);
	assert_int_equal(vq_enable(&q, &gm, 8, DESC + 8, AVAIL, USED, false, false), VQ_BAD_ALIGN);
	assert_int_equal(vq_enable(&q, &gm, 8, DESC, AVAIL + 1, USED, false, false), VQ_BAD_ALIGN);
	assert_int_equal(vq_enable(&q, &gm, 8, DESC, AVAIL, USED + 2, false, false), VQ_BAD_ALIGN);
	assert_int_equal(vq_enable(&q, &gm, 8, RAM - 64, AVAIL, USED, false, false), VQ_NOT_RAM);
	assert_int_equal(vq_enable(&q, &gm, 8, DESC, AVAIL, RAM - 16, false, false), VQ_NOT_RAM);
	assert_false(q.ready);
}

static void test_valid_chain_and_used(void **state)
{
	const char *why;
	uint32_t id, len;
	uint16_t used;

	assert_int_equal(pop(&why), 0); /* nothing available */
	desc(DESC, 3, BUF, 16, VRING_DESC_F_NEXT, 5);
	desc(DESC, 5, BUF + 16, 100, VRING_DESC_F_NEXT, 1);
	desc(DESC, 1, BUF + 200, 50, VRING_DESC_F_WRITE, 0);
	post(3);
	assert_int_equal(pop(&why), 1);
	assert_int_equal(chain.head, 3);
	assert_int_equal(chain.nin, 2);
	assert_int_equal(chain.nout, 1);
	assert_int_equal(chain.in_len, 116);
	assert_int_equal(chain.out_len, 50);
	assert_ptr_equal(chain.seg[0].iov_base, ram + BUF);
	assert_ptr_equal(chain.seg[2].iov_base, ram + BUF + 200);
	assert_int_equal(pop(&why), 0);
	vq_push(&vq, 3, 42);
	memcpy(&used, ram + USED + 2, 2);
	memcpy(&id, ram + USED + 4, 4);
	memcpy(&len, ram + USED + 8, 4);
	assert_int_equal(used, 1);
	assert_int_equal(id, 3);
	assert_int_equal(len, 42);
}

static void test_chain_copy_helpers(void **state)
{
	const char *why;
	uint8_t out[8];

	memcpy(ram + BUF, "abcd", 4);
	memcpy(ram + BUF + 100, "efgh", 4);
	desc(DESC, 0, BUF, 4, VRING_DESC_F_NEXT, 1);
	desc(DESC, 1, BUF + 100, 4, VRING_DESC_F_NEXT, 2);
	desc(DESC, 2, BUF + 200, 3, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	desc(DESC, 3, BUF + 300, 3, VRING_DESC_F_WRITE, 0);
	post(0);
	assert_int_equal(pop(&why), 1);
	assert_int_equal(vq_chain_read(&chain, 2, out, 8), 6); /* spans both, stops at the end */
	assert_memory_equal(out, "cdefgh", 6);
	assert_int_equal(vq_chain_write(&chain, 1, "XYZW", 4), 4);
	assert_memory_equal(ram + BUF + 201, "XY", 2);
	assert_memory_equal(ram + BUF + 300, "ZW", 2);
	assert_int_equal(vq_chain_write(&chain, 5, "12", 2), 1);
}

static void expect_bad(const char *what)
{
	const char *why;

	assert_int_equal(pop(&why), VQ_BAD_CHAIN);
	assert_non_null(why);
	assert_non_null(strstr(why, what));
}

static void test_loop(void **state)
{
	desc(DESC, 0, BUF, 16, VRING_DESC_F_NEXT, 1);
	desc(DESC, 1, BUF, 16, VRING_DESC_F_NEXT, 0);
	post(0);
	expect_bad("loops");
	desc(DESC, 2, BUF, 16, VRING_DESC_F_NEXT, 2); /* a self-loop */
	post(2);
	expect_bad("loops");
}

static void test_next_out_of_range(void **state)
{
	desc(DESC, 0, BUF, 16, VRING_DESC_F_NEXT, QS);
	post(0);
	expect_bad("next descriptor index out of range");
}

static void test_buffers_outside_ram(void **state)
{
	desc(DESC, 0, RAM - 8, 16, 0, 0);
	post(0);
	expect_bad("not in guest RAM");
	desc(DESC, 0, UINT64_MAX - 4, 16, 0, 0); /* wraps */
	post(0);
	expect_bad("not in guest RAM");
	desc(DESC, 0, RAM - 16, 16, 0, 0); /* the very end is fine */
	post(0);
	assert_int_equal(vq_pop(&vq, &chain, NULL), 1);
}

static void test_direction_order(void **state)
{
	desc(DESC, 0, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc(DESC, 1, BUF, 16, 0, 0);
	post(0);
	expect_bad("readable buffer after");
}

static void test_indirect(void **state)
{
	const char *why;
	struct vq plain;

	desc(ITAB, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
	desc(ITAB, 1, BUF + 8, 8, VRING_DESC_F_WRITE, 0);
	desc(DESC, 0, ITAB, 32, VRING_DESC_F_INDIRECT, 0);
	post(0);
	assert_int_equal(pop(&why), 1);
	assert_int_equal(chain.nin, 1);
	assert_int_equal(chain.nout, 1);

	desc(DESC, 0, ITAB, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	post(0);
	expect_bad("indirect descriptor with NEXT");
	desc(DESC, 0, ITAB, 24, VRING_DESC_F_INDIRECT, 0);
	post(0);
	expect_bad("indirect table length");
	desc(DESC, 0, ITAB, 0, VRING_DESC_F_INDIRECT, 0);
	post(0);
	expect_bad("indirect table length");
	desc(DESC, 0, RAM - 16, 32, VRING_DESC_F_INDIRECT, 0);
	post(0);
	expect_bad("indirect table is not in guest RAM");
	desc(ITAB, 0, ITAB + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	desc(DESC, 0, ITAB, 16, VRING_DESC_F_INDIRECT, 0);
	post(0);
	expect_bad("nested indirect");
	desc(ITAB, 0, BUF, 8, VRING_DESC_F_NEXT, 2); /* next beyond a 2-entry table */
	desc(DESC, 0, ITAB, 32, VRING_DESC_F_INDIRECT, 0);
	post(0);
	expect_bad("next descriptor index out of range");
	desc(ITAB, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
	desc(ITAB, 1, BUF, 8, VRING_DESC_F_NEXT, 0);
	post(0);
	expect_bad("loops");

	/* Without the feature, the same valid chain is refused. */
	assert_int_equal(vq_enable(&plain, &gm, QS, DESC, AVAIL, USED, false, false), VQ_OK);
	plain.last_avail = vq.last_avail;
	desc(ITAB, 0, BUF, 8, 0, 0);
	desc(DESC, 0, ITAB, 16, VRING_DESC_F_INDIRECT, 0);
	post(0);
	assert_int_equal(vq_pop(&plain, &chain, &why), VQ_BAD_CHAIN);
	assert_non_null(strstr(why, "without VIRTIO_F_INDIRECT_DESC"));
}

static void test_ring_faults(void **state)
{
	const char *why;
	uint16_t bad = QS + 1;

	post(QS); /* head out of range */
	assert_int_equal(pop(&why), VQ_BROKEN);
	assert_non_null(strstr(why, "head"));
	teardown(NULL);
	setup(NULL);
	avail_idx = QS + 1; /* ahead by more than the size */
	memcpy(ram + AVAIL + 2, &avail_idx, 2);
	assert_int_equal(pop(&why), VQ_BROKEN);
	(void)bad;
}

static void test_too_many_segments(void **state)
{
	struct vq big;
	unsigned i;

	/* A 1024-entry table of valid buffers is the limit; the walker still takes it. */
	assert_int_equal(vq_enable(&big, &gm, 1024, 0x20000, 0x30000, 0x40000, true, false), VQ_OK);
	for (i = 0; i < 1024; i++)
		desc(0x50000, i, BUF, 1, i < 1023 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	desc(0x20000, 0, 0x50000, 1024 * 16, VRING_DESC_F_INDIRECT, 0);
	memcpy(ram + 0x30000 + 4, &(uint16_t){0}, 2);
	memcpy(ram + 0x30000 + 2, &(uint16_t){1}, 2);
	assert_int_equal(vq_pop(&big, &chain, NULL), 1);
	assert_int_equal(chain.nin, 1024);
	/* 1025 descriptors do not fit an indirect table. */
	desc(0x20000, 0, 0x50000, 1025 * 16, VRING_DESC_F_INDIRECT, 0);
	memcpy(ram + 0x30000 + 2, &(uint16_t){2}, 2);
	memcpy(ram + 0x30000 + 6, &(uint16_t){0}, 2);
	assert_int_equal(vq_pop(&big, &chain, NULL), VQ_BAD_CHAIN);
}

static void test_event_idx(void **state)
{
	struct vq e;
	uint16_t used_event;

	assert_int_equal(vq_enable(&e, &gm, QS, DESC, AVAIL, USED, false, true), VQ_OK);
	desc(DESC, 0, BUF, 8, VRING_DESC_F_WRITE, 0);
	post(0);
	assert_int_equal(vq_pop(&e, &chain, NULL), 1);
	vq_push(&e, 0, 8);
	assert_true(vq_need_notify(&e)); /* the first is always signalled */
	post(0);
	assert_int_equal(vq_pop(&e, &chain, NULL), 1);
	used_event = 5; /* the driver wants an interrupt only after entry 5 */
	memcpy(ram + AVAIL + 4 + 2 * QS, &used_event, 2);
	vq_push(&e, 0, 8);
	assert_false(vq_need_notify(&e));
	used_event = 2; /* entry 2 (the third) completes: interrupt */
	memcpy(ram + AVAIL + 4 + 2 * QS, &used_event, 2);
	post(0);
	assert_int_equal(vq_pop(&e, &chain, NULL), 1);
	vq_push(&e, 0, 8);
	assert_true(vq_need_notify(&e));
	/* rearm publishes avail_event = the next entry wanted, and sees new work. */
	assert_false(vq_rearm(&e));
	assert_int_equal(*(uint16_t *)(ram + USED + 4 + 8 * QS), 3);
	post(0);
	assert_true(vq_rearm(&e));
}

/* vq_unpop_to and vq_push_many (virtio-net's mergeable receive buffers): chains put back
 * are taken again; the notification asked for is for entries beyond those taken, and
 * entries the driver added after the last pop are reported; several chains are published
 * with one used index update, in order. */
static void test_unpop_to_and_push_many(void **state)
{
	struct vq e;
	uint16_t heads[3] = {0, 1, 2};
	uint32_t lens[3] = {8, 16, 4};
	uint16_t used;

	assert_int_equal(vq_enable(&e, &gm, QS, DESC, AVAIL, USED, false, true), VQ_OK);
	for (unsigned i = 0; i < 3; i++)
		desc(DESC, i, BUF + 0x100 * i, 16, VRING_DESC_F_WRITE, 0);
	post(0);
	post(1);
	assert_int_equal(vq_pop(&e, &chain, NULL), 1);
	assert_int_equal(vq_pop(&e, &chain, NULL), 1);
	assert_int_equal(vq_pop(&e, &chain, NULL), 0); /* all taken: the device waits */
	assert_false(vq_unpop_to(&e, 0));
	assert_int_equal(e.last_avail, 0);
	assert_int_equal(*(uint16_t *)(ram + USED + 4 + 8 * QS), 2); /* kick at entry 2 */
	/* Taken again; the driver adds one more after the last pop found none. */
	assert_int_equal(vq_pop(&e, &chain, NULL), 1);
	assert_int_equal(vq_pop(&e, &chain, NULL), 1);
	assert_int_equal(vq_pop(&e, &chain, NULL), 0);
	post(2);
	assert_true(vq_unpop_to(&e, 0)); /* its kick may not come: try again now */
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(vq_pop(&e, &chain, NULL), 1);
		assert_int_equal(chain.head, i);
	}
	vq_push_many(&e, heads, lens, 3);
	memcpy(&used, ram + USED + 2, 2);
	assert_int_equal(used, 3);
	for (unsigned i = 0; i < 3; i++) {
		uint32_t id, len;

		memcpy(&id, ram + USED + 4 + 8 * i, 4);
		memcpy(&len, ram + USED + 8 + 8 * i, 4);
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, lens[i]);
	}
}

static void test_no_interrupt_flag(void **state)
{
	uint16_t flags = 1;

	memcpy(ram + AVAIL, &flags, 2);
	assert_false(vq_need_notify(&vq));
	flags = 0;
	memcpy(ram + AVAIL, &flags, 2);
	assert_true(vq_need_notify(&vq));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enable_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_valid_chain_and_used, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_copy_helpers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffers_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direction_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpop_to_and_push_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_interrupt_flag, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
