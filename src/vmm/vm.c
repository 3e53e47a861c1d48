/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "vmm/chardev.h"
#include "vmm/control.h"
#include "vmm/exit_stats.h"
#include "vmm/device.h"
#include "vmm/hotplug.h"
#include "vmm/jail.h"
#include "vmm/jail_prep.h"
#include "vmm/loop.h"
#include "vmm/snapshot.h"
#include "vmm/pci.h"
#include "vmm/seccomp_filter.h"
#include "vmm/vcpu.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/vsock.h"
#include "vmm/x86/acpi_pci.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/fw_cfg.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/nvram.h"

static struct vm *vm_of(struct machine *m)
{
	return (struct vm *)((char *)m - offsetof(struct vm, machine));
}

void machine_request(struct machine *m, enum vm_event ev, int status, const char *fmt, ...)
{
	struct vm *vm = vm_of(m);
	int none = VM_EVENT_NONE;
	uint64_t one = 1;
	va_list ap;

	if (!atomic_compare_exchange_strong(&vm->event, &none, (int)ev))
		return; /* an earlier event already decides how this VM ends */
	vm->event_status = status;
	va_start(ap, fmt);
	vsnprintf(vm->event_detail, sizeof(vm->event_detail), fmt, ap);
	va_end(ap);
	if (write(vm->event_fd, &one, sizeof(one)) < 0)
		log_err("cannot signal VM event: %s", strerror(errno));
}

void machine_set_irq(struct machine *m, unsigned gsi, int level)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(5000, 5);
	int r = kvm_vm_irq_line(atomic_load(&vm_of(m)->vm_fd), gsi, level);

	if (r)
		log_warn_ratelimited(&rl, "KVM_IRQ_LINE gsi %u: %s", gsi, strerror(-r));
}

int machine_irqfd(struct machine *m, unsigned gsi, int fd, bool assign)
{
	int vm_fd = atomic_load(&vm_of(m)->vm_fd);

	return vm_fd < 0 ? -ENODEV : kvm_vm_irqfd(vm_fd, gsi, fd, !assign);
}

int machine_ioeventfd(struct machine *m, uint64_t addr, unsigned len, int fd, bool assign)
{
	int vm_fd = atomic_load(&vm_of(m)->vm_fd);

	return vm_fd < 0 ? -ENODEV : kvm_vm_ioeventfd(vm_fd, addr, len, fd, 0, !assign);
}

/* The memory slots: RAM's regions, the firmware image, the device ROM window. */
#define VM_SLOT_FIRMWARE   MEM_MAX_REGIONS
#define VM_SLOT_ROM_WINDOW (MEM_MAX_REGIONS + 1)

int machine_rom_window(struct machine *m, uint64_t gpa, uint64_t size, const void *hva)
{
	int vm_fd = atomic_load(&vm_of(m)->vm_fd);

	/* KVM deletes a slot given size 0 (the address it had is then ignored). */
	return vm_fd < 0 ? -ENODEV : kvm_vm_set_rom(vm_fd, VM_SLOT_ROM_WINDOW, gpa, size, hva);
}

bool machine_built(struct machine *m)
{
	return atomic_load(&vm_of(m)->vm_fd) >= 0;
}

/* One table of hooks: add fn/opaque at the end, or -ENOSPC. */
#define HOOK_ADD(vm, fns, opaques, n, max, fn, opaque)                                             \
	((vm)->n == (max)                                                                          \
		 ? -ENOSPC                                                                         \
		 : ((vm)->fns[(vm)->n] = (fn), (vm)->opaques[(vm)->n] = (opaque), (vm)->n++, 0))

int machine_add_reset_hook(struct machine *m, machine_reset_fn fn, void *opaque)
{
	struct vm *vm = vm_of(m);

	return HOOK_ADD(vm, reset_fns, reset_opaque, nreset, VM_MAX_RESET_HOOKS, fn, opaque);
}

int machine_add_pause_hook(struct machine *m, machine_pause_fn fn, void *opaque)
{
	struct vm *vm = vm_of(m);

	return HOOK_ADD(vm, pause_fns, pause_opaque, npause, VM_MAX_PAUSE_HOOKS, fn, opaque);
}

int machine_add_report(struct machine *m, machine_report_fn fn, void *opaque)
{
	struct vm *vm = vm_of(m);

	return HOOK_ADD(vm, report_fns, report_opaque, nreport, VM_MAX_REPORT_HOOKS, fn, opaque);
}

struct machine_report {
	void (*emit)(void *ctx, const char *line);
	void *ctx;
};

void machine_report_line(struct machine_report *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	r->emit(r->ctx, line);
}

void vm_report(struct vm *vm, void (*emit)(void *ctx, const char *line), void *ctx)
{
	struct machine_report r = {emit, ctx};

	for (unsigned i = 0; i < vm->nreport; i++)
		vm->report_fns[i](vm->report_opaque[i], &r);
}

static void report_to_log(void *ctx, const char *line)
{
	log_err("%s", line);
}

