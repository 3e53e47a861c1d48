/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel's virtual disk library: raw and VHDX (fixed, dynamic, differencing) behind one ops
 * table. No KVM dependency; the VMM, the CLI and the tests use it the same way.
 *
 * Threads: a handle may be used from several threads at once for read, write, discard,
 * flush, size and info (see each format's locking comment). Open, close and the offline
 * operations (resize, compact, merge) need exclusive use of the handle.
 *
 * Errors: functions return 0 or -errno and log one line (lib/log.h) saying what failed, on
 * which file, and why. The functions that open, create or change a file also write that line
 * into the caller's struct disk_err (NULL: logged only), so that the caller can say why:
 * "/srv/a.vhdx: VHDX block size 3145728 is not a power of 2 from 1 to 256 MiB", not
 * "Invalid argument".
 */
#ifndef KEEL_DISK_DISK_H
#define KEEL_DISK_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/uuid.h"

enum disk_format { DISK_FORMAT_RAW, DISK_FORMAT_VHDX };
enum disk_type { DISK_TYPE_FIXED, DISK_TYPE_DYNAMIC, DISK_TYPE_DIFFERENCING };

/* Open flags. */
#define DISK_OPEN_RDONLY (1u << 0)
/* Differencing disks: do not open the parent; its sectors read as zeros (fuzzing, info). */
#define DISK_OPEN_NOPARENT (1u << 1)
/* Do not take the advisory file lock (flock) that keeps two writers apart. */
#define DISK_OPEN_NOLOCK (1u << 2)

#define DISK_PATH_MAX	 4096

/* Why a disk function failed: passed by the caller, emptied by the function on entry and
 * filled with the library's reason when it fails (empty when it had none to give). */
#define DISK_ERR_MAX 512
struct disk_err {
	char msg[DISK_ERR_MAX];
};

struct disk_info {
	enum disk_format format;
	enum disk_type type;
	uint64_t virtual_size;
	uint64_t file_size;	 /* bytes the file takes, as its length */
	uint64_t allocated_size; /* bytes of disk data held in this file */
	uint32_t block_size;	 /* VHDX payload block size; 0 for raw */
	uint32_t logical_sector;
	uint32_t physical_sector;
	uint64_t blocks_total; /* payload blocks (VHDX) */
	uint64_t blocks_allocated;
	struct uuid disk_id; /* VHDX page 83 id */
	struct uuid file_write_guid;
	struct uuid data_write_guid;
	struct uuid log_guid;
	bool has_parent;
	char parent_path[DISK_PATH_MAX]; /* resolved path, or the first locator path */
	struct uuid parent_linkage;
	bool log_replayed_in_memory; /* read-only open found a log to replay */
};

struct disk;

/* Where a run of disk bytes lives, for callers that do their own I/O on the file (keel-vmm's
 * asynchronous block backend): see disk_map(). */
enum disk_extent_kind {
	DISK_EXTENT_FILE,    /* at file_off in disk_fd()'s file, contiguous */
	DISK_EXTENT_ZERO,    /* reads as zeros (reads only) */
	DISK_EXTENT_LIBRARY, /* only disk_read()/disk_write() can do it (allocation, bitmaps,
			      * a parent's data) */
};
struct disk_extent {
	enum disk_extent_kind kind;
	uint64_t file_off; /* DISK_EXTENT_FILE only */
	uint64_t len;	   /* bytes of this extent, at most the length asked for */
	bool alloc;	   /* a DISK_EXTENT_LIBRARY write that allocates a block not present
			    * (concurrent ones to the same block serialize in the library) */
};

/* One table per format; never written at run time. */
struct disk_ops {
	const char *name;
	/* Does this header (the file's first bytes, len >= 8 when the file is that long) match? */
	bool (*probe)(const uint8_t *head, size_t len);
	int (*open)(int fd, const char *path, unsigned flags, struct disk **out,
		    struct disk_err *err);
	int (*read)(struct disk *d, void *buf, uint64_t off, size_t len);
	int (*write)(struct disk *d, const void *buf, uint64_t off, size_t len);
	int (*flush)(struct disk *d);
	int (*discard)(struct disk *d, uint64_t off, uint64_t len);
	/* Optional (absent: -EOPNOTSUPP): see disk_zero(). */
	int (*zero)(struct disk *d, uint64_t off, uint64_t len);
	uint64_t (*size)(struct disk *d);
	void (*close)(struct disk *d);
	int (*info)(struct disk *d, struct disk_info *out);
	/* Optional (absent: every range is DISK_EXTENT_LIBRARY): see disk_map(). */
	int (*map)(struct disk *d, uint64_t off, uint64_t len, bool write, struct disk_extent *out);
	/* The file descriptor that disk_map()'s file offsets refer to. */
	int (*fd)(struct disk *d);
	/* Optional (absent: the library keeps its own descriptor): see disk_set_direct(). */
	int (*set_direct)(struct disk *d, int fd, uint32_t mem_align, uint32_t off_align);
};

/* Every format's handle starts with this. */
struct disk {
	const struct disk_ops *ops;
	char path[DISK_PATH_MAX];
	bool rdonly;
	/* Where failures are explained: the caller's during open and the offline operations
	 * (resize, compact, merge, relink, check), NULL (logged only) for I/O, which several
	 * threads may do at once. */
	struct disk_err *err;
};

extern const struct disk_ops raw_ops;
extern const struct disk_ops vhdx_ops;

/*
 * Opens FILE as format: nothing is guessed, so a raw disk whose guest wrote a VHDX header
 * into it stays raw (QEMU's CVE-2008-2004 class). A VM's disks are always opened so, with
 * the format recorded when they were attached (docs/vm-config.md).
 */
int disk_open_as(const char *path, enum disk_format format, unsigned flags, struct disk **out,
		 struct disk_err *err) __attribute__((warn_unused_result));
/* The same on an already open fd (the handle takes ownership and closes it). */
int disk_open_fd_as(int fd, const char *path, enum disk_format format, unsigned flags,
		    struct disk **out, struct disk_err *err) __attribute__((warn_unused_result));
/*
 * disk_open_fd_as for a disk whose differencing chain the caller resolved and opened
 * (keeld, for a jailed worker): parents are its parents' descriptors, nearest first, taken
 * over (closed on failure). No parent is opened by path; each must be the one its child's
 * linkage GUID names, and the chain must have exactly nparents. parents NULL: as
 * disk_open_fd_as (the parents are found through the locators).
 */
int disk_open_chain_fd(int fd, const char *path, enum disk_format format, unsigned flags,
		       const int *parents, unsigned nparents, struct disk **out,
		       struct disk_err *err) __attribute__((warn_unused_result));
/*
 * Opens FILE, detecting the format from its contents: for the administrator's tools (keel
 * disk info, check, convert) on files they name, never for a VM's disks, whose contents the
 * guest writes.
 */
int disk_open(const char *path, unsigned flags, struct disk **out, struct disk_err *err)
	__attribute__((warn_unused_result));
int disk_open_fd(int fd, const char *path, unsigned flags, struct disk **out, struct disk_err *err)
	__attribute__((warn_unused_result));
/* The files of d's differencing chain, nearest parent first, each as the library resolved
 * and opened it; none for a disk without a parent (or opened with DISK_OPEN_NOPARENT).
 * Returns how many (at most max), or -E2BIG when there are more. */
int disk_parents(struct disk *d, char (*paths)[DISK_PATH_MAX], unsigned max)
	__attribute__((warn_unused_result));
/* The path key k (0: relative_path, 1: absolute_win32_path) of d's parent locator names,
 * in POSIX form (a relative one from the directory of the path d was opened as), without
 * opening it: for keeld, which opens each parent itself through its pools, one level at a
 * time (d opened with DISK_OPEN_NOPARENT). 0, -ENOENT when key k gives no path usable here,
 * -ENODEV when d is no differencing VHDX. */
int disk_parent_locator(struct disk *d, unsigned k, char *out, size_t cap)
	__attribute__((warn_unused_result));
/* The format FILE's first bytes say it has (raw when no signature matches). */
int disk_probe(const char *path, enum disk_format *out, struct disk_err *err)
	__attribute__((warn_unused_result));
/* The same on an open descriptor (read with pread, not taken over), for a caller that checked
 * the file it opened (keeld, through its storage pools) and must decide on that very file. */
int disk_probe_fd(int fd, const char *path, enum disk_format *out, struct disk_err *err)
	__attribute__((warn_unused_result));
/* off and len must be multiples of 512 and inside the disk. */
int disk_read(struct disk *d, void *buf, uint64_t off, size_t len)
	__attribute__((warn_unused_result));
int disk_write(struct disk *d, const void *buf, uint64_t off, size_t len)
	__attribute__((warn_unused_result));
/* Makes every completed write durable (data and metadata). */
int disk_flush(struct disk *d) __attribute__((warn_unused_result));
/* The range may afterwards read as zeros or as its old contents. */
int disk_discard(struct disk *d, uint64_t off, uint64_t len) __attribute__((warn_unused_result));
/*
 * The range reads as zeros afterwards, without writing data (a punched hole or a zeroed
 * range of the file system or block device). -EOPNOTSUPP when this disk cannot (then the
 * caller writes zeros itself); anything else is an error.
 */
int disk_zero(struct disk *d, uint64_t off, uint64_t len) __attribute__((warn_unused_result));
/*
 * The first extent of the disk range [off, off + len) (multiples of 512 inside the disk) for a
 * read or a write. A write mapped as DISK_EXTENT_FILE may be done with pwrite() on disk_fd()
 * (marking the file as changed is done here); disk_flush() then makes it durable like any
 * disk_write(). A write into a block not present of a VHDX without parent allocates the
 * block here (a hole that reads as zeros until written; its entry logged by the next
 * disk_flush()) and maps as DISK_EXTENT_FILE, unless that would wait for another thread's
 * metadata update or the file cannot grow (then DISK_EXTENT_LIBRARY with alloc: the
 * library allocates, or fails the write). The mapping stays valid until a discard of the
 * same range.
 */
int disk_map(struct disk *d, uint64_t off, uint64_t len, bool write, struct disk_extent *out)
	__attribute__((warn_unused_result));
/* The descriptor of d's own file (owned by d), or -1 for a format without disk_map(). */
int disk_fd(struct disk *d);
/*
 * fd: d's file opened again with O_DIRECT (the caller's cache=none descriptor), whose buffers
 * must be aligned to mem_align and file offsets and lengths to off_align. The library takes a
 * duplicate and writes guest data through it where disk_write() cannot be mapped (the first
 * write into a block it allocates) when the buffer and range are aligned, so that the data
 * path bypasses the page cache as the caller's own writes to file extents do. A format that
 * has no use for it ignores it (0). Returns 0 or -errno (dup failed).
 */
int disk_set_direct(struct disk *d, int fd, uint32_t mem_align, uint32_t off_align)
	__attribute__((warn_unused_result));
uint64_t disk_size(struct disk *d);
int disk_info(struct disk *d, struct disk_info *out) __attribute__((warn_unused_result));
void disk_close(struct disk *d);

const char *disk_format_name(enum disk_format f);
/* "raw" or "vhdx"; -EINVAL for anything else. */
int disk_format_parse(const char *name, enum disk_format *out) __attribute__((warn_unused_result));

/* The reason of failure r of a disk function that was given err: err's line, e.g.
 * "/srv/a.vhdx: VHDX metadata table has no 'metadata' signature", or strerror(-r) when the
 * library said nothing (or err is NULL). */
const char *disk_why(const struct disk_err *err, int r);
const char *disk_type_name(enum disk_type t);
/* "vhdx" for *.vhdx / *.avhdx, else "raw". */
enum disk_format disk_format_from_name(const char *path);

struct disk_create_opts {
	enum disk_format format;
	enum disk_type type;
	uint64_t size;		  /* ignored for differencing: the parent's size */
	uint32_t block_size;	  /* 0: default (32 MiB) */
	uint32_t logical_sector;  /* 0: default (512; differencing: the parent's) */
	uint32_t physical_sector; /* 0: default (4096) */
	const char *parent;	  /* differencing only */
	/* Differencing only, optional: the parent as the caller opened it (and keeps), used
	 * instead of opening parent by path (keeld, which opens a chain only through its pools);
	 * parent still names it, for the new disk's locator. */
	struct disk *parent_disk;
};

/* Creates a new file; fails if it exists. */
int disk_create(const char *path, const struct disk_create_opts *o, struct disk_err *err)
	__attribute__((warn_unused_result));

/* Copies every sector of src (a whole chain) into a new file dst. */
int disk_convert(const char *src, const char *dst, const struct disk_create_opts *o,
		 struct disk_err *err) __attribute__((warn_unused_result));
/* The same, calling progress (when not NULL) with the bytes of src done after each 1 MiB. */
int disk_convert_progress(const char *src, const char *dst, const struct disk_create_opts *o,
			  void (*progress)(void *arg, uint64_t done), void *arg,
			  struct disk_err *err) __attribute__((warn_unused_result));
/* The same from a disk the caller opened (and keeps): nothing is reopened by path, so the
 * copy is of that handle's file and whatever chain it opened (none with NOPARENT). progress
 * returning false stops the copy: -ECANCELED, dst removed. */
int disk_convert_from(struct disk *in, const char *dst, const struct disk_create_opts *o,
		      bool (*progress)(void *arg, uint64_t done), void *arg, struct disk_err *err)
	__attribute__((warn_unused_result));

#endif
