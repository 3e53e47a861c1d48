/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/cpu_state.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/kvm.h"
#include "vmm/state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define CPU_STATE_MAX_MSRS   1024u
#define CPU_STATE_MAX_XSAVE  (64u << 10)

#define CPU_STATE_FPU_LEGACY 0 /* struct kvm_fpu */
#define CPU_STATE_FPU_XSAVE  1 /* an XSAVE area of xsave_size bytes */

static bool msr_known(const struct kvm_msr_list *msrs, uint32_t index)
{
	uint32_t i;

	if (!msrs)
		return true; /* no KVM here (fuzzing): the load pass would catch it */
	for (i = 0; i < msrs->nmsrs; i++)
		if (msrs->indices[i] == index)
			return true;
	return false;
}

/* Read every MSR KVM lists for this vCPU; those it cannot read on this vCPU (features the
 * CPUID does not offer) are left out. */
static int get_msrs(const struct kvm_msr_list *list, int fd, struct kvm_msrs *out)
{
	uint32_t n = list ? list->nmsrs : 0, pos = 0, i;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + (n + 1) * sizeof(m->entries[0]));
	int r = 0;

	if (!m)
		return -ENOMEM;
	out->nmsrs = 0;
	while (pos < n) {
		m->nmsrs = n - pos;
		for (i = 0; i < m->nmsrs; i++)
			m->entries[i] = (struct kvm_msr_entry){.index = list->indices[pos + i]};
		r = kvm_vcpu_get_msrs(fd, m);
		if (r < 0)
			break;
		for (i = 0; i < (uint32_t)r && out->nmsrs < CPU_STATE_MAX_MSRS; i++)
			out->entries[out->nmsrs++] = m->entries[i];
		pos += (uint32_t)r + 1; /* skip the one KVM could not read */
		r = 0;
	}
	free(m);
	return r;
}

#define CPU_STATE_EVENT_FLAGS                                                                      \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |                       \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD |      \
	 KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

/* The KVM state of one vCPU, all read before anything is written (and written in the order
 * QEMU and Firecracker use: registers, FPU, LAPIC before MSRs such as TSC-deadline, then
 * pending events and the run state). */
struct vcpu_regs {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dr;
};

static void cpu_get(struct state_io *io, const struct kvm_msr_list *list, int fd,
		    struct vcpu_regs *s, struct kvm_xsave *xs, uint32_t xsize, bool has_xcrs,
		    struct kvm_msrs *msrs)
{
	int r;

	if ((r = kvm_vcpu_get_regs(fd, &s->regs)))
		state_fail(io, "KVM_GET_REGS: %s", strerror(-r));
	else if ((r = kvm_vcpu_get_sregs(fd, &s->sregs)))
		state_fail(io, "KVM_GET_SREGS: %s", strerror(-r));
	else if (xs && (r = kvm_vcpu_get_xsave(fd, xs, xsize)))
		state_fail(io, "KVM_GET_XSAVE: %s", strerror(-r));
	else if (!xs && (r = kvm_vcpu_get_fpu(fd, &s->fpu)))
		state_fail(io, "KVM_GET_FPU: %s", strerror(-r));
	else if (has_xcrs && (r = kvm_vcpu_get_xcrs(fd, &s->xcrs)))
		state_fail(io, "KVM_GET_XCRS: %s", strerror(-r));
	else if ((r = kvm_vcpu_get_lapic(fd, &s->lapic)))
		state_fail(io, "KVM_GET_LAPIC: %s", strerror(-r));
	else if ((r = get_msrs(list, fd, msrs)))
		state_fail(io, "KVM_GET_MSRS: %s", strerror(-r));
	else if ((r = kvm_vcpu_get_events(fd, &s->events)))
		state_fail(io, "KVM_GET_VCPU_EVENTS: %s", strerror(-r));
	else if ((r = kvm_vcpu_get_mp_state(fd, &s->mp)))
		state_fail(io, "KVM_GET_MP_STATE: %s", strerror(-r));
	else if ((r = kvm_vcpu_get_debugregs(fd, &s->dr)))
		state_fail(io, "KVM_GET_DEBUGREGS: %s", strerror(-r));
}