int machine_add_teardown(struct machine *m, machine_teardown_fn fn, void *opaque)
{
	struct vm *vm = vm_of(m);

	return HOOK_ADD(vm, teardown_fns, teardown_opaque, nteardown, VM_MAX_TEARDOWNS, fn, opaque);
}

int machine_set_power_button(struct machine *m, machine_button_fn fn, void *opaque)
{
	struct vm *vm = vm_of(m);

	if (vm->power_button_fn)
		return -EEXIST;
	vm->power_button_fn = fn;
	vm->power_button_opaque = opaque;
	return 0;
}

int machine_set_gpe(struct machine *m, machine_gpe_fn fn, void *opaque)
{
	struct vm *vm = vm_of(m);

	if (vm->gpe_fn)
		return -EEXIST;
	vm->gpe_fn = fn;
	vm->gpe_opaque = opaque;
	return 0;
}

void machine_raise_gpe(struct machine *m, unsigned bit)
{
	struct vm *vm = vm_of(m);

	if (vm->gpe_fn)
		vm->gpe_fn(vm->gpe_opaque, bit);
}

int machine_set_media(struct machine *m, const struct machine_media_ops *ops, void *opaque)
{
	struct vm *vm = vm_of(m);

	if (vm->media_ops)
		return -EEXIST;
	vm->media_ops = ops;
	vm->media_opaque = opaque;
	return 0;
}

int machine_set_nic_link(struct machine *m, unsigned i, machine_link_fn fn, void *opaque)
{
	struct vm *vm = vm_of(m);

	if (i >= VMDEF_MAX_NICS)
		return -EINVAL;
	if (vm->nic_link[i].fn)
		return -EEXIST;
	vm->nic_link[i].fn = fn;
	vm->nic_link[i].opaque = opaque;
	return 0;
}

int machine_set_disk_dev(struct machine *m, unsigned i, struct virtio_dev *vd)
{
	struct vm *vm = vm_of(m);

	if (i >= VMDEF_MAX_DISKS)
		return -EINVAL;
	if (vm->disk_dev[i])
		return -EEXIST;
	vm->disk_dev[i] = vd;
	return 0;
}

int machine_set_scsi_dev(struct machine *m, struct virtio_dev *vd)
{
	struct vm *vm = vm_of(m);

	if (vm->scsi_dev)
		return -EEXIST;
	vm->scsi_dev = vd;
	return 0;
}

int machine_add_state_section(struct machine *m, const char *name, uint32_t version, state_fn fn,
			      void *opaque)
{
	return state_register(&vm_of(m)->state, name, version, fn, opaque);
}

int machine_block_save(struct machine *m, const char *reason)
{
	return state_block(&vm_of(m)->state, reason);
}

/* Drop every entry whose opaque is obj from one hook table, keeping the others' order. */
#define HOOK_FORGET(vm, fns, opaques, n, obj)                                                      \
	do {                                                                                       \
		unsigned k_ = 0;                                                                   \
		for (unsigned i_ = 0; i_ < (vm)->n; i_++) {                                        \
			if ((vm)->opaques[i_] == (obj))                                            \
				continue;                                                          \
			(vm)->fns[k_] = (vm)->fns[i_];                                             \
			(vm)->opaques[k_++] = (vm)->opaques[i_];                                   \
		}                                                                                  \
		(vm)->n = k_;                                                                      \
	} while (0)

void machine_forget(struct machine *m, void *obj)
{
	struct vm *vm = vm_of(m);

	HOOK_FORGET(vm, reset_fns, reset_opaque, nreset, obj);
	HOOK_FORGET(vm, pause_fns, pause_opaque, npause, obj);
	HOOK_FORGET(vm, report_fns, report_opaque, nreport, obj);
}

void vm_forget_device(struct vm *vm, void *obj)
{
	machine_forget(&vm->machine, obj);
	HOOK_FORGET(vm, teardown_fns, teardown_opaque, nteardown, obj);
}

/* Devices quiesce (pause) or carry on; each change once. A device that does not quiesce
 * fails the pause: every device carries on again and -EBUSY is returned, so that a save,
 * checkpoint or restore never runs beside I/O in flight (docs/keel-vmm.md). */
static int vm_pause_devices(struct vm *vm, bool pause)
{
	if (vm->devices_paused == pause)
		return 0;
	for (unsigned i = 0; i < vm->npause; i++) {
		int r = vm->pause_fns[i](vm->pause_opaque[i], pause);

		if (r && pause) {
			for (unsigned j = 0; j <= i; j++)
				(void)vm->pause_fns[j](vm->pause_opaque[j], false);
			return r;
		}
	}
	vm->devices_paused = pause;
	return 0;
}

/* Interrupt routing as on a PC with an IOAPIC (and as QEMU sets it up): ISA IRQs 0-15 go
 * to both 8259s (except the cascade, 2) and to the IOAPIC, with IRQ 0 on IOAPIC pin 2. */
