/* SPDX-License-Identifier: Apache-2.0 */
/* Network adapters in a VM description: the "nets" field (docs/vm-config.md), virtio-net in
 * keel-vmm. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/vmdef_cli.h"
#include "config/vmdef_device.h"
#include "config/vmdef_json.h"
#include "lib/error.h"
#include "lib/parse.h"

static unsigned nic_count(const struct vm_def *def)
{
	return def->nnics;
}

static uint8_t *nic_slot(struct vm_def *def, unsigned i)
{
	return &def->nics[i].pci_slot;
}

static int nic_parse(struct vm_def *def, json_object *v, char *err, size_t errlen)
{
	struct vm_nic old[VMDEF_MAX_NICS];
	bool used[VMDEF_MAX_NICS] = {false};
	unsigned nold = def->nnics;
	size_t n;

	if (!json_object_is_type(v, json_type_array)) {
		error_set(err, errlen, "field 'nets' must be an array");
		return -EINVAL;
	}
	n = json_object_array_length(v);
	if (n > VMDEF_MAX_NICS) {
		error_set(err, errlen, "a VM has at most %d network adapters, not %zu",
			  VMDEF_MAX_NICS, n);
		return -EINVAL;
	}
	memcpy(old, def->nics, sizeof(old));
	def->nnics = 0;
	for (size_t i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(v, i);
		struct vm_nic *nic = &def->nics[i];
		const char *s;

		if (!json_object_is_type(d, json_type_object)) {
			error_set(err, errlen, "nets[%zu] must be an object", i);
			return -EINVAL;
		}
		memset(nic, 0, sizeof(*nic));
		json_object_object_foreach(d, key, val)
		{
			if (!strcmp(key, "tap")) {
				s = vmdef_get_str(val, "nets[].tap", 64, err, errlen);
				if (!s)
					return -EINVAL;
				if (!vmdef_tap_ok(s)) {
					error_set(
						err, errlen,
						"nets[%zu].tap '%s' is not a valid interface name "
						"(1 to %d characters, no spaces, '/', ':', ',' or "
						"'=')",
						i, s, VMDEF_TAP_MAX);
					return -EINVAL;
				}
				strcpy(nic->tap, s);
			} else if (!strcmp(key, "mac")) {
				s = vmdef_get_str(val, "nets[].mac", 64, err, errlen);
				if (!s)
					return -EINVAL;
				if (!vmdef_mac_ok(s)) {
					error_set(err, errlen,
						  "nets[%zu].mac '%s' is not a unicast MAC address "
						  "(xx:xx:xx:xx:xx:xx, first byte even)",
						  i, s);
					return -EINVAL;
				}
				strcpy(nic->mac, s);
			} else if (!strcmp(key, "pci_slot")) {
				if (vmdef_get_slot(val, "nets[].pci_slot", &nic->pci_slot, err,
						   errlen))
					return -EINVAL;
			} else if (!strcmp(key, "vlan")) {
				int64_t vlan;

				if (vmdef_get_int(val, "nets[].vlan", 1, VMDEF_VLAN_MAX, &vlan, err,
						  errlen))
					return -EINVAL;
				nic->vlan = (uint16_t)vlan;
			} else if (!strcmp(key, "mac_spoofing")) {
				if (vmdef_get_bool(val, "nets[].mac_spoofing", &nic->mac_spoofing,
						   err, errlen))
					return -EINVAL;
			} else if (!strcmp(key, "dhcp_guard")) {
				if (vmdef_get_bool(val, "nets[].dhcp_guard", &nic->dhcp_guard, err,
						   errlen))
					return -EINVAL;
			} else if (!strcmp(key, "router_guard")) {
				if (vmdef_get_bool(val, "nets[].router_guard", &nic->router_guard,
						   err, errlen))
					return -EINVAL;
			} else if (!strcmp(key, "vlan_trunk")) {
				s = vmdef_get_str(val, "nets[].vlan_trunk", 256, err, errlen);
				if (!s)
					return -EINVAL;
				if (vmdef_vlan_list(s, NULL, NULL)) {
					error_set(err, errlen,
						  "nets[%zu].vlan_trunk '%s' is not a VLAN list "
						  "(N or N-M from 1 to %d, separated by ',')",
						  i, s, VMDEF_VLAN_MAX);
					return -EINVAL;
				}
				strcpy(nic->vlan_trunk, s);
			} else if (!strcmp(key, "native_vlan")) {
				int64_t vlan;

				if (vmdef_get_int(val, "nets[].native_vlan", 1, VMDEF_VLAN_MAX,
						  &vlan, err, errlen))
					return -EINVAL;
				nic->native_vlan = (uint16_t)vlan;
			} else if (!strcmp(key, "bandwidth_out") || !strcmp(key, "bandwidth_in")) {
				int64_t bw;

				/* bits per second: 64 kbit/s to 100 Gbit/s */
				if (vmdef_get_int(val,
						  key[10] == 'o' ? "nets[].bandwidth_out"
								 : "nets[].bandwidth_in",
						  64000, 100000000000LL, &bw, err, errlen))
					return -EINVAL;
				*(key[10] == 'o' ? &nic->bw_out : &nic->bw_in) = (uint64_t)bw;
			} else if (!strcmp(key, "queues")) {
				int64_t q;

				if (vmdef_get_int(val, "nets[].queues", 1, VMDEF_NET_QUEUES_MAX, &q,
						  err, errlen))
					return -EINVAL;
				nic->queues = (uint8_t)q;
			} else if (!strcmp(key, "port_isolation")) {
				if (vmdef_get_bool(val, "nets[].port_isolation",
						   &nic->port_isolation, err, errlen))
					return -EINVAL;
			} else if (!strcmp(key, "port_mirroring")) {
				s = vmdef_get_str(val, "nets[].port_mirroring", 32, err, errlen);
				if (!s)
					return -EINVAL;
				if (vmdef_mirror_parse(s, &nic->port_mirroring)) {
					error_set(
						err, errlen,
						"nets[%zu].port_mirroring '%s' is not none, source "
						"or destination",
						i, s);
					return -EINVAL;
				}
			} else if (!strcmp(key, "vhost")) {
				s = vmdef_get_str(val, "nets[].vhost", 16, err, errlen);
				if (!s)
					return -EINVAL;
				if (vmdef_vhost_parse(s, &nic->vhost)) {
					error_set(
						err, errlen,
						"nets[%zu].vhost '%s' is not auto, off or on (the "
						"kernel data path: where the host has it, never, "
						"required)",
						i, s);
					return -EINVAL;
				}
			} else if (!strcmp(key, "switch")) {
				s = vmdef_get_str(val, "nets[].switch", 256, err, errlen);
				if (!s)
					return -EINVAL;
				if (!vmdef_switch_name_ok(s)) {
					error_set(
						err, errlen,
						"nets[%zu].switch '%s' is not a switch name (1 to "
						"%d letters, digits, spaces, '.', '_' or '-')",
						i, s, VMDEF_SWITCH_MAX);
					return -EINVAL;
				}
				strcpy(nic->sw, s);
			} else {
				error_set(err, errlen, "unknown field '%s' in nets[%zu]", key, i);
				return -EINVAL;
			}
		}
		if (!nic->sw[0] &&
		    (nic->vlan || nic->mac_spoofing || nic->dhcp_guard || nic->router_guard ||
		     nic->port_isolation || nic->vlan_trunk[0] || nic->native_vlan || nic->bw_in ||
		     nic->bw_out || nic->port_mirroring)) {
			error_set(err, errlen,
				  "nets[%zu]: a VLAN and the guards are a switch's, port mirroring "
				  "too: connect the adapter to one with 'switch'",
				  i);
			return -EINVAL;
		}
		if (nic->vlan && (nic->vlan_trunk[0] || nic->native_vlan)) {
			error_set(err, errlen,
				  "nets[%zu]: an adapter is in access mode (vlan) or a trunk "
				  "(vlan_trunk, native_vlan), not both",
				  i);
			return -EINVAL;
		}
		if (nic->native_vlan && !nic->vlan_trunk[0]) {
			error_set(err, errlen, "nets[%zu]: native_vlan is a trunk's (vlan_trunk)",
				  i);
			return -EINVAL;
		}
		if (!nic->tap[0] && !nic->sw[0]) {
			error_set(err, errlen, "nets[%zu] has neither a 'tap' nor a 'switch'", i);
			return -EINVAL;
		}
		if (nic->sw[0] && nic->tap[0]) {
			char mine[VMDEF_TAP_MAX + 1] = "";

			if (nic->mac[0])
				vmdef_switch_tap(nic->mac, mine);
			/* keeld's own name for it (a description read back) is fine */
			if (strcasecmp(mine, nic->tap)) {
				error_set(err, errlen,
					  "nets[%zu]: an adapter on switch '%s' gets its tap from "
					  "keeld; leave 'tap' out",
					  i, nic->sw);
				return -EINVAL;
			}
		}
		def->nnics = i + 1;
	}
	/* Lowercase MACs so that uniqueness checks compare like with like. */
	for (unsigned i = 0; i < def->nnics; i++)
		for (char *p = def->nics[i].mac; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
	/* An adapter given without a MAC keeps the one it had on the same tap, or on the same
	 * switch. */
	for (unsigned i = 0; i < def->nnics; i++) {
		struct vm_nic *nic = &def->nics[i];

		if (nic->mac[0])
			continue;
		for (unsigned j = 0; j < nold; j++) {
			bool taken = false;

			if (used[j] || (nic->sw[0] ? strcmp(old[j].sw, nic->sw)
						   : strcmp(old[j].tap, nic->tap)))
				continue;
			for (unsigned k = 0; k < def->nnics; k++)
				taken |= !strcmp(def->nics[k].mac, old[j].mac);
			if (taken)
				continue;
			strcpy(nic->mac, old[j].mac);
			used[j] = true;
			break;
		}
	}
	for (unsigned i = 0; i < def->nnics; i++)
		if (def->nics[i].sw[0] && def->nics[i].mac[0])
			vmdef_switch_tap(def->nics[i].mac, def->nics[i].tap);
	return 0;
}

