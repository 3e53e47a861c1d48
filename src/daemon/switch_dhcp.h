/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DHCP and DNS for a NAT switch: one dnsmasq per switch, as libvirt and Incus run it
 * (docs/networking.md). keeld writes its configuration into the switch's directory
 * (STATE/switches/BRIDGE/dnsmasq.conf), keeps the leases there, watches the process through
 * a pidfd and starts it again when it dies. It stops with keeld; one left behind by a
 * killed keeld (its pid file says) is replaced at the next start.
 */
#ifndef KEEL_DAEMON_SWITCH_DHCP_H
#define KEEL_DAEMON_SWITCH_DHCP_H

#include <poll.h>
#include <stddef.h>

#include "daemon/store.h"

#define SWITCH_DHCP_MAX 64

/* dnsmasq's configuration for sw (internal with a subnet) into buf: its length or -ENOSPC. */
int switch_dhcp_conf(const struct store_switch *sw, const char *dir, char *buf, size_t size)
	__attribute__((warn_unused_result));
/* Write the configuration into dir (the switch's, made if missing) and (re)start dnsmasq. */
int switch_dhcp_start(const struct store_switch *sw, const char *dir, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The switch's reservations (MAC,ADDRESS per forward; fwds, n) into dir/hosts, which
 * dnsmasq reads (dhcp-hostsfile), and a running dnsmasq told to read it again (SIGHUP). */
int switch_dhcp_hosts(const char *bridge, const char *dir, const struct store_forward *fwds,
		      size_t n) __attribute__((warn_unused_result));
/* A dnsmasq a killed keeld left behind (its pid file in dir, its name in /proc): ended. */
void switch_dhcp_kill_stale(const char *dir);
/* Stop the switch's dnsmasq (if it runs) and forget it. */
void switch_dhcp_stop(const char *bridge);
void switch_dhcp_stop_all(void);
/* The running instance's pid, 0 when none. */
int switch_dhcp_pid(const char *bridge);

/* For keeld's loop: the pidfds to watch, what to do when one fires, and when a restart is
 * due (ms, -1: nothing waits). */
size_t switch_dhcp_pollfds(struct pollfd *fds, size_t max);
void switch_dhcp_events(const struct pollfd *fds, size_t n);
int switch_dhcp_timeout_ms(void);
void switch_dhcp_tick(void);

#endif
