/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VHDX handle and the functions the vhdx_*.c files share. Internal to src/disk.
 *
 * Locking: `lock` protects every field marked [L]: the in-memory header state, the log
 * writer, the BAT, the sector bitmap cache and the allocation cursor. Metadata changes
 * (block allocation, bitmap bits, discards) happen entirely under it; in a differencing
 * disk that includes the data write into a block being allocated, so a second writer to
 * that block waits and then sees it allocated. A disk without parent allocates a block
 * before its first data write (its new extent is a hole, which reads as the zeros the block
 * held: new_block in vhdx_io.c), so no writer waits for another's data. BAT entries are
 * only stored under the lock, with __atomic release stores (vhdx_bat_store), after the
 * data they point to is written or onto such a hole; the I/O path loads them
 * without the lock (vhdx_bat_get), so reads and writes of allocated blocks take no lock
 * (partially present blocks copy their bitmap bits under it). Fields without [L] are set
 * during open and read-only afterwards.
 *
 * Staged allocation (vhdx_bat_stage): a block allocated by a guest write is in the
 * in-memory BAT at once but reaches the file only at the next vhdx_bat_commit (the guest's
 * flush, close, any other logged metadata change, or too many staged sectors): one log
 * transaction carries every staged BAT sector, and every sector bitmap sector whose new
 * bits a differencing disk's write set in the cache (vhdx_bitmap_set). The commit first
 * makes the staged blocks' data durable (one fdatasync), then writes the entry, whose
 * fdatasync makes it and the previous transaction's in-place writes durable: two per
 * commit, not per block. A BAT entry on disk therefore never points to a block whose
 * completed writes are not durable (on ext4 data=writeback such a block could show stale
 * host data); a write still in flight at the commit, into a block a disk without parent
 * allocated for it, is one the guest was not promised (new_block in vhdx_io.c). A crash
 * before the commit loses only unflushed writes.
 */
#ifndef KEEL_DISK_VHDX_INTERNAL_H
#define KEEL_DISK_VHDX_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "disk/disk.h"
#include "disk/vhdx_format.h"
#include "lib/uuid.h"

#define VHDX_LOCATOR_MAX_KEYS 32

struct vhdx_locator {
	unsigned count;
	char *key[VHDX_LOCATOR_MAX_KEYS];
	char *value[VHDX_LOCATOR_MAX_KEYS];
};

/* A sector (or zeroed range) the log says belongs at `off`: the in-memory replay. */
struct vhdx_overlay {
	uint64_t off;
	uint64_t len;
	uint8_t *data; /* VHDX_LOG_SECTOR bytes, or NULL for zeros */
};

/* One 4 KiB metadata sector to write through the log. */
struct vhdx_log_item {
	uint64_t off;
	const uint8_t *data; /* VHDX_LOG_SECTOR bytes */
};

struct vhdx {
	struct disk base;
	int fd;
	/* The caller's O_DIRECT descriptor of the same file (disk_set_direct, a duplicate owned
	 * here), or -1; guest data written by the library goes through it when aligned to
	 * dio_mem (buffers) and dio_off (offsets, lengths). Set before I/O starts. */
	int dfd;
	uint32_t dio_mem, dio_off;
	unsigned flags;
	pthread_mutex_t lock;

	/* Headers. */
	int cur_slot;		/* [L] 0: header 1, 1: header 2 */
	uint64_t seq;		/* [L] current header's sequence number */
	struct uuid file_write; /* [L] */
	struct uuid data_write; /* [L] */
	struct uuid log_guid;	/* [L] */
	uint64_t log_off;
	uint32_t log_len;
	bool session;	       /* [L] a writer session has started (new FileWriteGuid, LogGuid) */
	bool data_changed;     /* [L] DataWriteGuid renewed in this session */
	bool apply_unsynced;   /* [L] in-place log applies not yet made durable */
	uint64_t log_seq;      /* [L] last log sequence number written */
	uint32_t log_head;     /* [L] where the next log entry goes (byte offset in the log) */
	uint32_t log_prev;     /* [L] the last entry's offset (its in-place writes unsynced) */
	uint64_t durable_size; /* [L] file size known to be on stable storage */

