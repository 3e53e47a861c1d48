/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Virtual switches (Hyper-V's New-VMSwitch; docs/networking.md): external (a host adapter
 * bridged), internal (the host on the switch with an address, optionally NAT with DHCP and
 * DNS) and private (the VMs only). Each is a Linux bridge made through netlink (netlink.h),
 * its rules one nftables batch (switch_nft.h) and, with NAT, a dnsmasq (switch_dhcp.h).
 * The Default Switch, an internal NAT switch on a subnet chosen once not to collide with the
 * host's routes, exists from keeld's first start. keeld recreates every switch at start.
 * Bad input changes nothing: it is refused before anything is made.
 */
#ifndef KEEL_DAEMON_SWITCH_H
#define KEEL_DAEMON_SWITCH_H

#include <poll.h>
#include <stddef.h>

#include <json-c/json.h>

#include "config/vmdef.h"
#include "daemon/store.h"

#define SWITCH_DEFAULT_NAME "Default Switch"

/* Make the Default Switch on the first start, then bring every stored switch up (a switch
 * that cannot come up is logged and left down). state_dir/switches holds their files. */
int switches_init(struct store *st, const char *state_dir, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* For keeld's loop: each switch whose nftables chains are gone (a host firewall reload
 * flushes the ruleset) gets them back, as soon as nftables notifies a deletion in keel's
 * tables (switches_pollfds: its socket, at most one; switches_events: what poll said of
 * it), and every few seconds in any case. */
int switches_timeout_ms(void);
size_t switches_pollfds(struct pollfd *fds, size_t max);
void switches_events(const struct pollfd *fds, size_t n);
void switches_tick(void);
/* Stop the dnsmasq instances (keeld is exiting; bridges and rules stay for running VMs). */
void switches_shutdown(void);
/* A switch from an API request ({"name", "type", "subnet", "adapter", "allow_management_os",
 * "nat"}): 0, -EINVAL, -EEXIST or -EIO, with err. Its row is stored before anything is made
 * (keeld ending halfway: the whole switch at its next start); a failure takes it all away. */
int switches_create(struct store *st, json_object *req, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Change "subnet" and "nat" (internal) or "allow_management_os" (external). The new row is
 * stored first, then the switch brought to it, what the old settings left taken away
 * (keeld ending halfway: the new settings, all of them, at its next start); a failure
 * stores the old row again and brings the switch back to it. */
int switches_set(struct store *st, const char *name, json_object *req, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Delete a switch no VM's adapter is on: 0, -ENOENT, -EBUSY (err lists the VMs). It is
 * taken down before its row goes (keeld ending halfway: the whole switch at its next start),
 * its directory after. */
int switches_delete(struct store *st, const char *name, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Every switch as the API shows it, or the one named (NULL: none, or out of memory). */
json_object *switches_json(struct store *st);
json_object *switches_one_json(struct store *st, const char *name);
/* Every adapter of def is on a switch that exists: 0 or -EINVAL with err. */
int switches_check_def(struct store *st, const struct vm_def *def, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The adapters of a VM changed (a: before, b: after, either may be NULL): the guards of
 * the switches they are on are loaded again. Failures are logged. */
void switches_ports_changed(struct store *st, const struct vm_def *a, const struct vm_def *b);
/* Make the tap ifname of adapter nic (on a switch) a port of its switch: the switch's rules
 * (with the adapter's guards) loaded first, then the port, its isolation and its VLAN. A
 * refused rules batch is an error: the tap stays off the switch. 0 or -errno with err. */
int switches_port_attach(struct store *st, const struct vm_nic *nic, const char *ifname, char *err,
			 size_t errlen) __attribute__((warn_unused_result));
/* A running VM's adapter nic is being hot-added (its description not stored yet): rules
 * loaded from now on have its guards, as for a move, until switches_moves_end with the
 * description that has it. Before its switches_port_attach. 0 or -ENOMEM. */
int switches_port_adding(const struct vm_nic *nic) __attribute__((warn_unused_result));
/* Take a running VM's adapter nic (on a switch) off it: its tap is no port of the bridge any
 * more (a tap already gone is fine). A hot removal does this as its guards go with the
 * description, so that a guest that never ejects the adapter keeps no unguarded port.
 * 0 or -errno with err. */
int switches_port_leave(const struct vm_nic *nic, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Move a running VM's adapter (its tap from->tap) from from's switch to to's (Hyper-V's
 * Connect-VMNetworkAdapter): to's rules with its guards loaded, then the tap a port of the
 * new bridge with to's isolation, bandwidth and VLANs. On failure the tap goes back to its
 * old switch as it was, and err says why. Until switches_moves_end, rules loaded for the new
 * switch have the adapter's guards as they are now. The caller updates the store, ends the
 * moves, and then reloads both switches' rules (switches_ports_changed). 0 or -errno with err. */
int switches_port_move(struct store *st, const struct vm_nic *from, const struct vm_nic *to,
		       char *err, size_t errlen) __attribute__((warn_unused_result));
/* The moves of def's adapters are over (the store has them where they are, or they went
 * back): rules loaded from now on follow the store only. */
void switches_moves_end(const struct vm_def *def);
/* At keeld's start, a running VM's adapter nic: when its tap is not a port of the bridge of
 * the switch the store has (keeld ended in the middle of a move), put it back there with
 * its stored settings. 1 when it was put back, 0 when it was where it should be, or -errno
 * with err. */
int switches_port_recover(struct store *st, const struct vm_nic *nic, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The guest addresses of the adapter with this MAC, as a JSON array (empty when none): those
 * the switch's DHCP leases give, then those the host's neighbour table (ARP, NDP) has on the
 * switch's bridge; *sources, a parallel array, says "lease" or "neighbour" for each. */
json_object *switches_nic_addresses(struct store *st, const struct vm_nic *nic,
				    json_object **sources);

/* Port forwards of a NAT switch (Add-NetNatStaticMapping): {"host_port", "vm", "port",
 * "proto"}. The VM's adapter on the switch gets its address reserved in the switch's DHCP
 * (its lease's, else a free one) and host_port on every host address goes there. 0,
 * -EINVAL, -ENOENT (no switch), -EEXIST (the host port is taken) with err. */
int switches_forward_add(struct store *st, const char *name, json_object *req, char *err,
			 size_t errlen) __attribute__((warn_unused_result));
int switches_forward_delete(struct store *st, const char *name, const char *proto,
			    unsigned host_port, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The switch's forwards (NULL: no such switch). */
json_object *switches_forwards_json(struct store *st, const char *name);

#endif
