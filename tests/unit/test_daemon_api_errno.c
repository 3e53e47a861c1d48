/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's errno to API error mapping (src/daemon/api.c): 409 ProductionCheckpointUnavailable
 * is only the checkpoint code's own error (CKPT_ENOPRODUCTION), not any -EOPNOTSUPP.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/api_internal.h"
#include "daemon/ckpt.h"

static void expect_code(int err, unsigned status, const char *code)
{
	struct api_reply r = {0};
	char want[128];

	api_reply_errno(&r, err, "message");
	snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
	assert_int_equal(r.status, status);
	assert_non_null(r.body);
	if (!strstr(r.body, want))
		fail_msg("%s has no %s", r.body, want);
	api_reply_free(&r);
}

static void test_production(void **state)
{
	(void)state;
	expect_code(-CKPT_ENOPRODUCTION, 409, "ProductionCheckpointUnavailable");
	expect_code(-EOPNOTSUPP, 500, "Internal");
	expect_code(-EMEDIUMTYPE, 409, "UnsupportedDisk");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_production),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
