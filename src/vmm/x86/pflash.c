/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/pflash.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "vmm/bus.h"
#include "vmm/dev/cfi_flash.h"
#include "vmm/devmem.h"
#include "vmm/device.h"
#include "vmm/loop.h"
#include "vmm/machine.h"
#include "vmm/x86/firmware.h"
#include "vmm/x86/nvram.h"

struct pflash {
	struct machine *m;
	/* lock protects chip (its contents included), pending and mapped */
	pthread_mutex_t lock;
	struct cfi_flash chip;
	uint8_t *data; /* size bytes, page-aligned (devmem.h): the memory slot's backing */
	size_t size;
	uint64_t base;	 /* guest-physical address of the chip */
	bool mapped;	 /* the guest reads data through a read-only memory slot */
	bool map_failed; /* said once: mapping failed, every read exits */
	bool persistent; /* an NVRAM file backs the store */
	bool pending;	 /* changed contents not yet handed to the main thread */
	struct nvram nv;
	int save_fd;	    /* eventfd: the main thread saves the store */
	int timer_fd;	    /* timerfd (main thread): a save put off to the interval's end */
	bool timer_armed;   /* main thread */
	bool bad_said;	    /* main thread: the guest's store was said to be bad */
	uint64_t last_save; /* main thread: CLOCK_MONOTONIC ns when the last save started */
};

/* At most one save of the whole store per interval: a guest that programs the flash in a
 * loop had the host write and fsync the store back to back (hundreds of MB a second). What
 * changes meanwhile is saved at the interval's end, and at exit. */
#define PFLASH_SAVE_INTERVAL_NS 200000000ull

/* Main thread: write the store back: a copy taken under the lock, written outside it (the
 * guest is not held up by the file system). The copy lives only as long as the save, in its
 * own mapping, so it costs no memory between saves. */
