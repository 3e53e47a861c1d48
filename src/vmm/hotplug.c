/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/hotplug.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/dev/pcihp_regs.h"
#include "vmm/device.h"
#include "vmm/fail_point.h"
#include "vmm/loop.h"
#include "vmm/pci.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

struct hotplug {
	struct vm *vm;
	int eject_fd;	      /* eventfd: a vCPU thread saw an eject, the main thread tears down */
	int retry_fd;	      /* timerfd: a teardown that could not pause is tried again */
	pthread_mutex_t lock; /* protects regs (vCPU threads and the main thread) */
	struct pcihp_regs regs;
};

extern const struct device_class virtio_net_class;

static struct log_ratelimit hp_rl = LOG_RATELIMIT_INIT(10000, 5);

static uint64_t hp_read(void *opaque, uint64_t off, unsigned size)
{
	struct hotplug *h = opaque;
	uint32_t v;

	pthread_mutex_lock(&h->lock);
	v = pcihp_regs_read(&h->regs, off, size);
	pthread_mutex_unlock(&h->lock);
	return v;
}

static void hp_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct hotplug *h = opaque;
	uint64_t one = 1;
	unsigned s;

	pthread_mutex_lock(&h->lock);
	s = pcihp_regs_write(&h->regs, off, size, value);
	pthread_mutex_unlock(&h->lock);
	if (s) {
		if (write(h->eject_fd, &one, sizeof(one)) != sizeof(one))
			log_warn("pci hot plug: cannot wake the main thread: %s", strerror(errno));
	} else if (off == PCIHP_EJECT) {
		log_warn_ratelimited(&hp_rl,
				     "pci hot plug: the guest ejected 0x%llx, no removal asked for "
				     "there: ignored",
				     (unsigned long long)value);
	}
}

static const struct bus_ops hp_ops = {
	.read = hp_read,
	.write = hp_write,
};

/* The adapter of the description at slot s: its index, or -1. */
static int hp_nic_at(const struct vm_def *def, unsigned s)
{
	for (unsigned i = 0; i < def->nnics; i++)
		if (def->nics[i].pci_slot == s)
			return (int)i;
	return -1;
}

/* Take adapter i out of the description, its link and its descriptor slot with it. */
static void hp_forget_nic(struct vm *vm, unsigned i)
{
	struct vm_def *def = &vm->cfg->def;
	unsigned rest = def->nnics - i - 1;

	memmove(&def->nics[i], &def->nics[i + 1], rest * sizeof(def->nics[0]));
	memmove(&vm->nic_link[i], &vm->nic_link[i + 1], rest * sizeof(vm->nic_link[0]));
	memmove(&vm->cfg->net_fds[i], &vm->cfg->net_fds[i + 1], rest * sizeof(vm->cfg->net_fds[0]));
	memmove(&vm->cfg->vhost_fds[i], &vm->cfg->vhost_fds[i + 1],
		rest * sizeof(vm->cfg->vhost_fds[0]));
	def->nnics--;
	memset(&def->nics[def->nnics], 0, sizeof(def->nics[0]));
	memset(&vm->nic_link[def->nnics], 0, sizeof(vm->nic_link[0]));
	for (unsigned q = 0; q < VMDEF_NET_QUEUES_MAX; q++)
		vm->cfg->net_fds[def->nnics][q] = vm->cfg->vhost_fds[def->nnics][q] = -1;
}

/* Destroy the card vd at slot s (vCPUs stopped): its state sections, hooks, the device. */
static void hp_destroy_card(struct vm *vm, struct virtio_dev *vd, unsigned s)
{
	for (unsigned k = 0; k < DEVICE_STATES && virtio_net_class.state[k].name; k++) {
		char name[STATE_NAME_MAX + 1];

		device_state_name(&virtio_net_class, k, s, name);
		(void)state_unregister(&vm->state, name);
	}
	vm_forget_device(vm, vd);
	virtio_dev_destroy(vd); /* closes the tap */
}

/* Take the adapter at slot s off the bus and out of the description: vCPUs stopped (a vCPU
 * could be inside its BAR handlers), then the VM carries on. When they cannot be stopped the
 * card stays, untouched (-errno): the eject path tries again later, nic-remove reports it. */
