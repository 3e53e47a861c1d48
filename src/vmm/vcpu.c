/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/exit_stats.h"
#include "vmm/jail.h"
#include "vmm/kvm.h"
#include "vmm/seccomp_filter.h"
#include "vmm/vm.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/cpuid.h"

#define SIG_KICK	      (SIGRTMIN + 1)

#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MISC_ENABLE_FAST_STR  1
#define MTRR_ENABLE_WRITEBACK 0x806 /* MTRRs enabled, default type write-back */

#define APIC_LVT_LINT0	      0x350
#define APIC_LVT_LINT1	      0x360
#define APIC_MODE_NMI	      0x4
#define APIC_MODE_EXT	      0x7

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_global_init(void)
{
	struct sigaction sa = {.sa_handler = vcpu_kick_handler};

	sigemptyset(&sa.sa_mask);
	return sigaction(SIG_KICK, &sa, NULL) ? -errno : 0;
}

static void lapic_set_lvt_mode(struct kvm_lapic_state *lapic, unsigned reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, lapic->regs + reg, 4);
	v = (v & ~0x700u) | mode << 8;
	memcpy(lapic->regs + reg, &v, 4);
}

static int vcpu_setup(struct vm *vm, struct vcpu *vcpu, const struct boot_entry *boot, char *err,
		      size_t errlen)
{
	static const struct kvm_msr_entry boot_msrs[] = {
		{.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STR},
		{.index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE_WRITEBACK},
	};
	struct kvm_msrs *msrs;
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	struct kvm_cpuid2 *cpuid;
	struct kvm_lapic_state lapic;
	int r;

	cpuid = calloc(1, sizeof(*cpuid) + vm->cpuid->nent * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return -ENOMEM;
	cpuid_for_vcpu(vm->cpuid, vcpu->id, vm->cfg->def.cpus, cpuid);
	r = kvm_vcpu_set_cpuid(vcpu->fd, cpuid);
	free(cpuid);
	if (r) {
		snprintf(err, errlen, "vcpu%u: KVM_SET_CPUID2: %s", vcpu->id, strerror(-r));
		return r;
	}
	msrs = calloc(1, sizeof(*msrs) + sizeof(boot_msrs));
	if (!msrs)
		return -ENOMEM;
	msrs->nmsrs = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	memcpy(msrs->entries, boot_msrs, sizeof(boot_msrs));
	r = kvm_vcpu_set_msrs(vcpu->fd, msrs);
	free(msrs);
	if (r) {
		snprintf(err, errlen, "vcpu%u: KVM_SET_MSRS: %s", vcpu->id, strerror(-r));
		return r;
	}
	r = kvm_vcpu_set_fpu(vcpu->fd, &fpu);
	if (r) {
		snprintf(err, errlen, "vcpu%u: KVM_SET_FPU: %s", vcpu->id, strerror(-r));
		return r;
	}
	/* LINT0 delivers the 8259's ExtINT, LINT1 NMIs, as firmware leaves them. */
	r = kvm_vcpu_get_lapic(vcpu->fd, &lapic);
	if (!r) {
		lapic_set_lvt_mode(&lapic, APIC_LVT_LINT0, APIC_MODE_EXT);
		lapic_set_lvt_mode(&lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
		r = kvm_vcpu_set_lapic(vcpu->fd, &lapic);
	}
	if (r) {
		snprintf(err, errlen, "vcpu%u: LAPIC set-up: %s", vcpu->id, strerror(-r));
		return r;
	}
	if (boot) {
		struct kvm_regs regs;
		struct kvm_sregs sregs;

		r = kvm_vcpu_get_sregs(vcpu->fd, &sregs);
		r = r ?: boot_cpu_state(&vm->mem, boot, &regs, &sregs);
		r = r ?: kvm_vcpu_set_sregs(vcpu->fd, &sregs);
		r = r ?: kvm_vcpu_set_regs(vcpu->fd, &regs);
		if (r) {
			snprintf(err, errlen, "vcpu%u: boot register state: %s", vcpu->id,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned id, const struct boot_entry *boot,
		char *err, size_t errlen)
{
	struct exit_stats *stats = vcpu->stats; /* kept across resets: counts of the whole run */
	int r;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->stats = stats;
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = -1;
	vcpu->stats_fd = -1;
	r = kvm_vcpu_create(&vm->kvm, vm->vm_fd, id, &vcpu->fd, &vcpu->run);
	if (r) {
		snprintf(err, errlen, "cannot create vcpu%u: %s", id, strerror(-r));
		return r;
	}
	/* Now, before the jail and seccomp: keeld's heartbeat reads it (control "vcpu-stats"). */
	r = kvm_vcpu_stats_fd(vcpu->fd);
	vcpu->stats_fd = r >= 0 ? r : -1;
	r = vcpu_setup(vm, vcpu, boot, err, errlen);
	if (r) {
		if (vcpu->stats_fd >= 0)
			close(vcpu->stats_fd);
		vcpu->stats_fd = -1;
		kvm_vcpu_destroy(&vm->kvm, vcpu->fd, vcpu->run);
		vcpu->fd = -1;
		vcpu->run = NULL;
	}
	return r;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run) /* created */
		kvm_vcpu_destroy(&vcpu->vm->kvm, vcpu->fd, vcpu->run);
	if (vcpu->run && vcpu->stats_fd >= 0)
		close(vcpu->stats_fd);
	vcpu->stats_fd = -1;
	vcpu->fd = -1;
	vcpu->run = NULL;
}

void vcpu_kick(struct vcpu *vcpu)
{
	/* immediate_exit covers a thread about to enter KVM_RUN; the signal one inside it. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread.id, SIG_KICK);
}

static const char *exit_reason_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN:
		return "KVM_EXIT_UNKNOWN";
	case KVM_EXIT_EXCEPTION:
		return "KVM_EXIT_EXCEPTION";
	case KVM_EXIT_HYPERCALL:
		return "KVM_EXIT_HYPERCALL";
	case KVM_EXIT_DEBUG:
		return "KVM_EXIT_DEBUG";
	case KVM_EXIT_HLT:
		return "KVM_EXIT_HLT";
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return "KVM_EXIT_IRQ_WINDOW_OPEN";
	case KVM_EXIT_SHUTDOWN:
		return "KVM_EXIT_SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY:
		return "KVM_EXIT_FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR:
		return "KVM_EXIT_INTERNAL_ERROR";
	case KVM_EXIT_SYSTEM_EVENT:
		return "KVM_EXIT_SYSTEM_EVENT";
	default:
		return "unknown exit";
	}
}

static void vcpu_exit_name(const struct vcpu_exit_rec *e, char *buf, size_t len)
{
	switch (e->reason) {
	case KVM_EXIT_IO:
		snprintf(buf, len, "port %s 0x%llx/%u=0x%llx", e->write ? "out" : "in",
			 (unsigned long long)e->addr, e->size, (unsigned long long)e->data);
		break;
	case KVM_EXIT_MMIO:
		snprintf(buf, len, "mmio %s 0x%llx/%u=0x%llx", e->write ? "write" : "read",
			 (unsigned long long)e->addr, e->size, (unsigned long long)e->data);
		break;
	default:
		snprintf(buf, len, "%s", exit_reason_name(e->reason));
		break;
	}
}

static struct vcpu_exit_rec *vcpu_record_exit(struct vcpu *vcpu)
{
	struct vcpu_exit_rec *e = &vcpu->exits[vcpu->nexits++ % VCPU_EXIT_HISTORY];

	*e = (struct vcpu_exit_rec){.reason = vcpu->run->exit_reason};
	return e;
}

/*
 * End the VM with a crash line naming the exit and where the guest was, after two lines of
 * detail: the registers that tell where the guest was and what it was doing (or that they
 * are gone: on AMD, KVM re-initialises a vCPU at a triple fault, so RIP reads 0xfff0 and the
 * state at the fault exists only in the host's kvm_exit trace event), and the vCPU's last
 * exits to keel-vmm, oldest first.
 */
static void vcpu_crash(struct vcpu *vcpu, const char *what)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	char hist[VCPU_EXIT_HISTORY * 48] = "", one[48];
	uint64_t rip = 0, i, first;
	bool have_regs = !kvm_vcpu_get_regs(vcpu->fd, &regs);
	bool have_sregs = !kvm_vcpu_get_sregs(vcpu->fd, &sregs);

	if (have_regs)
		rip = regs.rip;
	if (have_regs && have_sregs && rip == 0xfff0 && sregs.cs.base == 0xffff0000)
		log_err("vcpu%u: the registers read back in their reset state (KVM re-initialises "
			"the vCPU on AMD): the state at the fault is lost; the host's kvm:kvm_exit "
			"trace event records it",
			vcpu->id);
	else if (have_regs && have_sregs)
		log_err("vcpu%u: rip 0x%llx rsp 0x%llx rflags 0x%llx cr0 0x%llx cr2 0x%llx "
			"cr3 0x%llx cr4 0x%llx efer 0x%llx cs 0x%x",
			vcpu->id, (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
			(unsigned long long)regs.rflags, (unsigned long long)sregs.cr0,
			(unsigned long long)sregs.cr2, (unsigned long long)sregs.cr3,
			(unsigned long long)sregs.cr4, (unsigned long long)sregs.efer,
			sregs.cs.selector);
	first = vcpu->nexits > VCPU_EXIT_HISTORY ? vcpu->nexits - VCPU_EXIT_HISTORY : 0;
	for (i = first; i < vcpu->nexits; i++) {
		vcpu_exit_name(&vcpu->exits[i % VCPU_EXIT_HISTORY], one, sizeof(one));
		snprintf(hist + strlen(hist), sizeof(hist) - strlen(hist), "%s%s",
			 i == first ? "" : ", ", one);
	}
	log_err("vcpu%u: last %llu of %llu exits to keel-vmm: %s", vcpu->id,
		(unsigned long long)(vcpu->nexits - first), (unsigned long long)vcpu->nexits,
		hist[0] ? hist : "none");
	machine_request(&vcpu->vm->machine, VM_EVENT_CRASH, 1,
			"vcpu%u: %s (%s, exit %u) at guest rip 0x%llx", vcpu->id, what,
			exit_reason_name(vcpu->run->exit_reason), vcpu->run->exit_reason,
			(unsigned long long)rip);
}

static struct log_ratelimit unclaimed_rl = LOG_RATELIMIT_INIT(5000, 10);

static void vcpu_handle_io(struct vcpu *vcpu, struct vcpu_exit_rec *rec)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;
	unsigned size = run->io.size, i;
	uint64_t off = run->io.data_offset;
	uint8_t *data;

	/* KVM fills these; check anyway that the data lies inside the shared page. */
	if ((size != 1 && size != 2 && size != 4) || off > vm->kvm.run_size ||
	    (uint64_t)size * run->io.count > vm->kvm.run_size - off) {
		vcpu_crash(vcpu, "malformed port I/O exit");
		return;
	}
	data = (uint8_t *)run + off;
	rec->write = run->io.direction == KVM_EXIT_IO_OUT;
	rec->size = (uint8_t)size;
	rec->addr = run->io.port;
	for (i = 0; i < run->io.count; i++, data += size) {
		uint64_t v = 0;
		bool claimed;

		if (run->io.direction == KVM_EXIT_IO_OUT) {
			memcpy(&v, data, size);
			claimed = bus_write(&vm->pio, run->io.port, size, v);
		} else {
			claimed = bus_read(&vm->pio, run->io.port, size, &v);
			memcpy(data, &v, size);
		}
		if (i == 0)
			rec->data = v;
		if (!claimed && log_enabled(LOG_DEBUG) && log_ratelimit_ok(&unclaimed_rl))
			log_debug("vcpu%u: port %s 0x%x (%u bytes) has no device", vcpu->id,
				  run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read",
				  run->io.port, size);
	}
}

static void vcpu_handle_mmio(struct vcpu *vcpu, struct vcpu_exit_rec *rec)
{
	struct kvm_run *run = vcpu->run;
	unsigned len = run->mmio.len;
	uint64_t v = 0;
	bool claimed;

	if (len == 0 || len > 8) {
		vcpu_crash(vcpu, "malformed MMIO exit");
		return;
	}
	rec->write = run->mmio.is_write;
	rec->size = (uint8_t)len;
	rec->addr = run->mmio.phys_addr;
	if (run->mmio.is_write) {
		memcpy(&v, run->mmio.data, len);
		claimed = bus_write(&vcpu->vm->mmio, run->mmio.phys_addr, len, v);
	} else {
		claimed = bus_read(&vcpu->vm->mmio, run->mmio.phys_addr, len, &v);
		memcpy(run->mmio.data, &v, len);
	}
	rec->data = v;
	if (!claimed && log_enabled(LOG_DEBUG) && log_ratelimit_ok(&unclaimed_rl))
		log_debug("vcpu%u: MMIO %s 0x%llx (%u bytes) has no device", vcpu->id,
			  run->mmio.is_write ? "write" : "read",
			  (unsigned long long)run->mmio.phys_addr, len);
}

static void vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vcpu_exit_rec *rec = vcpu_record_exit(vcpu);

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu, rec);
		break;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu, rec);
		break;
	case KVM_EXIT_SHUTDOWN:
		vcpu_crash(vcpu, "triple fault");
		break;
	case KVM_EXIT_FAIL_ENTRY:
		vcpu_crash(vcpu, "VM entry failed");
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_crash(vcpu, "KVM internal error");
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			machine_request(&vcpu->vm->machine, VM_EVENT_POWEROFF, 0,
					"guest shut down");
			break;
		case KVM_SYSTEM_EVENT_RESET:
			machine_request(&vcpu->vm->machine, VM_EVENT_RESET, 0, "guest reset");
			break;
		default:
			vcpu_crash(vcpu, "guest system event");
			break;
		}
		break;
	default:
		vcpu_crash(vcpu, "unhandled exit");
		break;
	}
	if (vcpu->stats)
		exit_stats_count(vcpu->stats, run->exit_reason, rec->write, rec->addr);
}

