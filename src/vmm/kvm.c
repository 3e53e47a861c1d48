/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* ioctl that retries on EINTR where that is safe, returning -errno on failure. */
static int kvm_ioctl(int fd, unsigned long req, const void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR && req != KVM_RUN);
	return r < 0 ? -errno : r;
}

/* Capabilities keel-vmm cannot run without. */
static const struct {
	int cap;
	const char *name;
} kvm_required_caps[] = {
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	{KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	{KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

int kvm_sys_open(struct kvm_sys *sys, int given, char *err, size_t errlen)
{
	int fd, r;
	size_t i;

	fd = given >= 0 ? given : open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT)
			snprintf(err, errlen,
				 "/dev/kvm does not exist: this host has no KVM "
				 "(load kvm_intel or kvm_amd, or use the nested lab)");
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen,
				 "/dev/kvm: permission denied (run as root or join "
				 "the group that owns /dev/kvm, usually 'kvm')");
		else
			snprintf(err, errlen, "cannot open /dev/kvm: %s", strerror(e));
		return -e;
	}
	r = kvm_ioctl(fd, KVM_GET_API_VERSION, NULL);
	if (r != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm speaks API version %d, keel-vmm needs %d", r,
			 KVM_API_VERSION);
		close(fd);
		return -ENOTSUP;
	}
	for (i = 0; i < sizeof(kvm_required_caps) / sizeof(kvm_required_caps[0]); i++) {
		if (kvm_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(long)kvm_required_caps[i].cap) <=
		    0) {
			snprintf(err, errlen, "this KVM lacks %s, which keel-vmm needs",
				 kvm_required_caps[i].name);
			close(fd);
			return -ENOTSUP;
		}
	}
	r = kvm_ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (r <= 0) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(-r));
		close(fd);
		return r < 0 ? r : -EINVAL;
	}
	sys->run_size = (size_t)r;
	r = kvm_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_MAX_VCPUS);
	if (r <= 0)
		r = kvm_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_NR_VCPUS);
	sys->max_vcpus = r > 0 ? r : 4;
	sys->fd = fd;
	return 0;
}

void kvm_sys_close(struct kvm_sys *sys)
{
	if (sys->fd >= 0)
		close(sys->fd);
	sys->fd = -1;
}

int kvm_sys_supported_cpuid(struct kvm_sys *sys, struct kvm_cpuid2 **out)
{
	unsigned n = 128;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		int r;

		if (!c)
			return -ENOMEM;
		c->nent = n;
		r = kvm_ioctl(sys->fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r == 0) {
			*out = c;
			return 0;
		}
		free(c);
		if (r != -E2BIG || n >= 4096)
			return r;
		n *= 2;
	}
}

int kvm_vm_create(struct kvm_sys *sys, int *vm_fd)
{
	int r;

	do {
		r = kvm_ioctl(sys->fd, KVM_CREATE_VM, NULL);
	} while (r == -EINTR);
	if (r < 0)
		return r;
	*vm_fd = r;
	return 0;
}

static int set_region(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size,
		      const void *hva)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	int r = kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region);

	return r < 0 ? r : 0;
}

int kvm_vm_set_memory(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	return set_region(vm_fd, slot, 0, gpa, size, hva);
}

int kvm_vm_set_rom(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, const void *hva)
{
	return set_region(vm_fd, slot, KVM_MEM_READONLY, gpa, size, hva);
}

int kvm_vm_setup_x86(int vm_fd, uint64_t tss_addr, uint64_t identity_map_addr)
{
	int r = kvm_ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map_addr);

	if (r < 0)
		return r;
	r = kvm_ioctl(vm_fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)tss_addr);
	return r < 0 ? r : 0;
}

int kvm_vm_create_irqchip(int vm_fd)
{
	int r = kvm_ioctl(vm_fd, KVM_CREATE_IRQCHIP, NULL);

	return r < 0 ? r : 0;
}

int kvm_vm_create_pit(int vm_fd)
{
	/* KVM also emulates port 0x61 (PIT channel 2 gate and output), as on a PC. */
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	int r = kvm_ioctl(vm_fd, KVM_CREATE_PIT2, &pit);

	return r < 0 ? r : 0;
}

