/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's control socket: any line a client sends must parse or be refused. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "vmm/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum control_cmd cmd;
	const char *cls;
	char why[160];

	if (control_parse((const char *)data, size, &cmd, &cls, why, sizeof(why)) == 0 &&
	    cmd > CONTROL_SAVE)
		abort();
	return 0;
}
