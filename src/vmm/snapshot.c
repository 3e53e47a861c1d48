/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whole-machine save and restore (snapshot.h, docs/state.md). The machine's own sections
 * live here: the configuration and memory map (checked first, against the command line),
 * the in-kernel irqchip and PIT, each vCPU, and the VM clock. Devices register their own
 * sections with machine_add_state_section().
 */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config/vmdef.h"
#include "lib/crc32c.h"
#include "lib/le.h"
#include "lib/log.h"
#include "vmm/jail_prep.h"
#include "vmm/kvm.h"
#include "vmm/parse_euid.h"
#include "vmm/state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/virtio/net.h"
#include "vmm/x86/cpu_state.h"

/* The description document in section "config" (a section holds at most 1 MiB). */
#define SNAP_MAX_CONFIG	 (STATE_MAX_SECTION - 4u)
#define SNAP_PAGE	 4096u
#define SNAP_WRITE_CHUNK (1u << 20)
#define SNAP_MEM_MAGIC	 "KEELMEM"
#define SNAP_MEM_VERSION 1u
#define SNAP_ID_SIZE	 16u

struct snapshot {
	struct vm *vm;
	struct cpu_state_ctx *cpus;
	struct kvm_msr_list *msrs;     /* every MSR this KVM saves and restores; NULL without KVM */
	uint8_t save_id[SNAP_ID_SIZE]; /* ties a save's memory file to its state file */
	uint8_t memory_id[SNAP_ID_SIZE]; /* restore: what the memory file must carry */
	/* restore: the validated state file, kept until snapshot_apply */
	uint8_t *file;
	size_t file_size;
	struct state_file *parsed;
	bool pending;
};

/* ---- section "config": the VM's description (DESIGN.md habit 9) ---- */

/* Check the saved description (JSON text) against the running one. */
static void snap_config_check(struct state_io *io, const char *text, uint32_t len,
			      const struct vm_def *cur)
{
	json_tokener *tok = json_tokener_new();
	json_object *obj = NULL;
	struct vm_def saved;
	char err[512], why[512];

	vmdef_init(&saved);
	if (!tok) {
		state_fail(io, "out of memory");
		return;
	}
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (!obj || json_tokener_get_parse_end(tok) != len)
		state_fail(io, "the saved VM description is not one JSON object");
	else if (vmdef_apply_json(&saved, obj, VMDEF_JSON_DOCUMENT, err, sizeof(err)))
		state_fail(io, "the saved VM description: %s", err);
	else if (vmdef_guest_change(&saved, cur, why, sizeof(why)))
		state_fail(io, "%s", why);
	json_object_put(obj);
	json_tokener_free(tok);
	vmdef_free(&saved);
}

/* Each adapter's queue pairs written out, the default (one per vCPU) resolved: a description
 * saved before multi-queue has none, and its adapters had one pair (vmdef's guest check). */
static void snap_pin_queues(json_object *o, const struct vm_def *def)
{
	json_object *nets;

	if (!json_object_object_get_ex(o, "nets", &nets))
		return;
	for (unsigned i = 0; i < def->nnics && i < json_object_array_length(nets); i++)
		json_object_object_add(json_object_array_get_idx(nets, i), "queues",
				       json_object_new_int((int)vmdef_nic_queues(def, i)));
}

