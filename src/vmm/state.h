/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The saved-state framework (docs/state.md): a file of named, versioned sections with a
 * magic, a format version, size caps and a CRC-32C, and the registry of the functions that
 * save and load each section.
 *
 * One function per section serves every direction (as bhyve's snapshot functions and
 * QEMU's VMState do): it calls the accessors below on each field in a fixed order. The
 * accessors write the field into the file when saving, and read it back when loading.
 * Loading is done twice: first a check pass (STATE_CHECK) over every section, in which the
 * accessors read and validate each value but never store it, then, only if every section
 * passed, the load pass (STATE_LOAD) that stores the values. So restore validates
 * everything before it applies anything.
 *
 * Every value read from a file is untrusted: give each scalar its largest valid value
 * (max), and use the returned value, never the field, for checks across fields.
 */
#ifndef KEEL_VMM_STATE_H
#define KEEL_VMM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_MAGIC	     "KEELSAVE" /* 8 bytes at offset 0 */
#define STATE_FORMAT_VERSION 1u
#define STATE_HEADER_SIZE    32u
#define STATE_SECTION_HEADER 48u
#define STATE_TRAILER_SIZE   8u
#define STATE_NAME_MAX	     31u /* section names: 1-31 of [a-z0-9._-] */
#define STATE_MAX_SECTIONS   512u
#define STATE_MAX_SECTION    (1u << 20)	 /* bytes of data in one section */
#define STATE_MAX_FILE	     (64u << 20) /* bytes in one state file */

enum state_mode {
	STATE_SAVE,  /* field -> file */
	STATE_CHECK, /* file -> validated, nothing stored */
	STATE_LOAD,  /* file -> validated -> field */
};

/* One section being saved or loaded; opaque to section functions. */
struct state_io {
	enum state_mode mode;
	uint32_t version; /* the section's version: the file's when loading */
	/* STATE_SAVE: the growing output */
	uint8_t *out;
	size_t out_len, out_cap;
	/* STATE_CHECK and STATE_LOAD: this section's data */
	const uint8_t *in;
	size_t in_len, pos;
	int error; /* sticky: the first failure; later accessors do nothing */
	char why[192];
};

/* A section's function: called once per save, check and load. Returns 0 or -errno; the
 * accessors record failures in io, so `return state_error(io);` is the usual ending. */
typedef int (*state_fn)(struct state_io *io, void *opaque);

/* Scalars. When saving, the field's value is written; when checking or loading, a value
 * above max fails the section. Each returns the value written or read (0 after a failure),
 * which is what cross-field checks must use. Stored little-endian. */
uint8_t state_u8(struct state_io *io, uint8_t *field, uint8_t max);
uint16_t state_u16(struct state_io *io, uint16_t *field, uint16_t max);
uint32_t state_u32(struct state_io *io, uint32_t *field, uint32_t max);
uint64_t state_u64(struct state_io *io, uint64_t *field, uint64_t max);
int64_t state_i64(struct state_io *io, int64_t *field);
bool state_bool(struct state_io *io, bool *field); /* one byte, 0 or 1 */
/* len bytes of a live field: stored only by STATE_LOAD. */
void state_bytes(struct state_io *io, void *field, size_t len);
/* len bytes into a local buffer that the function inspects itself: stored by STATE_CHECK
 * as well as STATE_LOAD, so the function can validate it before anything is applied. */
void state_blob(struct state_io *io, void *local, size_t len);
/* Fail the section with a one-line reason (the first failure is kept). */
void state_fail(struct state_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0, or the section's failure (negative errno). */
int state_error(const struct state_io *io);
/* True when the function should apply what it read (STATE_LOAD, no failure so far). */
bool state_applying(const struct state_io *io);
bool state_saving(const struct state_io *io);

/* The sections of one VM, in registration order (which is also the order of loading). */
struct state_entry {
	char name[STATE_NAME_MAX + 1];
	uint32_t version;
	state_fn fn;
	void *opaque;
};

#define STATE_MAX_BLOCKERS 16

struct state_registry {
	unsigned n;
	struct state_entry entries[STATE_MAX_SECTIONS];
	/* Devices that cannot be saved (yet): a save is refused, naming the first. */
	unsigned nblockers;
	const char *blockers[STATE_MAX_BLOCKERS];
};

/* -EINVAL for a bad name or version 0, -EEXIST for a duplicate, -ENOSPC when full. */
int state_register(struct state_registry *reg, const char *name, uint32_t version, state_fn fn,
		   void *opaque) __attribute__((warn_unused_result));
/* Drop the section name (a device unplugged from a running VM); -ENOENT if there is none. */
int state_unregister(struct state_registry *reg, const char *name);
bool state_name_valid(const char *name, size_t len);
/* A device that has no section (yet) says so, with a reason kept by pointer (a string
 * literal): state_save() then refuses instead of writing a save that would restore the
 * device in its reset state. -ENOSPC when full. */
int state_block(struct state_registry *reg, const char *reason) __attribute__((warn_unused_result));

/* Run every section in STATE_SAVE mode and build the whole file in memory (caller frees). */
int state_save(const struct state_registry *reg, uint8_t **out, size_t *len, char *err,
	       size_t errlen) __attribute__((warn_unused_result));

/* A parsed file: sections point into the caller's buffer. */
struct state_section {
	char name[STATE_NAME_MAX + 1];
	uint32_t version;
	const uint8_t *data;
	uint64_t size;
};

struct state_file {
	unsigned n;
	struct state_section sections[STATE_MAX_SECTIONS];
};

/* Check the whole file's structure: size caps, magic, format version, size, checksum,
 * section headers, names, padding, duplicates. -EINVAL (or -E2BIG, -ENOTSUP) with a
 * one-line reason. */
int state_parse(const uint8_t *data, size_t size, struct state_file *f, char *err, size_t errlen)
	__attribute__((warn_unused_result));
const struct state_section *state_find(const struct state_file *f, const char *name);

/* Match the file's sections with the registry (none missing, none unknown, no version
 * newer than ours) and run every function in mode (STATE_CHECK or STATE_LOAD). */
int state_load(const struct state_registry *reg, const struct state_file *f, enum state_mode mode,
	       char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
