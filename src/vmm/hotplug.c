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
#include <unistd.h>

#include "lib/log.h"
#include "vmm/dev/pcihp_regs.h"
#include "vmm/loop.h"
#include "vmm/pci.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

struct hp_card {
	struct virtio_dev *vd; /* NULL: no hot-added card at this slot */
	char tap[VMDEF_TAP_MAX + 1];
	char mac[VMDEF_MAC_LEN + 1];
};

struct hotplug {
	struct vm *vm;
	int eject_fd; /* eventfd: a vCPU thread saw an eject, the main thread tears down */
	/* lock protects regs and ejected (vCPU threads and the main thread) */
	pthread_mutex_t lock;
	struct pcihp_regs regs;
	uint32_t ejected;	  /* slots the guest ejected, not torn down yet */
	struct hp_card cards[32]; /* main thread only */
	bool save_blocked;	  /* main thread only */
};

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
	if (s)
		h->ejected |= 1u << s;
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

/* Take the card at slot s off the bus: vCPUs stopped (a vCPU could be inside its BAR
 * handlers), its hooks dropped, the device destroyed, the VM carries on. */
static int hp_teardown(struct hotplug *h, unsigned s)
{
	struct vm *vm = h->vm;
	struct hp_card *c = &h->cards[s];
	bool was_paused = vm_is_paused(vm);
	int r = 0;

	if (!c->vd)
		return 0;
	if (!was_paused) {
		r = vm_pause(vm);
		if (r)
			return r;
	}
	vm_forget_device(vm, c->vd);
	virtio_dev_destroy(c->vd); /* closes the tap */
	log_info("pci hot plug: network adapter %s (%s) at slot %u removed", c->tap, c->mac, s);
	memset(c, 0, sizeof(*c));
	pthread_mutex_lock(&h->lock);
	h->regs.down &= ~(1u << s);
	h->regs.up &= ~(1u << s);
	pthread_mutex_unlock(&h->lock);
	if (!was_paused && vm_resume(vm))
		log_err("pci hot plug: cannot resume after removing slot %u", s);
	return 0;
}