static void cpu_set(struct state_io *io, int fd, const struct vcpu_regs *s,
		    const struct kvm_xsave *xs, bool has_xcrs, const struct kvm_msrs *msrs)
{
	int r;

	if ((r = kvm_vcpu_set_regs(fd, &s->regs)))
		state_fail(io, "KVM_SET_REGS: %s", strerror(-r));
	else if ((r = kvm_vcpu_set_sregs(fd, &s->sregs)))
		state_fail(io, "KVM_SET_SREGS: %s", strerror(-r));
	else if (xs && (r = kvm_vcpu_set_xsave(fd, xs)))
		state_fail(io, "KVM_SET_XSAVE: %s", strerror(-r));
	else if (!xs && (r = kvm_vcpu_set_fpu(fd, &s->fpu)))
		state_fail(io, "KVM_SET_FPU: %s", strerror(-r));
	else if (has_xcrs && (r = kvm_vcpu_set_xcrs(fd, &s->xcrs)))
		state_fail(io, "KVM_SET_XCRS: %s", strerror(-r));
	else if ((r = kvm_vcpu_set_lapic(fd, &s->lapic)))
		state_fail(io, "KVM_SET_LAPIC: %s", strerror(-r));
	if (state_error(io))
		return;
	r = kvm_vcpu_set_msrs_count(fd, msrs);
	if (r < 0) {
		state_fail(io, "KVM_SET_MSRS: %s", strerror(-r));
		return;
	}
	if ((uint32_t)r < msrs->nmsrs) {
		state_fail(io, "KVM refused MSR 0x%x = 0x%llx", msrs->entries[r].index,
			   (unsigned long long)msrs->entries[r].data);
		return;
	}
	if ((r = kvm_vcpu_set_events(fd, &s->events)))
		state_fail(io, "KVM_SET_VCPU_EVENTS: %s", strerror(-r));
	else if ((r = kvm_vcpu_set_mp_state(fd, &s->mp)))
		state_fail(io, "KVM_SET_MP_STATE: %s", strerror(-r));
	else if ((r = kvm_vcpu_set_debugregs(fd, &s->dr)))
		state_fail(io, "KVM_SET_DEBUGREGS: %s", strerror(-r));
}

/* The XSAVE buffer size this KVM uses: KVM_CAP_XSAVE2's, at least 4096; 0 without XSAVE. */
static uint32_t host_xsave_size(const struct vm *vm)
{
	int x2;

	if (vm->kvm.fd < 0 || !kvm_check_extension(vm->kvm.fd, KVM_CAP_XSAVE))
		return 0;
	x2 = kvm_check_extension(vm->kvm.fd, KVM_CAP_XSAVE2);
	return x2 > (int)sizeof(struct kvm_xsave) ? (uint32_t)x2 : sizeof(struct kvm_xsave);
}

