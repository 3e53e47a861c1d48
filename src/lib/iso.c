/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an ISO image is, for a DVD drive's medium: an ISO 9660 volume descriptor ("CD001"
 * at byte 1 of a 2048-byte sector from sector 16 on, ECMA-119 8.1) or a UDF volume
 * recognition sequence ("BEA01" then "NSR02" or "NSR03", ECMA-167 2/9.1) in the same place.
 * A file without either is refused before it replaces the medium the guest has.
 */
#include <errno.h>
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
	struct stat st;

	if (fstat(fd, &st)) {
		snprintf(err, errlen, "DVD image %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "DVD image %s is not a regular file", path);
		return -EINVAL;
	}
	for (unsigned i = 0; i < ISO_DESCRIPTORS; i++) {
		off_t off = (off_t)(ISO_FIRST_DESCRIPTOR + i) * ISO_BLOCK;
		ssize_t n = pread(fd, sector, sizeof(sector), off);

		if (n < 0) {
			snprintf(err, errlen, "DVD image %s: cannot read it: %s", path,
				 strerror(errno));
			return -errno;
		}
		if (n < (ssize_t)sizeof(sector))
			break;
		if (!memcmp(sector + 1, "CD001", 5) || !memcmp(sector + 1, "NSR02", 5) ||
		    !memcmp(sector + 1, "NSR03", 5))
			return 0;
		if (sector[0] == 0xff && !memcmp(sector + 1, "CD001", 5))
			break; /* ISO 9660's terminator */
	}
	snprintf(err, errlen,
		 "DVD image %s is not an ISO 9660 or UDF image (no CD001 or NSR0x volume "
		 "descriptor from sector 16)",
		 path);
	return -EINVAL;
}