	/* In-memory log replay of a read-only open. */
	struct vhdx_overlay *overlay;
	size_t n_overlay;
	uint64_t overlay_size; /* file size the replay implies (reads past EOF give zeros) */
	unsigned replayed_entries;

	/* Regions. */
	uint64_t bat_off, bat_len, meta_off, meta_len;

	/* Metadata. */
	uint32_t block_size, lsec, psec, params_flags;
	uint64_t vsize;
	struct uuid disk_id;
	bool has_parent;
	struct vhdx_locator loc;
	uint32_t loc_item_off, loc_item_len; /* parent locator item within the region */

	/* BAT geometry and contents. */
	uint64_t chunk_ratio;
	uint64_t payload_blocks, bitmap_blocks, bat_entries;
	uint64_t *bat;	      /* [L] */
	uint8_t **bitmaps;    /* [L] per chunk: cached 1 MiB sector bitmap block, or NULL */
	uint8_t **bm_dirty;   /* [L] per chunk: NULL, or per 4 KiB bitmap sector: staged */
	uint8_t *bat_dirty;   /* [L] per BAT sector: holds staged entries not yet logged */
	uint64_t bat_sectors; /* entries of bat_dirty */
	unsigned n_dirty;     /* [L] sectors staged in bat_dirty and bm_dirty (atomic reads without
			       * the lock) */
	uint64_t file_end;    /* [L] allocation cursor: next free 1 MiB-aligned offset */
	uint64_t file_grown;  /* [L] the file's size as grown ahead by vhdx_alloc (>= file_end) */
	unsigned long syncs;  /* fdatasyncs started by vhdx_sync (atomic; tests count them) */
	/* Tests only (NULL otherwise): called by vhdx_flush between its unlocked look at
	 * n_dirty and taking the lock, where another thread's commit can run. */
	void (*flush_race)(struct vhdx *v);

	/* Differencing. */
	struct disk *parent;
	char parent_path[DISK_PATH_MAX];
};

static inline struct vhdx *to_vhdx(struct disk *d)
{
	return (struct vhdx *)d;
}

static inline uint64_t vhdx_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* vhdx_file.c: file access honouring the in-memory log replay. */
int vhdx_pread(struct vhdx *v, void *buf, size_t len, uint64_t off)
	__attribute__((warn_unused_result));
int vhdx_file_size(struct vhdx *v, uint64_t *size) __attribute__((warn_unused_result));
int vhdx_sync(struct vhdx *v) __attribute__((warn_unused_result));

/* vhdx_header.c */
int vhdx_header_load(struct vhdx *v) __attribute__((warn_unused_result));
void vhdx_header_build(uint8_t *buf, uint64_t seq, const struct uuid *file_write,
		       const struct uuid *data_write, const struct uuid *log_guid, uint64_t log_off,
		       uint32_t log_len);
/* Writes the in-memory header state to both slots (sequence +1, +2), with flushes. [L] */
int vhdx_header_update(struct vhdx *v) __attribute__((warn_unused_result));
/*
 * Before the first write of a session: new FileWriteGuid and LogGuid; with `data`, also a
 * new DataWriteGuid once per session (guest-visible changes). [L]
 */
int vhdx_session_begin(struct vhdx *v, bool data) __attribute__((warn_unused_result));
/* At close: make everything durable and mark the log empty. [L] */
int vhdx_session_end(struct vhdx *v) __attribute__((warn_unused_result));

/* vhdx_region.c */
int vhdx_region_load(struct vhdx *v) __attribute__((warn_unused_result));
void vhdx_region_build(uint8_t *buf, uint64_t bat_off, uint32_t bat_len, uint64_t meta_off,
		       uint32_t meta_len);

/* vhdx_meta.c */
int vhdx_meta_load(struct vhdx *v) __attribute__((warn_unused_result));
struct vhdx_meta_params {
	uint32_t block_size, lsec, psec, flags;
	uint64_t vsize;
	struct uuid disk_id;
	const uint8_t *locator; /* encoded parent locator, or NULL */
	uint32_t locator_len;
};
/* Fills a metadata region image (VHDX_MiB bytes, zeroed by the caller). */
int vhdx_meta_build(uint8_t *region, const struct vhdx_meta_params *p)
	__attribute__((warn_unused_result));