static int vm_setup_irq_routing_with(int vm_fd, const struct kvm_irq_routing_entry *extra,
				     unsigned nextra)
{
	struct kvm_irq_routing *rt =
		calloc(1, sizeof(*rt) + (64 + nextra) * sizeof(rt->entries[0]));
	unsigned n = 0, i;
	int r;

	if (!rt)
		return -ENOMEM;
	for (i = 0; i < 16; i++) {
		if (i == 2)
			continue;
		rt->entries[n].gsi = i;
		rt->entries[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		rt->entries[n].u.irqchip.irqchip =
			i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		rt->entries[n].u.irqchip.pin = i % 8;
		n++;
	}
	for (i = 0; i < 24; i++) {
		if (i == 2)
			continue;
		rt->entries[n].gsi = i;
		rt->entries[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		rt->entries[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		rt->entries[n].u.irqchip.pin = i == 0 ? 2 : i;
		n++;
	}
	for (i = 0; i < nextra; i++)
		rt->entries[n++] = extra[i];
	rt->nr = n;
	r = kvm_vm_set_gsi_routing(vm_fd, rt);
	free(rt);
	return r;
}

static int vm_setup_irq_routing(int vm_fd)
{
	return vm_setup_irq_routing_with(vm_fd, NULL, 0);
}

int machine_set_msi_routes(struct machine *m, const struct kvm_irq_routing_entry *extra,
			   unsigned nextra)
{
	return vm_setup_irq_routing_with(atomic_load(&vm_of(m)->vm_fd), extra, nextra);
}

/* Map a whole file read-only; the caller unmaps. */
static int vm_map_file(int fd, const char *what, const uint8_t **data, size_t *size, char *err,
		       size_t errlen)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st)) {
		snprintf(err, errlen, "%s: %s", what, strerror(errno));
		return -errno;
	}
	if (st.st_size == 0) {
		snprintf(err, errlen, "%s is empty", what);
		return -EINVAL;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %s: %s", what, strerror(errno));
		return -errno;
	}
	*data = p;
	*size = (size_t)st.st_size;
	return 0;
}

/* Copy ACPI tables and the kernel into (zeroed) guest memory. */
static int vm_load(struct vm *vm, struct boot_entry *entry, char *err, size_t errlen)
{
	static uint8_t acpi[ACPI_MAX_SIZE];
	const struct vm_def *def = &vm->cfg->def;
	struct boot_input in = {.cmdline = def->cmdline ? def->cmdline : "",
				.initrd_path = def->initrd};
	static struct acpi_info info;
	struct acpi_pci pci;
	int r;

	if (vm->fw.kind != VM_FIRMWARE_NONE) {
		/* Firmware places the ACPI tables itself (fw_cfg's table loader). */
		r = firmware_load(&vm->fw, &vm->mem);
		if (r)
			snprintf(err, errlen, "cannot place the firmware's BIOS segment: %s",
				 strerror(-r));
		return r;
	}
	acpi_pci_layout(&pci, &vm->cfg->def, LAYOUT_PCI_ECAM, vm->machine.phys_bits);
	r = acpi_build_with_pci(acpi, LAYOUT_ACPI, vm->cfg->def.cpus, vm->pci ? &pci : NULL, &info);
	if (!r)
		r = mem_write(&vm->mem, LAYOUT_ACPI, acpi, info.size);
	if (r) {
		snprintf(err, errlen, "cannot place the ACPI tables: %s", strerror(-r));
		return r;
	}
	in.rsdp = info.rsdp;
	r = vm_map_file(vm->kernel_fd, vm->cfg->def.kernel, &in.kernel, &in.kernel_size, err,
			errlen);
	if (r)
		return r;
	if (vm->initrd_fd >= 0) {
		r = vm_map_file(vm->initrd_fd, vm->cfg->def.initrd, &in.initrd, &in.initrd_size,
				err, errlen);
		if (r)
			goto out;
	}
	r = bzimage_load(&vm->mem, &in, entry, err, errlen);
	if (r == -ENOEXEC)
		r = multiboot_load(&vm->mem, &in, entry, err, errlen);
	if (r == -ENOEXEC)
		snprintf(err, errlen,
			 "%s is not a kernel keel-vmm can boot (neither a Linux bzImage nor a "
			 "multiboot image)",
			 vm->cfg->def.kernel);
	if (in.initrd)
		munmap((void *)in.initrd, in.initrd_size);
out:
	munmap((void *)in.kernel, in.kernel_size);
	return r;
}