static void hp_eject_cb(void *opaque, uint32_t events)
{
	struct hotplug *h = opaque;
	uint64_t n;
	uint32_t ej;

	if (read(h->eject_fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&h->lock);
	ej = h->ejected;
	h->ejected = 0;
	pthread_mutex_unlock(&h->lock);
	for (unsigned s = 1; s < 32; s++) {
		int r;

		if (!(ej & 1u << s))
			continue;
		r = hp_teardown(h, s);
		if (r) {
			/* Not quiesced: try again at the next wake-up. */
			log_err("pci hot plug: slot %u ejected but the VM did not pause (%s): "
				"trying again",
				s, vm_pause_error(r));
			pthread_mutex_lock(&h->lock);
			h->ejected |= 1u << s;
			pthread_mutex_unlock(&h->lock);
			n = 1;
			if (write(h->eject_fd, &n, sizeof(n)) != sizeof(n))
				log_warn("pci hot plug: cannot wake the main thread");
		}
	}
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
	r = h->eject_fd < 0 ? -errno : 0;
	r = r ?: bus_register(&vm->pio, PORT_PCIHP, PCIHP_SIZE, &hp_ops, h, "pci-hotplug");
	r = r ?: machine_add_reset_hook(&vm->machine, hp_reset, h);
	r = r ?: loop_add(vm->loop, h->eject_fd, EPOLLIN, hp_eject_cb, h);
	if (r) {
		snprintf(err, errlen, "PCI hot plug controller set-up: %s", strerror(-r));
		if (h->eject_fd >= 0)
			close(h->eject_fd);
		free(h);
		return r;
	}
	vm->hotplug = h;
	return 0;
}

/* Hot-added cards are torn down with the other devices (their teardown hooks). */
void hotplug_destroy(struct vm *vm)
{
	struct hotplug *h = vm->hotplug;

	if (!h)
		return;
	close(h->eject_fd);
	vm->hotplug = NULL; /* its port range keeps it alive to the end of the process */
}

static bool hp_mac_in_use(struct hotplug *h, const uint8_t mac[6])
{
	const struct vm_def *def = &h->vm->cfg->def;
	uint8_t m[6];

	for (unsigned i = 0; i < def->nnics; i++) {
		if (!def->nics[i].mac[0] || vmdef_mac_parse(def->nics[i].mac, m))
			virtio_net_default_mac(def->nics[i].tap, m);
		if (!memcmp(m, mac, 6))
			return true;
	}
	for (unsigned s = 1; s < 32; s++)
		if (h->cards[s].vd && !vmdef_mac_parse(h->cards[s].mac, m) && !memcmp(m, mac, 6))
			return true;
	return false;
}

static void hp_block_save(struct hotplug *h)
{
	if (h->save_blocked)
		return;
	if (machine_block_save(&h->vm->machine,
			       "a network adapter was hot-added or removed: the saved state of a "
			       "changed device set is not supported yet (stop and start the VM)") ==
	    0)
		h->save_blocked = true;
}

int hotplug_nic_add(struct vm *vm, const char *tapname, const char *mac, int tap, unsigned *slot,
		    char *err, size_t errlen)
{
	struct hotplug *h = vm->hotplug;
	struct vm_nic spec;
	struct virtio_dev *vd = NULL;
	uint8_t addr[6];
	unsigned s;
	int r = -EINVAL;

	memset(&spec, 0, sizeof(spec));
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
	if (!*tapname || strlen(tapname) > VMDEF_TAP_MAX) {
		snprintf(err, errlen, "tap: a name of 1 to %d characters", VMDEF_TAP_MAX);
		goto fail;
	}
	snprintf(spec.tap, sizeof(spec.tap), "%s", tapname);
	if (*mac) {
		if (strlen(mac) > VMDEF_MAC_LEN || vmdef_mac_parse(mac, addr) || (addr[0] & 1)) {
			snprintf(err, errlen,
				 "mac '%.32s': not a unicast MAC address (xx:xx:xx:xx:xx:xx)", mac);
			goto fail;
		}
	} else {
		virtio_net_default_mac(tapname, addr);
	}
	vmdef_mac_format(addr, spec.mac);
	if (hp_mac_in_use(h, addr)) {
		snprintf(err, errlen, "MAC %s is in use by another adapter of this VM", spec.mac);
		r = -EEXIST;
		goto fail;
	}
	for (s = 1; s < 32; s++)
		if ((h->regs.slots & 1u << s) && !h->cards[s].vd && !pci_slot_used(vm->pci, s))
			break;
	if (s == 32) {
		snprintf(err, errlen, "no free hot-pluggable PCI slot left");
		r = -ENOSPC;
		goto fail;
	}
	spec.pci_slot = (uint8_t)s;
	r = virtio_net_create(&vm->machine, &spec, tap, &vd, err, errlen);
	tap = -1; /* taken over */
	if (r)
		goto fail;
	r = virtio_dev_keep(&vm->machine, vd);
	if (r) {
		vm_forget_device(vm, vd);
		virtio_dev_destroy(vd);
		snprintf(err, errlen, "too many devices: %s", strerror(-r));
		goto fail;
	}
	h->cards[s].vd = vd;
	snprintf(h->cards[s].tap, sizeof(h->cards[s].tap), "%s", spec.tap);
	snprintf(h->cards[s].mac, sizeof(h->cards[s].mac), "%s", spec.mac);
	hp_block_save(h);
	pthread_mutex_lock(&h->lock);
	h->regs.up |= 1u << s;
	pthread_mutex_unlock(&h->lock);
	machine_raise_gpe(&vm->machine, PCIHP_GPE);
	log_info("pci hot plug: network adapter %s (%s) added at slot %u", spec.tap, spec.mac, s);
	*slot = s;
	return 0;
fail:
	if (tap >= 0)
		close(tap);
	return r;
}

int hotplug_nic_remove(struct vm *vm, unsigned slot, const char *mac, bool force, char *err,
		       size_t errlen)
{
	struct hotplug *h = vm->hotplug;
	unsigned s = 0;
	int r;

	if (!h) {
		snprintf(err, errlen, "this VM has no PCI hot plug controller");
		return -ENODEV;
	}
	for (unsigned i = 1; i < 32 && !s; i++)
		if (h->cards[i].vd && (slot ? i == slot : !strcasecmp(h->cards[i].mac, mac)))
			s = i;
	if (!s) {
		if (slot)
			snprintf(err, errlen, "no hot-added network adapter at slot %u", slot);
		else
			snprintf(err, errlen, "no hot-added network adapter with MAC %.32s", mac);
		return -ENOENT;
	}
	hp_block_save(h);
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
	log_info("pci hot plug: asked the guest to eject slot %u (%s)", s, h->cards[s].mac);
	return 0;
}

void hotplug_nic_list(struct vm *vm,
		      void (*emit)(void *ctx, unsigned slot, const char *tap, const char *mac,
				   bool removing),
		      void *ctx)
{
	struct hotplug *h = vm->hotplug;
	uint32_t down;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	down = h->regs.down;
	pthread_mutex_unlock(&h->lock);
	for (unsigned s = 1; s < 32; s++)
		if (h->cards[s].vd)
			emit(ctx, s, h->cards[s].tap, h->cards[s].mac, down & 1u << s);
}
