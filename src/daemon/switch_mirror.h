/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Port mirroring on a virtual switch (Hyper-V's Set-VMNetworkAdapter -PortMirroring;
 * docs/networking.md): what a source adapter's tap receives from its VM and sends to it is
 * copied to the tap of every destination adapter on the same switch (tc mirred, netlink.h).
 */
#ifndef KEEL_DAEMON_SWITCH_MIRROR_H
#define KEEL_DAEMON_SWITCH_MIRROR_H

#include <stdbool.h>
#include <stddef.h>

#include "config/vmdef.h"

/* The taps port i of ports[0..n) (one switch's) mirrors to: none unless it is a source; else
 * the destinations' taps for which live(tap) holds (their VMs run), in order, up to max.
 * Their number. */
size_t switch_mirror_dests(const struct vm_nic *ports, size_t n, size_t i,
			   bool (*live)(const char *tap), const char **out, size_t max);
/* Every running port of switch sw (ports[0..n)) mirrored as switch_mirror_dests says: a
 * source's tap gets its filters anew, any other's lose theirs. Failures are logged (the
 * frames still flow: mirroring is a copy); 0 or the first -errno. */
int switch_mirror_apply(const char *sw, const struct vm_nic *ports, size_t n);

#endif