/* Create the KVM VM and its vCPUs, with devices reset and the kernel loaded. */
static int vm_build(struct vm *vm, char *err, size_t errlen)
{
	struct boot_entry entry;
	bool restore = snapshot_pending(vm); /* saved state instead of a kernel boot */
	int vm_fd, r;
	unsigned i;

	r = kvm_vm_create(&vm->kvm, &vm_fd);
	if (r) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(-r));
		return r;
	}
	atomic_store(&vm->vm_fd, vm_fd);
	r = kvm_vm_setup_x86(vm_fd, LAYOUT_TSS, LAYOUT_IDENTITY_MAP);
	if (r) {
		snprintf(err, errlen, "KVM TSS/identity map set-up: %s", strerror(-r));
		return r;
	}
	for (i = 0; i < vm->mem.nregions; i++) {
		const struct mem_region *m = &vm->mem.regions[i];

		r = kvm_vm_set_memory(vm_fd, i, m->gpa, m->size, m->hva);
		if (r) {
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION %llu MiB at 0x%llx: %s",
				 (unsigned long long)(m->size >> 20), (unsigned long long)m->gpa,
				 strerror(-r));
			return r;
		}
	}
	if (vm->fw.kind != VM_FIRMWARE_NONE) {
		r = kvm_vm_set_rom(vm_fd, VM_SLOT_FIRMWARE, firmware_base(&vm->fw), vm->fw.size,
				   vm->fw.image);
		if (r) {
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION (read-only firmware): %s",
				 strerror(-r));
			return r;
		}
	}
	r = kvm_vm_create_irqchip(vm_fd);
	if (!r)
		r = vm_setup_irq_routing(vm_fd);
	if (!r)
		r = kvm_vm_create_pit(vm_fd);
	if (r) {
		snprintf(err, errlen, "in-kernel irqchip and PIT: %s", strerror(-r));
		return r;
	}
	for (i = 0; i < vm->nreset; i++)
		vm->reset_fns[i](vm->reset_opaque[i]);
	r = restore ? 0 : vm_load(vm, &entry, err, errlen);
	if (r)
		return r;
	for (i = 0; i < vm->cfg->def.cpus; i++) {
		/* Firmware starts where the CPU resets to (KVM's reset state); a kernel at its
		 * entry point. */
		bool at_entry = i == 0 && !restore && vm->fw.kind == VM_FIRMWARE_NONE;

		r = vcpu_create(vm, &vm->vcpus[i], i, at_entry ? &entry : NULL, err, errlen);
		if (r) {
			while (i--)
				vcpu_destroy(&vm->vcpus[i]);
			return r;
		}
	}
	return restore ? snapshot_apply(vm, err, errlen) : 0;
}

static int vm_start_vcpus(struct vm *vm)
{
	unsigned i;
	int r;

	for (i = 0; i < vm->cfg->def.cpus; i++) {
		r = vcpu_start(&vm->vcpus[i]);
		if (r) {
			log_err("cannot start vcpu%u thread: %s", i, strerror(-r));
			return r;
		}
		vm->nvcpus_started++;
	}
	return 0;
}