static int hp_teardown(struct hotplug *h, unsigned s)
{
	struct vm *vm = h->vm;
	int i = hp_nic_at(&vm->cfg->def, s);
	bool was_paused = vm_is_paused(vm);
	char tap[VMDEF_TAP_MAX + 1], mac[VMDEF_MAC_LEN + 1];
	int r;

	if (i < 0 || !vm->nic_link[i].opaque)
		return 0;
	if (!was_paused) {
		r = fail_point("hotplug-pause") ?: vm_pause(vm);
		if (r)
			return r;
	}
	uint8_t addr[6];

	snprintf(tap, sizeof(tap), "%s", vm->cfg->def.nics[i].tap);
	virtio_net_nic_mac(&vm->cfg->def.nics[i], addr);
	vmdef_mac_format(addr, mac);
	hp_destroy_card(vm, vm->nic_link[i].opaque, s);
	hp_forget_nic(vm, (unsigned)i);
	log_info("pci hot plug: network adapter %s (%s) at slot %u removed", tap, mac, s);
	pthread_mutex_lock(&h->lock);
	pcihp_regs_gone(&h->regs, s);
	pthread_mutex_unlock(&h->lock);
	if (!was_paused && vm_resume(vm))
		log_err("pci hot plug: cannot resume after removing slot %u", s);
	return 0;
}

/* How long a teardown that could not pause the VM waits before it tries again: the control
 * socket and the devices are served meanwhile (each try may itself wait for the disks' budget). */
#define HP_RETRY_MS 1000

static void hp_take_ejected(struct hotplug *h)
{
	uint32_t ej, failed = 0;

	pthread_mutex_lock(&h->lock);
	ej = pcihp_regs_take_ejected(&h->regs);
	pthread_mutex_unlock(&h->lock);
	for (unsigned s = 1; s < 32; s++) {
		int r;

		if (!(ej & 1u << s))
			continue;
		r = hp_teardown(h, s);
		if (r) {
			log_warn_ratelimited(
				&hp_rl,
				"pci hot plug: slot %u ejected but the VM did not pause "
				"(%s): trying again in %d ms",
				s, vm_pause_error(r), HP_RETRY_MS);
			failed |= 1u << s;
		}
	}
	if (failed) {
		struct itimerspec in = {.it_value = {.tv_sec = HP_RETRY_MS / 1000,
						     .tv_nsec = HP_RETRY_MS % 1000 * 1000000L}};

		pthread_mutex_lock(&h->lock);
		h->regs.ejected |= failed;
		pthread_mutex_unlock(&h->lock);
		if (timerfd_settime(h->retry_fd, 0, &in, NULL))
			log_err("pci hot plug: cannot arm the retry timer: %s", strerror(errno));
	}
}

static void hp_eject_cb(void *opaque, uint32_t events)
{
	struct hotplug *h = opaque;
	uint64_t n;

	(void)events;
	if (read(h->eject_fd, &n, sizeof(n)) < 0)
		return;
	hp_take_ejected(h);
}

static void hp_retry_cb(void *opaque, uint32_t events)
{
	struct hotplug *h = opaque;
	uint64_t n;

	(void)events;
	if (read(h->retry_fd, &n, sizeof(n)) < 0)
		return;
	hp_take_ejected(h);
}

/* A VM reset: what the guest has not read yet it finds by scanning the bus at boot. A removal
 * stays pending (the next guest is asked again once it enables the GPE). */
static void hp_reset(void *opaque)
{
	struct hotplug *h = opaque;

	bool pending;

	pthread_mutex_lock(&h->lock);
	h->regs.up = 0;
	pending = h->regs.down != 0;
	pthread_mutex_unlock(&h->lock);
	if (pending)
		machine_raise_gpe(&h->vm->machine, PCIHP_GPE);
}

int hotplug_create(struct vm *vm, char *err, size_t errlen)
{
	struct hotplug *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->vm = vm;
	pthread_mutex_init(&h->lock, NULL);
	h->regs.slots = pcihp_slots(&vm->cfg->def);
	h->eject_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	h->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	r = h->eject_fd < 0 || h->retry_fd < 0 ? -errno : 0;
	r = r ?: bus_register(&vm->pio, PORT_PCIHP, PCIHP_SIZE, &hp_ops, h, "pci-hotplug");
	r = r ?: machine_add_reset_hook(&vm->machine, hp_reset, h);
	r = r ?: loop_add(vm->loop, h->eject_fd, EPOLLIN, hp_eject_cb, h);
	r = r ?: loop_add(vm->loop, h->retry_fd, EPOLLIN, hp_retry_cb, h);
	if (r) {
		snprintf(err, errlen, "PCI hot plug controller set-up: %s", strerror(-r));
		if (h->eject_fd >= 0) {
			loop_del(vm->loop, h->eject_fd);
			close(h->eject_fd);
		}
		if (h->retry_fd >= 0)
			close(h->retry_fd);
		free(h);
		return r;
	}
	vm->hotplug = h;
	return 0;
}

