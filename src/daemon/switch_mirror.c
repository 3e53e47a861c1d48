/* SPDX-License-Identifier: Apache-2.0 */
/* Port mirroring on a virtual switch (switch_mirror.h). */
#include "daemon/switch_mirror.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>

#include "daemon/netlink.h"
#include "lib/log.h"

size_t switch_mirror_dests(const struct vm_nic *ports, size_t n, size_t i,
			   bool (*live)(const char *tap), const char **out, size_t max)
{
	size_t k = 0;

	if (ports[i].port_mirroring != VM_MIRROR_SOURCE)
		return 0;
	for (size_t j = 0; j < n && k < max; j++)
		if (j != i && ports[j].port_mirroring == VM_MIRROR_DESTINATION && ports[j].tap[0] &&
		    live(ports[j].tap))
			out[k++] = ports[j].tap;
	return k;
}

static bool tap_exists(const char *tap)
{
	return if_nametoindex(tap) != 0;
}

int switch_mirror_apply(const char *sw, const struct vm_nic *ports, size_t n)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		const char *to[NL_MIRROR_MAX + 1];
		size_t k;
		int r;

		if (!ports[i].tap[0] || !tap_exists(ports[i].tap))
			continue; /* its VM is not running */
		k = switch_mirror_dests(ports, n, i, tap_exists, to, NL_MIRROR_MAX + 1);
		if (k > NL_MIRROR_MAX) {
			log_warn("switch '%s': adapter %s mirrors to its first %d destinations "
				 "only",
				 sw, ports[i].mac, NL_MIRROR_MAX);
			k = NL_MIRROR_MAX;
		}
		r = nl_mirror(ports[i].tap, to, k);
		if (r == -ENODEV && !tap_exists(ports[i].tap))
			continue; /* its VM ended meanwhile */
		if (r) {
			log_err("switch '%s': cannot %s tap %s (adapter %s): %s%s", sw,
				k ? "mirror" : "stop mirroring", ports[i].tap, ports[i].mac,
				strerror(-r),
				r == -ENOENT ? " (a tc module missing from this kernel: "
					       "sch_ingress, cls_u32, act_mirred)"
					     : "");
			if (!first)
				first = r;
		} else if (k) {
			log_info("switch '%s': tap %s (adapter %s) mirrored to %zu destination%s",
				 sw, ports[i].tap, ports[i].mac, k, k == 1 ? "" : "s");
		}
	}
	return first;
}