/* Stop and join every vCPU thread, then free the vCPUs and the KVM VM. */
static void vm_teardown(struct vm *vm)
{
	unsigned i;

	pthread_mutex_lock(&vm->run_lock);
	vm->target = VM_STOP;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	for (i = 0; i < vm->nvcpus_started; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (i = 0; i < vm->nvcpus_started; i++)
		vthread_join(&vm->vcpus[i].thread);
	vm->nvcpus_started = 0;
	for (i = 0; i < vm->cfg->def.cpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	if (atomic_load(&vm->vm_fd) >= 0)
		close(atomic_load(&vm->vm_fd));
	atomic_store(&vm->vm_fd, -1);
}

static void vm_finish(struct vm *vm, int status, const char *reason, const char *detail, int sig);

/* How long a reset waits for the devices' requests in flight before it gives up. */
#define VM_RESET_WAIT_MS 60000

/* Tear the KVM VM down and build it again: a fresh boot (guest memory cleared) or, with a
 * saved state opened (snapshot_open), that state. The VM runs or stays paused. */
static int vm_rebuild(struct vm *vm, bool clear_memory, bool paused, char *err, size_t errlen)
{
	long long give_up;
	int r;

	vm_teardown(vm);
	/* Devices are quiet while the machine is rebuilt: nothing reaches the old VM's memory
	 * or the new VM's interrupt controllers before they are in place (vm_create). A reset
	 * waits for requests in flight, a minute at most: a disk that never answers (its requests
	 * would write into the new boot's memory) ends the VM instead of hanging keel-vmm. */
	give_up = clock_mono_ms() + VM_RESET_WAIT_MS;
	while (vm_pause_devices(vm, true)) {
		if (clock_mono_ms() >= give_up) {
			snprintf(
				err, errlen,
				"device requests in flight did not finish within %d s of the reset",
				VM_RESET_WAIT_MS / 1000);
			return -EBUSY;
		}
		log_warn("reset: waiting for device requests in flight to finish");
	}
	/* Devices stop touching guest memory (queues disabled, I/O threads idle) before it is
	 * cleared, so nothing of this boot leaks into the next; vm_build resets them again. */
	for (unsigned i = 0; i < vm->nreset; i++)
		vm->reset_fns[i](vm->reset_opaque[i]);
	if (clear_memory) {
		r = mem_discard(&vm->mem);
		if (r) {
			snprintf(err, errlen, "cannot clear guest memory: %s", strerror(-r));
			return r;
		}
	}
	r = vm_build(vm, err, errlen);
	if (r)
		return r;
	pthread_mutex_lock(&vm->run_lock);
	vm->target = paused ? VM_PAUSE : VM_RUN;
	pthread_mutex_unlock(&vm->run_lock);
	atomic_store(&vm->event, VM_EVENT_NONE);
	if (!paused)
		(void)vm_pause_devices(vm, false);
	r = vm_start_vcpus(vm);
	if (r)
		snprintf(err, errlen, "cannot start the vCPU threads: %s", strerror(-r));
	return r;
}

int vm_reset(struct vm *vm)
{
	char err[256];
	int r = vm_rebuild(vm, true, vm->target == VM_PAUSE, err, sizeof(err));

	if (r)
		log_err("reset: %s", err);
	return r;
}

int vm_restore(struct vm *vm, const char *dir, bool paused, char *err, size_t errlen)
{
	bool was_paused = vm_is_paused(vm);
	int r;

	if (!was_paused) {
		r = vm_pause(vm);
		if (r) {
			snprintf(err, errlen, "cannot pause: %s", vm_pause_error(r));
			return r;
		}
	}
	/* snapshot_open checks everything before it changes anything (guest memory last). */
	r = snapshot_open(vm, dir, err, errlen);
	if (r) {
		if (!was_paused && vm_resume(vm))
			log_err("restore: cannot resume after the refused restore");
		return r;
	}
	r = vm_rebuild(vm, false, paused, err, errlen);
	if (r) {
		log_err("restore from %s: %s; stopping", dir, err);
		vm_finish(vm, 1, "error", "restore failed", 0);
	}
	return r;
}

int vm_pause(struct vm *vm)
{
	unsigned i;
	int r;

	pthread_mutex_lock(&vm->run_lock);
	vm->target = VM_PAUSE;
	pthread_mutex_unlock(&vm->run_lock);
	for (i = 0; i < vm->nvcpus_started; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->run_lock);
	while (vm->parked < vm->nvcpus_started)
		pthread_cond_wait(&vm->run_cond, &vm->run_lock);
	pthread_mutex_unlock(&vm->run_lock);
	r = vm_pause_devices(vm, true);
	if (r) {
		/* A device did not quiesce: the VM carries on as it was. */
		pthread_mutex_lock(&vm->run_lock);
		vm->target = VM_RUN;
		pthread_cond_broadcast(&vm->run_cond);
		pthread_mutex_unlock(&vm->run_lock);
	}
	return r;
}

const char *vm_pause_error(int r)
{
	return r == -EBUSY ? "a device still has requests in flight after 5 s (the worker log "
			     "names it); the VM carries on as before"
			   : strerror(-r);
}

int vm_resume(struct vm *vm)
{
	(void)vm_pause_devices(vm, false);
	pthread_mutex_lock(&vm->run_lock);
	vm->target = VM_RUN;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	return 0;
}

bool vm_is_paused(struct vm *vm)
{
	bool p;

	pthread_mutex_lock(&vm->run_lock);
	p = vm->target == VM_PAUSE;
	pthread_mutex_unlock(&vm->run_lock);
	return p;
}

void vm_power_button(struct vm *vm)
{
	if (vm->power_button_fn)
		vm->power_button_fn(vm->power_button_opaque);
}

static uint64_t host_ram_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

/* The kernel or initrd: passed (--fd given: the worker takes it over) or opened by path. */
static int vm_open_input(const char *path, int given, const char *what, int *fd, char *err,
			 size_t errlen)
{
	struct stat st;

	*fd = given >= 0 ? given : open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -errno;
	}
	if (fstat(*fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a regular file", what, path);
		return -EINVAL;
	}
	/* Said before anything of KVM's; vm_map_file says it again if the file is emptied
	 * before a reboot loads it anew. */
	if (st.st_size == 0) {
		snprintf(err, errlen, "%s is empty", path);
		return -EINVAL;
	}
	return 0;
}

/* The Unix sockets the worker serves (config_socket), before anything takes one (the serial
 * port's is the first, chardev_open): listened on now when keeld passed one or the worker is
 * jailed (it cannot bind in its VM's directory later); else its taker binds it when it is
 * built (jail_listen), so that a worker that fails before leaves no socket. A failure is the
 * taker's to report, with the socket's name. */
static void vm_prepare_sockets(const struct vm_config *cfg)
{
	static const int backlog[CONFIG_NSOCKS] = {
		[CONFIG_SOCK_CONTROL] = CONTROL_BACKLOG,
		[CONFIG_SOCK_SERIAL] = CHARDEV_BACKLOG,
		[CONFIG_SOCK_CONSOLE] = CHARDEV_BACKLOG,
		[CONFIG_SOCK_VSOCK] = VSOCK_BACKLOG,
	};

	for (unsigned s = 0; s < CONFIG_NSOCKS; s++) {
		int given;
		const char *path = config_socket(cfg, (enum config_sock)s, &given);

		if (path && (given >= 0 || cfg->jail))
			jail_prep_listen(path, given, backlog[s]);
	}
}

/*
 * A jailed worker, before it parses any file it was handed (its disks, a saved state, its
 * UEFI variable store): what needs root or a host path is opened now (the status file, the
 * console's file, the variable store's
 * template, its disks' O_DIRECT descriptors: jail_prep.h), then it enters its root as its
 * own uid, without capabilities (jail_enter). Its seccomp filter follows once the machine is
 * built (vm_lock).
 */
static int vm_confine(struct vm *vm, char *err, size_t errlen)
{
	const struct vm_config *cfg = vm->cfg;
	bool vars = cfg->def.nvram || cfg->def.firmware == VM_FIRMWARE_UEFI;

	/* What keeld opened for it (--fd status, state, memory, vars): taken as the files by
	 * path would be, jailed or not. */
	if (cfg->status_fd >= 0) {
		vm->status_fd = cfg->status_fd;
		seccomp_set_status_fd(vm->status_fd);
	}
	if (cfg->state_fd >= 0) {
		int r = snapshot_give(cfg->restore_dir, cfg->state_fd, cfg->memory_fd, err, errlen);

		if (r)
			return r;
	}
	if (cfg->vars_fd >= 0 && vars)
		nvram_give(VMDEF_OVMF_VARS_FILE, cfg->vars_fd);
	else if (cfg->vars_fd >= 0)
		close(cfg->vars_fd);
	if (!cfg->jail)
		return 0;
	if (cfg->status_path) {
		vm->status_fd = open(cfg->status_path,
				     O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
		if (vm->status_fd < 0) {
			snprintf(err, errlen, "cannot open the status file %s: %s",
				 cfg->status_path, strerror(errno));
			return -errno;
		}
		seccomp_set_status_fd(vm->status_fd);
	}
	if (cfg->def.console.present && cfg->host.console.kind == CHARDEV_FILE)
		jail_prep_open(cfg->host.console.path, CHARDEV_FILE_FLAGS, 0644);
	for (unsigned i = 0; i < cfg->def.ndisks; i++)
		if (cfg->disk_fds[i] >= 0 && cfg->def.disks[i].cache == VM_DISK_CACHE_NONE)
			jail_prep_reopen(cfg->disk_fds[i],
					 BLK_DIRECT_FLAGS(cfg->def.disks[i].readonly));
	if (vars && cfg->vars_fd < 0)
		nvram_prepare(VMDEF_OVMF_VARS_FILE);
	if (cfg->restore_dir && cfg->state_fd < 0)
		snapshot_prepare(cfg->restore_dir);
	return jail_enter(cfg, err, errlen);
}

int vm_create(struct vm *vm, struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t host = host_ram_bytes();
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->kvm.fd = vm->kernel_fd = vm->initrd_fd = vm->event_fd = vm->status_fd = -1;
	atomic_store(&vm->vm_fd, -1);
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");
	vm->machine = (struct machine){.def = &cfg->def,
				       .mem = &vm->mem,
				       .pio = &vm->pio,
				       .mmio = &vm->mmio,
				       .console = &cfg->host.console,
				       .disk_fds = cfg->disk_fds,
				       .lun_fds = cfg->lun_fds,
				       .nvram_dir_fd = cfg->nvram_dir_fd,
				       .disk_chains = cfg->disk_chains,
				       .lun_chains = cfg->lun_chains,
				       .net_fds = cfg->net_fds,
				       .vhost_fds = cfg->vhost_fds,
				       .vsock_socket = cfg->host.vsock_socket,
				       .firmware_debug = cfg->firmware_debug};

	r = cfg->def.kernel ? vm_open_input(cfg->def.kernel, cfg->kernel_fd, "kernel",
					    &vm->kernel_fd, err, errlen)
			    : firmware_open(&cfg->def, cfg->firmware_fd, &vm->fw, err, errlen);
	if (!r && vm->fw.kind != VM_FIRMWARE_NONE) {
		vm->machine.firmware_base = firmware_base(&vm->fw);
		vm->machine.firmware = &vm->fw;
	}
	if (!r && cfg->def.initrd)
		r = vm_open_input(cfg->def.initrd, cfg->initrd_fd, "initrd", &vm->initrd_fd, err,
				  errlen);
	if (r)
		return r;
	if (cfg->def.memory > host) {
		snprintf(err, errlen, "--memory %llu MiB is more than this host's %llu MiB of RAM",
			 (unsigned long long)(cfg->def.memory >> 20),
			 (unsigned long long)(host >> 20));
		return -ENOMEM;
	}
	r = kvm_sys_open(&vm->kvm, cfg->kvm_fd, err, errlen);
	if (r)
		return r;
	if (cfg->def.cpus > (unsigned)vm->kvm.max_vcpus) {
		snprintf(err, errlen, "--cpus %u: this host's KVM allows at most %d", cfg->def.cpus,
			 vm->kvm.max_vcpus);
		return -EINVAL;
	}
	r = kvm_sys_supported_cpuid(&vm->kvm, &vm->cpuid);
	if (r) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
		return r;
	}
	/* As QEMU and Firecracker do: a guest programs its timer with one MSR write of an
	 * absolute TSC value (Linux prefers it; Windows too), and a saved deadline restores
	 * after the LAPIC (cpu_state.c). */
	if (kvm_check_extension(vm->kvm.fd, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		cpuid_offer_tsc_deadline(vm->cpuid);
	vm->machine.phys_bits = pci_guest_phys_bits(vm->cpuid);
	r = mem_init(&vm->mem, cfg->def.memory, cfg->def.firmware != VM_FIRMWARE_NONE);
	if (r) {
		snprintf(err, errlen, "cannot reserve %llu MiB of guest memory: %s",
			 (unsigned long long)(cfg->def.memory >> 20), strerror(-r));
		return r;
	}
	vm->vcpus = calloc(cfg->def.cpus, sizeof(*vm->vcpus));
	vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!vm->vcpus || vm->event_fd < 0) {
		snprintf(err, errlen, "out of memory or file descriptors");
		return -ENOMEM;
	}
	for (unsigned i = 0; cfg->exit_stats && i < cfg->def.cpus; i++) {
		vm->vcpus[i].stats = calloc(1, sizeof(*vm->vcpus[i].stats));
		if (!vm->vcpus[i].stats) {
			snprintf(err, errlen, "--exit-stats: out of memory");
			return -ENOMEM;
		}
	}
	r = vcpu_global_init();
	if (!r)
		r = loop_create(&vm->loop);
	if (r) {
		snprintf(err, errlen, "event loop set-up: %s", strerror(-r));
		return r;
	}
	vm_prepare_sockets(cfg);
	r = chardev_open(&cfg->serial, vm->loop, &vm->serial_out, err, errlen);
	if (r)
		return r;
	vm->machine.loop = vm->loop;
	vm->machine.serial_out = vm->serial_out;
	r = vm_confine(vm, err, errlen);
	if (r)
		return r;
	/* The machine: its description's saved-state section, the platform devices, the
	 * vCPUs' and in-kernel chips' sections, the PCI host bridge, the PCI devices. */
	r = snapshot_register_config(vm);
	if (r) {
		snprintf(err, errlen, "saved-state set-up: %s", strerror(-r));
		return r;
	}
	r = devices_create(&vm->machine, DEVICE_BUS_PLATFORM, err, errlen);
	if (r)
		return r;
	r = snapshot_register_machine(vm);
	if (r) {
		snprintf(err, errlen, "saved-state set-up: %s", strerror(-r));
		return r;
	}
	r = pci_host_create(&vm->machine, &vm->pci);
	if (r) {
		snprintf(err, errlen, "PCI host bridge set-up: %s", strerror(-r));
		return r;
	}
	vm->machine.pci = vm->pci;
	/* A restore reads its state first: the devices are made as they were saved. */
	if (cfg->restore_dir) {
		r = snapshot_read(vm, cfg->restore_dir, err, errlen);
		if (r)
			return r;
	}
	r = devices_create(&vm->machine, DEVICE_BUS_PCI, err, errlen);
	r = r ?: hotplug_create(vm, err, errlen);
	if (r)
		return r;
	if (cfg->restore_dir) {
		r = snapshot_open(vm, cfg->restore_dir, err, errlen);
		if (r)
			return r;
	}
	/* Devices wait until the whole machine is built (vm_run lets them go): a device that
	 * raised an interrupt before the vCPUs' LAPIC state is loaded would lose it. Nothing is
	 * in flight yet, so this cannot fail. */
	r = vm_pause_devices(vm, true);
	if (r) {
		snprintf(err, errlen, "cannot quiesce the devices before the first start");
		return r;
	}
	return vm_build(vm, err, errlen);
}

static json_object *vm_status_json(const char *reason, int status, const char *detail, int sig)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "reason", json_object_new_string(reason));
	if (!strcmp(reason, "debug-exit"))
		json_object_object_add(o, "status", json_object_new_int(status));
	if (sig)
		json_object_object_add(o, "signal", json_object_new_int(sig));
	if (detail && *detail)
		json_object_object_add(o, "detail", json_object_new_string(detail));
	return o;
}

/* A jailed worker cannot create files beside its status file: it rewrites the one it opened
 * before the jail. keeld reads it only once the worker has ended, and takes an empty or
 * half-written file for none. */
static void vm_write_status_fd(struct vm *vm, const char *reason, int status, const char *detail,
			       int sig)
{
	json_object *o = vm_status_json(reason, status, detail, sig);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s);

	if (ftruncate(vm->status_fd, 0) || pwrite(vm->status_fd, s, n, 0) != (ssize_t)n ||
	    pwrite(vm->status_fd, "\n", 1, (off_t)n) != 1 || fsync(vm->status_fd))
		log_err("cannot write the status file: %s", strerror(errno));
	json_object_put(o);
}