/* The adapters are torn down with the other devices (their teardown hooks). */
void hotplug_destroy(struct vm *vm)
{
	struct hotplug *h = vm->hotplug;

	if (!h)
		return;
	close(h->eject_fd);
	close(h->retry_fd);
	vm->hotplug = NULL; /* its port range keeps it alive to the end of the process */
}

/* The adapter with MAC mac: its index, or -1. */
static int hp_nic_by_mac(const struct vm_def *def, const uint8_t mac[6])
{
	uint8_t m[6];

	for (unsigned i = 0; i < def->nnics; i++) {
		virtio_net_nic_mac(&def->nics[i], m);
		if (!memcmp(m, mac, 6))
			return (int)i;
	}
	return -1;
}

int hotplug_nic_add(struct vm *vm, const char *tapname, const char *mac, enum vm_vhost vhost,
		    unsigned npairs, const int *taps, const int *vhosts, unsigned *slot, char *err,
		    size_t errlen)
{
	struct hotplug *h = vm->hotplug;
	struct vm_def *def = &vm->cfg->def;
	struct virtio_dev *vd = NULL;
	struct vm_nic *nic;
	uint8_t addr[6];
	unsigned s, i;
	int r = -EINVAL;

	if (!h) {
		snprintf(err, errlen, "this VM has no PCI hot plug controller");
		r = -ENODEV;
		goto fail;
	}
	if (vm_is_paused(vm)) {
		snprintf(err, errlen, "the VM is paused: resume it before adding an adapter");
		r = -EBUSY;
		goto fail;
	}
	/* A pair per vCPU at most, as for the adapters the VM starts with (nets[].queues). */
	if (npairs < 1 || npairs > VMDEF_NET_QUEUES_MAX || npairs > def->cpus) {
		snprintf(err, errlen,
			 "%u queue pairs: the card takes 1 to the VM's %u vCPU%s (at most %d)",
			 npairs, def->cpus, def->cpus == 1 ? "" : "s", VMDEF_NET_QUEUES_MAX);
		goto fail;
	}
	if (!vmdef_tap_ok(tapname)) {
		snprintf(err, errlen,
			 "tap: a name of 1 to %d characters, without spaces, control characters, "
			 "'/', ':', ',' or '='",
			 VMDEF_TAP_MAX);
		goto fail;
	}
	if (*mac) {
		if (vmdef_mac_parse(mac, addr)) { /* exactly xx:..:xx, unicast */
			snprintf(err, errlen,
				 "mac '%.32s': not a unicast MAC address (xx:xx:xx:xx:xx:xx)", mac);
			goto fail;
		}
	} else {
		virtio_net_default_mac(tapname, addr);
	}
	if (hp_nic_by_mac(def, addr) >= 0) {
		char m[VMDEF_MAC_LEN + 1];

		vmdef_mac_format(addr, m);
		snprintf(err, errlen, "MAC %s is in use by another adapter of this VM", m);
		r = -EEXIST;
		goto fail;
	}
	if (def->nnics == VMDEF_MAX_NICS) {
		snprintf(err, errlen,
			 "the VM has %d network adapters already, the most it can have",
			 VMDEF_MAX_NICS);
		r = -ENOSPC;
		goto fail;
	}
	if (*slot) { /* the description's (keeld keeps slots stable) */
		s = *slot;
		if (s > 31 || !(h->regs.slots & 1u << s) || pci_slot_used(vm->pci, s)) {
			snprintf(err, errlen, "PCI slot %u is not a free hot-pluggable slot", s);
			r = -EBUSY;
			goto fail;
		}
	} else {
		for (s = 1; s < 32; s++)
			if ((h->regs.slots & 1u << s) && !pci_slot_used(vm->pci, s))
				break;
		if (s == 32) {
			snprintf(err, errlen, "no free hot-pluggable PCI slot left");
			r = -ENOSPC;
			goto fail;
		}
	}
	/* The description first: the card is made from it, and a save records it. */
	i = def->nnics++;
	nic = &def->nics[i];
	memset(nic, 0, sizeof(*nic));
	snprintf(nic->tap, sizeof(nic->tap), "%s", tapname);
	vmdef_mac_format(addr, nic->mac);
	nic->pci_slot = (uint8_t)s;
	nic->queues = (uint8_t)npairs; /* keeld passed a tap queue per pair (docs/virtio.md) */
	nic->vhost = vhost;
	/* On the main loop's thread, jailed: vhost_net_open's VHOST_SET_OWNER and
	 * VHOST_GET_FEATURES are in its seccomp rules for this (seccomp_rules.c). */
	r = virtio_net_attach(&vm->machine, i, taps, vhosts, &vd, err, errlen);
	taps = vhosts = NULL; /* taken over */
	r = r ?: device_state_register(&vm->machine, &virtio_net_class, s, vd);
	r = r ?: fail_point("hotplug-add");
	if (r) {
		/* Not published: the card is pending on the bus (pci.h), no vCPU can reach it, so
		 * it goes at once, the vCPUs running. */
		if (vd)
			hp_destroy_card(vm, vd, s);
		hp_forget_nic(vm, i);
		if (!err[0])
			snprintf(err, errlen, "cannot attach the card: %s", strerror(-r));
		goto fail;
	}
	/* The whole add succeeded: from here the guest may be inside it, and only
	 * hp_teardown (vCPUs stopped) takes it away. */
	pci_dev_publish(&vd->pci);
	pthread_mutex_lock(&h->lock);
	h->regs.up |= 1u << s;
	pthread_mutex_unlock(&h->lock);
	machine_raise_gpe(&vm->machine, PCIHP_GPE);
	log_info("pci hot plug: network adapter %s (%s) added at slot %u, %u queue pair%s",
		 nic->tap, nic->mac, s, npairs, npairs == 1 ? "" : "s");
	*slot = s;
	return 0;
fail:
	virtio_net_close_fds(taps, npairs);
	virtio_net_close_fds(vhosts, npairs);
	return r;
}