/* The description as a JSON document (docs/vm-config.md): one u32 length, then the text. */
static int snap_config_state(struct state_io *io, void *opaque)
{
	struct snapshot *snap = opaque;
	const struct vm_def *cur = &snap->vm->cfg->def;
	json_object *o = NULL;
	const char *text = NULL;
	char *buf;
	uint32_t len = 0;

	if (state_saving(io)) {
		o = vmdef_to_json(cur);
		if (o)
			snap_pin_queues(o, cur);
		text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
		if (!text) {
			json_object_put(o);
			state_fail(io, "cannot write the VM description: out of memory");
			return state_error(io);
		}
		len = (uint32_t)strnlen(text, SNAP_MAX_CONFIG + 1);
		if (len > SNAP_MAX_CONFIG) {
			json_object_put(o);
			state_fail(io, "the VM description is longer than %u bytes",
				   SNAP_MAX_CONFIG);
			return state_error(io);
		}
	}
	if (!state_saving(io) && io->version < 2) {
		state_fail(io,
			   "saved by an older keel-vmm (section 'config' version %u, before VM "
			   "descriptions were recorded): restore it with that keel-vmm, or "
			   "discard the saved state",
			   io->version);
		return state_error(io);
	}
	len = state_u32(io, &len, SNAP_MAX_CONFIG);
	if (state_saving(io)) {
		state_bytes(io, (void *)text, len);
		json_object_put(o);
		return state_error(io);
	}
	if (state_error(io))
		return state_error(io);
	buf = malloc((size_t)len + 1);
	if (!buf) {
		state_fail(io, "out of memory");
		return state_error(io);
	}
	state_blob(io, buf, len);
	buf[len] = 0;
	if (!state_error(io))
		snap_config_check(io, buf, len, cur);
	free(buf);
	return state_error(io);
}

/* ---- section "memory": the RAM layout and the memory file's identity ---- */

static int snap_memory_state(struct state_io *io, void *opaque)
{
	struct snapshot *snap = opaque;
	const struct guest_mem *mem = &snap->vm->mem;
	uint64_t ram = mem->ram_size, gpa, size;
	uint32_t n = mem->nregions, i;
	uint8_t id[SNAP_ID_SIZE];

	ram = state_u64(io, &ram, UINT64_MAX);
	n = state_u32(io, &n, MEM_MAX_REGIONS);
	if (!state_saving(io) && !state_error(io) && (ram != mem->ram_size || n != mem->nregions))
		state_fail(io, "saved RAM is %llu bytes in %u regions, this VM has %llu in %u",
			   (unsigned long long)ram, n, (unsigned long long)mem->ram_size,
			   mem->nregions);
	for (i = 0; i < n && !state_error(io); i++) {
		gpa = mem->regions[i].gpa;
		size = mem->regions[i].size;
		gpa = state_u64(io, &gpa, UINT64_MAX);
		size = state_u64(io, &size, UINT64_MAX);
		if (!state_saving(io) && !state_error(io) &&
		    (gpa != mem->regions[i].gpa || size != mem->regions[i].size))
			state_fail(io, "saved RAM region %u differs from this VM's", i);
	}
	memcpy(id, snap->save_id, sizeof(id));
	state_blob(io, id, sizeof(id));
	if (!state_saving(io) && !state_error(io))
		memcpy(snap->memory_id, id, sizeof(id)); /* snapshot.c's own bookkeeping */
	return state_error(io);
}

/* ---- section "kvm.irqchip": the two 8259s and the IOAPIC ---- */

static int snap_irqchip_state(struct state_io *io, void *opaque)
{
	struct snapshot *snap = opaque;
	int vm_fd = atomic_load(&snap->vm->vm_fd);
	struct kvm_irqchip chip[3];
	unsigned i;
	int r;

	memset(chip, 0, sizeof(chip));
	for (i = 0; i < 3; i++) {
		chip[i].chip_id = i; /* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */
		if (state_saving(io) && (r = kvm_vm_get_irqchip(vm_fd, &chip[i])))
			state_fail(io, "KVM_GET_IRQCHIP %u: %s", i, strerror(-r));
		state_blob(io, &chip[i], sizeof(chip[i]));
		if (!state_error(io) && (chip[i].chip_id != i || chip[i].pad))
			state_fail(io, "chip %u has id %u", i, chip[i].chip_id);
	}
	for (i = 0; i < 3 && state_applying(io); i++)
		if ((r = kvm_vm_set_irqchip(vm_fd, &chip[i])))
			state_fail(io, "KVM_SET_IRQCHIP %u: %s", i, strerror(-r));
	return state_error(io);
}

