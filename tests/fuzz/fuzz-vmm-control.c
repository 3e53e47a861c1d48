/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's control socket: any line a client sends must parse or be refused. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmdef.h"
#include "vmm/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct control_request req;
	enum control_cmd cmd;
	const char *cls;
	char why[160];
	int r;

	r = control_parse((const char *)data, size, &cmd, &cls, why, sizeof(why));
	if (r == 0 && cmd >= CONTROL_CMD_COUNT)
		abort();
	/* With arguments (save's and restore's dir): accepted only when the command parsed,
	 * and then a non-empty path that fits; paused only for restore; passed descriptors only
	 * for restore, dvd and nic-add; link's adapter one that a VM may have; nic-add's data
	 * path one of auto, off and on, its /dev/vhost-nets passed only after the tap's queues
	 * and never for off, and neither for another command; its queue pairs from 1 to
	 * VMDEF_NET_QUEUES_MAX, none for another command. */
	if (control_parse_request((const char *)data, size, &req, &cls, why, sizeof(why)) == 0 &&
	    (r || req.cmd != cmd ||
	     ((req.cmd == CONTROL_SAVE || req.cmd == CONTROL_RESTORE) &&
	      (!req.dir[0] || !memchr(req.dir, 0, sizeof(req.dir)))) ||
	     (req.cmd != CONTROL_RESTORE && req.paused) ||
	     (req.cmd != CONTROL_RESTORE && req.cmd != CONTROL_DVD && req.cmd != CONTROL_NIC_ADD &&
	      req.passed) ||
	     (req.cmd == CONTROL_LINK && req.nic >= VMDEF_MAX_NICS) ||
	     (req.vhost != VM_VHOST_AUTO && req.vhost != VM_VHOST_OFF &&
	      req.vhost != VM_VHOST_ON) ||
	     (req.cmd != CONTROL_NIC_ADD && (req.vhost != VM_VHOST_AUTO || req.vhost_fd)) ||
	     (req.vhost_fd && (!req.passed || req.vhost == VM_VHOST_OFF)) ||
	     (req.cmd == CONTROL_NIC_ADD &&
	      (req.queues < 1 || req.queues > VMDEF_NET_QUEUES_MAX)) ||
	     (req.cmd != CONTROL_NIC_ADD && req.queues)))
		abort();
	return 0;
}
