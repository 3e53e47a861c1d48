/* SPDX-License-Identifier: Apache-2.0 */
/* The fuzz targets' machine: every machine_* call, guest RAM, buses, the PCI host bridge,
 * KVM's ioeventfd matching, MSI routes, state sections and a character back end. */
#include "fake_machine.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/bus.h"
#include "vmm/chardev.h"
#include "vmm/mem.h"
#include "vmm/pci.h"
#include "vmm/state.h"
#include "vmm/x86/layout.h"

#define MAX_HOOKS      32
#define MAX_IOEVENTFDS 64
#define MAX_ROUTES     (PCI_MAX_SLOTS * PCI_MSIX_MAX_VEC)
#define MAX_CHARDEVS   4
#define CHARDEV_HELD   1024 /* as chardev.c's input buffer */

struct hook {
	void (*fn)(void *opaque);
	void *opaque;
};

struct ioeventfd {
	uint64_t addr;
	unsigned len;
	int fd;
};

struct chardev {
	const struct chardev_client_ops *ops;
	void *opaque;
	uint8_t held[CHARDEV_HELD];
	size_t nheld;
	bool ready; /* the device asked for held input again */
	uint64_t out;
	uint8_t out_sum;
};

static struct {
	bool built;
	bool running; /* machine_built: a KVM VM whose vCPUs may run (a hot add) */
	struct vm_def def;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct machine m;
	struct hook reset[MAX_HOOKS];
	unsigned nreset;
	machine_pause_fn pause[MAX_HOOKS];
	void *pause_opaque[MAX_HOOKS];
	unsigned npause;
	machine_report_fn report[MAX_HOOKS];
	void *report_opaque[MAX_HOOKS];
	unsigned nreport;
	struct state_registry state;
	enum vm_event event;
	bool ioeventfd_on;
	struct ioeventfd ioeventfds[MAX_IOEVENTFDS];
	unsigned nioeventfds;
	struct kvm_irq_routing_entry routes[MAX_ROUTES];
	unsigned nroutes;
	struct chardev *chardevs[MAX_CHARDEVS];
} fake;

void fake_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: check failed: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- machine.h ---- */

void machine_request(struct machine *m, enum vm_event ev, int status, const char *fmt, ...)
{
	if (fake.event == VM_EVENT_NONE)
		fake.event = ev;
}

void machine_set_irq(struct machine *m, unsigned gsi, int level)
{
	FAKE_CHECK(gsi < 24, "interrupt line %u does not exist", gsi);
}

/* KVM takes a whole routing table; keel's MSI routes must each name a GSI above the
 * IOAPIC's once, with an address the LAPIC accepts. */
int machine_set_msi_routes(struct machine *m, const struct kvm_irq_routing_entry *extra,
			   unsigned nextra)
{
	unsigned i, j;

	FAKE_CHECK(nextra <= MAX_ROUTES, "%u MSI routes", nextra);
	for (i = 0; i < nextra; i++) {
		const struct kvm_irq_routing_entry *e = &extra[i];

		FAKE_CHECK(e->type == KVM_IRQ_ROUTING_MSI, "route %u has type %u", i, e->type);
		FAKE_CHECK(e->gsi >= 24 && e->gsi < 1024, "route %u for GSI %u", i, e->gsi);
		FAKE_CHECK((e->u.msi.address_lo & 0xfff00000u) == 0xfee00000u,
			   "route for GSI %u to address 0x%x", e->gsi, e->u.msi.address_lo);
		for (j = 0; j < i; j++)
			FAKE_CHECK(extra[j].gsi != e->gsi, "two routes for GSI %u", e->gsi);
	}
	memcpy(fake.routes, extra, nextra * sizeof(*extra));
	fake.nroutes = nextra;
	return 0;
}

int machine_irqfd(struct machine *m, unsigned gsi, int fd, bool assign)
{
	return -ENODEV;
}

int machine_rom_window(struct machine *m, uint64_t gpa, uint64_t size, const void *hva)
{
	return -ENODEV; /* never built: every access reaches the bus */
}