/* ---- section "kvm.pit": the 8254 ---- */

static int snap_pit_state(struct state_io *io, void *opaque)
{
	struct snapshot *snap = opaque;
	int vm_fd = atomic_load(&snap->vm->vm_fd);
	struct kvm_pit_state2 pit;
	unsigned i;
	int r;

	memset(&pit, 0, sizeof(pit));
	if (state_saving(io) && (r = kvm_vm_get_pit2(vm_fd, &pit)))
		state_fail(io, "KVM_GET_PIT2: %s", strerror(-r));
	state_blob(io, &pit, sizeof(pit));
	for (i = 0; i < 3 && !state_error(io); i++) {
		const struct kvm_pit_channel_state *c = &pit.channels[i];

		if (c->count > 0x10000 || (c->mode > 5 && c->mode != 0xff) || c->rw_mode > 3 ||
		    c->bcd > 1 || c->gate > 1 || c->read_state > 4 || c->write_state > 4)
			state_fail(io, "channel %u has impossible values (mode %u)", i, c->mode);
	}
	if (!state_error(io) &&
	    (pit.flags & ~(uint32_t)(KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)))
		state_fail(io, "unknown flags 0x%x", pit.flags);
	if (state_applying(io) && (r = kvm_vm_set_pit2(vm_fd, &pit)))
		state_fail(io, "KVM_SET_PIT2: %s", strerror(-r));
	return state_error(io);
}

/* ---- section "kvm.clock": kvmclock's time base, set last ---- */

static int snap_clock_state(struct state_io *io, void *opaque)
{
	struct snapshot *snap = opaque;
	int vm_fd = atomic_load(&snap->vm->vm_fd);
	struct kvm_clock_data clock;
	uint64_t ns;
	int r;

	memset(&clock, 0, sizeof(clock));
	if (state_saving(io) && (r = kvm_vm_get_clock(vm_fd, &clock)))
		state_fail(io, "KVM_GET_CLOCK: %s", strerror(-r));
	/* The guest's clock carries on from the moment of the save. */
	ns = clock.clock;
	ns = state_u64(io, &ns, UINT64_MAX);
	if (state_applying(io)) {
		struct kvm_clock_data set = {.clock = ns};

		if ((r = kvm_vm_set_clock(vm_fd, &set)))
			state_fail(io, "KVM_SET_CLOCK: %s", strerror(-r));
	}
	return state_error(io);
}

/* ---- registration ---- */

int snapshot_register_config(struct vm *vm)
{
	struct snapshot *snap = calloc(1, sizeof(*snap));
	int r;

	if (!snap)
		return -ENOMEM;
	snap->vm = vm;
	vm->snapshot = snap;
	r = machine_add_state_section(&vm->machine, "config", 2, snap_config_state, snap);
	return r ?: machine_add_state_section(&vm->machine, "memory", 1, snap_memory_state, snap);
}

int snapshot_register_machine(struct vm *vm)
{
	struct snapshot *snap = vm->snapshot;
	char name[STATE_NAME_MAX + 1];
	unsigned i;
	int r;

	if (!snap)
		return -EINVAL;
	if (vm->kvm.fd >= 0) {
		r = kvm_sys_msr_index_list(&vm->kvm, &snap->msrs);
		if (r)
			return r;
	}
	snap->cpus = calloc(vm->cfg->def.cpus, sizeof(*snap->cpus));
	if (!snap->cpus)
		return -ENOMEM;
	r = machine_add_state_section(&vm->machine, "kvm.irqchip", 1, snap_irqchip_state, snap);
	r = r ?: machine_add_state_section(&vm->machine, "kvm.pit", 1, snap_pit_state, snap);
	for (i = 0; i < vm->cfg->def.cpus && !r; i++) {
		snap->cpus[i] = (struct cpu_state_ctx){.vm = vm, .msrs = snap->msrs, .id = i};
		snprintf(name, sizeof(name), "cpu.%u", i);
		r = machine_add_state_section(&vm->machine, name, 1, cpu_state_section,
					      &snap->cpus[i]);
	}
	return r ?: machine_add_state_section(&vm->machine, "kvm.clock", 1, snap_clock_state, snap);
}