int hotplug_nic_remove(struct vm *vm, unsigned slot, const char *mac, bool force, char *err,
		       size_t errlen)
{
	struct hotplug *h = vm->hotplug;
	const struct vm_def *def = &vm->cfg->def;
	uint8_t addr[6];
	int i = -1, r;
	unsigned s;

	if (!h) {
		snprintf(err, errlen, "this VM has no PCI hot plug controller");
		return -ENODEV;
	}
	if (slot)
		i = hp_nic_at(def, slot);
	else if (!vmdef_mac_parse(mac, addr))
		i = hp_nic_by_mac(def, addr);
	if (i < 0 || !vm->nic_link[i].opaque) {
		if (slot)
			snprintf(err, errlen, "no network adapter at slot %u", slot);
		else
			snprintf(err, errlen, "no network adapter with MAC %.32s", mac);
		return -ENOENT;
	}
	s = def->nics[i].pci_slot;
	if (!(h->regs.slots & 1u << s)) {
		snprintf(err, errlen, "the adapter at slot %u is not hot-pluggable", s);
		return -EINVAL;
	}
	if (force) {
		r = hp_teardown(h, s);
		if (r)
			snprintf(err, errlen, "cannot pause the VM to remove it: %s",
				 vm_pause_error(r));
		return r;
	}
	pthread_mutex_lock(&h->lock);
	h->regs.down |= 1u << s;
	pthread_mutex_unlock(&h->lock);
	machine_raise_gpe(&vm->machine, PCIHP_GPE);
	log_info("pci hot plug: asked the guest to eject slot %u (%s)", s, def->nics[i].mac);
	return 0;
}

int hotplug_nic_index(struct vm *vm, const char *mac, unsigned *index)
{
	uint8_t addr[6];
	int i;

	if (vmdef_mac_parse(mac, addr))
		return -ENOENT;
	i = hp_nic_by_mac(&vm->cfg->def, addr);
	if (i < 0)
		return -ENOENT;
	*index = (unsigned)i;
	return 0;
}

const char *hotplug_save_blocker(struct vm *vm)
{
	struct hotplug *h = vm->hotplug;
	uint32_t up, down;

	if (!h)
		return NULL;
	pthread_mutex_lock(&h->lock);
	up = h->regs.up;
	down = h->regs.down | h->regs.ejected;
	pthread_mutex_unlock(&h->lock);
	if (down)
		return "a network adapter's removal is under way (the guest has not ejected it "
		       "yet): "
		       "wait for it, or remove it with force";
	if (up)
		return "a network adapter was just added and the guest has not seen it yet: try "
		       "again in a moment";
	return NULL;
}

void hotplug_nic_list(struct vm *vm,
		      void (*emit)(void *ctx, unsigned slot, const char *tap, const char *mac,
				   bool removing),
		      void *ctx)
{
	struct hotplug *h = vm->hotplug;
	const struct vm_def *def = &vm->cfg->def;
	uint32_t down = 0;
	char mac[VMDEF_MAC_LEN + 1];
	uint8_t addr[6];

	if (h) {
		pthread_mutex_lock(&h->lock);
		down = h->regs.down | h->regs.ejected;
		pthread_mutex_unlock(&h->lock);
	}
	for (unsigned i = 0; i < def->nnics; i++) {
		unsigned s = def->nics[i].pci_slot;

		virtio_net_nic_mac(&def->nics[i], addr);
		vmdef_mac_format(addr, mac);
		emit(ctx, s, def->nics[i].tap, mac, s < 32 && (down & 1u << s));
	}
}