int machine_ioeventfd(struct machine *m, uint64_t addr, unsigned len, int fd, bool assign)
{
	unsigned i;

	if (!fake.ioeventfd_on)
		return -ENODEV;
	FAKE_CHECK(len == 1 || len == 2 || len == 4 || len == 8, "ioeventfd of %u bytes", len);
	for (i = 0; i < fake.nioeventfds; i++)
		if (fake.ioeventfds[i].addr == addr && fake.ioeventfds[i].len == len)
			break;
	if (!assign) {
		/* A device deassigns only what it assigned. */
		FAKE_CHECK(i < fake.nioeventfds && fake.ioeventfds[i].fd == fd,
			   "deassigning an ioeventfd at 0x%llx that is not there",
			   (unsigned long long)addr);
		fake.ioeventfds[i] = fake.ioeventfds[--fake.nioeventfds];
		return 0;
	}
	if (i < fake.nioeventfds)
		return -EEXIST; /* as KVM: same address and length, no data match */
	if (fake.nioeventfds == MAX_IOEVENTFDS)
		return -ENOSPC;
	fake.ioeventfds[fake.nioeventfds++] = (struct ioeventfd){addr, len, fd};
	return 0;
}

bool machine_built(struct machine *m)
{
	return fake.running;
}

void fake_machine_running(bool running)
{
	fake.running = running;
}

int machine_add_reset_hook(struct machine *m, machine_reset_fn fn, void *opaque)
{
	if (fake.nreset == MAX_HOOKS)
		return -ENOSPC;
	fake.reset[fake.nreset++] = (struct hook){fn, opaque};
	return 0;
}

int machine_add_pause_hook(struct machine *m, machine_pause_fn fn, void *opaque)
{
	if (fake.npause == MAX_HOOKS)
		return -ENOSPC;
	fake.pause[fake.npause] = fn;
	fake.pause_opaque[fake.npause++] = opaque;
	return 0;
}

int machine_add_report(struct machine *m, machine_report_fn fn, void *opaque)
{
	if (fake.nreport >= MAX_HOOKS)
		return -ENOSPC;
	fake.report[fake.nreport] = fn;
	fake.report_opaque[fake.nreport++] = opaque;
	return 0;
}

/* Drop the entries of one hook table whose opaque is obj, the others in order. */
#define FORGET(fns, opaques, n, obj)                                                               \
	do {                                                                                       \
		unsigned k_ = 0;                                                                   \
		for (unsigned i_ = 0; i_ < (n); i_++) {                                            \
			if ((opaques)[i_] == (obj))                                                \
				continue;                                                          \
			(fns)[k_] = (fns)[i_];                                                     \
			(opaques)[k_++] = (opaques)[i_];                                           \
		}                                                                                  \
		(n) = k_;                                                                          \
	} while (0)

void machine_forget(struct machine *m, void *obj)
{
	unsigned k = 0;

	for (unsigned i = 0; i < fake.nreset; i++)
		if (fake.reset[i].opaque != obj)
			fake.reset[k++] = fake.reset[i];
	fake.nreset = k;
	FORGET(fake.pause, fake.pause_opaque, fake.npause, obj);
	FORGET(fake.report, fake.report_opaque, fake.nreport, obj);
}

struct machine_report {
	unsigned lines;
};

void machine_report_line(struct machine_report *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	FAKE_CHECK(n >= 0 && !strchr(line, '\n'), "a report line is one line");
	r->lines++;
}

void fake_machine_report(void)
{
	for (unsigned i = 0; i < fake.nreport; i++) {
		struct machine_report r = {0};

		fake.report[i](fake.report_opaque[i], &r);
		FAKE_CHECK(r.lines > 0, "report hook %u says nothing", i);
	}
}

/* Devices live as long as the process: nothing is torn down. */
int machine_add_teardown(struct machine *m, machine_teardown_fn fn, void *opaque)
{
	return 0;
}

int machine_set_power_button(struct machine *m, machine_button_fn fn, void *opaque)
{
	return 0;
}

int machine_set_media(struct machine *m, const struct machine_media_ops *ops, void *opaque)
{
	return 0;
}

int machine_set_gpe(struct machine *m, machine_gpe_fn fn, void *opaque)
{
	return 0;
}

void machine_raise_gpe(struct machine *m, unsigned bit)
{
}

int machine_set_nic_link(struct machine *m, unsigned i, machine_link_fn fn, void *opaque)
{
	return 0;
}

int machine_set_disk_dev(struct machine *m, unsigned i, struct virtio_dev *vd)
{
	return 0;
}

int machine_set_scsi_dev(struct machine *m, struct virtio_dev *vd)
{
	return 0;
}

int machine_add_state_section(struct machine *m, const char *name, uint32_t version, state_fn fn,
			      void *opaque)
{
	return state_register(&fake.state, name, version, fn, opaque);
}