static int nic_to_json(const struct vm_def *def, json_object **out)
{
	json_object *nets = json_object_new_array();

	for (unsigned i = 0; nets && i < def->nnics; i++) {
		json_object *n = json_object_new_object();

		if (def->nics[i].tap[0]) /* an adapter on a switch: once it has its MAC */
			json_object_object_add(n, "tap", json_object_new_string(def->nics[i].tap));
		if (def->nics[i].sw[0])
			json_object_object_add(n, "switch",
					       json_object_new_string(def->nics[i].sw));
		if (def->nics[i].vlan)
			json_object_object_add(n, "vlan", json_object_new_int(def->nics[i].vlan));
		if (def->nics[i].mac_spoofing)
			json_object_object_add(n, "mac_spoofing", json_object_new_boolean(true));
		if (def->nics[i].dhcp_guard)
			json_object_object_add(n, "dhcp_guard", json_object_new_boolean(true));
		if (def->nics[i].router_guard)
			json_object_object_add(n, "router_guard", json_object_new_boolean(true));
		if (def->nics[i].port_isolation)
			json_object_object_add(n, "port_isolation", json_object_new_boolean(true));
		if (def->nics[i].vlan_trunk[0])
			json_object_object_add(n, "vlan_trunk",
					       json_object_new_string(def->nics[i].vlan_trunk));
		if (def->nics[i].native_vlan)
			json_object_object_add(n, "native_vlan",
					       json_object_new_int(def->nics[i].native_vlan));
		if (def->nics[i].bw_out)
			json_object_object_add(n, "bandwidth_out",
					       json_object_new_int64((int64_t)def->nics[i].bw_out));
		if (def->nics[i].bw_in)
			json_object_object_add(n, "bandwidth_in",
					       json_object_new_int64((int64_t)def->nics[i].bw_in));
		if (def->nics[i].port_mirroring)
			json_object_object_add(n, "port_mirroring",
					       json_object_new_string(vmdef_mirror_name(
						       def->nics[i].port_mirroring)));
		if (def->nics[i].queues)
			json_object_object_add(n, "queues",
					       json_object_new_int(def->nics[i].queues));
		if (def->nics[i].vhost != VM_VHOST_AUTO)
			json_object_object_add(
				n, "vhost",
				json_object_new_string(vmdef_vhost_name(def->nics[i].vhost)));
		if (def->nics[i].mac[0]) /* keel-vmm derives one from the tap's name */
			json_object_object_add(n, "mac", json_object_new_string(def->nics[i].mac));
		if (def->nics[i].pci_slot)
			json_object_object_add(n, "pci_slot",
					       json_object_new_int(def->nics[i].pci_slot));
		json_object_array_add(nets, n);
	}
	*out = nets;
	return nets ? 0 : -ENOMEM;
}

