/* SPDX-License-Identifier: Apache-2.0 */
/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by VHDX and others. */
#ifndef KEEL_LIB_CRC32C_H
#define KEEL_LIB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC-32C over buf. Start with crc = 0; the usual pre- and post-inversion is
 * done inside, so crc32c(crc32c(0, a), b) == crc32c(0, a || b).
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