/* ---- save ---- */

static int snap_write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t w = pwrite(fd, p, len, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

static bool snap_page_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	unsigned i;

	for (i = 0; i < SNAP_PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

static void snap_mem_trailer(uint8_t t[SNAPSHOT_MEM_TRAILER], uint64_t ram,
			     const uint8_t id[SNAP_ID_SIZE])
{
	memset(t, 0, SNAPSHOT_MEM_TRAILER);
	memcpy(t, SNAP_MEM_MAGIC, 8);
	le_store(t + 8, SNAP_MEM_VERSION, 4);
	le_store(t + 16, ram, 8);
	memcpy(t + 24, id, SNAP_ID_SIZE);
	le_store(t + 40, crc32c(0, t, 40), 4);
}

/* Guest RAM to path: non-zero pages only (holes read back as zeros), then the trailer. */
static int snap_write_memory(struct vm *vm, const char *path, uint64_t *written, char *err,
			     size_t errlen)
{
	const struct guest_mem *mem = &vm->mem;
	static uint8_t trailer[SNAPSHOT_MEM_TRAILER];
	uint64_t off = 0, run;
	int fd, r;

	*written = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	/* The file grows as the pages are written, in order (zero pages stay holes; the
	 * trailer gives the file its whole size last): its size says how far the save got,
	 * which is the progress keeld's save job reports (docs/keeld.md, "Jobs"). */
	while (off < mem->ram_size) {
		if (snap_page_zero(mem->base + off)) {
			off += SNAP_PAGE;
			continue;
		}
		for (run = SNAP_PAGE; off + run < mem->ram_size && run < SNAP_WRITE_CHUNK &&
				      !snap_page_zero(mem->base + off + run);
		     run += SNAP_PAGE)
			;
		r = snap_write_all(fd, mem->base + off, run, (off_t)off);
		if (r)
			goto fail;
		*written += run;
		off += run;
	}
	snap_mem_trailer(trailer, mem->ram_size, vm->snapshot->save_id);
	r = snap_write_all(fd, trailer, sizeof(trailer), (off_t)mem->ram_size);
	if (!r && fsync(fd))
		r = -errno;
	if (r)
		goto fail;
	close(fd);
	return 0;
fail:
	snprintf(err, errlen, "cannot write guest memory to %s: %s", path, strerror(-r));
	close(fd);
	unlink(path);
	return r;
}

static int snap_write_file(const char *path, const uint8_t *data, size_t len, char *err,
			   size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600), r;

	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	r = snap_write_all(fd, data, len, 0);
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (r) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-r));
		unlink(path);
	}
	return r;
}

/* How a restore opens the saved files: never through a link (a worker's save may have left
 * one). */
#define SNAP_READ_FLAGS (O_RDONLY | O_NOFOLLOW | O_CLOEXEC)

static int snap_path(char *buf, size_t len, const char *dir, const char *name)
{
	return snprintf(buf, len, "%s/%s", dir, name) >= (int)len ? -ENAMETOOLONG : 0;
}

