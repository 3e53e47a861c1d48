/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-switch-nftmon (issue 12): nftables' change notifications as keeld reads them
 * (src/daemon/switch_nftmon.c): any bytes as a datagram of netlink messages, walked within
 * their length, their attributes too (strings, and NEWGEN's pid), twice over: a transaction
 * left open by the first read is closed by the second's NEWGEN.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/switch_nftmon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a datagram as recv leaves it: at the start of an aligned buffer, exactly its size */
	void *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct switch_nftmon m = {0};

	/* keeld's pid as 1234 (the seeds' NEWGENs carry it or another) */
	(void)switch_nftmon_msgs(&m, buf, size, 1234);
	(void)switch_nftmon_msgs(&m, buf, size, 1234);
	free(buf);
	return 0;
}