int kvm_vm_set_gsi_routing(int vm_fd, const struct kvm_irq_routing *routing)
{
	int r = kvm_ioctl(vm_fd, KVM_SET_GSI_ROUTING, routing);

	return r < 0 ? r : 0;
}

int kvm_vm_irq_line(int vm_fd, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level};
	int r = kvm_ioctl(vm_fd, KVM_IRQ_LINE, &irq);

	return r < 0 ? r : 0;
}

int kvm_vm_ioeventfd(int vm_fd, uint64_t addr, uint32_t len, int fd, int pio, int deassign)
{
	struct kvm_ioeventfd ev = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
	};
	int r = kvm_ioctl(vm_fd, KVM_IOEVENTFD, &ev);

	return r < 0 ? r : 0;
}

int kvm_vm_irqfd(int vm_fd, uint32_t gsi, int fd, int deassign)
{
	struct kvm_irqfd irqfd = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0,
	};
	int r = kvm_ioctl(vm_fd, KVM_IRQFD, &irqfd);

	return r < 0 ? r : 0;
}

int kvm_vcpu_create(struct kvm_sys *sys, int vm_fd, unsigned id, int *vcpu_fd, struct kvm_run **run)
{
	void *map;
	int fd = kvm_ioctl(vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);

	if (fd < 0)
		return fd;
	map = mmap(NULL, sys->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		int e = -errno;

		close(fd);
		return e;
	}
	*vcpu_fd = fd;
	*run = map;
	return 0;
}

int kvm_vcpu_stats_fd(int vcpu_fd)
{
	return kvm_ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
}

void kvm_vcpu_destroy(struct kvm_sys *sys, int vcpu_fd, struct kvm_run *run)
{
	if (run)
		munmap(run, sys->run_size);
	if (vcpu_fd >= 0)
		close(vcpu_fd);
}

int kvm_vcpu_run(int vcpu_fd)
{
	int r = kvm_ioctl(vcpu_fd, KVM_RUN, NULL);

	return r < 0 ? r : 0;
}

#define KVM_VCPU_IOCTL(name, req, type)                                                            \
	int name(int vcpu_fd, type arg)                                                            \
	{                                                                                          \
		int r = kvm_ioctl(vcpu_fd, req, arg);                                              \
		return r < 0 ? r : 0;                                                              \
	}

KVM_VCPU_IOCTL(kvm_vcpu_get_regs, KVM_GET_REGS, struct kvm_regs *)
KVM_VCPU_IOCTL(kvm_vcpu_set_regs, KVM_SET_REGS, const struct kvm_regs *)
KVM_VCPU_IOCTL(kvm_vcpu_get_sregs, KVM_GET_SREGS, struct kvm_sregs *)
KVM_VCPU_IOCTL(kvm_vcpu_set_sregs, KVM_SET_SREGS, const struct kvm_sregs *)
KVM_VCPU_IOCTL(kvm_vcpu_set_fpu, KVM_SET_FPU, const struct kvm_fpu *)
KVM_VCPU_IOCTL(kvm_vcpu_set_cpuid, KVM_SET_CPUID2, const struct kvm_cpuid2 *)
KVM_VCPU_IOCTL(kvm_vcpu_get_lapic, KVM_GET_LAPIC, struct kvm_lapic_state *)
KVM_VCPU_IOCTL(kvm_vcpu_set_lapic, KVM_SET_LAPIC, const struct kvm_lapic_state *)

int kvm_vcpu_set_msrs(int vcpu_fd, const struct kvm_msrs *msrs)
{
	int r = kvm_ioctl(vcpu_fd, KVM_SET_MSRS, msrs);

	if (r < 0)
		return r;
	/* KVM_SET_MSRS returns how many it set; fewer means one was refused. */
	return (unsigned)r == msrs->nmsrs ? 0 : -EINVAL;
}

/* ---- Saved state (snapshot.c) ---- */

int kvm_check_extension(int fd, long cap)
{
	int r = kvm_ioctl(fd, KVM_CHECK_EXTENSION, (void *)cap);

	return r > 0 ? r : 0;
}

