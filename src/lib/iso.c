/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an ISO image is, for a DVD drive's medium: an ISO 9660 volume descriptor ("CD001"
 * at byte 1 of the 2048-byte sector 16, ECMA-119 8.1) or a UDF volume recognition sequence
 * from sector 16 ("BEA01", then "NSR02" or "NSR03" before its "TEA01", ECMA-167 2/9.1; UDF
 * bridge discs put their ISO 9660 descriptors first, found as ISO 9660). The first sector
 * that is neither, an NSR without BEA01 first, or TEA01 without NSR ends the search. A file
 * without either is refused before it replaces the medium the guest has.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/iso.h"

#define ISO_FIRST_DESCRIPTOR 16
#define ISO_DESCRIPTORS	     16 /* volume descriptors looked at, at most */

int iso_check(int fd, const char *path, char *err, size_t errlen)
{
	uint8_t sector[ISO_BLOCK];
	bool bea = false; /* a UDF volume recognition sequence began (BEA01) */
	struct stat st;

	if (fstat(fd, &st)) {
		int e = errno;

		snprintf(err, errlen, "DVD image %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "DVD image %s is not a regular file", path);
		return -EINVAL;
	}
	for (unsigned i = 0; i < ISO_DESCRIPTORS; i++) {
		off_t off = (off_t)(ISO_FIRST_DESCRIPTOR + i) * ISO_BLOCK;
		ssize_t n = pread(fd, sector, sizeof(sector), off);

		if (n < 0) {
			int e = errno;

			snprintf(err, errlen, "DVD image %s: cannot read it: %s", path,
				 strerror(e));
			return -e;
		}
		if (n < (ssize_t)sizeof(sector))
			break;
		/* Any ISO 9660 descriptor (its terminator, type 255, included) is one. */
		if (!memcmp(sector + 1, "CD001", 5))
			return 0;
		if (!memcmp(sector + 1, "BEA01", 5))
			bea = true;
		else if (!memcmp(sector + 1, "TEA01", 5))
			break; /* the UDF volume recognition sequence ends, without NSR */
		else if (bea &&
			 (!memcmp(sector + 1, "NSR02", 5) || !memcmp(sector + 1, "NSR03", 5)))
			return 0;
		else if (!bea)
			break; /* neither ISO 9660 nor the start of a recognition sequence */
	}
	snprintf(err, errlen,
		 "DVD image %s is not an ISO 9660 or UDF image (no CD001 or NSR0x volume "
		 "descriptor from sector 16)",
		 path);
	return -EINVAL;
}
