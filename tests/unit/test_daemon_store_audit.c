/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's audit log (store_audit.c): refused requests (any viewer can send them) are
 * kept apart from the records of requests served, so a flood of refusals never pushes an
 * administrator's change out; each kind keeps its newest records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "daemon/store.h"

static void add(struct store *st, const char *user, const char *method, const char *path,
		unsigned status)
{
	struct store_audit a = {.time = 1,
				.uid = 1000,
				.user = user,
				.method = method,
				.path = path,
				.vm = "a1",
				.status = status,
				.message = ""};

	assert_int_equal(store_audit_add(st, &a), 0);
}

static json_object *list(struct store *st, enum store_audit_kind kind, unsigned limit)
{
	json_object *arr = NULL;

	assert_int_equal(store_audit_list(st, NULL, kind, limit, &arr), 0);
	assert_non_null(arr);
	return arr;
}

static const char *field(json_object *arr, size_t i, const char *name)
{
	return json_object_get_string(
		json_object_object_get(json_object_array_get_idx(arr, i), name));
}

/* An administrator's change, then more refusals than are kept (a viewer's 403s, 413s, 414s):
 * the change is still there, the refusals are the newest STORE_AUDIT_REFUSED_KEEP. */
static void test_refusals_keep_apart(void **state)
{
	struct store *st = NULL;
	char err[256] = "", path[64];
	json_object *arr;
	const unsigned refusals = STORE_AUDIT_REFUSED_KEEP + 50;
	static const unsigned codes[] = {403, 413, 414};

	(void)state;
	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	add(st, "root", "POST", "/v1/vms/a1/start", 202);
	add(st, "root", "DELETE", "/v1/vms/a2", 409); /* a failure is a change tried: kept */
	for (unsigned i = 0; i < refusals; i++) {
		snprintf(path, sizeof(path), "/v1/vms/a1/stop?%u", i);
		add(st, "viewer", "POST", path, codes[i % 3]);
	}
	arr = list(st, STORE_AUDIT_CHANGES, STORE_AUDIT_KEEP);
	assert_int_equal(json_object_array_length(arr), 2);
	assert_string_equal(field(arr, 0, "user"), "root");
	assert_string_equal(field(arr, 0, "path"), "/v1/vms/a1/start");
	assert_string_equal(field(arr, 1, "path"), "/v1/vms/a2");
	json_object_put(arr);
	/* The refusals: the newest STORE_AUDIT_REFUSED_KEEP, oldest first. */
	arr = list(st, STORE_AUDIT_REFUSED, STORE_AUDIT_KEEP);
	assert_int_equal(json_object_array_length(arr), STORE_AUDIT_REFUSED_KEEP);
	snprintf(path, sizeof(path), "/v1/vms/a1/stop?%u", refusals - STORE_AUDIT_REFUSED_KEEP);
	assert_string_equal(field(arr, 0, "path"), path);
	snprintf(path, sizeof(path), "/v1/vms/a1/stop?%u", refusals - 1);
	assert_string_equal(field(arr, STORE_AUDIT_REFUSED_KEEP - 1, "path"), path);
	json_object_put(arr);
	/* Both kinds together: the newest, refusals here. */
	arr = list(st, STORE_AUDIT_ALL, 3);
	assert_int_equal(json_object_array_length(arr), 3);
	assert_string_equal(field(arr, 2, "user"), "viewer");
	json_object_put(arr);
	store_close(st);
}

/* Records of requests served keep their own newest STORE_AUDIT_KEEP, refusals untouched. */
static void test_changes_keep_newest(void **state)
{
	struct store *st = NULL;
	char err[256] = "", path[64];
	json_object *arr;

	(void)state;
	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	add(st, "viewer", "POST", "/v1/vms/a1/stop", 403);
	for (unsigned i = 0; i < STORE_AUDIT_KEEP + 5; i++) {
		snprintf(path, sizeof(path), "/v1/vms/a1/start?%u", i);
		add(st, "root", "POST", path, 202);
	}
	arr = list(st, STORE_AUDIT_CHANGES, STORE_AUDIT_KEEP);
	assert_int_equal(json_object_array_length(arr), STORE_AUDIT_KEEP);
	assert_string_equal(field(arr, 0, "path"), "/v1/vms/a1/start?5");
	json_object_put(arr);
	arr = list(st, STORE_AUDIT_REFUSED, 10);
	assert_int_equal(json_object_array_length(arr), 1);
	assert_string_equal(field(arr, 0, "status"), "403");
	json_object_put(arr);
	assert_true(store_audit_refused(403) && store_audit_refused(413) &&
		    store_audit_refused(414) && !store_audit_refused(400) &&
		    !store_audit_refused(409) && !store_audit_refused(202));
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals_keep_apart),
		cmocka_unit_test(test_changes_keep_newest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