static bool nic_same(const struct vm_def *nd, unsigned i, const struct vm_def *old, unsigned j)
{
	return nd->nics[i].tap[0] && !strcmp(nd->nics[i].tap, old->nics[j].tap);
}

unsigned vmdef_nic_queues(const struct vm_def *def, unsigned i)
{
	unsigned q = def->nics[i].queues ? def->nics[i].queues : def->cpus;

	return q < 1 ? 1 : q > VMDEF_NET_QUEUES_MAX ? VMDEF_NET_QUEUES_MAX : q;
}

static int nic_check(const struct vm_def *def, char *err, size_t errlen)
{
	for (unsigned i = 0; i < def->nnics; i++) {
		/* A pair per vCPU at most: more cannot all be busy at once (the guest's driver
		 * enables at most one per CPU). */
		if (def->nics[i].queues > def->cpus) {
			error_set(err, errlen,
				  "nets[%u].queues %u is more than the VM's %u vCPU%s (1 to the "
				  "vCPUs, at most %d)",
				  i, def->nics[i].queues, def->cpus, def->cpus == 1 ? "" : "s",
				  VMDEF_NET_QUEUES_MAX);
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (def->nics[i].tap[0] && !strcmp(def->nics[i].tap, def->nics[j].tap)) {
				error_set(err, errlen, "tap %s is used by two network adapters",
					  def->nics[i].tap);
				return -EINVAL;
			}
			if (def->nics[i].mac[0] && !strcmp(def->nics[i].mac, def->nics[j].mac)) {
				error_set(err, errlen, "MAC %s is given to two network adapters",
					  def->nics[i].mac);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static bool nics_equal(const struct vm_nic *x, const struct vm_nic *y)
{
	return !strcmp(x->tap, y->tap) && !strcmp(x->sw, y->sw) && !strcmp(x->mac, y->mac) &&
	       x->pci_slot == y->pci_slot && x->vlan == y->vlan &&
	       x->mac_spoofing == y->mac_spoofing && x->dhcp_guard == y->dhcp_guard &&
	       x->router_guard == y->router_guard && x->port_isolation == y->port_isolation &&
	       !strcmp(x->vlan_trunk, y->vlan_trunk) && x->native_vlan == y->native_vlan &&
	       x->bw_out == y->bw_out && x->bw_in == y->bw_in &&
	       x->port_mirroring == y->port_mirroring && x->vhost == y->vhost;
}

/* The same adapter, with as many queue pairs (the default resolved: an adapter recorded with
 * queues 1 by a hot plug on a 1-vCPU VM is the one given without). */
static bool nic_hw_equal(const struct vm_def *a, unsigned i, const struct vm_def *b, unsigned j)
{
	return nics_equal(&a->nics[i], &b->nics[j]) &&
	       vmdef_nic_queues(a, i) == vmdef_nic_queues(b, j);
}

unsigned vmdef_net_move_change(const struct vm_def *a, const struct vm_def *b)
{
	struct vm_def t = *b; /* b with a's adapters where they only move: read only */
	unsigned mask = 0;

	if (a->nnics != b->nnics)
		return 0;
	for (unsigned i = 0; i < a->nnics; i++) {
		const struct vm_nic *x = &a->nics[i];
		struct vm_nic y = b->nics[i];

		if (!x->sw[0] || !y.sw[0] || !x->mac[0] || strcmp(x->mac, y.mac) ||
		    x->pci_slot != y.pci_slot || vmdef_nic_queues(a, i) != vmdef_nic_queues(b, i))
			continue;
		memcpy(y.tap, x->tap, sizeof(y.tap)); /* it follows the MAC (vmdef_switch_tap) */
		if (!nics_equal(x, &y))
			mask |= 1u << i;
		t.nics[i] = *x;
	}
	return mask && !vmdef_hw_change(a, &t) ? mask : 0;
}

bool vmdef_net_hotplug_change(const struct vm_def *a, const struct vm_def *b, unsigned *removed,
			      unsigned *added)
{
	struct vm_def t = *a; /* a less what goes, plus what comes: read only */
	unsigned j = 0, n = 0;

	*removed = *added = 0;
	for (unsigned i = 0; i < a->nnics; i++) {
		if (j < b->nnics && a->nics[i].mac[0] && !strcmp(a->nics[i].mac, b->nics[j].mac))
			t.nics[n++] = b->nics[j++];
		else
			*removed |= 1u << i;
	}
	for (; j < b->nnics; j++) {
		if (n == VMDEF_MAX_NICS)
			return false;
		t.nics[n++] = b->nics[j];
		*added |= 1u << j;
	}
	t.nnics = n;
	/* Kept adapters compare as a's: any change to one is not a hot plug. */
	for (unsigned i = 0, k = 0; i < a->nnics; i++)
		if (!(*removed >> i & 1))
			t.nics[k++] = a->nics[i];
	return !*removed != !*added && !vmdef_hw_change(&t, b);
}

/* The guest saw the adapter's MAC; the tap behind it is the host's business. */
static bool nic_guest_equal(const struct vm_def *saved, unsigned i, const struct vm_def *cur,
			    unsigned j, char *why, size_t len)
{
	const struct vm_nic *a = &saved->nics[i], *b = &cur->nics[j];
	unsigned q;

	if (strcmp(a->mac, b->mac)) {
		snprintf(why, len,
			 "the network adapter at PCI slot %u was saved with MAC %s; its "
			 "description gives it %s",
			 a->pci_slot, a->mac, b->mac);
		return false;
	}
	/* A save records every adapter's pairs (keel-vmm's snapshot.c); one without was made
	 * before multi-queue, with one pair. */
	q = a->queues ? vmdef_nic_queues(saved, i) : 1;
	if (q == vmdef_nic_queues(cur, j))
		return true;
	snprintf(why, len,
		 "the network adapter at PCI slot %u was saved with %u queue pair%s%s; its "
		 "description gives it %u (set its queues to %u to restore this state)",
		 a->pci_slot, q, q == 1 ? "" : "s",
		 a->queues ? "" : " (by a keel-vmm before multi-queue)", vmdef_nic_queues(cur, j),
		 q);
	return false;
}

/* keel-vmm's --net (config/vmdef_cli.h). */
int vmdef_cli_net(const char *s, struct vm_nic *n, char *err, size_t errlen)
{
	char k[16], v[64];
	const char *p = s;
	uint8_t mac[6];
	uint64_t q;
	int too_long;

	memset(n, 0, sizeof(*n));
	while ((p = vmdef_cli_next_kv(p, k, sizeof(k), v, sizeof(v), &too_long))) {
		if (too_long) {
			snprintf(err, errlen, "--net %s: an option or value is too long", s);
			return -EINVAL;
		}
		if (!strcmp(k, "tap") && vmdef_tap_ok(v)) {
			memcpy(n->tap, v, strlen(v) + 1); /* length checked by vmdef_tap_ok */
		} else if (!strcmp(k, "mac") && !vmdef_mac_parse(v, mac)) {
			vmdef_mac_format(mac, n->mac);
		} else if (!strcmp(k, "slot") && !vmdef_cli_slot(v, &n->pci_slot)) {
		} else if (!strcmp(k, "queues") && !parse_uint(v, 1, VMDEF_NET_QUEUES_MAX, &q)) {
			n->queues = (uint8_t)q;
		} else if (!strcmp(k, "vhost") && !vmdef_vhost_parse(v, &n->vhost)) {
		} else {
			snprintf(err, errlen,
				 "--net %s: expected tap=IFNAME (1 to %d characters)[,mac=52:54:00:"
				 "xx:xx:xx] (a unicast MAC)[,slot=%d..%d][,queues=1..%d (at most "
				 "the vCPUs)][,vhost=auto|off|on]",
				 s, VMDEF_TAP_MAX, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX,
				 VMDEF_NET_QUEUES_MAX);
			return -EINVAL;
		}
	}
	if (!n->tap[0]) {
		snprintf(err, errlen, "--net %s: tap=IFNAME is required", s);
		return -EINVAL;
	}
	return 0;
}

static int net_option(struct vm_def *def, struct vmdef_host *host, const char *arg, char *err,
		      size_t errlen)
{
	int r;

	if (def->nnics == VMDEF_MAX_NICS) {
		snprintf(err, errlen, "--net: at most %d network cards", VMDEF_MAX_NICS);
		return -EINVAL;
	}
	r = vmdef_cli_net(arg, &def->nics[def->nnics], err, errlen);
	if (!r)
		def->nnics++;
	return r;
}

static const struct vmdef_option nic_options[] = {
	{"net", "tap=IFNAME[,mac=MAC][,slot=N][,queues=N][,vhost=auto|off|on]",
	 "a virtio-net card on a tap (repeat for more)", false, net_option},
	{0},
};

const struct vmdef_device_kind vmdef_nic_kind = {
	.field = "nets",
	.max = VMDEF_MAX_NICS,
	.count = nic_count,
	.slot = nic_slot,
	.parse = nic_parse,
	.to_json = nic_to_json,
	.same = nic_same,
	.check = nic_check,
	.hw_equal = nic_hw_equal,
	.guest_equal = nic_guest_equal,
	.options = nic_options,
};
