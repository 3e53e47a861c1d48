/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VHDX on-disk layout (MS-VHDX): offsets, sizes, signatures and GUIDs. All integers are
 * little-endian; structures are read and written field by field with the helpers below,
 * never by casting file bytes to structs.
 */
#ifndef KEEL_DISK_VHDX_FORMAT_H
#define KEEL_DISK_VHDX_FORMAT_H

#include <stdint.h>
#include <string.h>

#include "lib/le.h"

#define VHDX_KiB 1024ull
#define VHDX_MiB (1024ull * 1024)
#define VHDX_TiB (1024ull * 1024 * 1024 * 1024)

/* Header section: the first 1 MiB, in 64 KiB slots. */
#define VHDX_FILE_ID_OFF   0
#define VHDX_HEADER1_OFF   (64 * VHDX_KiB)
#define VHDX_HEADER2_OFF   (128 * VHDX_KiB)
#define VHDX_REGION1_OFF   (192 * VHDX_KiB)
#define VHDX_REGION2_OFF   (256 * VHDX_KiB)
#define VHDX_HEADER_SIZE   4096
#define VHDX_REGION_SIZE   (64 * VHDX_KiB)
#define VHDX_SECTION_SIZE  VHDX_MiB
#define VHDX_ALIGN	   VHDX_MiB

#define VHDX_FILE_SIG	   "vhdxfile"
#define VHDX_HEADER_SIG	   "head"
#define VHDX_REGION_SIG	   "regi"
#define VHDX_METADATA_SIG  "metadata"
#define VHDX_LOG_ENTRY_SIG "loge"
#define VHDX_LOG_ZERO_SIG  "zero"
#define VHDX_LOG_DESC_SIG  "desc"
#define VHDX_LOG_DATA_SIG  "data"

/* Header fields. */
#define VHDX_HDR_CHECKSUM    4
#define VHDX_HDR_SEQ	     8
#define VHDX_HDR_FILE_WRITE  16
#define VHDX_HDR_DATA_WRITE  32
#define VHDX_HDR_LOG_GUID    48
#define VHDX_HDR_LOG_VERSION 64
#define VHDX_HDR_VERSION     66
#define VHDX_HDR_LOG_LENGTH  68
#define VHDX_HDR_LOG_OFFSET  72

/* Region table. */
#define VHDX_REGION_MAX_ENTRIES 2047
#define VHDX_REGION_HDR_SIZE	16
#define VHDX_REGION_ENTRY_SIZE	32

/* Metadata region. */
#define VHDX_META_TABLE_SIZE  (64 * VHDX_KiB)
#define VHDX_META_HDR_SIZE    32
#define VHDX_META_ENTRY_SIZE  32
#define VHDX_META_MAX_ENTRIES 2047
#define VHDX_META_MAX_ITEM    VHDX_MiB
#define VHDX_META_IS_USER     (1u << 0)
#define VHDX_META_IS_VDISK    (1u << 1)
#define VHDX_META_IS_REQUIRED (1u << 2)

/* File parameters flags. */
#define VHDX_PARAM_LEAVE_ALLOCATED (1u << 0)
#define VHDX_PARAM_HAS_PARENT	   (1u << 1)

/* Limits. */
#define VHDX_MIN_BLOCK	 VHDX_MiB
#define VHDX_MAX_BLOCK	 (256 * VHDX_MiB)
#define VHDX_MAX_SIZE	 (64 * VHDX_TiB)
#define VHDX_BITMAP_SIZE VHDX_MiB /* one sector bitmap block covers 2^23 sectors */

/* BAT entry. */
#define VHDX_BAT_STATE_MASK  7ull
#define VHDX_BAT_OFFSET_MASK 0xFFFFFFFFFFF00000ull
enum vhdx_block_state {
	VHDX_PAYLOAD_NOT_PRESENT = 0,
	VHDX_PAYLOAD_UNDEFINED = 1,
	VHDX_PAYLOAD_ZERO = 2,
	VHDX_PAYLOAD_UNMAPPED = 3,
	VHDX_PAYLOAD_UNMAPPED_V095 = 5,
	VHDX_PAYLOAD_FULLY_PRESENT = 6,
	VHDX_PAYLOAD_PARTIALLY_PRESENT = 7,
	VHDX_SB_NOT_PRESENT = 0,
	VHDX_SB_PRESENT = 6,
};

/* Log. */
#define VHDX_LOG_SECTOR	      4096
#define VHDX_LOG_HDR_SIZE     64
#define VHDX_LOG_DESC_SIZE    32
#define VHDX_LOG_DATA_PAYLOAD 4084
#define VHDX_LOG_DEFAULT_SIZE VHDX_MiB
#define VHDX_LOG_MAX_SIZE     (256 * VHDX_MiB) /* bigger logs are refused as implausible */

/* Parent locator. */
#define VHDX_LOCATOR_HDR_SIZE	20
#define VHDX_LOCATOR_ENTRY_SIZE 12

/* Well-known GUIDs, in on-disk byte order. */
#define VHDX_GUID(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7)                                      \
	{                                                                                          \
		{                                                                                  \
			(d1) & 0xff, ((d1) >> 8) & 0xff, ((d1) >> 16) & 0xff, ((d1) >> 24) & 0xff, \
				(d2)&0xff, ((d2) >> 8) & 0xff, (d3)&0xff, ((d3) >> 8) & 0xff, b0,  \
				b1, b2, b3, b4, b5, b6, b7                                         \
		}                                                                                  \
	}

#define VHDX_GUID_BAT                                                                              \
	VHDX_GUID(0x2DC27766, 0xF623, 0x4200, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08)
#define VHDX_GUID_METADATA                                                                         \
	VHDX_GUID(0x8B7CA206, 0x4790, 0x4B9A, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E)
#define VHDX_GUID_FILE_PARAMS                                                                      \
	VHDX_GUID(0xCAA16737, 0xFA36, 0x4D43, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B)
#define VHDX_GUID_VDISK_SIZE                                                                       \
	VHDX_GUID(0x2FA54224, 0xCD1B, 0x4876, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8)
#define VHDX_GUID_PAGE83                                                                           \
	VHDX_GUID(0xBECA12AB, 0xB2E6, 0x4523, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46)
#define VHDX_GUID_LOGICAL_SECTOR                                                                   \
	VHDX_GUID(0x8141BF1D, 0xA96F, 0x4709, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F)
#define VHDX_GUID_PHYSICAL_SECTOR                                                                  \
	VHDX_GUID(0xCDA348C7, 0x445D, 0x4471, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56)
#define VHDX_GUID_PARENT_LOCATOR                                                                   \
	VHDX_GUID(0xA8D35F2D, 0xB30B, 0x454D, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C)
#define VHDX_GUID_LOCATOR_TYPE                                                                     \
	VHDX_GUID(0xB04AEFB7, 0xD19E, 0x4A81, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13)

#endif