int machine_block_save(struct machine *m, const char *reason)
{
	return state_block(&fake.state, reason);
}

/* ---- the machine ---- */

struct machine *fake_machine(void)
{
	uint8_t *low, *high;

	if (fake.built)
		return &fake.m;
	log_init("fuzz", LOG_ERROR);
	low = malloc(FAKE_RAM_LOW);
	high = malloc(FAKE_RAM_HIGH);
	FAKE_CHECK(low && high, "out of memory");
	fake.mem = (struct guest_mem){
		.ram_size = FAKE_RAM_LOW + FAKE_RAM_HIGH,
		.base = low,
		.nregions = 2,
		.regions = {{0, FAKE_RAM_LOW, low}, {LAYOUT_HIGH_RAM, FAKE_RAM_HIGH, high}}};
	fake.def = (struct vm_def){.cpus = 1, .memory = 64 << 20};
	bus_init(&fake.pio, "pio");
	bus_init(&fake.mmio, "mmio");
	fake.m = (struct machine){
		.def = &fake.def, .mem = &fake.mem, .pio = &fake.pio, .mmio = &fake.mmio};
	FAKE_CHECK(pci_host_create(&fake.m, &fake.m.pci) == 0, "PCI host bridge");
	fake.built = true;
	return &fake.m;
}

void fake_machine_reset(void)
{
	unsigned i;

	memset(fake.mem.regions[0].hva, 0, FAKE_RAM_LOW);
	memset(fake.mem.regions[1].hva, 0, FAKE_RAM_HIGH);
	fake.nioeventfds = 0;
	fake.nroutes = 0;
	for (i = 0; i < fake.nreset; i++)
		fake.reset[i].fn(fake.reset[i].opaque);
	fake.event = VM_EVENT_NONE;
	for (i = 0; i < MAX_CHARDEVS; i++) {
		if (!fake.chardevs[i])
			continue;
		fake.chardevs[i]->nheld = 0;
		fake.chardevs[i]->ready = false;
		fake.chardevs[i]->out = 0;
	}
}

void fake_machine_pause(bool pause)
{
	unsigned i;

	for (i = 0; i < fake.npause; i++)
		FAKE_CHECK(fake.pause[i](fake.pause_opaque[i], pause) == 0, "pause hook %u", i);
}

uint8_t *fake_ram(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(&fake.mem, gpa, len);

	FAKE_CHECK(p, "guest address 0x%llx not in RAM", (unsigned long long)gpa);
	return p;
}

bool fake_ram_holds(const void *p, size_t len)
{
	const uint8_t *b = p;
	unsigned i;

	for (i = 0; i < fake.mem.nregions; i++) {
		const struct mem_region *r = &fake.mem.regions[i];

		if (b >= r->hva && (size_t)(b - r->hva) <= r->size && len <= r->size - (b - r->hva))
			return true;
	}
	return false;
}

uint64_t fake_mmio_read(uint64_t addr, unsigned size)
{
	uint64_t v;

	bus_read(&fake.mmio, addr, size, &v);
	return v;
}

void fake_mmio_write(uint64_t addr, unsigned size, uint64_t value)
{
	uint64_t one = 1;
	unsigned i;

	for (i = 0; i < fake.nioeventfds; i++) {
		if (fake.ioeventfds[i].addr == addr && fake.ioeventfds[i].len == size) {
			FAKE_CHECK(write(fake.ioeventfds[i].fd, &one, sizeof(one)) == sizeof(one),
				   "ioeventfd %d is not an eventfd", fake.ioeventfds[i].fd);
			return;
		}
	}
	bus_write(&fake.mmio, addr, size, value);
}

uint64_t fake_pio_read(uint16_t port, unsigned size)
{
	uint64_t v;

	bus_read(&fake.pio, port, size, &v);
	return v;
}

void fake_pio_write(uint16_t port, unsigned size, uint64_t value)
{
	bus_write(&fake.pio, port, size, value);
}

int fake_ioeventfd_at(uint64_t addr)
{
	unsigned i;

	for (i = 0; i < fake.nioeventfds; i++)
		if (fake.ioeventfds[i].addr == addr)
			return fake.ioeventfds[i].fd;
	return -1;
}

unsigned fake_ioeventfds(void)
{
	return fake.nioeventfds;
}

void fake_ioeventfd_enable(bool on)
{
	fake.ioeventfd_on = on;
}