/* Wait while the VM is paused or an event is pending; false when this thread must end. */
static bool vcpu_wait_runnable(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	bool run;

	pthread_mutex_lock(&vm->run_lock);
	while (vm->target == VM_PAUSE ||
	       (vm->target == VM_RUN && atomic_load(&vm->event) != VM_EVENT_NONE)) {
		if (!vcpu->parked) {
			vcpu->parked = true;
			vm->parked++;
			pthread_cond_broadcast(&vm->run_cond);
		}
		pthread_cond_wait(&vm->run_cond, &vm->run_lock);
	}
	if (vcpu->parked) {
		vcpu->parked = false;
		vm->parked--;
	}
	run = vm->target == VM_RUN;
	pthread_mutex_unlock(&vm->run_lock);
	return run;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	/* A blocked SIGSYS from a seccomp filter kills without its handler (which names the
	 * call for keeld, seccomp_filter.h). */
	sigaddset(&set, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* A jailed worker's vCPU threads call far less than its main loop: their own filter,
	 * before the first KVM_RUN (docs/security.md). */
	if (jail_active() && seccomp_install_vcpu()) {
		/* Never run the guest under the looser process filter: the worker ends (a crash
		 * request could be lost behind another pending event). */
		log_err("vcpu%u: cannot install its seccomp filter: the worker ends", vcpu->id);
		_exit(1);
	}

	while (vcpu_wait_runnable(vcpu)) {
		int r = kvm_vcpu_run(vcpu->fd);

		if (r == -EINTR || r == -EAGAIN) {
			__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			continue;
		}
		if (r) {
			machine_request(&vcpu->vm->machine, VM_EVENT_CRASH, 1,
					"vcpu%u: KVM_RUN failed: %s", vcpu->id, strerror(-r));
			continue;
		}
		vcpu_handle_exit(vcpu);
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	/* The thread starts with every signal blocked and unblocks its kick signal. */
	return vthread_start(&vcpu->thread, vcpu_thread, vcpu);
}