int cpu_state_section(struct state_io *io, void *opaque)
{
	struct cpu_state_ctx *c = opaque;
	struct vm *vm = c->vm;
	int fd = state_saving(io) || io->mode == STATE_LOAD ? vm->vcpus[c->id].fd : -1;
	uint32_t host_xsize = host_xsave_size(vm);
	struct vcpu_regs *s = calloc(1, sizeof(*s));
	struct kvm_msrs *msrs =
		calloc(1, sizeof(*msrs) + CPU_STATE_MAX_MSRS * sizeof(msrs->entries[0]));
	struct kvm_xsave *xs = NULL;
	uint8_t kind = host_xsize ? CPU_STATE_FPU_XSAVE : CPU_STATE_FPU_LEGACY;
	uint32_t xsize = host_xsize, n, i;
	bool has_xcrs = vm->kvm.fd >= 0 && kvm_check_extension(vm->kvm.fd, KVM_CAP_XCRS);

	if (!s || !msrs) {
		state_fail(io, "out of memory");
		goto out;
	}
	if (state_saving(io)) {
		xs = xsize ? calloc(1, xsize) : NULL;
		if (xsize && !xs) {
			state_fail(io, "out of memory");
			goto out;
		}
		cpu_get(io, c->msrs, fd, s, xs, xsize, has_xcrs, msrs);
	}
	state_blob(io, &s->regs, sizeof(s->regs));
	state_blob(io, &s->sregs, sizeof(s->sregs));
	kind = state_u8(io, &kind, CPU_STATE_FPU_XSAVE);
	if (kind == CPU_STATE_FPU_XSAVE) {
		xsize = state_u32(io, &xsize, CPU_STATE_MAX_XSAVE);
		if (!state_saving(io) && !state_error(io)) {
			if (xsize < sizeof(struct kvm_xsave) || xsize % 64)
				state_fail(io, "XSAVE area of %u bytes", xsize);
			else if (vm->kvm.fd >= 0 && xsize > host_xsize)
				state_fail(
					io,
					"XSAVE area of %u bytes, this host's KVM takes at most %u "
					"(saved on a CPU with more features)",
					xsize, host_xsize);
			else
				xs = calloc(1, host_xsize > xsize ? host_xsize : xsize);
			if (!state_error(io) && !xs)
				state_fail(io, "out of memory");
		}
		if (xs)
			state_blob(io, xs, xsize);
	} else {
		state_blob(io, &s->fpu, sizeof(s->fpu));
	}
	has_xcrs = state_bool(io, &has_xcrs);
	if (has_xcrs)
		state_blob(io, &s->xcrs, sizeof(s->xcrs));
	if (has_xcrs && !state_error(io) && (s->xcrs.nr_xcrs > KVM_MAX_XCRS || s->xcrs.flags))
		state_fail(io, "%u XCRs (flags 0x%x)", s->xcrs.nr_xcrs, s->xcrs.flags);
	state_blob(io, &s->lapic, sizeof(s->lapic));
	n = state_u32(io, &msrs->nmsrs, CPU_STATE_MAX_MSRS);
	for (i = 0; i < n && !state_error(io); i++) {
		uint32_t index = msrs->entries[i].index;
		uint64_t data = msrs->entries[i].data;

		/* msrs is a local: stored in every mode, then checked */
		msrs->entries[i].index = state_u32(io, &index, UINT32_MAX);
		msrs->entries[i].data = state_u64(io, &data, UINT64_MAX);
		index = msrs->entries[i].index;
		if (!state_saving(io) && !state_error(io) && !msr_known(c->msrs, index))
			state_fail(io, "MSR 0x%x is not one this host's KVM can restore", index);
	}
	msrs->nmsrs = n;
	state_blob(io, &s->events, sizeof(s->events));
	if (!state_error(io) && (s->events.flags & ~(uint32_t)CPU_STATE_EVENT_FLAGS))
		state_fail(io, "pending events with unknown flags 0x%x", s->events.flags);
	s->mp.mp_state = state_u32(io, &s->mp.mp_state, KVM_MP_STATE_SUSPENDED);
	state_blob(io, &s->dr, sizeof(s->dr));
	if (!state_error(io) && s->dr.flags)
		state_fail(io, "debug registers with flags 0x%llx",
			   (unsigned long long)s->dr.flags);
	if (!state_saving(io) && !state_error(io) && vm->kvm.fd >= 0 &&
	    has_xcrs != (bool)kvm_check_extension(vm->kvm.fd, KVM_CAP_XCRS))
		state_fail(io, "saved %s XCRs, this host's KVM %s them",
			   has_xcrs ? "with" : "without", has_xcrs ? "lacks" : "has");
	if (!state_saving(io) && !state_error(io) && kind == CPU_STATE_FPU_LEGACY && host_xsize)
		log_debug("cpu.%u: legacy FPU state on an XSAVE host", c->id);
	if (state_applying(io))
		cpu_set(io, fd, s, kind == CPU_STATE_FPU_XSAVE ? xs : NULL, has_xcrs, msrs);
out:
	free(xs);
	free(msrs);
	free(s);
	return state_error(io);
}