static void pflash_save(struct pflash *p)
{
	uint8_t *copy;
	bool pending;
	int r;

	pthread_mutex_lock(&p->lock);
	pending = p->pending;
	pthread_mutex_unlock(&p->lock);
	if (!pending)
		return;
	copy = devmem_alloc(p->size);
	if (!copy) {
		log_err("pflash: cannot save the UEFI variable store: %s (tried again at the next "
			"change)",
			strerror(errno));
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->pending = false;
	memcpy(copy, p->data, p->size);
	pthread_mutex_unlock(&p->lock);
	r = nvram_save(&p->nv, copy, p->size);
	if (r == -EINVAL && !p->bad_said)
		log_err("pflash: the guest's UEFI variable store is no longer valid (%s): the last "
			"good one is kept",
			nvram_check(copy, p->size));
	else if (r && r != -EINVAL)
		log_err("pflash: cannot save the UEFI variable store: %s", strerror(-r));
	p->bad_said = r == -EINVAL;
	devmem_free(copy, p->size);
}

/* Main thread: save now if the last save is an interval old, else when it will be. */
static void pflash_save_paced(struct pflash *p)
{
	uint64_t now = clock_mono_ns(), due = p->last_save + PFLASH_SAVE_INTERVAL_NS;
	struct itimerspec when = {0};

	if (p->timer_armed)
		return; /* the timer's save covers this change */
	if (p->last_save && now < due) {
		when.it_value.tv_sec = (time_t)((due - now) / 1000000000ull);
		when.it_value.tv_nsec = (long)((due - now) % 1000000000ull);
		if (!timerfd_settime(p->timer_fd, 0, &when, NULL)) {
			p->timer_armed = true;
			return;
		}
		log_err("pflash: save timer: %s", strerror(errno));
	}
	p->last_save = now;
	pflash_save(p);
}

static void pflash_save_event(void *opaque, uint32_t events)
{
	struct pflash *p = opaque;
	uint64_t n;

	if (read(p->save_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("pflash: save event: %s", strerror(errno));
	pflash_save_paced(p);
}

static void pflash_timer_event(void *opaque, uint32_t events)
{
	struct pflash *p = opaque;
	uint64_t n;

	if (read(p->timer_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("pflash: save timer: %s", strerror(errno));
	p->timer_armed = false;
	pflash_save_paced(p);
}

/* Lock held: the guest finished changing the store; ask the main thread to save it. */
static void pflash_changed(struct pflash *p)
{
	uint64_t one = 1;

	p->chip.dirty = false;
	if (!p->persistent)
		return;
	p->pending = true;
	if (write(p->save_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("pflash: save event: %s", strerror(errno));
}

/*
 * Lock held (or the vCPUs stopped): make the memory slot follow the chip's mode, as a real
 * flash (and QEMU's pflash) decodes reads as memory in read-array mode. Mapped, the guest's
 * reads of the store never exit; its writes (commands) still do, because the slot is
 * read-only, and a command that leaves read-array mode takes the slot away before the vCPU
 * runs again, so status, ID and query reads come here. The contents change only in program
 * and erase modes, while nothing is mapped.
 */
static void pflash_map(struct pflash *p)
{
	bool want = cfi_flash_array_mode(&p->chip);
	int r;

	if (want == p->mapped)
		return;
	r = machine_rom_window(p->m, p->base, want ? p->size : 0, p->data);
	if (r == -ENODEV) /* not built yet: its reset hook maps it */
		return;
	if (!r) {
		p->mapped = want;
		return;
	}
	if (want) { /* reads keep exiting: slower, still correct */
		if (!p->map_failed)
			log_err("pflash: cannot map the UEFI variable store as memory: %s (every "
				"read of it exits)",
				strerror(-r));
		p->map_failed = true;
		return;
	}
	/* Left mapped, the guest would read the array where it asked for its status. */
	machine_request(p->m, VM_EVENT_CRASH, 1,
			"pflash: cannot unmap the UEFI variable store for a flash command: %s",
			strerror(-r));
}

static uint64_t pflash_read(void *opaque, uint64_t off, unsigned size)
{
	struct pflash *p = opaque;
	uint64_t v;

	pthread_mutex_lock(&p->lock);
	v = cfi_flash_read(&p->chip, off, size);
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void pflash_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pflash *p = opaque;

	pthread_mutex_lock(&p->lock);
	cfi_flash_write(&p->chip, off, size, value);
	if (p->chip.dirty && cfi_flash_array_mode(&p->chip))
		pflash_changed(p);
	pflash_map(p);
	pthread_mutex_unlock(&p->lock);
}

static const struct bus_ops pflash_ops = {.read = pflash_read, .write = pflash_write};

static void pflash_reset(void *opaque)
{
	struct pflash *p = opaque;

	pthread_mutex_lock(&p->lock);
	if (p->chip.dirty) /* a reset in the middle of a program: keep what was written */
		pflash_changed(p);
	cfi_flash_reset(&p->chip);
	/* Reset hooks run with the KVM VM gone or new: it has no slot yet. */
	p->mapped = false;
	pflash_map(p);
	pthread_mutex_unlock(&p->lock);
}

/* Saved state: the chip's mode, status and erase block, and the whole store. */
static int pflash_state(struct state_io *io, void *opaque)
{
	struct pflash *p = opaque;
	struct cfi_flash chip;
	uint8_t mode;
	uint32_t size, block;
	uint8_t *data = malloc(p->size);

	if (!data) {
		state_fail(io, "out of memory");
		return state_error(io);
	}
	pthread_mutex_lock(&p->lock);
	chip = p->chip;
	memcpy(data, p->data, p->size);
	pthread_mutex_unlock(&p->lock);
	mode = (uint8_t)chip.mode;
	size = (uint32_t)p->size;
	block = (uint32_t)chip.erase_block;
	mode = state_u8(io, &mode, CFI_ERASE);
	chip.status = state_u8(io, &chip.status, 0xff);
	block = state_u32(io, &block, UINT32_MAX);
	if (state_u32(io, &size, UINT32_MAX) != p->size && !state_error(io))
		state_fail(io, "the variable store was %u bytes, this VM's is %zu", size, p->size);
	if (!state_error(io))
		state_blob(io, data, p->size);
	chip.mode = (enum cfi_mode)mode;
	chip.erase_block = block;
	if (!state_error(io) && !cfi_flash_state_valid(&chip))
		state_fail(io, "flash registers out of range (mode %u, status 0x%02x, block %u)",
			   mode, chip.status, block);
	/* The contents are not checked: they are whatever the guest programmed (a guest that
	 * erased the volume header must still restore; OVMF rewrites a header it finds bad). */
	if (!state_error(io) && state_applying(io)) {
		pthread_mutex_lock(&p->lock);
		memcpy(p->data, data, p->size);
		p->chip.mode = chip.mode;
		p->chip.status = chip.status;
		p->chip.erase_block = chip.erase_block;
		pflash_map(p);
		pflash_changed(p); /* the file follows the restored store */
		pthread_mutex_unlock(&p->lock);
	}
	free(data);
	return state_error(io);
}

static void pflash_teardown(void *opaque)
{
	struct pflash *p = opaque;

	if (p->persistent)
		pflash_save(p); /* what the guest wrote before the end */
	loop_del(p->m->loop, p->save_fd);
	loop_del(p->m->loop, p->timer_fd);
	close(p->save_fd);
	close(p->timer_fd);
	nvram_close(&p->nv);
	devmem_free(p->data, p->size);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static unsigned pflash_count(const struct machine *m)
{
	return m->def->firmware == VM_FIRMWARE_UEFI ? 1 : 0;
}

static int pflash_create(struct machine *m, unsigned i, void **obj, char *err, size_t errlen)
{
	struct pflash *p = calloc(1, sizeof(*p));
	uint8_t *store = NULL; /* the file's contents, moved into p->data */
	int r;

	if (!p)
		return -ENOMEM;
	p->m = m;
	p->nv.dirfd = -1;
	p->save_fd = -1;
	p->timer_fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	if (m->def->nvram) {
		r = nvram_open(&p->nv, m->def->nvram, m->nvram_dir_fd >= 3 ? m->nvram_dir_fd : -1,
			       VMDEF_OVMF_VARS_FILE, &store, &p->size, err, errlen);
		p->persistent = true;
	} else {
		/* No file: the template's contents, kept in memory only (its directory is not
		 * needed, and not in a jailed worker's reach). */
		r = nvram_read_template(VMDEF_OVMF_VARS_FILE, &store, &p->size, err, errlen);
	}
	if (r) {
		if (r == -ENOENT && !m->def->nvram)
			vmdef_vars_template_missing(err, errlen);
		nvram_close(&p->nv);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return r;
	}
	/* Page-aligned, as a memory slot needs (the store's size is a multiple of 4 KiB,
	 * nvram_check); never a huge page (devmem.h). */
	p->data = devmem_alloc(p->size);
	if (p->data)
		memcpy(p->data, store, p->size);
	free(store);
	p->save_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (!p->data || p->save_fd < 0 || p->timer_fd < 0 || !m->firmware_base ||
	    m->firmware_base < p->size) {
		snprintf(err, errlen, "UEFI variable store set-up: %s",
			 !m->firmware_base ? "no firmware image" : "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	/* Code and store together in the top 16 MiB, as on a PC: below it are the LAPIC, the
	 * IOAPIC and KVM's private pages, which would hide part of the store. */
	if (m->firmware_base - p->size < FIRMWARE_TOP - FIRMWARE_MAX_SIZE) {
		snprintf(err, errlen,
			 "UEFI variable store (%zu KiB) and firmware (%llu KiB) together exceed "
			 "the %u MiB below 4 GiB: use a smaller NVRAM file or firmware",
			 p->size >> 10,
			 (unsigned long long)((FIRMWARE_TOP - m->firmware_base) >> 10),
			 FIRMWARE_MAX_SIZE >> 20);
		r = -EINVAL;
		goto fail;
	}
	p->base = m->firmware_base - p->size;
	cfi_flash_init(&p->chip, p->data, p->size, PFLASH_BLOCK, false);
	r = loop_add(m->loop, p->save_fd, EPOLLIN, pflash_save_event, p);
	if (r)
		goto fail;
	r = loop_add(m->loop, p->timer_fd, EPOLLIN, pflash_timer_event, p);
	if (r) {
		loop_del(m->loop, p->save_fd);
		goto fail;
	}
	r = bus_register(m->mmio, p->base, p->size, &pflash_ops, p, "pflash");
	r = r ?: machine_add_teardown(m, pflash_teardown, p);
	r = r ?: machine_add_reset_hook(m, pflash_reset, p);
	*obj = p;
	return r; /* once registered, the teardown frees p */
fail:
	if (p->save_fd >= 0)
		close(p->save_fd);
	if (p->timer_fd >= 0)
		close(p->timer_fd);
	nvram_close(&p->nv);
	devmem_free(p->data, p->size);
	free(p);
	return r;
}

const struct device_class pflash_class = {.name = "pflash",
					  .count = pflash_count,
					  .state = {{"pflash", 1, pflash_state}},
					  .create = pflash_create};