/* Write the status file atomically: a temporary file, then rename. */
static void vm_write_status(struct vm *vm, const char *reason, int status, const char *detail,
			    int sig)
{
	json_object *o;
	char tmp[4096];
	FILE *f;

	if (vm->status_fd >= 0) {
		vm_write_status_fd(vm, reason, status, detail, sig);
		return;
	}
	if (!vm->cfg->status_path)
		return;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", vm->cfg->status_path) >= (int)sizeof(tmp))
		return;
	o = vm_status_json(reason, status, detail, sig);
	f = fopen(tmp, "w");
	if (f) {
		fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		if (fflush(f) == 0 && fsync(fileno(f)) == 0 && fclose(f) == 0)
			rename(tmp, vm->cfg->status_path);
		else
			unlink(tmp);
	}
	if (!f)
		log_err("cannot write status file %s: %s", vm->cfg->status_path, strerror(errno));
	json_object_put(o);
}

static void vm_finish(struct vm *vm, int status, const char *reason, const char *detail, int sig)
{
	vm->exit_status = status;
	vm_write_status(vm, reason, status, detail, sig);
	loop_stop(vm->loop);
}

/* The main loop learns of an event from a vCPU (or the control socket). */
static void vm_event_cb(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	if (read(vm->event_fd, &v, sizeof(v)) < 0)
		return;
	switch (atomic_load(&vm->event)) {
	case VM_EVENT_POWEROFF:
		vm_finish(vm, 0, "poweroff", NULL, 0);
		break;
	case VM_EVENT_RESET:
		if (vm->cfg->no_reboot) {
			vm_finish(vm, 0, "reboot", NULL, 0);
		} else if (vm_reset(vm)) {
			log_err("VM reset failed; stopping");
			vm_finish(vm, 1, "error", "reset failed", 0);
		}
		break;
	case VM_EVENT_DEBUG_EXIT:
		vm_finish(vm, vm->event_status, "debug-exit", NULL, 0);
		break;
	case VM_EVENT_CRASH:
		vm_report(vm, report_to_log, NULL);
		log_err("VM crashed: %s", vm->event_detail);
		vm_finish(vm, 1, "crash", vm->event_detail, 0);
		break;
	case VM_EVENT_QUIT:
		vm_finish(vm, 0, "quit", NULL, 0);
		break;
	default:
		break;
	}
}

