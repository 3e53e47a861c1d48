/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU's firmware configuration interface, as SeaBIOS and OVMF drive it (docs/devices.md):
 * select an item by writing its key to port 0x510 and read it byte by byte from 0x511, or
 * hand the device a DMA descriptor by writing its guest address, big-endian, to 0x514 (high
 * half) and 0x518 (low half; this write runs the transfer). Named items ("files") are listed
 * in the directory at key 0x0019 and get keys from 0x0020 up, in name order. Every item is
 * read-only and fixed once the device is built; the guest only moves the selection.
 */
#ifndef KEEL_VMM_X86_FW_CFG_H
#define KEEL_VMM_X86_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

#define FW_CFG_SIGNATURE  0x0000
#define FW_CFG_ID	  0x0001
#define FW_CFG_UUID	  0x0002
#define FW_CFG_RAM_SIZE	  0x0003
#define FW_CFG_NB_CPUS	  0x0005
#define FW_CFG_BOOT_MENU  0x000e
#define FW_CFG_MAX_CPUS	  0x000f
#define FW_CFG_FILE_DIR	  0x0019
#define FW_CFG_FILE_FIRST 0x0020

/* FW_CFG_ID's bits: the traditional interface, and DMA. */
#define FW_CFG_VERSION	   0x01
#define FW_CFG_VERSION_DMA 0x02

/* The DMA descriptor's control word (big-endian in guest memory); the key to select sits in
 * its top 16 bits. The device writes 0 back when done, or ERROR. */
#define FW_CFG_DMA_ERROR  0x01
#define FW_CFG_DMA_READ	  0x02
#define FW_CFG_DMA_SKIP	  0x04
#define FW_CFG_DMA_SELECT 0x08
#define FW_CFG_DMA_WRITE  0x10

/* Port offsets from PORT_FW_CFG, and the span the device claims. */
#define FW_CFG_PORT_SEL	     0
#define FW_CFG_PORT_DATA     1
#define FW_CFG_PORT_DMA_HIGH 4
#define FW_CFG_PORT_DMA_LOW  8
#define FW_CFG_PORT_SPAN     12

#define FW_CFG_NAME_MAX	     56 /* a file name with its NUL */
#define FW_CFG_MAX_ITEMS     32

struct machine;
struct guest_mem;
struct fw_cfg;

/* A device with the fixed items (signature, ID with DMA) whose DMA transfers reach mem. */
struct fw_cfg *fw_cfg_new(const struct guest_mem *mem);
void fw_cfg_free(struct fw_cfg *f);
/* Add a numbered item or a named file (data is copied). -ENOSPC when full, -EEXIST for a key
 * or name already there, -EINVAL for a name too long or empty, -ENOMEM. */
int fw_cfg_add_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
	__attribute__((warn_unused_result));
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
	__attribute__((warn_unused_result));
/* A file whose contents follow the machine (keel's ACPI tables follow the chipset registers
 * the firmware programmed, as QEMU's do): selecting it runs the device's refresh function
 * first, which rewrites such files with fw_cfg_update_file. */
int fw_cfg_add_file_refreshed(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
	__attribute__((warn_unused_result));
/* The refresh function, called with the device's lock held on a vCPU thread; the device
 * frees opaque (free(3)) with itself. */
typedef void (*fw_cfg_refresh_fn)(void *opaque, struct fw_cfg *f);
void fw_cfg_set_refresh(struct fw_cfg *f, fw_cfg_refresh_fn fn, void *opaque);
/* Replace a file's contents, same length (-EINVAL otherwise, -ENOENT if absent): from the
 * refresh function, or before the device is on the bus. */
int fw_cfg_update_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
	__attribute__((warn_unused_result));
/* After the last file: sort the files by name, give them their keys and publish the
 * directory. Returns 0 or -errno. */
int fw_cfg_finish(struct fw_cfg *f) __attribute__((warn_unused_result));
/* The port interface (offsets from PORT_FW_CFG), as the bus calls it. */
uint64_t fw_cfg_port_read(struct fw_cfg *f, uint64_t off, unsigned size);
void fw_cfg_port_write(struct fw_cfg *f, uint64_t off, unsigned size, uint64_t value);
/* Back to power-on: nothing selected, no DMA address half written. */
void fw_cfg_reset(struct fw_cfg *f);

/* keel's device: the items and files of fw_cfg_content.c, on the machine's ports. */
int fw_cfg_create(struct machine *m, void **obj) __attribute__((warn_unused_result));

#endif
