/* SPDX-License-Identifier: Apache-2.0 */
#include "disk/disk_io.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int dio_pread(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	if (off > INT64_MAX || len > INT64_MAX - off)
		return -EINVAL;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int dio_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	if (off > INT64_MAX || len > INT64_MAX - off)
		return -EINVAL;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

_Bool dio_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* Check the first 16 bytes, then compare the buffer with itself shifted by 16. */
	for (size_t i = 0; i < len && i < 16; i++)
		if (p[i])
			return 0;
	return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}