static void vm_signal_cb(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	struct signalfd_siginfo si;

	if (read(vm->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("terminating on signal %u", si.ssi_signo);
	machine_request(&vm->machine, VM_EVENT_SIGNAL, 0, "signal %u", si.ssi_signo);
	vm_finish(vm, 0, "signal", NULL, (int)si.ssi_signo);
}

/* The machine is built and its sockets are listening, inside the jail (vm_confine): what
 * was prepared and not taken is closed, and the seccomp filter goes on before the first
 * guest instruction (jail.h). */
static int vm_lock(struct vm *vm, char *err, size_t errlen)
{
	jail_prep_close();
	return jail_lock(vm->cfg, err, errlen);
}

int vm_run(struct vm *vm)
{
	char err[256];
	sigset_t set;
	int sfd, r;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	vm->signal_fd = sfd;
	if (sfd < 0 || loop_add(vm->loop, sfd, EPOLLIN, vm_signal_cb, vm) ||
	    loop_add(vm->loop, vm->event_fd, EPOLLIN, vm_event_cb, vm)) {
		log_err("cannot watch signals and VM events: %s", strerror(errno));
		return 1;
	}
	if (vm->cfg->control_path) {
		r = control_create(vm, vm->cfg->control_path, &vm->control, err, sizeof(err));
		if (r) {
			log_err("%s", err);
			vm_write_status(vm, "error", 1, err, 0);
			return 1;
		}
	}
	r = vm_lock(vm, err, sizeof(err));
	if (r) {
		log_err("%s", err);
		vm_write_status(vm, "error", 1, err, 0);
		return 1;
	}
	vm->target = vm->cfg->paused ? VM_PAUSE : VM_RUN;
	if (!vm->cfg->paused)
		(void)vm_pause_devices(vm, false);
	if (vm_start_vcpus(vm)) {
		vm_write_status(vm, "error", 1, "cannot start vCPU threads", 0);
		return 1;
	}
	r = loop_run(vm->loop);
	if (r) {
		log_err("event loop failed: %s", strerror(-r));
		vm->exit_status = 1;
	}
	vm_teardown(vm);
	close(sfd);
	return vm->exit_status;
}

/* --exit-stats: the counts to the log (before the devices' names go), then the tables. */
static void vm_exit_stats(struct vm *vm)
{
	struct exit_stats *s[VMDEF_CPUS_MAX];
	unsigned i, n = 0;

	for (i = 0; vm->vcpus && i < vm->cfg->def.cpus && i < VMDEF_CPUS_MAX; i++)
		if (vm->vcpus[i].stats)
			s[n++] = vm->vcpus[i].stats;
	if (n)
		exit_stats_log(s, n, &vm->pio, &vm->mmio, 40);
	for (i = 0; i < n; i++)
		free(s[i]);
}

void vm_destroy(struct vm *vm)
{
	control_destroy(vm->control);
	vm->control = NULL;
	hotplug_destroy(vm);
	if (vm->nvcpus_started || atomic_load(&vm->vm_fd) >= 0)
		vm_teardown(vm);
	vm_exit_stats(vm);
	while (vm->nteardown) {
		vm->nteardown--;
		vm->teardown_fns[vm->nteardown](vm->teardown_opaque[vm->nteardown]);
	}
	pci_host_destroy(vm->pci);
	vm->pci = NULL;
	chardev_close(vm->serial_out);
	loop_destroy(vm->loop);
	mem_free(&vm->mem);
	free(vm->vcpus);
	free(vm->cpuid);
	if (vm->event_fd >= 0)
		close(vm->event_fd);
	if (vm->kernel_fd >= 0)
		close(vm->kernel_fd);
	if (vm->initrd_fd >= 0)
		close(vm->initrd_fd);
	firmware_close(&vm->fw);
	kvm_sys_close(&vm->kvm);
}
