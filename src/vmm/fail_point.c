/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/fail_point.h"

#if defined(KEEL_TEST_HOOKS)
int (*fail_point_hook)(const char *point);
#endif