int kvm_sys_msr_index_list(struct kvm_sys *sys, struct kvm_msr_list **out)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *l;
	int r = kvm_ioctl(sys->fd, KVM_GET_MSR_INDEX_LIST, &probe);

	/* The first call, with no room, says how many there are. */
	if (r < 0 && r != -E2BIG)
		return r;
	if (probe.nmsrs > 16384)
		return -E2BIG;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	r = kvm_ioctl(sys->fd, KVM_GET_MSR_INDEX_LIST, l);
	if (r < 0) {
		free(l);
		return r;
	}
	*out = l;
	return 0;
}

#define KVM_VM_IOCTL(name, req, type)                                                              \
	int name(int vm_fd, type arg)                                                              \
	{                                                                                          \
		int r = kvm_ioctl(vm_fd, req, arg);                                                \
		return r < 0 ? r : 0;                                                              \
	}

KVM_VM_IOCTL(kvm_vm_get_irqchip, KVM_GET_IRQCHIP, struct kvm_irqchip *)
KVM_VM_IOCTL(kvm_vm_set_irqchip, KVM_SET_IRQCHIP, const struct kvm_irqchip *)
KVM_VM_IOCTL(kvm_vm_get_pit2, KVM_GET_PIT2, struct kvm_pit_state2 *)
KVM_VM_IOCTL(kvm_vm_set_pit2, KVM_SET_PIT2, const struct kvm_pit_state2 *)
KVM_VM_IOCTL(kvm_vm_get_clock, KVM_GET_CLOCK, struct kvm_clock_data *)
KVM_VM_IOCTL(kvm_vm_set_clock, KVM_SET_CLOCK, const struct kvm_clock_data *)

int kvm_vcpu_complete_io(int vcpu_fd, struct kvm_run *run)
{
	int r;

	__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	r = kvm_ioctl(vcpu_fd, KVM_RUN, NULL);
	__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	/* With immediate_exit, KVM finishes the pending work and returns EINTR. */
	return r == -EINTR || r == -EAGAIN || r >= 0 ? 0 : r;
}

KVM_VCPU_IOCTL(kvm_vcpu_get_fpu, KVM_GET_FPU, struct kvm_fpu *)
KVM_VCPU_IOCTL(kvm_vcpu_set_xsave, KVM_SET_XSAVE, const struct kvm_xsave *)
KVM_VCPU_IOCTL(kvm_vcpu_get_xcrs, KVM_GET_XCRS, struct kvm_xcrs *)
KVM_VCPU_IOCTL(kvm_vcpu_set_xcrs, KVM_SET_XCRS, const struct kvm_xcrs *)
KVM_VCPU_IOCTL(kvm_vcpu_get_events, KVM_GET_VCPU_EVENTS, struct kvm_vcpu_events *)
KVM_VCPU_IOCTL(kvm_vcpu_set_events, KVM_SET_VCPU_EVENTS, const struct kvm_vcpu_events *)
KVM_VCPU_IOCTL(kvm_vcpu_get_mp_state, KVM_GET_MP_STATE, struct kvm_mp_state *)
KVM_VCPU_IOCTL(kvm_vcpu_set_mp_state, KVM_SET_MP_STATE, const struct kvm_mp_state *)
KVM_VCPU_IOCTL(kvm_vcpu_get_debugregs, KVM_GET_DEBUGREGS, struct kvm_debugregs *)
KVM_VCPU_IOCTL(kvm_vcpu_set_debugregs, KVM_SET_DEBUGREGS, const struct kvm_debugregs *)

int kvm_vcpu_get_xsave(int vcpu_fd, struct kvm_xsave *xsave, size_t size)
{
	int r = kvm_ioctl(vcpu_fd, size > sizeof(*xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave);

	return r < 0 ? r : 0;
}

int kvm_vcpu_get_msrs(int vcpu_fd, struct kvm_msrs *msrs)
{
	return kvm_ioctl(vcpu_fd, KVM_GET_MSRS, msrs);
}

int kvm_vcpu_set_msrs_count(int vcpu_fd, const struct kvm_msrs *msrs)
{
	return kvm_ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
}