/* Offset within the metadata region of the virtual disk size item. */
int vhdx_meta_find(struct vhdx *v, const struct uuid *item, uint32_t *off, uint32_t *len)
	__attribute__((warn_unused_result));

/* vhdx_bat.c */
void vhdx_geometry(uint64_t vsize, uint32_t block_size, uint32_t lsec, bool differencing,
		   uint64_t *chunk_ratio, uint64_t *payload, uint64_t *bitmaps, uint64_t *entries);
static inline uint64_t vhdx_bat_payload_index(const struct vhdx *v, uint64_t block)
{
	return block + block / v->chunk_ratio;
}
static inline uint64_t vhdx_bat_bitmap_index(const struct vhdx *v, uint64_t chunk)
{
	return chunk * (v->chunk_ratio + 1) + v->chunk_ratio;
}
static inline uint64_t vhdx_bat_get(const struct vhdx *v, uint64_t idx)
{
	return __atomic_load_n(&v->bat[idx], __ATOMIC_ACQUIRE);
}
static inline void vhdx_bat_store(struct vhdx *v, uint64_t idx, uint64_t val)
{
	__atomic_store_n(&v->bat[idx], val, __ATOMIC_RELEASE);
}
int vhdx_bat_load(struct vhdx *v) __attribute__((warn_unused_result));
/*
 * Sets BAT entries idx[i] = val[i] in memory and through one log transaction, after
 * committing what is staged (vhdx_bat_commit). [L]
 */
int vhdx_bat_set(struct vhdx *v, const uint64_t *idx, const uint64_t *val, unsigned n)
	__attribute__((warn_unused_result));
/*
 * Sets a payload entry whose block's data is written (or, a disk without parent, a new
 * block that reads as zeros until written: new_block in vhdx_io.c), in memory only; the next
 * vhdx_bat_commit logs it. Commits at once when the staged sectors reach the limit. [L]
 */
int vhdx_bat_stage(struct vhdx *v, uint64_t idx, uint64_t val) __attribute__((warn_unused_result));
/* Would staging entry idx now commit at once (vhdx_bat_stage)? [L] */
bool vhdx_bat_stage_commits(const struct vhdx *v, uint64_t idx);
/* Makes the staged blocks' data durable (fdatasync), then logs every staged BAT and sector
 * bitmap sector (one transaction, bitmap sectors first if the log is too small for one).
 * Syncs nothing when nothing is staged. [L] */
int vhdx_bat_commit(struct vhdx *v) __attribute__((warn_unused_result));
/* Most BAT sectors staged before vhdx_bat_stage commits on its own. */
#define VHDX_STAGE_MAX 64
/*
 * Takes a zeroed, 1 MiB-aligned area of len bytes at the allocation cursor. The file grows
 * ahead of the cursor by VHDX_GROW_BLOCKS blocks at a time (sparse: ftruncate), so most
 * allocations change no file size; the unreferenced tail is cut at a clean close
 * (vhdx_trim_tail) and left by a crash (the VHDX format allows space no entry refers to). [L]
 */
int vhdx_alloc(struct vhdx *v, uint64_t len, uint64_t *off) __attribute__((warn_unused_result));
#define VHDX_GROW_BLOCKS 8
/* At close, after vhdx_session_end: the file cut back to the allocation cursor. [L] */
void vhdx_trim_tail(struct vhdx *v);

/* vhdx_log.c */
/* On open: find the active sequence; replay it (writable) or build the overlay (read-only). */
int vhdx_log_open(struct vhdx *v) __attribute__((warn_unused_result));
/* Writes the items through the log as one transaction, then in place. [L] */
int vhdx_log_commit(struct vhdx *v, const struct vhdx_log_item *items, unsigned n)
	__attribute__((warn_unused_result));
/* How many 4 KiB sectors one transaction can hold in this file's log. */
unsigned vhdx_log_capacity(const struct vhdx *v);
void vhdx_log_free_overlay(struct vhdx *v);

/* vhdx_bitmap.c (differencing) */
/*
 * For virtual sector `sector` (logical sectors): is it present in this file, and how many
 * following sectors (at most `max`) share that answer? [L]
 */