int snapshot_save(struct vm *vm, const char *dir, char *err, size_t errlen)
{
	char mem_tmp[4096], mem_path[4096], st_tmp[4096], st_path[4096];
	struct snapshot *snap = vm->snapshot;
	uint8_t *state = NULL;
	size_t state_len = 0;
	uint64_t written;
	unsigned i;
	int r, dfd;

	if (!snap)
		return -EINVAL;
	if (vm->state.nblockers) {
		snprintf(err, errlen, "this VM cannot be saved: %s", vm->state.blockers[0]);
		return -ENOTSUP;
	}
	if (atomic_load(&vm->event) != VM_EVENT_NONE) {
		snprintf(err, errlen, "the VM is stopping or resetting; nothing saved");
		return -EBUSY;
	}
	if (snap_path(mem_tmp, sizeof(mem_tmp), dir, SNAPSHOT_MEMORY_FILE ".tmp") ||
	    snap_path(mem_path, sizeof(mem_path), dir, SNAPSHOT_MEMORY_FILE) ||
	    snap_path(st_tmp, sizeof(st_tmp), dir, SNAPSHOT_STATE_FILE ".tmp") ||
	    snap_path(st_path, sizeof(st_path), dir, SNAPSHOT_STATE_FILE)) {
		snprintf(err, errlen, "save directory path is too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create save directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	/* The last exits' pending work (an IN's data) belongs in the saved registers. */
	for (i = 0; i < vm->cfg->def.cpus; i++) {
		r = kvm_vcpu_complete_io(vm->vcpus[i].fd, vm->vcpus[i].run);
		if (r) {
			snprintf(err, errlen, "vcpu%u: cannot complete its last exit: %s", i,
				 strerror(-r));
			return r;
		}
	}
	if (getrandom(snap->save_id, sizeof(snap->save_id), 0) != (ssize_t)sizeof(snap->save_id)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -EIO;
	}
	r = state_save(&vm->state, &state, &state_len, err, errlen);
	if (r)
		return r;
	r = snap_write_memory(vm, mem_tmp, &written, err, errlen);
	if (!r)
		r = snap_write_file(st_tmp, state, state_len, err, errlen);
	free(state);
	if (r) {
		unlink(mem_tmp);
		return r;
	}
	/* Memory first: a crash in between leaves a pair whose IDs differ, which restore
	 * refuses, never a mixed machine. */
	if (rename(mem_tmp, mem_path) || rename(st_tmp, st_path)) {
		r = -errno;
		snprintf(err, errlen, "cannot rename the saved files in %s: %s", dir,
			 strerror(errno));
		unlink(mem_tmp);
		unlink(st_tmp);
		return r;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	log_info("saved to %s: state %zu bytes, memory %llu of %llu MiB written", dir, state_len,
		 (unsigned long long)(written >> 20), (unsigned long long)(vm->mem.ram_size >> 20));
	return 0;
}

/* ---- restore ---- */

int snapshot_check(struct vm *vm, const uint8_t *data, size_t size, char *err, size_t errlen)
{
	struct state_file *f = malloc(sizeof(*f));
	int r;

	if (!f)
		return -ENOMEM;
	r = state_parse(data, size, f, err, errlen);
	if (!r)
		r = state_load(&vm->state, f, STATE_CHECK, err, errlen);
	free(f);
	return r;
}

/* Read the state file whole, refusing one above the size cap before reading it. */
static int snap_read_state(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, r = 0;

	fd = jail_open(path, SNAP_READ_FLAGS, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open saved state %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "saved state %s is not a regular file", path);
		r = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > STATE_MAX_FILE) {
		snprintf(err, errlen, "saved state %s has %lld bytes, more than the %u MiB allowed",
			 path, (long long)st.st_size, STATE_MAX_FILE >> 20);
		r = -E2BIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory reading %s", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

/* The memory file must be the RAM image of exactly this state file. */
static int snap_open_memory(struct vm *vm, const char *path, int *out, char *err, size_t errlen)
{
	uint8_t t[SNAPSHOT_MEM_TRAILER];
	struct stat st;
	int fd, r = -EINVAL;

	fd = jail_open(path, SNAP_READ_FLAGS, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open saved memory %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != vm->mem.ram_size + SNAPSHOT_MEM_TRAILER) {
		snprintf(err, errlen, "saved memory %s has %lld bytes, expected %llu (%s)", path,
			 (long long)st.st_size,
			 (unsigned long long)(vm->mem.ram_size + SNAPSHOT_MEM_TRAILER),
			 (uint64_t)st.st_size < vm->mem.ram_size ? "truncated" : "wrong size");
		goto fail;
	}
	if (pread(fd, t, sizeof(t), (off_t)vm->mem.ram_size) != (ssize_t)sizeof(t)) {
		snprintf(err, errlen, "cannot read the trailer of %s", path);
		goto fail;
	}
	if (memcmp(t, SNAP_MEM_MAGIC, 8) || le_load(t + 8, 4) != SNAP_MEM_VERSION ||
	    le_load(t + 40, 4) != crc32c(0, t, 40) || le_load(t + 16, 8) != vm->mem.ram_size) {
		snprintf(err, errlen, "saved memory %s has a bad trailer (not a keel memory file?)",
			 path);
		goto fail;
	}
	if (memcmp(t + 24, vm->snapshot->memory_id, SNAP_ID_SIZE)) {
		snprintf(err, errlen,
			 "saved memory %s belongs to another save than its state file (an "
			 "interrupted save?)",
			 path);
		goto fail;
	}
	*out = fd;
	return 0;
fail:
	close(fd);
	return r;
}

/* Adapters of a description saved before multi-queue (no queues): one pair each, in the
 * running description too where it leaves them to the default (matched by MAC). A section
 * that does not read is left to the check (snap_config_state says why). */
static void snap_pin_old_queues(struct vm *vm, const struct state_file *f)
{
	const struct state_section *s = state_find(f, "config");
	struct vm_def *cur = &vm->cfg->def, saved;
	struct state_io io = {.mode = STATE_CHECK};
	json_object *obj = NULL;
	char *text, why[256];
	uint32_t len = 0;

	if (!s || s->version < 2)
		return;
	io.version = s->version;
	io.in = s->data;
	io.in_len = (size_t)s->size;
	len = state_u32(&io, &len, SNAP_MAX_CONFIG);
	if (state_error(&io) || !(text = malloc((size_t)len + 1)))
		return;
	state_blob(&io, text, len);
	text[len] = 0;
	vmdef_init(&saved);
	if (!state_error(&io))
		obj = json_tokener_parse(text);
	if (obj && !vmdef_apply_json(&saved, obj, VMDEF_JSON_DOCUMENT, why, sizeof(why))) {
		for (unsigned i = 0; i < saved.nnics; i++) {
			uint8_t a[6], b[6];

			if (saved.nics[i].queues)
				continue;
			virtio_net_nic_mac(&saved.nics[i], a);
			for (unsigned j = 0; j < cur->nnics; j++) {
				virtio_net_nic_mac(&cur->nics[j], b);
				if (memcmp(a, b, 6) || cur->nics[j].queues)
					continue;
				cur->nics[j].queues = 1;
				log_info("network adapter %s: saved before multi-queue, restored "
					 "with "
					 "one queue pair",
					 cur->nics[j].tap);
			}
		}
	}
	json_object_put(obj);
	vmdef_free(&saved);
	free(text);
}

/* Read and parse dir's state file into snap; pin: before the devices are made (the running
 * description's adapters may still change, snap_pin_old_queues). */
static int snap_read(struct vm *vm, const char *dir, bool pin, char *err, size_t errlen)
{
	struct snapshot *snap = vm->snapshot;
	char st_path[4096], why[400];
	int r;

	if (!snap)
		return -EINVAL;
	if (snap_path(st_path, sizeof(st_path), dir, SNAPSHOT_STATE_FILE)) {
		snprintf(err, errlen, "restore directory path is too long: %s", dir);
		return -ENAMETOOLONG;
	}
	r = snap_read_state(st_path, &snap->file, &snap->file_size, err, errlen);
	if (r)
		return r;
	snap->parsed = malloc(sizeof(*snap->parsed));
	if (!snap->parsed) {
		snprintf(err, errlen, "out of memory");
		free(snap->file);
		snap->file = NULL;
		return -ENOMEM;
	}
	parse_euid_note(PARSE_STATE);
	r = state_parse(snap->file, snap->file_size, snap->parsed, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "cannot restore from %s: %s", st_path, why);
		free(snap->parsed);
		free(snap->file);
		snap->parsed = NULL;
		snap->file = NULL;
		return r;
	}
	if (pin)
		snap_pin_old_queues(vm, snap->parsed);
	return 0;
}

int snapshot_read(struct vm *vm, const char *dir, char *err, size_t errlen)
{
	return snap_read(vm, dir, true, err, errlen);
}

int snapshot_open(struct vm *vm, const char *dir, char *err, size_t errlen)
{
	struct snapshot *snap = vm->snapshot;
	char st_path[4096], mem_path[4096], why[400];
	int r, mem_fd = -1;

	if (!snap)
		return -EINVAL;
	if (snap_path(st_path, sizeof(st_path), dir, SNAPSHOT_STATE_FILE) ||
	    snap_path(mem_path, sizeof(mem_path), dir, SNAPSHOT_MEMORY_FILE)) {
		snprintf(err, errlen, "restore directory path is too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if (!snap->parsed) {
		r = snap_read(vm, dir, false, err, errlen);
		if (r)
			return r;
	}
	r = state_load(&vm->state, snap->parsed, STATE_CHECK, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "cannot restore from %s: %s", st_path, why);
		goto fail;
	}
	r = snap_open_memory(vm, mem_path, &mem_fd, err, errlen);
	if (r)
		goto fail;
	/* Everything checked: from here on, apply. */
	r = mem_map_file(&vm->mem, mem_fd);
	close(mem_fd);
	if (r) {
		snprintf(err, errlen, "cannot map saved memory %s: %s", mem_path, strerror(-r));
		goto fail;
	}
	snap->pending = true;
	return 0;
fail:
	free(snap->parsed);
	free(snap->file);
	snap->parsed = NULL;
	snap->file = NULL;
	return r;
}

void snapshot_prepare(const char *dir)
{
	char path[4096];

	if (!snap_path(path, sizeof(path), dir, SNAPSHOT_STATE_FILE))
		jail_prep_open(path, SNAP_READ_FLAGS, 0);
	if (!snap_path(path, sizeof(path), dir, SNAPSHOT_MEMORY_FILE))
		jail_prep_open(path, SNAP_READ_FLAGS, 0);
}

int snapshot_give(const char *dir, int state_fd, int memory_fd, char *err, size_t errlen)
{
	char st_path[4096], mem_path[4096];
	const char *what = NULL;
	struct stat st;
	int r = 0;

	if (snap_path(st_path, sizeof(st_path), dir, SNAPSHOT_STATE_FILE) ||
	    snap_path(mem_path, sizeof(mem_path), dir, SNAPSHOT_MEMORY_FILE)) {
		snprintf(err, errlen, "the saved state's directory name is too long (%zu bytes)",
			 strlen(dir));
		r = -ENAMETOOLONG;
	} else if (fstat(state_fd, &st) || !S_ISREG(st.st_mode)) {
		what = "state";
	} else if (fstat(memory_fd, &st) || !S_ISREG(st.st_mode)) {
		what = "memory";
	}
	if (what) {
		/* A FIFO or a socket would block the worker's main loop on its first read. */
		snprintf(err, errlen, "the saved %s file passed is not a regular file", what);
		r = -EINVAL;
	}
	if (r) {
		close(state_fd);
		close(memory_fd);
		return r;
	}
	jail_prep_give(st_path, SNAP_READ_FLAGS, state_fd);
	jail_prep_give(mem_path, SNAP_READ_FLAGS, memory_fd);
	return 0;
}

bool snapshot_pending(const struct vm *vm)
{
	return vm->snapshot && vm->snapshot->pending;
}

int snapshot_apply(struct vm *vm, char *err, size_t errlen)
{
	struct snapshot *snap = vm->snapshot;
	int r;

	if (!snapshot_pending(vm))
		return -EINVAL;
	r = state_load(&vm->state, snap->parsed, STATE_LOAD, err, errlen);
	snap->pending = false;
	free(snap->parsed);
	free(snap->file);
	snap->parsed = NULL;
	snap->file = NULL;
	return r;
}