bool fake_msi_route(unsigned gsi, uint64_t *addr, uint32_t *data)
{
	unsigned i;

	for (i = 0; i < fake.nroutes; i++) {
		if (fake.routes[i].gsi == gsi) {
			*addr = (uint64_t)fake.routes[i].u.msi.address_hi << 32 |
				fake.routes[i].u.msi.address_lo;
			*data = fake.routes[i].u.msi.data;
			return true;
		}
	}
	return false;
}

void fake_machine_save_restore(void)
{
	static struct state_file f;
	uint8_t *a = NULL, *b = NULL;
	size_t alen, blen;
	char err[256];

	FAKE_CHECK(state_save(&fake.state, &a, &alen, err, sizeof(err)) == 0, "save: %s", err);
	FAKE_CHECK(state_parse(a, alen, &f, err, sizeof(err)) == 0, "parse: %s", err);
	FAKE_CHECK(state_load(&fake.state, &f, STATE_CHECK, err, sizeof(err)) == 0,
		   "a state just saved fails its check: %s", err);
	FAKE_CHECK(state_load(&fake.state, &f, STATE_LOAD, err, sizeof(err)) == 0,
		   "a state just saved does not load: %s", err);
	FAKE_CHECK(state_save(&fake.state, &b, &blen, err, sizeof(err)) == 0, "save: %s", err);
	FAKE_CHECK(alen == blen && !memcmp(a, b, alen), "a state loaded saves differently");
	free(a);
	free(b);
}

void fake_machine_save(uint8_t **out, size_t *len)
{
	char err[256];

	FAKE_CHECK(state_save(&fake.state, out, len, err, sizeof(err)) == 0, "save: %s", err);
}

int fake_machine_load(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	static struct state_file f;
	int r = state_parse(buf, len, &f, err, errlen);

	r = r ?: state_load(&fake.state, &f, STATE_CHECK, err, errlen);
	return r ?: state_load(&fake.state, &f, STATE_LOAD, err, errlen);
}

/* ---- chardev.h: the target is the host side ---- */

int chardev_open(const struct chardev_spec *spec, struct loop *loop, struct chardev **out,
		 char *err, size_t errlen)
{
	unsigned i;

	for (i = 0; i < MAX_CHARDEVS && fake.chardevs[i]; i++)
		;
	if (i == MAX_CHARDEVS) {
		snprintf(err, errlen, "too many character devices");
		return -ENOSPC;
	}
	fake.chardevs[i] = calloc(1, sizeof(struct chardev));
	if (!fake.chardevs[i])
		return -ENOMEM;
	*out = fake.chardevs[i];
	return 0;
}

void chardev_attach(struct chardev *cd, const struct chardev_client_ops *ops, void *opaque)
{
	cd->ops = ops;
	cd->opaque = opaque;
}

void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) /* every byte read, so the sanitizer checks each one */
		cd->out_sum += buf[i];
	cd->out += len;
}

void chardev_input_ready(struct chardev *cd)
{
	cd->ready = true;
}

void chardev_close(struct chardev *cd)
{
	unsigned i;

	for (i = 0; i < MAX_CHARDEVS; i++)
		if (fake.chardevs[i] == cd)
			fake.chardevs[i] = NULL;
	free(cd);
}

struct chardev *fake_chardev(unsigned i)
{
	return i < MAX_CHARDEVS ? fake.chardevs[i] : NULL;
}

static void chardev_offer(struct chardev *cd)
{
	size_t took;

	if (!cd->nheld || !cd->ops)
		return;
	took = cd->ops->input(cd->opaque, cd->held, cd->nheld);
	FAKE_CHECK(took <= cd->nheld, "the device took %zu bytes of %zu", took, cd->nheld);
	memmove(cd->held, cd->held + took, cd->nheld - took);
	cd->nheld -= took;
}

void fake_chardev_input(struct chardev *cd, const uint8_t *buf, size_t len)
{
	if (len > CHARDEV_HELD - cd->nheld)
		len = CHARDEV_HELD - cd->nheld;
	memcpy(cd->held + cd->nheld, buf, len);
	cd->nheld += len;
	chardev_offer(cd);
}

void fake_chardev_flush(struct chardev *cd)
{
	if (!cd->ready)
		return;
	cd->ready = false;
	chardev_offer(cd);
}

uint64_t fake_chardev_output(struct chardev *cd)
{
	return cd->out;
}