int vhdx_bitmap_query(struct vhdx *v, uint64_t sector, uint64_t max, bool *present, uint64_t *run)
	__attribute__((warn_unused_result));
/*
 * Marks the logical sectors [sector, sector + count) of one payload block present,
 * allocating the bitmap block if needed (its BAT entry staged). With `reset`, every other
 * sector of that block is marked absent first (a block newly allocated as partially
 * present). The cache changes at once; the bitmap sectors that changed are staged, logged
 * by the next vhdx_bat_commit (which commits first if they would not fit with what is
 * staged). Call it after the data under the bits is written. [L]
 */
int vhdx_bitmap_set(struct vhdx *v, uint64_t sector, uint64_t count, bool reset)
	__attribute__((warn_unused_result));
/* Fills items (at most cap) with staged bitmap sectors, pointing into the cache, and keys
 * with what vhdx_bitmap_clean needs to mark them logged. [L] */
unsigned vhdx_bitmap_staged(struct vhdx *v, struct vhdx_log_item *items, uint64_t *keys,
			    unsigned cap);
void vhdx_bitmap_clean(struct vhdx *v, const uint64_t *keys, unsigned n);

/* vhdx_parent.c */
int vhdx_locator_parse(struct vhdx *v, const uint8_t *buf, uint32_t len)
	__attribute__((warn_unused_result));
void vhdx_locator_free(struct vhdx_locator *loc);
const char *vhdx_locator_get(const struct vhdx_locator *loc, const char *key);
/* Encodes a VHDX parent locator for a child at child_path whose parent is parent_path. */
int vhdx_locator_build(const char *child_path, const char *parent_path,
		       const struct uuid *parent_data_write, uint8_t *out, uint32_t cap,
		       uint32_t *len) __attribute__((warn_unused_result));
/* p is the parent v's linkage names (its DataWriteGuid), with v's sector size; cand names p in
 * the message. 0, -ESTALE or -EINVAL with err. */
int vhdx_parent_check(struct vhdx *v, struct disk *p, const char *cand, struct disk_err *err)
	__attribute__((warn_unused_result));
/*
 * Opens and links v's whole differencing chain, nearest parent first, in one bounded loop
 * (VHDX_MAX_DEPTH levels): each parent opened alone (read-only), checked against its child's
 * linkage GUID and sector size. With parents (descriptors already open, nearest first; taken
 * over, closed on failure) no parent is opened by path and the chain must have exactly
 * nparents; without, each is found through its child's locator paths.
 */
int vhdx_chain_open(struct vhdx *v, const int *parents, unsigned nparents)
	__attribute__((warn_unused_result));

/* vhdx_io.c: the data path of vhdx_ops. */
int vhdx_read(struct disk *d, void *buf, uint64_t off, size_t len)
	__attribute__((warn_unused_result));
int vhdx_map(struct disk *d, uint64_t off, uint64_t len, bool write, struct disk_extent *out)
	__attribute__((warn_unused_result));
int vhdx_fd(struct disk *d);
int vhdx_set_direct(struct disk *d, int fd, uint32_t mem_align, uint32_t off_align)
	__attribute__((warn_unused_result));
int vhdx_write(struct disk *d, const void *buf, uint64_t off, size_t len)
	__attribute__((warn_unused_result));
int vhdx_flush(struct disk *d) __attribute__((warn_unused_result));
int vhdx_discard(struct disk *d, uint64_t off, uint64_t len) __attribute__((warn_unused_result));

/* vhdx_open.c */
/* One VHDX file, its parent not opened (fd taken over, closed on failure); its reasons go to
 * err while it opens. */
int vhdx_open_one(int fd, const char *path, unsigned flags, struct disk **out, struct disk_err *err)
	__attribute__((warn_unused_result));
/* vhdx_open_one, then its chain (vhdx_chain_open) unless flags has DISK_OPEN_NOPARENT. */
int vhdx_open_chain(int fd, const char *path, unsigned flags, const int *parents, unsigned nparents,
		    struct disk **out, struct disk_err *err) __attribute__((warn_unused_result));

#endif
